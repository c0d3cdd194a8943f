/**
 * Dynamic MIG slices (src/dra/slices/dynamic-mig.ts through buildResourceSlices) against independent facts: the
 * resource.k8s.io/v1 OpenAPI document (ajv; 1.35, which has sharedCounters and consumesCounters), the 1.37 limits
 * read from k8s.io/api v0.37.2 resource/v1/types.go (restated here as numbers), and NVIDIA's DynamicMIG layout
 * (kubernetes-sigs/dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin: one slice of counter sets, one device slice per
 * GPU, devices sorted by name, names `gpu-<minor>`, `gpu-<minor>-mig-<profile>-<giProfileId>-<start>`,
 * `gpu-<minor>-counter-set`). The real API server's verdict is test/upstream/dynamic-mig.test.ts.
 */
import { readFileSync } from 'node:fs';
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { buildResourceSlices, SliceError, type SliceSpec } from '../../../src/dra/slices/build.js';
import { DynamicMigProblem, dynamicMigPolicy } from '../../../src/dra/slices/dynamic-mig.js';
import { planReconcile } from '../../../src/dra/slices/plan.js';
import { buildMockInventory, machineSpecByName } from '../../../src/gpu/mock/index.js';
import type { Inventory } from '../../../src/gpu/types.js';
import { parseMigMode } from '../../../src/model/mig-mode.js';
import { DEFAULT_DRIVER_NAME, poolNameOf } from '../../../src/model/names.js';
import { dynamicSlices, geometryOf, instanceAt, NODE, nodeOf, onWire, readPool } from '../../helpers/dynamic-mig.js';
import { reference } from '../../helpers/reference.js';

// k8s.io/api v0.37.2 resource/v1/types.go.
const MAX_DEVICES_WITH_ADVANCED_FEATURES = 64; // ResourceSliceMaxDevicesWithAdvancedFeatures
const MAX_COUNTER_SETS = 8; // ResourceSliceMaxCounterSets
const MAX_COUNTERS_PER_SET = 32; // ResourceSliceMaxCountersPerCounterSet
const MAX_CONSUMPTIONS_PER_DEVICE = 2; // ResourceSliceMaxDeviceCounterConsumptionsPerDevice
const MAX_COUNTERS_PER_CONSUMPTION = 32; // ResourceSliceMaxCountersPerDeviceCounterConsumption
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function sliceValidator(): ValidateFunction {
  const doc = JSON.parse(readFileSync(reference('resource.k8s.io-v1.openapi-1.35.json'), 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv({ strict: false, allErrors: true, formats: { int64: true, int32: true, 'date-time': true } });
  ajv.addSchema({ ...doc, $id: 'k8s' });
  const v = ajv.getSchema('k8s#/components/schemas/io.k8s.api.resource.v1.ResourceSlice');
  if (!v) throw new Error('ResourceSlice schema not found');
  return v;
}
const validateSchema = sliceValidator();

/** Schema-valid, one kind per slice, within the 1.37 limits, names unique and DNS labels, consumption resolvable. */
function assertValid(slices: readonly SliceSpec[]): void {
  const wire = onWire(slices);
  const sets = new Map<string, Set<string>>();
  const devices = new Set<string>();
  for (const s of wire) {
    expect(validateSchema(s), JSON.stringify(validateSchema.errors)).toBe(true);
    expect(s.spec.pool.resourceSliceCount).toBe(wire.length);
    const hasSets = s.spec.sharedCounters !== undefined;
    expect(hasSets && s.spec.devices !== undefined, 'devices beside sharedCounters').toBe(false);
    for (const set of s.spec.sharedCounters ?? []) {
      expect(DNS_LABEL.test(set.name)).toBe(true);
      expect(sets.has(set.name)).toBe(false);
      const names = Object.keys(set.counters);
      expect(names.length).toBeGreaterThan(0);
      expect(names.length).toBeLessThanOrEqual(MAX_COUNTERS_PER_SET);
      for (const n of names) expect(DNS_LABEL.test(n), n).toBe(true);
      sets.set(set.name, new Set(names));
    }
    expect((s.spec.sharedCounters ?? []).length).toBeLessThanOrEqual(MAX_COUNTER_SETS);
    const ds = s.spec.devices ?? [];
    if (ds.some((d) => (d.consumesCounters?.length ?? 0) > 0 || (d.taints?.length ?? 0) > 0)) expect(ds.length).toBeLessThanOrEqual(MAX_DEVICES_WITH_ADVANCED_FEATURES);
    for (const d of ds) {
      expect(devices.has(d.name), `duplicate ${d.name}`).toBe(false);
      devices.add(d.name);
      expect((d.consumesCounters ?? []).length).toBeLessThanOrEqual(MAX_CONSUMPTIONS_PER_DEVICE);
      for (const c of d.consumesCounters ?? []) expect(Object.keys(c.counters).length).toBeLessThanOrEqual(MAX_COUNTERS_PER_CONSUMPTION);
    }
  }
  for (const s of wire) {
    for (const d of s.spec.devices ?? []) {
      for (const c of d.consumesCounters ?? []) {
        const set = sets.get(c.counterSet);
        expect(set, `${d.name} consumes from unpublished ${c.counterSet}`).toBeDefined();
        for (const n of Object.keys(c.counters)) expect(set!.has(n), `${d.name}: ${n} not in ${c.counterSet}`).toBe(true);
      }
    }
  }
}

const dgx = (): Inventory => buildMockInventory(machineSpecByName('dgx-h100'), NODE);

describe('a dynamic node: the dgx-h100 mock machine with --mig-mode=dynamic', () => {
  const slices = dynamicSlices(dgx());
  const wire = onWire(slices);

  it('is valid against the OpenAPI document and the 1.37 limits', () => {
    assertValid(slices);
  });

  it('lays slices out as NVIDIA does for 1.35+: counter sets in a slice of their own, then one device slice per GPU', () => {
    expect(wire.map((s) => (s.spec.sharedCounters ? 'counters' : 'devices'))).toEqual(['counters', ...Array<string>(8).fill('devices')]);
    expect(wire[0]!.spec.sharedCounters!.map((c) => c.name)).toEqual(Array.from({ length: 8 }, (_, i) => `gpu-${i}-counter-set`));
    for (const [i, s] of wire.slice(1).entries()) {
      const names = s.spec.devices!.map((d) => d.name);
      expect(names.every((n) => n === `gpu-${i}` || n.startsWith(`gpu-${i}-mig-`)), names.join()).toBe(true);
      expect(names).toEqual([...names].sort());
    }
  });

  it("a free GPU: the full GPU and one device per placement, with NVIDIA's names, attributes and capacities", () => {
    const gpu0 = dgx().gpus[0]!;
    const devices = wire[1]!.spec.devices!;
    expect(devices).toHaveLength(1 + 7 + 7 + 4 + 3 + 2 + 1 + 1);
    const full = devices.find((d) => d.name === 'gpu-0')!;
    expect(full.attributes?.['type']).toEqual({ string: 'gpu' });
    expect(full.attributes?.['uuid']).toEqual({ string: gpu0.uuid });
    expect(full.capacity).toEqual({
      multiprocessors: { value: '132' }, copyEngines: { value: '8' }, decoders: { value: '7' }, encoders: { value: '0' },
      jpegEngines: { value: '7' }, ofaEngines: { value: '1' }, memory: { value: '80384Mi' },
    });
    const slice = devices.find((d) => d.name === 'gpu-0-mig-1g10gb-me-20-3')!;
    expect(slice.attributes?.['uuid']).toBeUndefined();
    expect(slice.attributes).toMatchObject({ type: { string: 'mig' }, parentUUID: { string: gpu0.uuid }, profile: { string: '1g.10gb+me' } });
    expect(slice.consumesCounters).toEqual([{
      counterSet: 'gpu-0-counter-set',
      counters: {
        multiprocessors: { value: '16' }, 'copy-engines': { value: '1' }, decoders: { value: '1' }, encoders: { value: '0' },
        'jpeg-engines': { value: '1' }, 'ofa-engines': { value: '1' }, memory: { value: '9856Mi' }, 'memory-slice-3': { value: '1' },
      },
    }]);
    expect(devices.find((d) => d.name === 'gpu-0-mig-3g40gb-9-4')!.consumesCounters![0]!.counters).toMatchObject(
      Object.fromEntries([4, 5, 6, 7].map((i) => [`memory-slice-${i}`, { value: '1' }])),
    );
  });

  it('GPUs with MIG instances gpulet did not create: the instances as they are, their share out of the counter set, no full GPU', () => {
    const inv = dgx();
    const pool = readPool(wire);
    const gpu6 = wire.find((s) => s.spec.devices?.some((d) => d.name.startsWith('gpu-6')))!.spec.devices!;
    // 3g.40gb@0 + 2g.20gb@4 + 1g.10gb@6 leave slice 7, where no placement fits: only the three instances.
    expect(gpu6.map((d) => d.name)).toEqual(['gpu-6-mig-1g10gb-19-6', 'gpu-6-mig-2g20gb-14-4', 'gpu-6-mig-3g40gb-9-0']);
    for (const d of gpu6) {
      expect(d.consumesCounters).toBeUndefined();
      expect(inv.gpus[6]!.migDevices.map((m) => m.uuid)).toContain(d.attributes?.['uuid']?.string);
    }
    const set6 = pool.counterSets.get('gpu-6-counter-set')!;
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => set6.get(`memory-slice-${i}`))).toEqual(Array<bigint>(7).fill(0n));
    expect(set6.get('memory-slice-7')).toBe(1n);
    expect(set6.get('multiprocessors')).toBe(132n - 60n - 32n - 16n);
    expect(pool.devices.has('gpu-6')).toBe(false);
  });

  it('a free placement beside foreign instances is published; a taken one is not', () => {
    const model = 'h100-80gb';
    const g = geometryOf(model);
    const three = g.profiles.find((p) => p.name === '3g.40gb')!;
    const pool = readPool(onWire(dynamicSlices(nodeOf(model, 1, [{ profile: three, start: 0 }]))));
    expect(pool.devices.has('gpu-0-mig-3g40gb-9-4')).toBe(true);
    expect(pool.devices.has('gpu-0-mig-4g40gb-5-0')).toBe(false);
    expect(pool.devices.has('gpu-0-mig-1g10gb-19-3')).toBe(false);
    expect(pool.devices.get('gpu-0-mig-3g40gb-9-0')!.consumes).toBeUndefined();
  });
});

describe('the full GPU of a GPU in MIG mode without instances', () => {
  it.each([
    ['a100-40gb', false], // Ampere: leaving MIG mode needs a GPU reset (NVIDIA: supportsMIGModeToggle)
    ['h100-80gb', true], // Hopper: MIG mode toggles without a reset
  ] as const)('%s: published %s; the placements are published either way', (model, published) => {
    const inv = nodeOf(model);
    const migOn: Inventory = { ...inv, gpus: [{ ...inv.gpus[0]!, migEnabled: true, migDevices: [] }] };
    const slices = dynamicSlices(migOn);
    assertValid(slices);
    const pool = readPool(onWire(slices));
    expect(pool.devices.has('gpu-0')).toBe(published);
    expect([...pool.devices.values()].filter((d) => d.placement !== undefined)).toHaveLength(25);
  });
});

describe('modes side by side', () => {
  it('static (the default) builds exactly what gpulet built before dynamic MIG existed', () => {
    const inv = dgx();
    const base = buildResourceSlices({ driverName: DEFAULT_DRIVER_NAME, nodeName: NODE, poolName: poolNameOf(NODE), inventory: inv, generation: 1 });
    expect(dynamicSlices(inv, 'static')).toEqual(base);
    expect(dynamicSlices(inv, 'dynamic,0=static,1=static,2=static,3=static,4=static,5=static,6=static,7=static')).toEqual(base);
  });

  it('mixed: GPU 0 static by index, one GPU static by UUID, the others dynamic', () => {
    const inv = dgx();
    const slices = dynamicSlices(inv, `dynamic,0=static,${inv.gpus[3]!.uuid}=static`);
    assertValid(slices);
    const wire = onWire(slices);
    const pool = readPool(wire);
    expect(pool.devices.get('gpu-0')!.consumes).toBeUndefined();
    expect(pool.devices.get('gpu-3')!.consumes).toBeUndefined();
    expect(pool.devices.get('gpu-1')!.consumes).toBeDefined();
    expect([...pool.counterSets.keys()]).toEqual(['gpu-1-counter-set', 'gpu-2-counter-set', 'gpu-4-counter-set', 'gpu-5-counter-set', 'gpu-6-counter-set', 'gpu-7-counter-set']);
    // The static GPUs keep their place: the first slice, as in static mode.
    expect(wire[0]!.spec.devices!.map((d) => d.name)).toEqual(['gpu-0', 'gpu-3']);
  });

  it('splits counter sets at 8 per slice (16 dynamic GPUs: two counter slices)', () => {
    const slices = dynamicSlices(nodeOf('a100-80gb', 16));
    assertValid(slices);
    const wire = onWire(slices);
    expect(wire.filter((s) => s.spec.sharedCounters).map((s) => s.spec.sharedCounters!.length)).toEqual([8, 8]);
    expect(wire.filter((s) => s.spec.devices)).toHaveLength(16);
  });

  it('an unhealthy GPU: every device of it is tainted (its placements are as unusable as the GPU)', () => {
    const inv = nodeOf('h200-141gb', 2);
    const slices = dynamicSlices(inv, 'dynamic', new Set([inv.gpus[1]!.uuid]));
    assertValid(slices);
    for (const s of onWire(slices)) {
      for (const d of s.spec.devices ?? []) {
        expect((d.taints ?? []).map((t) => `${t.key}=${t.value}:${t.effect}`), d.name).toEqual(
          d.name.startsWith('gpu-1') ? ['gpu.gpulet.dev/xid=79:NoSchedule'] : [],
        );
      }
    }
  });
});

describe('what cannot be published is refused with the GPU and what to do', () => {
  it('an existing instance whose GI profile is not in the table', () => {
    const inv = nodeOf('h100-80gb');
    const gpu = inv.gpus[0]!;
    const g = geometryOf('h100-80gb');
    const bogus = { ...instanceAt(gpu, { profile: g.profiles[0]!, start: 0 }, 0), giProfileId: 42, profile: '1g.12gb' };
    const odd: Inventory = { ...inv, gpus: [{ ...gpu, migEnabled: true, migDevices: [bogus] }] };
    expect(() => dynamicSlices(odd)).toThrow(SliceError);
    expect(() => dynamicSlices(odd)).toThrow(/GI profile 42.*not in the GPU's MIG profile table; publish this GPU with --mig-mode <gpu>=static/);
  });

  it('a GPU set to dynamic whose product has no profile table', () => {
    const inv = nodeOf('h100-80gb');
    const other: Inventory = { ...inv, gpus: [{ ...inv.gpus[0]!, productName: 'NVIDIA L4' }] };
    const cfg = parseMigMode('dynamic');
    if (!cfg.ok) throw new Error(cfg.problem);
    expect(() => dynamicMigPolicy(cfg.config, other, () => undefined)).toThrow(DynamicMigProblem);
    expect(() => dynamicMigPolicy(cfg.config, other, () => undefined)).toThrow(/index 0, NVIDIA L4\) is set to --mig-mode dynamic.*--mig-mode \.\.\.,0=static/);
  });
});

describe('planning with counter slices', () => {
  const inv = nodeOf('h100-80gb', 2);
  const build = (i: Inventory) => (generation: number) => dynamicSlices(i).map((s) => ({ ...s, spec: { ...s.spec, pool: { ...s.spec.pool, generation } } }));
  const store = (slices: readonly SliceSpec[]) => onWire(slices).map((s, i) => ({ ...s, metadata: { ...s.metadata, name: `s-${i}`, uid: `u-${i}`, resourceVersion: '1' } }));

  it('sends counter slices without devices, and finds nothing to write when the stored pool matches', () => {
    const first = planReconcile({ existing: [], build: build(inv), poolName: poolNameOf(NODE), lastGeneration: 0, ignoreTaints: false });
    const counterBodies = first.actions.filter((a) => a.op === 'create' && a.body.spec.sharedCounters !== undefined);
    expect(counterBodies).toHaveLength(1);
    expect(counterBodies.every((a) => a.op === 'create' && a.body.spec.devices === undefined)).toBe(true);
    const again = planReconcile({ existing: store(build(inv)(1)), build: build(inv), poolName: poolNameOf(NODE), lastGeneration: 1, ignoreTaints: false });
    expect(again.upToDate).toBe(true);
  });

  it('rewrites the pool when only a counter set changes (an instance appeared)', () => {
    const g = geometryOf('h100-80gb');
    const withInstance = nodeOf('h100-80gb', 2, [{ profile: g.profiles.find((p) => p.name === '7g.80gb')!, start: 0 }]);
    const plan = planReconcile({ existing: store(build(inv)(1)), build: build(withInstance), poolName: poolNameOf(NODE), lastGeneration: 1, ignoreTaints: false });
    expect(plan.upToDate).toBe(false);
    const counters = plan.actions.find((a) => a.op === 'update' && a.body.spec.sharedCounters !== undefined);
    expect(counters?.op === 'update' && counters.body.metadata?.name).toBe('s-0');
  });

  it.each([2, 12])('updates each slice in place: a counter slice the one holding its first counter set, whatever the names (%i GPUs)', (gpus) => {
    const g = geometryOf('h100-80gb');
    const before = nodeOf('h100-80gb', gpus);
    const withInstance = nodeOf('h100-80gb', gpus, [{ profile: g.profiles.find((p) => p.name === '7g.80gb')!, start: 0 }]);
    // As the server returns them: a counter slice's empty device list left out (omitempty).
    const stored: V1ResourceSlice[] = store(build(before)(1)).map((s) => {
      if (s.spec.devices?.length !== 0) return s;
      const spec = { ...s.spec };
      delete spec.devices;
      return { ...s, spec };
    });
    if (gpus > 2) expect(stored.filter((s) => s.spec.sharedCounters !== undefined).length).toBeGreaterThan(1);
    // Names in the opposite order of the slices, so that pairing by name alone would mismatch every slice.
    const renamed = stored.map((s, i) => ({ ...s, metadata: { ...s.metadata, name: `s-${stored.length - 1 - i}` } }));
    expect(renamed.length).toBeGreaterThan(1);
    const plan = planReconcile({ existing: renamed, build: build(withInstance), poolName: poolNameOf(NODE), lastGeneration: 1, ignoreTaints: false });
    const updates = plan.actions.filter((a) => a.op === 'update');
    expect(updates.length).toBe(renamed.length);
    for (const u of updates) {
      const before = renamed.find((s) => s.metadata?.name === u.body.metadata?.name)!;
      const firstSet = u.body.spec.sharedCounters?.[0]?.name;
      if (firstSet !== undefined) expect(before.spec.sharedCounters?.map((c) => c.name)).toContain(firstSet);
      else expect(before.spec.devices?.map((d) => d.name)).toContain(u.body.spec.devices?.[0]?.name);
    }
  });
});
