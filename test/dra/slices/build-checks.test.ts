/**
 * What the slice builder (src/dra/slices/build.ts) refuses and how it says so, and the parts of a slice that
 * the worked example does not reach: `validateDevice` on each resource.k8s.io/v1 limit of docs/contracts.md §4
 * (each at the limit and one past it, with the message naming the device and the field), the pool generation,
 * `generateName` and the labels, taints (none, an empty list, a key shared by a GPU and its MIG instance), an
 * absent PCIe root, and the dynamic MIG devices going through the same checks (parent attributes, duplicate
 * names across static and dynamic GPUs, the v1 limits, a GPU whose instances its table does not know).
 * The limits: kubernetes v1.37.2 pkg/apis/resource/validation (`validateDevice`: at most 32 attributes and
 * capacities together, `ResourceSliceMaxAttributesAndCapacitiesPerDevice`; `validateDeviceAttribute`: exactly one
 * value, strings ≤ 64 bytes, versions semver ≤ 64; `validateDeviceTaint`: ≤ 16 taints, `IsQualifiedName` key,
 * `IsValidLabelValue` value) as k8s.io/api/resource/v1 types.go states them.
 */
import type { V1Device, V1DeviceAttribute, V1DeviceCapacity, V1DeviceTaint } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { buildResourceSlices, SliceError, sliceGenerateName, sliceLabels, validateDevice, type BuildSlicesInput } from '../../../src/dra/slices/build.js';
import { DynamicMigProblem, type DynamicMigPolicy } from '../../../src/dra/slices/dynamic-mig.js';
import { SemverError } from '../../../src/dra/slices/semver.js';
import type { GpuInfo, Inventory } from '../../../src/gpu/types.js';
import { geometryOf, instanceAt } from '../../helpers/dynamic-mig.js';
import { driverName, nodeName, poolName } from '../../helpers/names.js';
import { exampleInventory, h100 } from '../../helpers/slices.js';

const base = { driverName: driverName('gpu.gpulet.dev'), nodeName: nodeName('node-b'), poolName: poolName('node-b'), generation: 7 } as const;
const system = exampleInventory().system;
const nodeWith = (...gpus: GpuInfo[]): Inventory => ({ system, gpus });
/** Every GPU dynamic, as an H100-80GB (the mock table). */
const allDynamic: DynamicMigPolicy = { geometryOf: () => geometryOf('h100-80gb') };
/** The body as it goes on the wire. */
const onWire = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

/** What `fn` threw (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
}

const strings = (n: number, prefix = 'a'): Record<string, V1DeviceAttribute> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, { string: 'x' }]));
const quantities = (n: number): Record<string, V1DeviceCapacity> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, { value: '1' }]));
const taint = (key: string, value?: string): V1DeviceTaint => ({ key, effect: 'NoSchedule', ...(value === undefined ? {} : { value }) });

describe('validateDevice: each v1 limit, at the limit and past it, naming the device and the field', () => {
  it('takes a device with a name and nothing else, and one at every limit', () => {
    expect(() => validateDevice({ name: 'gpu-0' })).not.toThrow();
    const full: V1Device = {
      name: 'd',
      attributes: { ...strings(19), s: { string: 'é'.repeat(32) }, v: { version: '1.2.3-rc.1+build.5' } },
      capacity: quantities(11),
      taints: Array.from({ length: 16 }, (_, i) => taint(`gpu.gpulet.dev/t${i}`, i % 2 === 0 ? `v${i}` : undefined)),
    };
    expect(() => validateDevice(full)).not.toThrow(); // 21 attributes + 11 capacities = 32, 64 bytes, 16 taints
  });

  const cases: [string, V1Device, string][] = [
    ['a name that is not a DNS label', { name: 'GPU_0' }, 'device GPU_0: name must be a DNS label (lower-case alphanumerics and "-", starting and ending alphanumeric)'],
    ['33 attributes and capacities (20 + 13)', { name: 'd', attributes: strings(20), capacity: quantities(13) }, 'device d: 33 attributes + capacities, at most 32 allowed'],
    ['33 attributes alone', { name: 'd', attributes: strings(33) }, 'device d: 33 attributes + capacities, at most 32 allowed'],
    ['a bad attribute name', { name: 'd', attributes: { 'bad-name': { string: 'x' } } }, 'device d: attribute name "bad-name" identifier must be a C identifier'],
    ['an attribute with two values', { name: 'd', attributes: { x: { string: 'a', bool: true } } }, 'device d: attribute x must have exactly one value field'],
    ['an attribute with no value', { name: 'd', attributes: { x: {} } }, 'device d: attribute x must have exactly one value field'],
    ['a string of 65 bytes', { name: 'd', attributes: { s: { string: `${'é'.repeat(32)}x` } } }, `device d: attribute s value "${'é'.repeat(32)}x" is 65 bytes, at most 64 allowed`],
    ['a version that is not semver', { name: 'd', attributes: { v: { version: '1.0' } } }, 'device d: attribute v value "1.0" is not semver 2.0.0 (≤ 64 chars)'],
    ['a bad capacity name', { name: 'd', capacity: { 'bad-cap': { value: '1' } } }, 'device d: capacity name "bad-cap" identifier must be a C identifier'],
    ['17 taints', { name: 'd', taints: Array.from({ length: 17 }, (_, i) => taint(`gpu.gpulet.dev/t${i}`)) }, 'device d: more than 16 taints'],
    ['a taint key that is not a qualified name', { name: 'd', taints: [taint('Bad Key')] }, 'device d: taint Bad Key: must be a label value'],
    ['a taint value that is not a label value', { name: 'd', taints: [taint('gpu.gpulet.dev/xid', '-79')] }, 'device d: taint gpu.gpulet.dev/xid: must be a label value'],
  ];
  it.each(cases)('refuses %s', (_, device, message) => {
    const err = thrown(() => validateDevice(device));
    expect(err).toBeInstanceOf(SliceError);
    expect(err).toMatchObject({ code: 'SLICE', name: 'SliceError', message });
  });
});

describe('buildResourceSlices: the pool generation, generateName and labels', () => {
  it.each([-1, 0.5, Number.NaN, 2 ** 53])('refuses generation %d', (generation) => {
    expect(() => buildResourceSlices({ ...base, generation, inventory: nodeWith(h100(0)) })).toThrow(new SliceError(`pool generation ${generation} must be a non-negative integer`));
  });

  it('takes generation 0', () => {
    expect(buildResourceSlices({ ...base, generation: 0, inventory: nodeWith(h100(0)) })[0]!.spec.pool.generation).toBe(0);
  });

  it('labels each slice with its driver and node, and names it <driver>-<node>- with characters outside [a-z0-9.-] as "-"', () => {
    const [s] = buildResourceSlices({ ...base, inventory: nodeWith(h100(0)) });
    expect(s!.metadata.labels).toEqual({ 'gpulet.dev/driver': 'gpu.gpulet.dev', 'gpulet.dev/node': 'node-b' });
    expect(s!.metadata.generateName).toBe('gpu.gpulet.dev-node-b-');
    expect(sliceLabels('gpu.gpulet.dev', 'node-b')).toEqual({ 'gpulet.dev/driver': 'gpu.gpulet.dev', 'gpulet.dev/node': 'node-b' });
    expect(sliceGenerateName('gpu.gpulet.dev', 'Node_A 1')).toBe('gpu.gpulet.dev-node-a-1-');
  });
});

describe('buildResourceSlices: versions, PCIe root and taints of static devices', () => {
  it('refuses a version it cannot normalise as a SliceError naming the node attribute, the SemverError as cause', () => {
    const err = thrown(() => buildResourceSlices({ ...base, inventory: { system: { ...system, driverVersion: '580.x' }, gpus: [] } }));
    expect(err).toBeInstanceOf(SliceError);
    expect(err.message).toMatch(/^node attribute driverVersion: /);
    expect(err.cause).toBeInstanceOf(SemverError);
  });

  it('leaves resource.kubernetes.io/pcieRoot out when the PCIe root is unknown', () => {
    const gpu = h100(0);
    const [known, unknown] = buildResourceSlices({ ...base, inventory: nodeWith(gpu, h100(1, { pci: { ...gpu.pci, busId: '0000:19:00.0', pcieRoot: '' } })) })[0]!.spec.devices;
    expect(known!.attributes?.['resource.kubernetes.io/pcieRoot']).toEqual({ string: 'pci0000:00' });
    expect(unknown!.attributes).not.toHaveProperty(['resource.kubernetes.io/pcieRoot']);
  });

  it('puts no taints on a device whose list is empty', () => {
    const gpu = h100(0);
    const [d] = buildResourceSlices({ ...base, inventory: nodeWith(gpu), taints: new Map([[gpu.uuid, []]]) })[0]!.spec.devices;
    expect(onWire(d!)).not.toHaveProperty('taints');
  });
});

describe('buildResourceSlices: dynamic MIG devices get the same attributes, taints and checks', () => {
  const build = (inventory: Inventory, extra: Partial<BuildSlicesInput> = {}) => buildResourceSlices({ ...base, inventory, dynamicMig: allDynamic, ...extra });
  const devicesOf = (slices: ReturnType<typeof build>) => slices.flatMap((s) => s.spec.devices);

  it("gives every device of a dynamic GPU its GPU's attributes, and no taints when it has none", () => {
    const devices = devicesOf(build(nodeWith(h100(0))));
    expect(devices.length).toBeGreaterThan(1);
    for (const d of devices) {
      expect(d.attributes, d.name).toMatchObject({
        productName: { string: 'NVIDIA H100 80GB HBM3' }, architecture: { string: 'Hopper' }, cudaComputeCapability: { version: '9.0.0' },
        driverVersion: { version: '580.95.5' }, pcieBusID: { string: '0000:18:00.0' },
      });
      expect(onWire(d), d.name).not.toHaveProperty('taints');
    }
  });

  it("taints an existing instance with its GPU's taints and its own, the GPU's winning on a shared key", () => {
    const gpu = h100(0, { migEnabled: true });
    const g = geometryOf('h100-80gb');
    const mig = instanceAt(gpu, { profile: g.profiles.find((p) => p.name === '3g.40gb')!, start: 4 }, 0);
    const taints = new Map([
      [gpu.uuid, [taint('gpu.gpulet.dev/xid', '79')]],
      [mig.uuid, [taint('gpu.gpulet.dev/xid', '48'), taint('gpu.gpulet.dev/ecc')]],
    ]);
    const devices = devicesOf(build(nodeWith({ ...gpu, migDevices: [mig] }), { taints }));
    const instance = devices.find((d) => d.attributes?.['uuid']?.string === mig.uuid);
    expect(instance?.taints).toEqual([taint('gpu.gpulet.dev/xid', '79'), taint('gpu.gpulet.dev/ecc')]);
    const placement = devices.find((d) => d.attributes?.['type']?.string === 'mig' && d.attributes['uuid'] === undefined);
    expect(placement?.taints).toEqual([taint('gpu.gpulet.dev/xid', '79')]);
  });

  it('refuses a dynamic device name a static GPU, or another dynamic GPU, already has', () => {
    const static0 = h100(0);
    const dynamic0 = h100(0, { uuid: 'GPU-0000000d-1111-2222-3333-444455556666' });
    const policy: DynamicMigPolicy = { geometryOf: (gpu) => (gpu.uuid === dynamic0.uuid ? geometryOf('h100-80gb') : undefined) };
    expect(thrown(() => build(nodeWith(static0, dynamic0), { dynamicMig: policy }))).toMatchObject({ name: 'SliceError', message: 'device gpu-0: duplicate device name in pool node-b' });
    expect(thrown(() => build(nodeWith(static0, dynamic0)))).toMatchObject({ name: 'SliceError', message: 'device gpu-0: duplicate device name in pool node-b' });
  });

  it('checks dynamic devices against the v1 limits', () => {
    expect(() => build(nodeWith(h100(0, { productName: 'N'.repeat(65) })))).toThrow(/^device gpu-0: attribute productName value "N+" is 65 bytes, at most 64 allowed$/);
  });

  it("refuses a GPU whose existing instance is not in its table, the DynamicMigProblem as cause; a bad version's cause stays the SemverError", () => {
    const gpu = h100(0, { migEnabled: true });
    const mig = { ...instanceAt(gpu, { profile: geometryOf('h100-80gb').profiles[0]!, start: 0 }, 0), giProfileId: 42 };
    const err = thrown(() => build(nodeWith({ ...gpu, migDevices: [mig] })));
    expect(err).toBeInstanceOf(SliceError);
    expect(err.cause).toBeInstanceOf(DynamicMigProblem);
    expect(err.message).toBe((err.cause as Error).message);
    expect(err.message).toMatch(/GI profile 42.* is not in the GPU's MIG profile table/);
    const badCc = thrown(() => build(nodeWith(h100(0, { cudaComputeCapability: { major: 9, minor: -1 } }))));
    expect(badCc).toBeInstanceOf(SliceError);
    expect(badCc.message).toMatch(/^node device GPU-00000000-1111-2222-3333-444455556666 attribute cudaComputeCapability: /);
    expect(badCc.cause).toBeInstanceOf(SemverError);
  });

  it('keeps one empty slice for a node with a dynamic policy and no GPUs, so the pool exists', () => {
    const slices = build(nodeWith());
    expect(slices).toHaveLength(1);
    expect(slices[0]!.spec.devices).toEqual([]);
    expect(slices[0]!.spec.pool.resourceSliceCount).toBe(1);
  });
});
