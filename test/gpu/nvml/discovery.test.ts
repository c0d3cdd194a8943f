/**
 * The NVML backend on the fake libnvidia-ml, through the real addon: discovery equals the mock's inventory
 * for the same machine and node (hence identical ResourceSlices), and every sample reading maps to the
 * DeviceSample field of the same NVML fact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildResourceSlices } from '../../../src/dra/slices/build.js';
import { createNvmlBackend, type NvmlBackend } from '../../../src/gpu/nvml/index.js';
import { fakeSetup, type FakeSetup } from '../../helpers/nvml.js';
import { driverName, nodeName, poolName } from '../../helpers/names.js';
import { waitFor } from '../../helpers/wait.js';

describe('NVML backend on the fake library: discovery', () => {
  let fake: FakeSetup;
  let backend: NvmlBackend;
  beforeAll(async () => {
    fake = await fakeSetup({ machine: 'dgx-h100', nodeName: 'node-a' });
    Object.assign(process.env, fake.files.env);
    backend = createNvmlBackend({ library: fake.library, sysfsRoot: fake.sysfsRoot });
    await backend.init();
  }, 120_000);
  afterAll(async () => {
    await backend?.shutdown();
    await fake?.cleanup();
  });

  it('discovers exactly the mock inventory of dgx-h100 (GPUs, MIG devices, system facts)', () => {
    expect(backend.inventory()).toEqual(fake.inventory);
  });

  it('builds the same ResourceSlices as the mock backend for the same node', () => {
    const input = { driverName: driverName('gpu.gpulet.dev'), nodeName: nodeName('node-a'), poolName: poolName('node-a'), generation: 1 };
    expect(buildResourceSlices({ ...input, inventory: backend.inventory() })).toEqual(
      buildResourceSlices({ ...input, inventory: fake.inventory }),
    );
  });

  it('reports which symbol resolved for each function (versioned names first)', () => {
    const symbols = backend.symbols();
    expect(symbols['nvmlInit_v2']).toBe('nvmlInit_v2');
    expect(symbols['nvmlDeviceGetPciInfo_v3']).toBe('nvmlDeviceGetPciInfo_v3');
    expect(Object.keys(symbols).length).toBeGreaterThanOrEqual(40);
  });

  it('samples every GPU and MIG device with readings in range and consistent memory', async () => {
    const s = await backend.sample();
    const inv = backend.inventory();
    const expected = inv.gpus.flatMap((g) => [g.uuid, ...g.migDevices.map((m) => m.uuid)]);
    expect(s.devices.map((d) => d.uuid).sort()).toEqual(expected.sort());
    for (const g of inv.gpus) {
      const d = s.devices.find((x) => x.uuid === g.uuid);
      expect(d?.memoryTotalBytes).toBe(g.memoryBytes);
      expect(d?.powerLimitMilliwatts).toBe(g.powerLimitMilliwatts);
      // nvml.h: "nvmlMemory_v2_t.used amount also includes the nvmlMemory_v2_t.reserved amount".
      expect((d?.memoryUsedBytes ?? 0) + (d?.memoryFreeBytes ?? 0)).toBe(g.memoryBytes);
      expect(d?.memoryUsedBytes).toBeGreaterThanOrEqual(d?.memoryReservedBytes ?? Infinity);
      expect(d?.gpuTemperatureCelsius).toBeGreaterThan(0);
      expect(d?.memoryTemperatureCelsius).toBeGreaterThan(0);
      expect(d?.energyMillijoules).toBeGreaterThan(0);
      if (!g.migEnabled) {
        expect(d?.gpuUtilizationPercent).toBeGreaterThanOrEqual(0);
        expect(d?.gpuUtilizationPercent).toBeLessThanOrEqual(100);
      }
    }
    const mig = inv.gpus.flatMap((g) => g.migDevices)[0];
    const md = s.devices.find((x) => x.uuid === mig?.uuid);
    expect(md?.memoryTotalBytes).toBe(mig?.memoryBytes);
  });

  it('energy never decreases and PCIe and NVLink byte counters accumulate across samples', async () => {
    const a = await backend.sample();
    // A later sample: one the addon stamped after the first (no sleep: sample until its clock moved).
    const b = await waitFor(async () => {
      const next = await backend.sample();
      return next.timestampMs > a.timestampMs ? next : undefined;
    }, { what: 'a sample stamped after the first' });
    const uuid = backend.inventory().gpus[0]!.uuid;
    const ea = a.devices.find((d) => d.uuid === uuid)!;
    const eb = b.devices.find((d) => d.uuid === uuid)!;
    expect(eb.energyMillijoules).toBeGreaterThanOrEqual(ea.energyMillijoules ?? 0);
    expect(eb.pcieTxBytes).toBeGreaterThanOrEqual(ea.pcieTxBytes ?? 0);
    // Fields 138/139 (NVLink data TX/RX, KiB, scopeId UINT_MAX) summed, in bytes: a multiple of 1024 that only grows.
    expect(ea.nvlinkDataBytes).toBeGreaterThan(0);
    expect(ea.nvlinkDataBytes! % 1024).toBe(0);
    expect(eb.nvlinkDataBytes).toBeGreaterThanOrEqual(ea.nvlinkDataBytes!);
    // nvmlDeviceGetRemappedRows failureOccurred (the fake never fails a remap).
    expect(ea.remappedRowsFailure).toBe(0);
    expect(b.timestampMs).toBeGreaterThan(a.timestampMs);
  });
});
