/**
 * The dynamic-MIG counter model proven against the hardware's rules, for every MIG-capable mock GPU model
 * (A100-40GB, A100-80GB, H100-80GB, H200-141GB):
 *
 * - the placements of each profile table are NVML's possible placements (the `nvidia-smi mig -lgipp` listing of
 *   test/reference/mig-profiles.md);
 * - what gpulet publishes (its wire slices, read as the scheduler reads them, quantities parsed here) is
 *   NVIDIA's counter set: one per GPU, the capacity counters at the largest profile's values, one counter per
 *   memory slice;
 * - fast-check: any set of published devices that fits the counters is a layout the placement oracle accepts,
 *   and any layout the oracle accepts fits the counters — also beside MIG instances that already exist (foreign
 *   instances); shrinking gives the smallest counter-example, shown on counter models with a counter removed;
 * - exhaustively: every layout within the possible placements, and for each hardware rule the layouts that
 *   break only that rule and which counter rejects them (the table docs/contracts.md states).
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPU_MODELS, migLayoutProblems } from '../../src/gpu/mock/index.js';
import { HARDWARE_RULES, layoutViolations, possiblePlacements, type HardwareRule, type MigGeometry, type MigPlacement } from '../../src/model/mig-placements.js';
import { countersFit, gpuCounters, maxCapacities, memorySliceCount } from '../../src/model/mig-counters.js';
import { fuzzRuns, fuzzSeed } from '../helpers/fuzz/env.js';
import { reference } from '../helpers/reference.js';
import {
  asLayout, dynamicSlices, fitsPublished, geometryOf, MIG_MODELS, nodeOf, onWire, readPool, type SeenPool,
} from '../helpers/dynamic-mig.js';

const RUNS = fuzzRuns(200);
const params = { numRuns: RUNS, seed: fuzzSeed() };

function accepts(geometry: MigGeometry, pool: SeenPool, names: readonly string[], foreign: readonly MigPlacement[] = []): boolean {
  const { instances, whole } = asLayout(geometry, pool, names);
  return layoutViolations(geometry, [...foreign, ...instances], whole).length === 0;
}

/** Grow a layout the oracle accepts: placements in the given order, each kept when the oracle still accepts. */
function greedyLayout(geometry: MigGeometry, order: readonly MigPlacement[], base: readonly MigPlacement[] = []): MigPlacement[] {
  const out: MigPlacement[] = [];
  for (const p of order) if (layoutViolations(geometry, [...base, ...out, p]).length === 0) out.push(p);
  return out;
}

const nameOf = (p: MigPlacement): string =>
  `gpu-0-mig-${p.profile.name.replaceAll('.', '').replace(/[^a-z0-9-]/g, '-')}-${p.profile.id}-${p.start}`;

describe('profile tables: placements are NVML possible placements (nvidia-smi mig -lgipp)', () => {
  const md = readFileSync(reference('mig-profiles.md'), 'utf8');
  const listing = new Map<number, { starts: number[]; size: number }>();
  for (const m of md.matchAll(/Profile ID\s+(\d+) Placements?\s*:\s*\{([\d,]+)\}:(\d+)/g)) {
    listing.set(Number(m[1]), { starts: m[2]!.split(',').map(Number), size: Number(m[3]) });
  }

  it.each(MIG_MODELS)('%s: every profile has exactly the listed starts and size, and the listing has no other profile', (model) => {
    expect(listing.size).toBe(7);
    const table = GPU_MODELS[model].migProfiles;
    expect(table.map((p) => p.id).sort((a, b) => a - b)).toEqual([...listing.keys()].sort((a, b) => a - b));
    for (const p of table) expect({ id: p.id, starts: [...p.placementStarts], size: p.placementSize }).toEqual({ id: p.id, ...listing.get(p.id) });
  });
});

describe.each(MIG_MODELS)('%s: the published counters against the placement oracle', (model) => {
  const geometry = geometryOf(model);
  const pool = readPool(onWire(dynamicSlices(nodeOf(model))));
  const names = [...pool.devices.keys()];
  const table = GPU_MODELS[model].migProfiles;

  it("publishes NVIDIA's counter set: largest profile values, 8 memory slices; one device per placement plus the GPU", () => {
    expect([...pool.counterSets.keys()]).toEqual(['gpu-0-counter-set']);
    const set = pool.counterSets.get('gpu-0-counter-set')!;
    const max = (f: (p: (typeof table)[number]) => number): bigint => BigInt(Math.max(...table.map(f)));
    expect(Object.fromEntries(set)).toEqual({
      multiprocessors: max((p) => p.multiprocessors),
      'copy-engines': max((p) => p.copyEngines),
      decoders: max((p) => p.decoders),
      encoders: max((p) => p.encoders),
      'jpeg-engines': max((p) => p.jpegEngines),
      'ofa-engines': max((p) => p.ofaEngines),
      memory: max((p) => p.memoryMiB) * 1024n * 1024n,
      ...Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`memory-slice-${i}`, 1n])),
    });
    expect(names.filter((n) => pool.devices.get(n)!.whole)).toEqual(['gpu-0']);
    expect(pool.devices.get('gpu-0')!.consumes).toEqual(new Map([['gpu-0-counter-set', set]]));
    const placements = table.flatMap((p) => p.placementStarts.map((start) => `${p.id}@${start}`)).sort();
    expect(names.filter((n) => !pool.devices.get(n)!.whole).map((n) => `${pool.devices.get(n)!.placement!.profileId}@${pool.devices.get(n)!.placement!.start}`).sort()).toEqual(placements);
  });

  it('fits the counters ⇔ the oracle accepts, for any set of published devices (fast-check)', () => {
    fc.assert(fc.property(fc.subarray(names), (chosen) => fitsPublished(pool, chosen) === accepts(geometry, pool, chosen)), params);
  });

  it('any layout the oracle accepts fits the counters, and the mock backend\'s own layout check agrees (fast-check)', () => {
    const all = possiblePlacements(geometry);
    fc.assert(
      fc.property(fc.shuffledSubarray(all), (order) => {
        const layout = greedyLayout(geometry, order);
        const problems = migLayoutProblems(GPU_MODELS[model], layout.map((p) => ({ profile: p.profile.name, placementStart: p.start })));
        return problems.length === 0 && fitsPublished(pool, layout.map(nameOf));
      }),
      params,
    );
  });

  it('the oracle agrees with the mock backend\'s independent layout check on any set of placements (fast-check)', () => {
    const all = possiblePlacements(geometry);
    fc.assert(
      fc.property(fc.subarray(all, { maxLength: 9 }), (layout) => {
        const oracle = layoutViolations(geometry, layout).length === 0;
        const mock = migLayoutProblems(GPU_MODELS[model], layout.map((p) => ({ profile: p.profile.name, placementStart: p.start }))).length === 0;
        return oracle === mock;
      }),
      params,
    );
  });

  it('beside MIG instances that already exist: the counters left fit exactly what the oracle accepts with them (fast-check)', () => {
    const all = possiblePlacements(geometry);
    fc.assert(
      fc.property(fc.shuffledSubarray(all, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (order, picks) => {
        const foreign = greedyLayout(geometry, order);
        const seen = readPool(onWire(dynamicSlices(nodeOf(model, 1, foreign))));
        // The instances are published as the devices they are, consuming nothing; the GPU is not published.
        for (const f of foreign) {
          const d = seen.devices.get(nameOf(f));
          if (d === undefined || d.consumes !== undefined) return false;
        }
        if (seen.devices.has('gpu-0')) return false;
        // Published placements: exactly those the oracle would still accept beside the instances.
        const consuming = [...seen.devices.values()].filter((d) => d.consumes !== undefined).map((d) => d.name);
        const expected = all.filter((p) => !foreign.some((f) => nameOf(f) === nameOf(p)) && layoutViolations(geometry, [...foreign, p]).length === 0).map(nameOf);
        if (consuming.slice().sort().join() !== expected.slice().sort().join()) return false;
        // Any set of them fits the counters left iff the oracle accepts it with the instances.
        const chosen = [...new Set(picks.map((i) => consuming[i % Math.max(1, consuming.length)]).filter((n): n is string => n !== undefined))];
        return fitsPublished(seen, chosen) === accepts(geometry, seen, chosen, foreign);
      }),
      { ...params, numRuns: Math.max(20, Math.floor(RUNS / 4)) },
    );
  });
});

/** Every set of possible placements with no memory slice used twice (depth-first). */
function nonOverlapping(geometry: MigGeometry): MigPlacement[][] {
  const all = possiblePlacements(geometry);
  const out: MigPlacement[][] = [];
  const walk = (i: number, cur: MigPlacement[], used: number): void => {
    if (i === all.length) {
      out.push(cur);
      return;
    }
    walk(i + 1, cur, used);
    const p = all[i]!;
    const mask = ((1 << p.profile.placementSize) - 1) << p.start;
    if ((used & mask) === 0) walk(i + 1, [...cur, p], used | mask);
  };
  walk(0, [], 0);
  return out;
}

/** Which counters a layout overflows (names), read from the published pool. */
function overflowing(pool: SeenPool, names: readonly string[]): string[] {
  const set = pool.counterSets.get('gpu-0-counter-set')!;
  const used = new Map<string, bigint>();
  for (const n of names) for (const [c, v] of pool.devices.get(n)!.consumes?.get('gpu-0-counter-set') ?? []) used.set(c, (used.get(c) ?? 0n) + v);
  return [...used].filter(([c, v]) => v > (set.get(c) ?? 0n)).map(([c]) => c.replace(/^memory-slice-\d+$/, 'memory-slice-<i>'));
}

/**
 * How the counters express each rule, on every model: a counter that rejects every layout breaking that rule
 * within the possible placements and the memory slices, or `implied` when no such layout breaks it (the possible
 * placements and memory slices already rule it out). The same table is in docs/contracts.md.
 */
const EXPRESSED_BY: Record<HardwareRule, string> = {
  'profile-supported': 'not published', // only the GPU's own profiles have devices
  'possible-placement': 'not published', // only possible placements have devices
  'memory-slices': 'memory-slice-<i>',
  'compute-slices': 'implied',
  'profile-maximum': 'ofa-engines', // only +me (1 allowed, 7 placements) can exceed its maximum within the slices
  'media-extensions': 'ofa-engines',
  'whole-gpu': 'memory-slice-<i>', // the full GPU consumes every counter: beside any instance its memory slices run out
};

describe.each(MIG_MODELS)('%s: every layout, exhaustively, and the rules the counters express', (model) => {
  const geometry = geometryOf(model);
  const pool = readPool(onWire(dynamicSlices(nodeOf(model))));
  const layouts = nonOverlapping(geometry);

  it('every layout of possible placements without overlap: fits the counters ⇔ the oracle accepts', () => {
    let accepted = 0;
    for (const layout of layouts) {
      const ok = layoutViolations(geometry, layout).length === 0;
      if (ok) accepted += 1;
      expect(fitsPublished(pool, layout.map(nameOf)), layout.map(nameOf).join(' ')).toBe(ok);
    }
    console.info(`${model}: ${layouts.length} layouts without overlap, ${accepted} accepted by NVML's rules, all and only those fit the counters`);
    expect(accepted).toBeGreaterThan(100);
  });

  it('states, rule by rule, which counter rejects the layouts that break it', () => {
    const found = new Map<HardwareRule, Set<string>>(HARDWARE_RULES.map((r) => [r, new Set<string>()]));
    const broken = new Map<HardwareRule, number>(HARDWARE_RULES.map((r) => [r, 0]));
    const everyOverflows = new Map<HardwareRule, boolean>(HARDWARE_RULES.map((r) => [r, true]));
    const record = (names: readonly string[], instances: readonly MigPlacement[], whole: number): void => {
      const rules = new Set(layoutViolations(geometry, instances, whole).map((v) => v.rule));
      const over = overflowing(pool, names);
      for (const rule of rules) {
        // Each rule on the layouts that break it within the memory slices (memory-slices itself: overlaps).
        if (rule !== 'memory-slices' && rules.has('memory-slices')) continue;
        broken.set(rule, broken.get(rule)! + 1);
        expect(over.length, `${rule} broken by ${names.join(' ')} fits the counters`).toBeGreaterThan(0);
        for (const c of over) found.get(rule)!.add(c);
        if (!over.includes(EXPRESSED_BY[rule])) everyOverflows.set(rule, false);
      }
    };
    for (const layout of layouts) {
      record(layout.map(nameOf), layout, 0);
      if (layout.length > 0) record(['gpu-0', ...layout.map(nameOf)], layout, 1);
    }
    // Overlapping pairs (the memory-slices rule alone).
    const all = possiblePlacements(geometry);
    for (const a of all) for (const b of all) if (nameOf(a) < nameOf(b)) record([nameOf(a), nameOf(b)], [a, b], 0);
    const table = Object.fromEntries(
      HARDWARE_RULES.map((r) => {
        if (r === 'profile-supported' || r === 'possible-placement') return [r, 'not published'];
        if (broken.get(r) === 0) return [r, 'implied'];
        // Every breaking layout overflows the expected counter, or the table shows what did.
        return [r, everyOverflows.get(r) === true ? EXPRESSED_BY[r] : [...found.get(r)!].join('+')];
      }),
    );
    console.info(`${model}: rule → rejecting counter ${JSON.stringify(table)}`);
    expect(table).toEqual(EXPRESSED_BY);
  });
});

describe('shrinking: a counter model missing a counter is caught with the smallest counter-example', () => {
  const model = 'h100-80gb';
  const geometry = geometryOf(model);
  const pool = readPool(onWire(dynamicSlices(nodeOf(model))));
  const names = [...pool.devices.keys()];
  const without = (drop: RegExp): SeenPool => ({
    counterSets: pool.counterSets,
    devices: new Map([...pool.devices].map(([n, d]) => [n, {
      ...d,
      consumes: d.consumes === undefined ? undefined : new Map([...d.consumes].map(([s, cs]) => [s, new Map([...cs].filter(([c]) => !drop.test(c)))])),
    }])),
  });

  it.each([
    ['ofa-engines', /^ofa-engines$/, (cx: string[]) => cx.length === 2 && cx.every((n) => n.includes('-me-'))],
    ['memory-slice-<i>', /^memory-slice-/, (cx: string[]) => cx.length === 2],
  ])('without %s the property fails and shrinks to two devices', (_label, drop, shape) => {
    const broken = without(drop);
    const out = fc.check(fc.property(fc.subarray(names), (chosen) => fitsPublished(broken, chosen) === accepts(geometry, broken, chosen)), { numRuns: 2_000, seed: fuzzSeed() });
    expect(out.failed).toBe(true);
    const cx = out.counterexample?.[0] ?? [];
    expect(shape(cx), `counter-example ${JSON.stringify(cx)}`).toBe(true);
  });
});

describe('the counter set and the fit, on geometries the mock tables do not have', () => {
  const base = geometryOf('h100-80gb');
  const byId = (g: MigGeometry): Record<string, bigint> => Object.fromEntries(gpuCounters(g));

  it('takes each largest value whatever the order of the profile table', () => {
    const reversed: MigGeometry = { ...base, profiles: [...base.profiles].reverse() };
    expect(byId(reversed)).toEqual(byId(base));
    expect(maxCapacities(reversed)).toEqual(maxCapacities(base));
  });

  it('counts only profiles with a possible placement (NVIDIA sets the maxima over placements): without the full-GPU one, 4 memory slices', () => {
    // The full-GPU profile (ID 0, "Placement : {0}:8" in test/reference/mig-profiles.md) with no placement left.
    const noFull: MigGeometry = { ...base, profiles: base.profiles.map((p) => (p.id === 0 ? { ...p, placementStarts: [] } : p)) };
    const others = base.profiles.filter((p) => p.id !== 0);
    const max = (f: (p: (typeof others)[number]) => number): bigint => BigInt(Math.max(...others.map(f)));
    expect(memorySliceCount(noFull)).toBe(4); // the largest other placement size: {0,4}:4 and {0}:4
    expect(byId(noFull)).toEqual({
      multiprocessors: max((p) => p.multiprocessors),
      'copy-engines': max((p) => p.copyEngines),
      decoders: max((p) => p.decoders),
      encoders: max((p) => p.encoders),
      'jpeg-engines': max((p) => p.jpegEngines),
      'ofa-engines': max((p) => p.ofaEngines),
      memory: max((p) => p.memoryMiB) * 1024n * 1024n,
      ...Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`memory-slice-${i}`, 1n])),
    });
    expect(max((p) => p.multiprocessors)).toBeLessThan(BigInt(base.profiles.find((p) => p.id === 0)!.multiprocessors));
  });

  it('fits as the scheduler counts: the sum per counter at most the set\'s value, a counter the set lacks is 0', () => {
    const set = new Map([['multiprocessors', 4n], ['memory-slice-0', 1n]]);
    const one = new Map([['multiprocessors', 2n], ['memory-slice-0', 1n]]);
    expect(countersFit(set, [one])).toEqual({ ok: true, remaining: new Map([['multiprocessors', 2n], ['memory-slice-0', 0n]]) });
    expect(countersFit(set, [one, one])).toEqual({ ok: false, counter: 'memory-slice-0', needed: 2n, available: 1n });
    expect(countersFit(set, [new Map([['memory-slice-1', 1n]])])).toEqual({ ok: false, counter: 'memory-slice-1', needed: 1n, available: 0n });
    expect(countersFit(set, [])).toEqual({ ok: true, remaining: set });
  });
});
