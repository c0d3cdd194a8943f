/**
 * The placement oracle's answers and reasons on hand-picked layouts (the rules of test/reference/mig-profiles.md
 * and nvml.h), as prepare will ask them: "does this placement still fit given the instances that exist".
 * Agreement with the mock backend's independent layout check over random layouts is in mig-counters.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GPU_MODELS } from '../../src/gpu/mock/index.js';
import {
  fitsHardwareRules, hasMediaExtensions, layoutViolations, placementOfDeviceName, placementOfInstance, possiblePlacements, type MigGeometry,
  type MigPlacement, type MigProfileSpec,
} from '../../src/model/mig-placements.js';
import { dynamicSlices, geometryOf, instanceAt, nodeOf, onWire } from '../helpers/dynamic-mig.js';
import { reference } from '../helpers/reference.js';

const h100 = geometryOf('h100-80gb');
const profile = (g: MigGeometry, name: string): MigProfileSpec => {
  const p = g.profiles.find((x) => x.name === name);
  if (p === undefined) throw new Error(`no profile ${name}`);
  return p;
};
const at = (name: string, start: number, g: MigGeometry = h100): MigPlacement => ({ profile: profile(g, name), start });

describe('fitsHardwareRules (H100-80GB)', () => {
  it('accepts a placement on free memory slices, and the whole GPU on an empty GPU', () => {
    expect(fitsHardwareRules(h100, [at('3g.40gb', 0)], at('3g.40gb', 4))).toEqual({ ok: true });
    expect(fitsHardwareRules(h100, [at('4g.40gb', 0), at('2g.20gb', 4)], at('1g.10gb+me', 6))).toEqual({ ok: true });
    expect(fitsHardwareRules(h100, [], 'whole-gpu')).toEqual({ ok: true });
  });

  it('refuses an overlap, naming both instances and the memory slice', () => {
    expect(fitsHardwareRules(h100, [at('1g.10gb', 5)], at('3g.40gb', 4))).toEqual({
      ok: false,
      rule: 'memory-slices',
      reason: '3g.40gb (GI profile 9) at 4:4 overlaps 1g.10gb (GI profile 19) at 5:1 in memory slice 5',
    });
  });

  it('refuses a second +me instance and a start NVML does not list', () => {
    const me = fitsHardwareRules(h100, [at('1g.10gb+me', 0)], at('1g.10gb+me', 3));
    expect(me.ok).toBe(false);
    expect(!me.ok && [me.rule, me.reason]).toEqual(['media-extensions', '1g.10gb+me (GI profile 20) at 3:1 and 1g.10gb+me (GI profile 20) at 0:1 both ask for the media extensions']);
    const placement = fitsHardwareRules(h100, [], at('2g.20gb', 1));
    expect(!placement.ok && placement.rule).toBe('possible-placement');
    expect(!placement.ok && placement.reason).toContain('starts: 0, 2, 4');
  });

  it('refuses more instances than the profile allows (a synthetic table: 1g.10gb at most twice)', () => {
    const two: MigGeometry = { ...h100, profiles: h100.profiles.map((p) => (p.name === '1g.10gb' ? { ...p, maxCount: 2 } : p)) };
    const r = fitsHardwareRules(two, [at('1g.10gb', 0, two), at('1g.10gb', 1, two)], at('1g.10gb', 2, two));
    expect(!r.ok && [r.rule, r.reason]).toEqual(['profile-maximum', 'more than 2 instances of 1g.10gb (GI profile 19)']);
  });

  it('refuses the whole GPU beside an instance, and any instance beside the whole GPU', () => {
    const r = fitsHardwareRules(h100, [at('1g.10gb', 6)], 'whole-gpu');
    expect(!r.ok && [r.rule, r.reason]).toEqual(['whole-gpu', 'the whole GPU cannot be used beside MIG instance 1g.10gb (GI profile 19) at 6:1']);
  });

  it('refuses a GI profile the GPU does not support', () => {
    const a100Only = at('1g.5gb', 0, geometryOf('a100-40gb'));
    const r = fitsHardwareRules(h100, [], { ...a100Only, profile: { ...a100Only.profile, id: 99 } });
    expect(!r.ok && r.rule).toBe('profile-supported');
  });

  it('names what is wrong: the whole GPU asked for twice, an unsupported profile, a placement past the last memory slice', () => {
    expect(layoutViolations(h100, [], 2)).toEqual([{ rule: 'whole-gpu', message: 'the whole GPU is asked for 2 times' }]);
    const a100Only = at('1g.5gb', 0, geometryOf('a100-40gb'));
    expect(layoutViolations(h100, [{ ...a100Only, profile: { ...a100Only.profile, id: 99 } }])).toEqual([
      { rule: 'profile-supported', message: 'GI profile 99 (1g.5gb) is not supported by this GPU' },
    ]);
    // 3g.40gb spans 4 of the 8 memory slices (Profile ID 9 Placements: {0,4}:4): from 6 it would reach slice 9.
    expect(layoutViolations(h100, [at('3g.40gb', 6)])).toEqual([
      { rule: 'possible-placement', message: '3g.40gb (GI profile 9) at 6:4 is not a possible placement; starts: 0, 4' },
      { rule: 'possible-placement', message: '3g.40gb (GI profile 9) at 6:4 reaches past memory slice 7' },
    ]);
    expect(layoutViolations(h100, [at('3g.40gb', 4)])).toEqual([]); // the last possible start ends at slice 7
    expect(layoutViolations(h100, [at('1g.10gb', 8)])).toEqual([
      { rule: 'possible-placement', message: '1g.10gb (GI profile 19) at 8:1 is not a possible placement; starts: 0, 1, 2, 3, 4, 5, 6' },
      { rule: 'possible-placement', message: '1g.10gb (GI profile 19) at 8:1 reaches past memory slice 7' },
    ]);
    expect(layoutViolations(h100, [at('1g.10gb', -1)]).map((v) => v.rule)).toEqual(['possible-placement', 'possible-placement']);
  });

  it('does not blame the candidate for what the existing instances already break', () => {
    // Two overlapping existing instances (impossible on hardware, but a bad report must not block a free slice).
    expect(fitsHardwareRules(h100, [at('1g.10gb', 0), at('1g.20gb', 0)], at('1g.10gb', 6))).toEqual({ ok: true });
  });

  it('counts compute slices: a synthetic table with two 4-slice profiles is refused by that rule alone', () => {
    const p4 = profile(h100, '4g.40gb');
    const wide: MigGeometry = { ...h100, profiles: [{ ...p4, placementStarts: [0, 4], maxCount: 2 }] };
    const r = fitsHardwareRules(wide, [{ profile: wide.profiles[0]!, start: 0 }], { profile: wide.profiles[0]!, start: 4 });
    expect(!r.ok && [r.rule, r.reason]).toEqual(['compute-slices', 'the instances use 8 compute slices, the GPU has 7']);
  });
});

describe('the profile tables under the oracle', () => {
  it.each(Object.keys(GPU_MODELS) as (keyof typeof GPU_MODELS)[])('%s: every possible placement alone is accepted; one +me profile', (model) => {
    const g = geometryOf(model);
    for (const p of possiblePlacements(g)) expect(layoutViolations(g, [p])).toEqual([]);
    expect(g.profiles.filter(hasMediaExtensions)).toHaveLength(1);
    // The maxima the guide gives are reachable: maxCount instances of each profile fit together.
    for (const prof of g.profiles) {
      const layout: MigPlacement[] = [];
      for (const start of prof.placementStarts) if (layoutViolations(g, [...layout, { profile: prof, start }]).length === 0) layout.push({ profile: prof, start });
      expect(layout.length, prof.name).toBe(prof.maxCount);
    }
  });
});

/** A row of test/reference/mig-media-extensions.md: the profile, its memory fraction, its OFA count, its instances. */
interface MediaRow {
  readonly name: string;
  readonly memory: string;
  readonly ofa: number;
  readonly instances: number;
}
const mediaRows = (): MediaRow[] =>
  readFileSync(reference('mig-media-extensions.md'), 'utf8').split('\n').flatMap((line) => {
    const m = /^\| (\d+g\.\d+gb\S*) \| (\S+) \| \S+ \| \d+ \| \d+ \| \d+ \| (\d+) \| \S+ \| \d+ \| (\d+) \|$/.exec(line);
    return m === null ? [] : [{ name: m[1]!, memory: m[2]!, ofa: Number(m[3]), instances: Number(m[4]) }];
  });

describe('media extensions: +me and +me.all hold the GPU\'s one OFA (NVIDIA\'s RTX PRO 6000 table)', () => {
  const rows = mediaRows();

  it('a profile short of the whole GPU asks for the media extensions exactly when it holds the OFA', () => {
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(['1g.24gb+me', '1g.24gb+me.all', '2g.48gb+me.all', '1g.24gb-me', '1g.24gb+gfx']));
    const partial = rows.filter((r) => r.memory !== 'Full');
    expect(partial).toHaveLength(9);
    for (const r of partial) expect(hasMediaExtensions(r), r.name).toBe(r.ofa > 0);
  });

  it('reads the attributes as go-nvlib writes them: after a "+", comma-separated', () => {
    expect(hasMediaExtensions({ name: '1g.24gb+gfx,me' })).toBe(true);
    expect(hasMediaExtensions({ name: '1g.24gb+gfx,me.all' })).toBe(true);
    expect(hasMediaExtensions({ name: '1g.24gb+gfx' })).toBe(false);
    expect(hasMediaExtensions({ name: '1c.2g.20gb' })).toBe(false);
  });

  // The table's profiles as a geometry: 4 memory and 4 compute slices (the 1g fraction, 1/4); IDs are the rows'
  // numbers and starts every multiple of the size, as the table has neither (the rule under test reads names).
  const geometry: MigGeometry = {
    memorySlices: 4,
    computeSlices: 4,
    profiles: rows.filter((r) => r.memory !== 'Full').map((r, i) => {
      const slices = Number(/^(\d+)g/.exec(r.name)![1]);
      return {
        name: r.name, id: i + 1, maxCount: r.instances, computeSlices: slices, multiprocessors: 0, memoryMiB: 0, copyEngines: slices,
        decoders: 0, encoders: 0, jpegEngines: 0, ofaEngines: r.ofa, placementStarts: [0, 1, 2, 3].filter((s) => s % slices === 0), placementSize: slices,
      };
    }),
  };

  it('refuses a +me.all beside a +me (one OFA), and takes it beside -me instances', () => {
    const r = fitsHardwareRules(geometry, [at('1g.24gb+me', 0, geometry)], at('1g.24gb+me.all', 1, geometry));
    expect(!r.ok && [r.rule, r.reason]).toEqual(['media-extensions', '1g.24gb+me.all (GI profile 4) at 1:1 and 1g.24gb+me (GI profile 2) at 0:1 both ask for the media extensions']);
    expect(fitsHardwareRules(geometry, [at('2g.48gb+me.all', 0, geometry)], at('1g.24gb+me', 2, geometry)).ok).toBe(false);
    expect(fitsHardwareRules(geometry, [at('1g.24gb+me.all', 0, geometry), at('1g.24gb-me', 1, geometry)], at('2g.48gb-me', 2, geometry))).toEqual({ ok: true });
  });
});

describe('what prepare resolves before asking fitsHardwareRules', () => {
  it('every published placement device name resolves to its placement on its GPU, and nothing else does', () => {
    const inv = nodeOf('h100-80gb', 2);
    const names = onWire(dynamicSlices(inv)).flatMap((s) => s.spec.devices ?? []).filter((d) => d.consumesCounters && d.name.startsWith('gpu-1-mig-'));
    expect(names).toHaveLength(25);
    for (const d of names) {
      const p = placementOfDeviceName(h100, 1, d.name);
      expect(p, d.name).toBeDefined();
      expect(d.name.endsWith(`-${p!.profile.id}-${p!.start}`)).toBe(true);
      expect(d.attributes?.['profile']?.string).toBe(p!.profile.name);
    }
    expect(placementOfDeviceName(h100, 0, 'gpu-1-mig-1g10gb-19-0')).toBeUndefined();
    expect(placementOfDeviceName(h100, 1, 'gpu-1')).toBeUndefined();
    expect(placementOfDeviceName(h100, 1, 'gpu-1-mig-2g20gb-14-1')).toBeUndefined(); // not a possible start
  });

  it('an existing instance resolves by GI profile ID and placement size, or not at all', () => {
    const gpu = nodeOf('h100-80gb').gpus[0]!;
    const mig = instanceAt(gpu, at('3g.40gb', 4), 0);
    expect(placementOfInstance(h100, mig)).toEqual(at('3g.40gb', 4));
    expect(placementOfInstance(h100, { ...mig, giProfileId: 42 })).toBeUndefined();
    expect(placementOfInstance(h100, { ...mig, placement: { start: 4, size: 2 } })).toBeUndefined();
  });
});
