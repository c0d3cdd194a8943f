/**
 * The mock's MIG profile tables against the independent fact: the markdown tables of
 * test/reference/mig-profiles.md (NVIDIA's MIG guide and `nvidia-smi mig -lgip` output), parsed here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GPU_MODELS } from '../../../src/gpu/mock/index.js';
import type { MigProfile } from '../../../src/gpu/mock/index.js';
import { reference } from '../../helpers/reference.js';

const REFERENCE = reference('mig-profiles.md');

interface RefRow {
  name: string;
  id: number;
  max: number;
  sms: number;
  memoryMiB: number;
  ce: number;
  dec: number;
  jpg: number;
  ofa: number;
  starts: number[];
  size: number;
}

/** Parse "0..6 size 1" / "0,2,4,6 size 2" / "0 size 8". */
function parsePlacements(cell: string): { starts: number[]; size: number } {
  const m = /^(.+?)\s+size\s+(\d+)$/.exec(cell.trim());
  if (!m) throw new Error(`bad placement cell: ${cell}`);
  const [, list = '', size = ''] = m;
  const range = /^(\d+)\.\.(\d+)$/.exec(list.trim());
  const starts = range
    ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i)
    : list.split(',').map((s) => Number(s.trim()));
  return { starts, size: Number(size) };
}

/** Rows of the table under the `## <heading>` section whose heading starts with `prefix`. */
function tableUnder(markdown: string, prefix: string): RefRow[] {
  const sections = markdown.split(/^## /m);
  const section = sections.find((s) => s.startsWith(prefix));
  if (!section) throw new Error(`no section ${prefix}`);
  const rows = section.split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---') && !l.startsWith('| profile'));
  return rows.map((line) => {
    const c = line.split('|').slice(1, -1).map((s) => s.trim());
    const num = (i: number): number => Number((c[i] ?? '').replace('~', ''));
    const { starts, size } = parsePlacements(c[9] ?? '');
    return {
      name: c[0] ?? '', id: num(1), max: num(2), sms: num(3), memoryMiB: num(4),
      ce: num(5), dec: num(6), jpg: num(7), ofa: num(8), starts, size,
    };
  });
}

function asRef(p: MigProfile): RefRow {
  return {
    name: p.name, id: p.id, max: p.maxCount, sms: p.multiprocessors, memoryMiB: p.memoryMiB,
    ce: p.copyEngines, dec: p.decoders, jpg: p.jpegEngines, ofa: p.ofaEngines,
    starts: [...p.placementStarts], size: p.placementSize,
  };
}

describe('mock MIG profile tables vs test/reference/mig-profiles.md', () => {
  const md = readFileSync(REFERENCE, 'utf8');

  it('A100-SXM4-40GB table matches the reference exactly', () => {
    const ref = tableUnder(md, 'A100-SXM4-40GB');
    expect(ref).toHaveLength(7);
    expect(GPU_MODELS['a100-40gb'].migProfiles.map(asRef)).toEqual(ref);
  });

  it('A100-SXM4-80GB table matches the reference exactly, and is A100-40GB with the 80 GB names and sizes', () => {
    const ref = tableUnder(md, 'A100-SXM4-80GB');
    expect(ref).toHaveLength(7);
    expect(GPU_MODELS['a100-80gb'].migProfiles.map(asRef)).toEqual(ref);
    const sansNameSize = (r: RefRow): Omit<RefRow, 'name' | 'memoryMiB'> => ({
      id: r.id, max: r.max, sms: r.sms, ce: r.ce, dec: r.dec, jpg: r.jpg, ofa: r.ofa, starts: r.starts, size: r.size,
    });
    expect(ref.map(sansNameSize)).toEqual(tableUnder(md, 'A100-SXM4-40GB').map(sansNameSize));
  });

  it('H100-SXM5-80GB table matches the reference exactly', () => {
    const ref = tableUnder(md, 'H100-SXM5-80GB');
    expect(ref).toHaveLength(7);
    expect(GPU_MODELS['h100-80gb'].migProfiles.map(asRef)).toEqual(ref);
  });

  it('H200: names and GiB sizes per the reference, everything else as H100', () => {
    const section = md.split(/^## /m).find((s) => s.startsWith('H200')) ?? '';
    const names = /Profiles (.+?) \(the last/s.exec(section)?.[1]?.split(/,\s*/).map((s) => s.trim()) ?? [];
    const gib = /memory per `nvidia-smi`: ([\d./ ]+) GiB/.exec(section)?.[1]?.split('/').map((s) => Number(s.trim())) ?? [];
    const h200 = GPU_MODELS['h200-141gb'].migProfiles;
    expect(h200.map((p) => p.name)).toEqual(names);
    expect(gib).toHaveLength(6);
    gib.forEach((g, i) => expect(h200[i]?.memoryMiB).toBe(g * 1024));
    const h100 = GPU_MODELS['h100-80gb'].migProfiles;
    const sansSize = (p: MigProfile): Omit<RefRow, 'name' | 'memoryMiB'> => {
      const r: Partial<RefRow> = asRef(p);
      delete r.name;
      delete r.memoryMiB;
      return r as Omit<RefRow, 'name' | 'memoryMiB'>;
    };
    expect(h200.map(sansSize)).toEqual(h100.map(sansSize));
    // 7g.141gb (not in the reference) must still fit the GPU.
    expect(h200[6]!.memoryMiB).toBeLessThanOrEqual(GPU_MODELS['h200-141gb'].memoryMiB);
  });

  it('every profile reports 0 encoders (NVIDIA exposes no NVENC on MIG) and compute slices from its name', () => {
    for (const model of Object.values(GPU_MODELS)) {
      for (const p of model.migProfiles) {
        expect(p.encoders).toBe(0);
        expect(p.computeSlices).toBe(Number(p.name[0]));
        expect(p.memoryMiB).toBeLessThanOrEqual(model.memoryMiB);
        for (const s of p.placementStarts) expect(s + p.placementSize).toBeLessThanOrEqual(8);
      }
    }
  });
});
