/**
 * GPM profiling metrics through the real addon on the fake libnvidia-ml: the figures gpulet reports for each GPU
 * and MIG device are the ones the fake's documented counters imply (test/helpers/gpm-model.ts), none at the first
 * sample (GPM needs two), none on the A100 (nvmlGpmQueryDeviceSupport: unsupported before Hopper), no PCIe or
 * NVLink figures for a GPU instance (NVML answers those metrics with an error); a library without the GPM calls
 * samples as before, with no GPM metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNvmlBackend, type NvmlBackend } from '../../../src/gpu/nvml/index.js';
import { buildFakeNvmlArtifacts } from '../../helpers/fake-nvml.js';
import { closeTo, expectedGpm, fakeGpmActivity, GPM_MACHINE } from '../../helpers/gpm-model.js';
import { fakeSetup, type FakeSetup } from '../../helpers/nvml.js';

describe('NVML backend on the fake library: GPM profiling metrics', () => {
  let fake: FakeSetup;
  let backend: NvmlBackend;
  let withoutGpm: NvmlBackend;
  beforeAll(async () => {
    fake = await fakeSetup({ machine: GPM_MACHINE, nodeName: 'node-gpm' });
    Object.assign(process.env, fake.files.env);
    backend = createNvmlBackend({ library: fake.library, sysfsRoot: fake.sysfsRoot });
    await backend.init();
    withoutGpm = createNvmlBackend({ library: (await buildFakeNvmlArtifacts()).libraryWithoutGpm, sysfsRoot: fake.sysfsRoot });
    await withoutGpm.init();
  }, 120_000);
  afterAll(async () => {
    await backend?.shutdown();
    await withoutGpm?.shutdown();
    await fake?.cleanup();
  });

  it('has no GPM metrics at the first sample, then the figures the fake\'s counters imply on every Hopper device', async () => {
    const first = await backend.sample();
    expect(first.devices.filter((d) => d.gpm !== undefined).map((d) => d.uuid)).toEqual([]);
    const inv = backend.inventory();
    for (let round = 0; round < 2; round++) {
      const s = await backend.sample();
      const byUuid = new Map(s.devices.map((d) => [d.uuid, d]));
      const [a100, h100, mig] = inv.gpus;
      expect(a100?.architecture).toBe('Ampere');
      expect(byUuid.get(a100!.uuid)?.gpm).toBeUndefined();
      expect(byUuid.get(a100!.uuid)?.powerMilliwatts).toBeGreaterThan(0); // the A100 is sampled, just without GPM
      for (const gpu of [h100!, mig!]) {
        expect(closeTo(byUuid.get(gpu.uuid)?.gpm, expectedGpm(fakeGpmActivity(gpu.minor), false)), gpu.uuid).toEqual([]);
      }
      expect(mig!.migDevices).toHaveLength(2);
      for (const m of mig!.migDevices) {
        const got = byUuid.get(m.uuid)?.gpm;
        expect(closeTo(got, expectedGpm(fakeGpmActivity(mig!.minor, m.gpuInstanceId), true)), m.uuid).toEqual([]);
        expect(got?.pcieTxBytesPerSecond).toBeUndefined();
        expect(got?.nvlinkRxBytesPerSecond).toBeUndefined();
      }
    }
  });

  it('a MIG device created later gets its own GPM pair, keyed by its GPU instance: none at its first sample, then its figures', async () => {
    const gpu = backend.inventory().gpus[2]!;
    const created = await backend.mig.createMigDevice(gpu.uuid, { giProfileId: 19, start: 4, size: 1 }); // 1g.10gb in the free slice 4
    try {
      const first = await backend.sample();
      expect(first.devices.find((d) => d.uuid === created.uuid)?.gpm).toBeUndefined();
      const next = await backend.sample();
      const byUuid = new Map(next.devices.map((d) => [d.uuid, d]));
      expect(closeTo(byUuid.get(created.uuid)?.gpm, expectedGpm(fakeGpmActivity(gpu.minor, created.gpuInstanceId), true))).toEqual([]);
      for (const m of backend.inventory().gpus[2]!.migDevices) {
        expect(closeTo(byUuid.get(m.uuid)?.gpm, expectedGpm(fakeGpmActivity(gpu.minor, m.gpuInstanceId), true)), m.uuid).toEqual([]);
      }
      expect(closeTo(byUuid.get(gpu.uuid)?.gpm, expectedGpm(fakeGpmActivity(gpu.minor), false))).toEqual([]);
    } finally {
      await backend.mig.destroyMigDevice(gpu.uuid, created.gpuInstanceId);
    }
  });

  it('a library without the GPM calls samples every device as before, with no GPM metrics', async () => {
    expect(withoutGpm.symbols()['nvmlGpmSampleGet']).toBeNull();
    expect(backend.symbols()['nvmlGpmMigSampleGet']).toBe('nvmlGpmMigSampleGet');
    await withoutGpm.sample();
    const s = await withoutGpm.sample();
    const inv = withoutGpm.inventory();
    expect(s.devices).toHaveLength(inv.gpus.length + inv.gpus.reduce((n, g) => n + g.migDevices.length, 0));
    expect(s.devices.filter((d) => d.gpm !== undefined)).toEqual([]);
    expect(s.devices.every((d) => d.memoryTotalBytes !== undefined)).toBe(true);
  });
});
