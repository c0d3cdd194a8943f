/**
 * Mock machines: the built-in catalogue, the dgx-h100 layout, deterministic identities, and MachineSpec
 * validation. Layout rules are checked against the rules section of test/reference/mig-profiles.md.
 */
import { describe, expect, it } from 'vitest';
import { allocatableDevices } from '../../../src/model/devices.js';
import { ConfigError } from '../../../src/errors.js';
import {
  createMockBackend,
  GPU_MODELS,
  migLayoutProblems,
  MOCK_MACHINES,
  validateMachineSpec,
  type GpuModel,
  type MachineSpec,
} from '../../../src/gpu/mock/index.js';
import type { Inventory } from '../../../src/gpu/types.js';

const UUID = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MIG_UUID = /^MIG-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BUS_ID = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

async function inventoryOf(machine: string, nodeName: string): Promise<Inventory> {
  const b = createMockBackend({ machine, nodeName });
  await b.init();
  return b.inventory();
}

describe('built-in mock machines', () => {
  it('lists one single-GPU machine per model and dgx-h100', () => {
    expect([...MOCK_MACHINES].sort()).toEqual(['a100-40gb', 'dgx-h100', 'h100-80gb', 'h200-141gb']);
  });

  it.each([
    ['a100-40gb', 'NVIDIA A100-SXM4-40GB', 'Ampere', 8, 108, 40960, 400],
    ['h100-80gb', 'NVIDIA H100 80GB HBM3', 'Hopper', 9, 132, 81559, 700],
    ['h200-141gb', 'NVIDIA H200', 'Hopper', 9, 132, 143771, 700],
  ])('%s reports the model facts NVML gives', async (machine, name, arch, ccMajor, sms, mib, watts) => {
    const inv = await inventoryOf(machine, 'node-x');
    expect(inv.gpus).toHaveLength(1);
    const g = inv.gpus[0]!;
    expect(g).toMatchObject({
      productName: name, architecture: arch, brand: 'Nvidia', multiprocessors: sms,
      memoryBytes: mib * 2 ** 20, powerLimitMilliwatts: watts * 1000, migEnabled: false, migDevices: [],
      cudaComputeCapability: { major: ccMajor, minor: 0 }, index: 0, minor: 0,
    });
    expect(g.pci.pciDeviceId & 0xffff).toBe(0x10de);
    expect(inv.system).toEqual({ driverVersion: '580.95.05', nvmlVersion: '13.580.95.05', cudaDriverVersion: 13000 });
  });

  it('an unknown machine name is a ConfigError listing the valid names', () => {
    const make = (): unknown => createMockBackend({ machine: 'dgx-b300', nodeName: 'n' });
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(/dgx-b300.*a100-40gb.*h100-80gb.*h200-141gb.*dgx-h100/);
  });

  it('inventory() before init() is a BackendError', () => {
    const b = createMockBackend({ machine: 'h100-80gb', nodeName: 'n' });
    expect(() => b.inventory()).toThrow(/init\(\)/);
  });
});

describe('dgx-h100', () => {
  it('has 8 H100s, GPUs 6 and 7 in MIG mode, 6 full GPUs and 10 MIG devices allocatable', async () => {
    const inv = await inventoryOf('dgx-h100', 'node-a');
    expect(inv.gpus).toHaveLength(8);
    expect(inv.gpus.map((g) => g.migEnabled)).toEqual([false, false, false, false, false, false, true, true]);
    for (const g of inv.gpus) expect(g.productName).toBe('NVIDIA H100 80GB HBM3');
    const names = allocatableDevices(inv).map((d) => d.name);
    expect(names).toEqual([
      'gpu-0', 'gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5',
      'gpu-6-mig-3g40gb-9-0', 'gpu-6-mig-2g20gb-14-4', 'gpu-6-mig-1g10gb-19-6',
      ...[0, 1, 2, 3, 4, 5, 6].map((s) => `gpu-7-mig-1g10gb-19-${s}`),
    ]);
  });

  it('MIG devices carry the reference facts of their profile and satisfy the layout rules', async () => {
    const inv = await inventoryOf('dgx-h100', 'node-a');
    const h100 = GPU_MODELS['h100-80gb'];
    for (const g of inv.gpus.filter((x) => x.migEnabled)) {
      const slices = new Set<number>();
      let compute = 0;
      const gis = new Set<number>();
      g.migDevices.forEach((m, i) => {
        const p = h100.migProfiles.find((x) => x.name === m.profile)!;
        expect(m).toMatchObject({
          parentUuid: g.uuid, parentMinor: g.minor, index: i, giProfileId: p.id, computeInstanceId: 0,
          multiprocessors: p.multiprocessors, copyEngines: p.copyEngines, decoders: p.decoders, encoders: 0,
          jpegEngines: p.jpegEngines, ofaEngines: p.ofaEngines, memoryBytes: p.memoryMiB * 2 ** 20,
        });
        expect(m.uuid).toMatch(MIG_UUID);
        expect(p.placementStarts).toContain(m.placement.start);
        expect(m.placement.size).toBe(p.placementSize);
        for (let s = m.placement.start; s < m.placement.start + m.placement.size; s++) {
          expect(slices.has(s)).toBe(false);
          slices.add(s);
        }
        compute += Number(m.profile[0]);
        expect(m.gpuInstanceId).toBeGreaterThanOrEqual(1);
        expect(m.gpuInstanceId).toBeLessThanOrEqual(14);
        gis.add(m.gpuInstanceId);
      });
      expect(compute).toBeLessThanOrEqual(7);
      expect(gis.size).toBe(g.migDevices.length);
      expect(migLayoutProblems(h100, g.migDevices.map((m) => ({ profile: m.profile, placementStart: m.placement.start })))).toEqual([]);
    }
    // Seven 1g instances get GI IDs 7..13, as nvidia-smi shows.
    expect(inv.gpus[7]!.migDevices.map((m) => m.gpuInstanceId)).toEqual([7, 8, 9, 10, 11, 12, 13]);
  });

  it('identities are deterministic per node name and distinct across node names', async () => {
    const a1 = await inventoryOf('dgx-h100', 'node-a');
    const a2 = await inventoryOf('dgx-h100', 'node-a');
    const b = await inventoryOf('dgx-h100', 'node-b');
    expect(a2).toEqual(a1);
    const ids = (inv: Inventory): string[] => [
      ...inv.gpus.flatMap((g) => [g.uuid, g.serial]),
      ...inv.gpus.flatMap((g) => g.migDevices.map((m) => m.uuid)),
    ];
    const setA = new Set(ids(a1));
    expect(setA.size).toBe(ids(a1).length); // all distinct within the node
    for (const id of ids(b)) expect(setA.has(id)).toBe(false);
    for (const g of a1.gpus) {
      expect(g.uuid).toMatch(UUID);
      expect(g.serial).toMatch(/^\d{13}$/);
      expect(g.pci.busId).toMatch(BUS_ID);
      expect(g.pci.pcieRoot).toMatch(/^pci[0-9a-f]{4}:[0-9a-f]{2}$/);
      expect(g.minor).toBe(g.index);
    }
    expect(new Set(a1.gpus.map((g) => g.pci.busId)).size).toBe(8);
    expect(a1.gpus.map((g) => g.pci.busId.slice(5, 7))).toEqual(['18', '2a', '3a', '5d', '9a', 'ab', 'ba', 'db']);
  });
});

describe('custom MachineSpec', () => {
  const bad = (spec: unknown): string => {
    try {
      validateMachineSpec(spec);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('spec was accepted');
  };

  it('accepts a valid custom layout and builds it', async () => {
    const spec: MachineSpec = {
      name: 'mixed',
      gpus: [
        { model: 'a100-40gb', mig: [{ profile: '4g.20gb', placementStart: 0 }, { profile: '2g.10gb', placementStart: 4 }, { profile: '1g.5gb+me', placementStart: 6 }] },
        { model: 'h200-141gb' },
        { model: 'h100-80gb', mig: [] },
      ],
    };
    const b = createMockBackend({ machine: spec, nodeName: 'n1' });
    await b.init();
    const inv = b.inventory();
    expect(inv.gpus.map((g) => g.migDevices.length)).toEqual([3, 0, 0]);
    expect(inv.gpus[2]!.migEnabled).toBe(true);
    expect(JSON.parse(JSON.stringify(b.machine))).toEqual(spec);
  });

  it('rejects overlapping instances, naming both', () => {
    const msg = bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '3g.40gb', placementStart: 0 }, { profile: '1g.10gb', placementStart: 2 }] }] });
    expect(msg).toMatch(/gpus\[0\].*mig\[1\] \(1g\.10gb@2\): overlaps mig\[0\] \(3g\.40gb@0\) at memory slice 2/);
  });

  it('rejects a placement the profile does not allow, listing the allowed ones', () => {
    expect(bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '2g.20gb', placementStart: 3 }] }] })).toMatch(/2g\.20gb may start at 0, 2, 4/);
    expect(bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '1g.10gb', placementStart: 7 }] }] })).toMatch(/bad placement/);
  });

  it('rejects more than one +me instance and more than max per profile', () => {
    const msg = bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '1g.10gb+me', placementStart: 0 }, { profile: '1g.10gb+me', placementStart: 1 }] }] });
    expect(msg).toMatch(/2 '\+me' instances, at most 1/);
    expect(msg).toMatch(/more than 1 × 1g\.10gb\+me/);
  });

  it('checks compute slices ≤ 7 and per-profile maxima (rule applied to a permissive table)', () => {
    // With NVIDIA's placements these two rules are implied by the memory rule; check them on a table
    // whose placements would otherwise allow a violation.
    const base = GPU_MODELS['h100-80gb'];
    const loose: GpuModel = {
      ...base,
      migProfiles: base.migProfiles.map((p) => (p.name === '1g.10gb' ? { ...p, maxCount: 2, placementStarts: [0, 1, 2, 3, 4, 5, 6, 7] } : p)),
    };
    const eight = Array.from({ length: 8 }, (_, i) => ({ profile: '1g.10gb', placementStart: i }));
    const problems = migLayoutProblems(loose, eight);
    expect(problems).toContain('compute slices sum to 8 > 7');
    expect(problems).toContain('more than 2 × 1g.10gb (max per GPU)');
  });

  it('rejects unknown models and profiles, bad shapes and empty machines', () => {
    expect(bad({ gpus: [{ model: 'b200' }] })).toMatch(/gpus\[0\]\.model: "b200" is not one of a100-40gb, a100-80gb, h100-80gb, h200-141gb/);
    expect(bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '1g.5gb', placementStart: 0 }] }] })).toMatch(/unknown profile; valid: 1g\.10gb/);
    expect(bad({ gpus: [{ model: 'h100-80gb', mig: [{ profile: '1g.10gb', placementStart: 0.5 }] }] })).toMatch(/placementStart: integer/);
    expect(bad({ gpus: [] })).toMatch(/gpus: must be an array of 1–64/);
    expect(bad('dgx')).toMatch(/must be an object/);
    expect(bad({ gpus: [{ model: 'h100-80gb', mig: 'all' }] })).toMatch(/mig: must be an array/);
    expect(() => createMockBackend({ machine: { gpus: [{ model: 'x' }] } as never, nodeName: 'n' })).toThrow(ConfigError);
  });
});
