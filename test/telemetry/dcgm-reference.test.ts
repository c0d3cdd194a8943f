/**
 * gpulet's dcgm-exporter series against dcgm-exporter's own files (test/reference/dcgm-exporter/): every family
 * gpulet renders that dcgm-exporter's `etc/dcp-metrics-included.csv` lists has the CSV's `# TYPE`; the fields
 * issue 13 names are emitted; the CSV's `label` field is a label on every series; and the XID texts equal
 * dcgm-exporter's `xidErrCodeToText`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deviceIdentities } from '../../src/telemetry/attributes.js';
import { renderDcgm } from '../../src/telemetry/dcgm.js';
import { UNKNOWN_XID_MESSAGE, XID_MESSAGES, xidMessage } from '../../src/telemetry/xid-messages.js';
import { reference } from '../helpers/reference.js';
import { parsePrometheusText } from '../helpers/promtext.js';
import { fullReadings, GPU0, GPU1, INVENTORY, MIG_A } from '../helpers/telemetry.js';

/** Uncommented rows of a dcgm-exporter counters CSV: field → type. */
function csvTypes(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [field, type] = line.split(',').map((c) => c.trim());
    if (field !== undefined && type !== undefined) out.set(field, type);
  }
  return out;
}

const csv = csvTypes(readFileSync(reference('dcgm-exporter', 'dcp-metrics-included.csv'), 'utf8'));
const rendered = parsePrometheusText(renderDcgm({
  sample: { timestampMs: 1, devices: [fullReadings(GPU0, { remappedRowsFailure: 0, nvlinkDataBytes: 1 }), fullReadings(GPU1), fullReadings(MIG_A)] },
  identities: deviceIdentities(INVENTORY),
  owners: new Map(),
  lastXid: () => undefined,
  hostname: 'node-a',
  driverName: 'gpu.gpulet.dev',
  poolName: 'node-a',
}));

describe('dcgm-exporter compatibility (etc/dcp-metrics-included.csv)', () => {
  it('declares each family it shares with dcgm-exporter with dcgm-exporter\'s type', () => {
    let shared = 0;
    for (const [family, type] of rendered.types) {
      const expected = csv.get(family);
      if (expected === undefined) continue;
      expect(type, family).toBe(expected);
      shared++;
    }
    expect(shared).toBeGreaterThanOrEqual(18);
  });

  it('emits the fields of issue 13 item 2', () => {
    for (const f of ['DCGM_FI_DEV_XID_ERRORS', 'DCGM_FI_DEV_ROW_REMAP_FAILURE', 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS', 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS']) {
      expect(rendered.types.has(f), f).toBe(true);
    }
  });

  it('puts every label field of the CSV (DCGM_FI_DRIVER_VERSION) on every series', () => {
    const labelFields = [...csv].filter(([, t]) => t === 'label').map(([f]) => f);
    expect(labelFields).toContain('DCGM_FI_DRIVER_VERSION');
    for (const s of rendered.samples) for (const f of labelFields) expect(s.labels[f], `${s.name} ${f}`).toBe(INVENTORY.system.driverVersion);
  });
});

describe('XID texts (internal/pkg/collector/xid_errors.go)', () => {
  it('equal dcgm-exporter\'s table, XID by XID', () => {
    const rows = readFileSync(reference('dcgm-exporter', 'xid-messages.md'), 'utf8')
      .split('\n')
      .map((l) => /^\| (\d+) \| (.*) \|$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [Number(m[1]), m[2]!] as const);
    expect(rows.length).toBeGreaterThan(170);
    expect(XID_MESSAGES).toEqual(rows.map(([, text]) => text));
    rows.forEach(([xid], i) => expect(xid).toBe(i));
    expect(xidMessage(rows.length)).toBe(UNKNOWN_XID_MESSAGE);
    expect(xidMessage(-1)).toBe(UNKNOWN_XID_MESSAGE);
  });
});
