/**
 * ResourceSlice builder against independent facts: the official resource.k8s.io/v1 OpenAPI document (ajv), the
 * v1 validation limits of docs/contracts.md §4 (checked here with this file's own regexes), the worked example in
 * test/reference/examples.md, and the mock dgx-h100 machine.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { createMockBackend } from '../../../src/gpu/mock/index.js';
import { buildResourceSlices, SliceError, type SliceSpec } from '../../../src/dra/slices/build.js';
import { taintsByUuid } from '../../../src/dra/slices/taints.js';
import type { Inventory } from '../../../src/gpu/types.js';
import { EXAMPLE_GPU0_UUID, EXAMPLE_GPU1_UUID, EXAMPLE_MIG_UUID, exampleInventory, h100, manyGpus, mig1g10gb } from '../../helpers/slices.js';
import { reference } from '../../helpers/reference.js';
import { driverName, nodeName, poolName } from '../../helpers/names.js';
import { driverNameSchema, dnsSubdomainSchema, poolNameOf } from '../../../src/model/names.js';

const OPENAPI = reference('resource.k8s.io-v1.openapi-1.35.json');
const DRIVER = driverName('gpu.gpulet.dev');

function sliceValidator(): ValidateFunction {
  const doc = JSON.parse(readFileSync(OPENAPI, 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv({ strict: false, allErrors: true, formats: { int64: true, int32: true, 'date-time': true } });
  ajv.addSchema({ ...doc, $id: 'k8s' });
  const v = ajv.getSchema('k8s#/components/schemas/io.k8s.api.resource.v1.ResourceSlice');
  if (!v) throw new Error('ResourceSlice schema not found');
  return v;
}
const validateSchema = sliceValidator();

/**
 * The body as JSON. The builder uses wire field names only (no `_int`, no Date), so this is what
 * @kubernetes/client-node sends; the publisher integration test checks the stored objects too.
 */
function wire(slice: SliceSpec): Record<string, unknown> {
  return JSON.parse(JSON.stringify(slice)) as Record<string, unknown>;
}

// semver.org's suggested regex; RFC 1123 label; C identifier (docs/contracts.md §4).
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const C_ID = /^[A-Za-z_][A-Za-z0-9_]{0,31}$/;
const DNS_SUBDOMAIN = (s: string): boolean => s.length <= 253 && s.split('.').every((l) => DNS_LABEL.test(l));
const QUANTITY = /^[0-9]+(Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The docs/contracts.md §4 limits the schema cannot express. */
function assertContractLimits(slices: readonly SliceSpec[], node: string): void {
  const names = new Set<string>();
  for (const s of slices) {
    const w = wire(s);
    expect(validateSchema(w), JSON.stringify(validateSchema.errors)).toBe(true);
    const spec = s.spec;
    const selectors = [spec.nodeName, spec.nodeSelector, spec.allNodes, spec.perDeviceNodeSelection].filter((x) => x !== undefined);
    expect(selectors).toEqual([node]);
    expect(spec.sharedCounters).toBeUndefined();
    expect(DNS_SUBDOMAIN(spec.driver) && spec.driver.length <= 63).toBe(true);
    expect(spec.pool.resourceSliceCount).toBe(slices.length);
    const tainted = spec.devices.some((d) => (d.taints?.length ?? 0) > 0);
    expect(spec.devices.length).toBeLessThanOrEqual(tainted ? 64 : 128);
    expect(DNS_SUBDOMAIN(`${s.metadata.generateName}abcde`)).toBe(true);
    for (const d of spec.devices) {
      expect(DNS_LABEL.test(d.name), d.name).toBe(true);
      expect(names.has(d.name), `duplicate ${d.name}`).toBe(false);
      names.add(d.name);
      const attrs = Object.entries(d.attributes ?? {});
      const caps = Object.entries(d.capacity ?? {});
      expect(attrs.length + caps.length).toBeLessThanOrEqual(32);
      for (const [key, v] of [...attrs, ...caps]) {
        const [prefix, id] = key.includes('/') ? key.split('/') : [undefined, key];
        expect(C_ID.test(id ?? ''), key).toBe(true);
        if (prefix !== undefined) expect(DNS_SUBDOMAIN(prefix), key).toBe(true);
        void v;
      }
      for (const [key, v] of attrs) {
        const fields = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined);
        expect(fields, key).toHaveLength(1);
        if (v.string !== undefined) expect(Buffer.byteLength(v.string), key).toBeLessThanOrEqual(64);
        if (v.version !== undefined) expect(SEMVER.test(v.version) && v.version.length <= 64, `${key}=${v.version}`).toBe(true);
      }
      for (const [key, c] of caps) expect(QUANTITY.test(c.value), `${key}=${c.value}`).toBe(true);
    }
  }
}

describe('buildResourceSlices: worked example (test/reference/examples.md)', () => {
  const slices = buildResourceSlices({
    driverName: DRIVER, nodeName: nodeName('node-a'), poolName: poolName('node-a'), inventory: exampleInventory(), generation: 1, nodeUid: 'uid-node-a',
  });

  it('produces one slice with the example metadata and pool', () => {
    expect(slices).toHaveLength(1);
    const s = slices[0]!;
    expect(s.apiVersion).toBe('resource.k8s.io/v1');
    expect(s.kind).toBe('ResourceSlice');
    expect(s.metadata.generateName).toBe('gpu.gpulet.dev-node-a-');
    expect(s.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'uid-node-a', controller: true }]);
    expect(s.spec.driver).toBe(DRIVER);
    expect(s.spec.nodeName).toBe('node-a');
    expect(s.spec.pool).toEqual({ name: 'node-a', generation: 1, resourceSliceCount: 1 });
    expect(s.spec.devices.map((d) => d.name)).toEqual(['gpu-0', 'gpu-1-mig-1g10gb-19-0']);
    assertContractLimits(slices, 'node-a');
  });

  it('reproduces gpu-0 field by field', () => {
    const gpu = slices[0]!.spec.devices[0]!;
    expect(gpu.attributes).toMatchObject({
      type: { string: 'gpu' },
      uuid: { string: EXAMPLE_GPU0_UUID },
      productName: { string: 'NVIDIA H100 80GB HBM3' },
      brand: { string: 'Nvidia' },
      architecture: { string: 'Hopper' },
      cudaComputeCapability: { version: '9.0.0' },
      driverVersion: { version: '580.95.5' },
      cudaDriverVersion: { version: '13.0.0' },
      'resource.kubernetes.io/pciBusID': { string: '0000:18:00.0' },
      'resource.kubernetes.io/pcieRoot': { string: 'pci0000:00' },
    });
    // Beyond the example: NVIDIA's own unprefixed `pcieBusID` (deviceinfo.go) — and nothing else.
    expect(Object.keys(gpu.attributes ?? {}).sort()).toEqual(
      ['type', 'uuid', 'productName', 'brand', 'architecture', 'cudaComputeCapability', 'driverVersion', 'cudaDriverVersion',
        'pcieBusID', 'resource.kubernetes.io/pciBusID', 'resource.kubernetes.io/pcieRoot'].sort(),
    );
    expect(gpu.capacity).toEqual({ memory: { value: '81559Mi' } });
    expect(gpu.taints).toBeUndefined();
  });

  it('reproduces the MIG device field by field, with the parent attributes', () => {
    const mig = slices[0]!.spec.devices[1]!;
    expect(mig.attributes).toMatchObject({
      type: { string: 'mig' },
      uuid: { string: EXAMPLE_MIG_UUID },
      parentUUID: { string: EXAMPLE_GPU1_UUID },
      profile: { string: '1g.10gb' },
      productName: { string: 'NVIDIA H100 80GB HBM3' },
      brand: { string: 'Nvidia' },
      architecture: { string: 'Hopper' },
      cudaComputeCapability: { version: '9.0.0' },
      driverVersion: { version: '580.95.5' },
      cudaDriverVersion: { version: '13.0.0' },
      'resource.kubernetes.io/pciBusID': { string: '0000:19:00.0' },
      'resource.kubernetes.io/pcieRoot': { string: 'pci0000:00' },
    });
    expect(mig.capacity).toEqual({
      multiprocessors: { value: '16' }, copyEngines: { value: '1' }, decoders: { value: '1' }, encoders: { value: '0' },
      jpegEngines: { value: '1' }, ofaEngines: { value: '0' }, memory: { value: '9856Mi' },
      memorySlice0: { value: '1' }, // NVIDIA: one memorySlice<i> per slice of the placement (0:1)
    });
  });

  it('is deterministic and leaves ownerReferences out when the node UID is unknown', () => {
    const again = buildResourceSlices({ driverName: DRIVER, nodeName: nodeName('node-a'), poolName: poolName('node-a'), inventory: exampleInventory(), generation: 1, nodeUid: 'uid-node-a' });
    expect(again).toEqual(slices);
    const noUid = buildResourceSlices({ driverName: DRIVER, nodeName: nodeName('node-a'), poolName: poolName('node-a'), inventory: exampleInventory(), generation: 1 });
    expect(noUid[0]!.metadata.ownerReferences).toBeUndefined();
    expect(validateSchema(wire(noUid[0]!))).toBe(true);
  });
});

describe('the schema check itself', () => {
  it('rejects bodies the v1 schema forbids (so passing it means something)', () => {
    const good = wire(buildResourceSlices({ driverName: DRIVER, nodeName: nodeName('n'), poolName: poolName('n'), inventory: exampleInventory(), generation: 1 })[0]!);
    expect(validateSchema(good)).toBe(true);
    type Body = { spec: { pool: Record<string, unknown>; devices: { attributes: Record<string, unknown>; taints?: unknown }[] } };
    const badAttr = structuredClone(good) as Body;
    badAttr.spec.devices[0]!.attributes['type'] = { string: 5 };
    expect(validateSchema(badAttr)).toBe(false);
    const noPool = structuredClone(good) as Body;
    delete noPool.spec.pool['resourceSliceCount'];
    expect(validateSchema(noPool)).toBe(false);
    const badTaint = structuredClone(good) as Body;
    badTaint.spec.devices[0]!.taints = [{ value: 'x' }];
    expect(validateSchema(badTaint)).toBe(false);
  });
});

describe('buildResourceSlices: mock dgx-h100', () => {
  it('publishes 6 GPUs + 10 MIG devices that validate against the v1 schema and limits', async () => {
    const backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'dgx-1' });
    await backend.init();
    try {
      const inventory = backend.inventory();
      const slices = buildResourceSlices({ driverName: DRIVER, nodeName: nodeName('dgx-1'), poolName: poolName('dgx-1'), inventory, generation: 3, nodeUid: 'u' });
      assertContractLimits(slices, 'dgx-1');
      const devices = slices.flatMap((s) => s.spec.devices);
      expect(devices.filter((d) => d.attributes?.type?.string === 'gpu')).toHaveLength(6);
      expect(devices.filter((d) => d.attributes?.type?.string === 'mig')).toHaveLength(10);
      // GPU 7: seven 1g.10gb at placements 0..6 (GI profile 19 on H100, test/reference/mig-profiles.md).
      expect(devices.map((d) => d.name)).toContain('gpu-7-mig-1g10gb-19-6');
      // Every allocatable UUID appears exactly once.
      const uuids = devices.map((d) => d.attributes?.uuid?.string);
      expect(new Set(uuids).size).toBe(16);
    } finally {
      await backend.shutdown();
    }
  });
});

describe('buildResourceSlices: splitting, taints, bad input', () => {
  const base = { driverName: DRIVER, nodeName: nodeName('node-b'), poolName: poolName('node-b'), generation: 7 } as const;

  it('splits 300 devices into 128 + 128 + 44, every slice carrying the count and generation', () => {
    const slices = buildResourceSlices({ ...base, inventory: manyGpus(300) });
    expect(slices.map((s) => s.spec.devices.length)).toEqual([128, 128, 44]);
    for (const s of slices) expect(s.spec.pool).toEqual({ name: 'node-b', generation: 7, resourceSliceCount: 3 });
    expect(slices.flatMap((s) => s.spec.devices.map((d) => d.name))).toEqual(Array.from({ length: 300 }, (_, i) => `gpu-${i}`));
    expect(slices[0]!.spec.devices[0]!.attributes?.cudaDriverVersion).toEqual({ version: '12.4.0' });
    assertContractLimits(slices, 'node-b');
  });

  it('puts the given taints on their devices and then holds at most 64 devices in a slice with a taint', () => {
    const inv = manyGpus(130);
    const bad = inv.gpus[0]!.uuid;
    const since = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    const taints = taintsByUuid(DRIVER, new Map([[bad, { xid: { xid: 79, fatal: true, sinceMs: since, lastMs: since } }]]));
    const slices = buildResourceSlices({ ...base, inventory: inv, taints });
    expect(slices.map((s) => s.spec.devices.length)).toEqual([64, 66]);
    expect(slices[0]!.spec.devices[0]!.taints).toEqual([
      { key: 'gpu.gpulet.dev/xid', value: '79', effect: 'NoSchedule', timeAdded: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) },
    ]);
    expect(slices.flatMap((s) => s.spec.devices).filter((d) => d.taints !== undefined)).toHaveLength(1);
    assertContractLimits(slices, 'node-b');
  });

  it('keeps one (empty) slice for a node without GPUs, valid against the schema', () => {
    const slices = buildResourceSlices({ ...base, inventory: { system: exampleInventory().system, gpus: [] } });
    expect(slices).toHaveLength(1);
    expect(slices[0]!.spec.devices).toEqual([]);
    expect(validateSchema(wire(slices[0]!))).toBe(true);
  });

  it('names MIG devices from devices.ts and keeps a "+me" profile string as the attribute', () => {
    const gpu = h100(3, { migEnabled: true });
    const m = { ...mig1g10gb(gpu, 2), profile: '1g.10gb+me', giProfileId: 20, ofaEngines: 1 };
    const inv: Inventory = { system: exampleInventory().system, gpus: [{ ...gpu, migDevices: [m] }] };
    const d = buildResourceSlices({ ...base, inventory: inv })[0]!.spec.devices[0]!;
    expect(d.name).toBe('gpu-3-mig-1g10gb-me-20-2');
    expect(d.attributes?.profile).toEqual({ string: '1g.10gb+me' });
    expect(d.capacity?.memorySlice2).toEqual({ value: '1' });
  });

  it('rejects a string over 64 bytes naming the device and attribute (no truncation)', () => {
    const inv: Inventory = { system: exampleInventory().system, gpus: [h100(0, { productName: 'N'.repeat(65) })] };
    expect(() => buildResourceSlices({ ...base, inventory: inv })).toThrow(SliceError);
    expect(() => buildResourceSlices({ ...base, inventory: inv })).toThrow(/device gpu-0: attribute productName .* 65 bytes/);
    // 64 bytes is fine; multibyte characters count in bytes.
    const ok: Inventory = { system: exampleInventory().system, gpus: [h100(0, { productName: 'N'.repeat(64) })] };
    expect(buildResourceSlices({ ...base, inventory: ok })).toHaveLength(1);
    const wide: Inventory = { system: exampleInventory().system, gpus: [h100(0, { productName: 'é'.repeat(33) })] };
    expect(() => buildResourceSlices({ ...base, inventory: wide })).toThrow(/66 bytes/);
  });

  it('rejects versions it cannot normalise, bad names and duplicate devices', () => {
    const sys = exampleInventory().system;
    expect(() => buildResourceSlices({ ...base, inventory: { system: { ...sys, driverVersion: '580.95.05-beta.x.y.z' }, gpus: [] } })).toThrow(/driverVersion/);
    expect(() => buildResourceSlices({ ...base, inventory: { system: { ...sys, cudaDriverVersion: 0 }, gpus: [] } })).toThrow(/cudaDriverVersion/);
    // Bad driver and node names cannot reach the builder: its inputs are branded, and the brand is only given
    // where a name enters (src/config.ts) after the rules of src/model/names.ts.
    // @ts-expect-error a plain string is not a DriverName
    expect(() => buildResourceSlices({ ...base, driverName: 'gpu.gpulet.dev', inventory: manyGpus(1) })).not.toThrow();
    // @ts-expect-error a plain string is not a node name (DnsSubdomain)
    expect(() => buildResourceSlices({ ...base, nodeName: 'node-b', inventory: manyGpus(1) })).not.toThrow();
    expect(driverNameSchema.safeParse('GPU_Driver').error?.issues[0]?.message).toMatch(/DNS subdomain/);
    expect(dnsSubdomainSchema.safeParse('Node_A').error?.issues[0]?.message).toMatch(/DNS subdomain/);
    expect(() => buildResourceSlices({ ...base, inventory: { system: sys, gpus: [h100(0), h100(0)] } })).toThrow(/duplicate device name/);
    const badCc: Inventory = { system: sys, gpus: [h100(0, { cudaComputeCapability: { major: 9, minor: -1 } })] };
    expect(() => buildResourceSlices({ ...base, inventory: badCc })).toThrow(/cudaComputeCapability/);
  });

  it('sanitises and bounds generateName for a long node name', () => {
    const node = nodeName(`${'a'.repeat(60)}.example.com`);
    const s = buildResourceSlices({ ...base, nodeName: node, poolName: poolNameOf(node), inventory: manyGpus(1) })[0]!;
    expect(s.metadata.generateName.length).toBeLessThanOrEqual(58);
    expect(s.metadata.generateName.startsWith('gpu.gpulet.dev-aaaa')).toBe(true);
    expect(DNS_SUBDOMAIN(`${s.metadata.generateName}x1y2z`)).toBe(true);
    expect(s.metadata.labels['gpulet.dev/driver']).toBe(DRIVER);
    expect(s.metadata.labels['gpulet.dev/node']).toBeUndefined(); // > 63 chars: not a label value
  });
});
