/**
 * The catalogue against its independent sources: the table of test/reference/metrics.md (parsed here) and
 * the metric names exported by @opentelemetry/semantic-conventions.
 */
import { readFileSync } from 'node:fs';
import * as semconv from '@opentelemetry/semantic-conventions/incubating';
import { describe, expect, it } from 'vitest';
import { convert, DCGM_ONLY_SERIES, INSTRUMENTS, type Conversion, type SampleField } from '../../src/telemetry/instruments.js';
import { reference } from '../helpers/reference.js';

interface Row {
  otel: string;
  instrument: string;
  unit: string;
  dcgm: string;
}

function referenceRows(): Row[] {
  const md = readFileSync(reference('metrics.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of md.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| OTel metric') || line.startsWith('|---')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    const [otel, kindUnit, , dcgm] = cells;
    const [instrument, unit] = (kindUnit ?? '').split(',').map((x) => x.trim());
    rows.push({ otel: otel ?? '', instrument: instrument ?? '', unit: unit ?? '', dcgm: dcgm ?? '' });
  }
  return rows;
}

const KIND_OF: Record<string, string> = { Gauge: 'gauge', UpDownCounter: 'updowncounter', Counter: 'counter' };

/** Unit of a raw DeviceSample field, from its name (the field names carry their units, src/gpu/types.ts). */
function rawUnit(field: SampleField): string {
  if (field.endsWith('Percent')) return '%';
  if (field.endsWith('Bytes')) return 'By';
  if (field.endsWith('Milliwatts')) return 'mW';
  if (field.endsWith('Millijoules')) return 'mJ';
  if (field.endsWith('Celsius')) return 'Cel';
  if (field.endsWith('Mhz')) return 'MHz';
  return 'count';
}

/** The conversion a physicist would pick between two units. */
function expectedConversion(from: string, to: string): Conversion {
  if (from === '%' && to === '1') return 'percentToRatio';
  if ((from === 'mW' && to === 'W') || (from === 'mJ' && to === 'J')) return 'milliToUnit';
  if (from === 'By' && to === 'MiB') return 'bytesToMiB';
  if (from === to || from === 'count' || (from === '%' && to === '%') || (from === 'Cel' && to === '°C')) return 'identity';
  throw new Error(`no conversion from ${from} to ${to}`);
}

describe('catalogue vs test/reference/metrics.md', () => {
  const rows = referenceRows();
  const semconvRows = rows.filter((r) => r.otel.startsWith('hw.'));

  it('parses the reference table', () => {
    expect(semconvRows.length).toBeGreaterThanOrEqual(10);
  });

  it('has every semconv metric of the reference, with its instrument kind and unit', () => {
    for (const row of semconvRows) {
      const spec = INSTRUMENTS.find((i) => i.name === row.otel);
      expect(spec, row.otel).toBeDefined();
      expect(spec!.kind, row.otel).toBe(KIND_OF[row.instrument]);
      expect(spec!.unit, row.otel).toBe(row.unit);
      expect(spec!.standard).toBe(true);
    }
  });

  it('names every standard instrument as @opentelemetry/semantic-conventions does', () => {
    const names = new Set(Object.entries(semconv).filter(([k]) => k.startsWith('METRIC_HW_')).map(([, v]) => v as string));
    for (const spec of INSTRUMENTS.filter((i) => i.standard)) expect(names.has(spec.name), spec.name).toBe(true);
  });

  it('prefixes every non-standard instrument with gpulet. and says so', () => {
    for (const spec of INSTRUMENTS.filter((i) => !i.standard)) {
      expect(spec.name.startsWith('gpulet.'), spec.name).toBe(true);
      expect(spec.description).toMatch(/not an OTel semantic convention/);
    }
  });

  it('gives clocks the unit of the reference row (MHz) and the dcgm names it lists', () => {
    const clocks = rows.find((r) => r.otel.includes('clocks') && !r.otel.includes('reason'))!;
    const spec = INSTRUMENTS.find((i) => i.name === 'gpulet.gpu.clock.frequency')!;
    expect(spec.kind).toBe(KIND_OF[clocks.instrument]);
    expect(spec.unit).toBe(clocks.unit);
    expect(clocks.dcgm).toContain(spec.series[0]!.dcgm!.name);
  });

  it('converts every OTel series from the raw unit to the instrument unit', () => {
    for (const spec of INSTRUMENTS) {
      for (const series of spec.series) {
        if (series.source.from !== 'sample') continue;
        const from = series.source.per === undefined ? rawUnit(series.source.field) : '1';
        const to = spec.unit === '1' || spec.unit.startsWith('{') ? (from === '%' ? '1' : from === '1' ? '1' : 'count') : spec.unit;
        expect(series.convert, `${spec.name} ${series.source.field}`).toBe(expectedConversion(from, to));
      }
    }
  });

  it('converts dcgm series to the units the reference gives (%, MiB, W, mJ, °C, MHz)', () => {
    const unitIn = (dcgmCell: string, name: string): string | undefined => {
      // "DCGM_FI_DEV_FB_USED (MiB)" or a list "DCGM_FI_DEV_GPU_UTIL, _ENC_UTIL, _DEC_UTIL (%)"
      const short = name.replace(/^DCGM_FI_(DEV|PROF)/, '');
      if (!dcgmCell.includes(name) && !dcgmCell.includes(short)) return undefined;
      return /\(([^)]+)\)\s*$/.exec(dcgmCell)?.[1];
    };
    let checked = 0;
    for (const spec of INSTRUMENTS) {
      const row = rows.find((r) => r.otel === spec.name);
      if (row === undefined) continue;
      for (const series of spec.series) {
        if (series.dcgm === undefined || series.source.from !== 'sample') continue;
        const unit = unitIn(row.dcgm, series.dcgm.name);
        if (unit === undefined) continue;
        expect(series.dcgm.convert, series.dcgm.name).toBe(expectedConversion(rawUnit(series.source.field), unit));
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);
  });

  it('has every DCGM_FI_PROF_* field of the reference, as a gauge fed from GPM, with the reference\'s unit', () => {
    const prof = rows.filter((r) => r.dcgm.includes('DCGM_FI_PROF_') && r.otel.startsWith('(none'));
    expect(prof.length).toBeGreaterThanOrEqual(7);
    const listed = prof.flatMap((r) => {
      const names = r.dcgm.replace(/\s*\([^)]*\)\s*$/, '').split(',').map((x) => x.trim());
      const first = names[0]!;
      const stem = first.slice(0, first.lastIndexOf('_', first.lastIndexOf('_') - 1));
      return names.map((n) => (n.startsWith('_') ? `${stem}${n}` : n));
    });
    const gpm = INSTRUMENTS.flatMap((i) => i.series.filter((x) => x.source.from === 'gpm').map((x) => ({ spec: i, series: x })));
    for (const name of listed) {
      const hit = gpm.find((x) => x.series.dcgm?.name === name);
      expect(hit, name).toBeDefined();
      expect(hit!.series.dcgm!.type, name).toBe('gauge');
      expect(hit!.series.dcgm!.convert, name).toBe('identity'); // gpulet's GpmMetrics are already ratios and B/s
      expect(hit!.spec.kind).toBe('gauge');
      expect(hit!.spec.unit).toBe(name.endsWith('_BYTES') ? 'By/s' : '1');
    }
    expect(gpm.map((x) => x.series.dcgm?.name).sort()).toEqual([...listed].sort());
  });

  it('has unique dcgm names', () => {
    const names = [...INSTRUMENTS.flatMap((i) => i.series.flatMap((s) => (s.dcgm ? [s.dcgm.name] : []))), ...DCGM_ONLY_SERIES.map((d) => d.name)];
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('conversions', () => {
  it('mW → W, mJ → J, % → ratio, bytes → MiB', () => {
    expect(convert(345_678, 'milliToUnit')).toBeCloseTo(345.678, 9);
    expect(convert(123_456_789, 'milliToUnit')).toBeCloseTo(123_456.789, 6);
    expect(convert(42, 'percentToRatio')).toBeCloseTo(0.42, 12);
    expect(convert(20 * 1024 ** 3, 'bytesToMiB')).toBe(20_480);
    expect(convert(7, 'identity')).toBe(7);
  });
});
