/**
 * Injected faults through the real addon on the fake libnvidia-ml: an XID event reaches onHealthEvent with
 * the XID and device; a lost GPU's readings stop with one typed gpu-lost event while the others go on;
 * NOT_SUPPORTED makes a reading absent (not 0); a slow NVML call does not block the event loop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNvmlBackend, NvmlError, type NvmlBackend } from '../../../src/gpu/nvml/index.js';
import type { HealthEvent } from '../../../src/gpu/types.js';
import { writeFakeFaults } from '../../helpers/fake-nvml.js';
import { fakeSetup, type FakeSetup } from '../../helpers/nvml.js';
import { waitFor } from '../../helpers/wait.js';

describe('NVML backend on the fake library: faults', () => {
  let fake: FakeSetup | undefined;
  let backend: NvmlBackend | undefined;
  afterEach(async () => {
    await backend?.shutdown();
    await fake?.cleanup();
    backend = undefined;
    fake = undefined;
  });

  /** Unix ms of the backend's clock (refresh scheduling): moved by the test, never by waiting. */
  let now = 1_000_000;
  async function start(): Promise<{ fake: FakeSetup; backend: NvmlBackend }> {
    fake = await fakeSetup();
    Object.assign(process.env, fake.files.env);
    backend = createNvmlBackend({ library: fake.library, sysfsRoot: fake.sysfsRoot, refreshDelayMs: 100, clock: () => now });
    await backend.init();
    return { fake, backend };
  }

  it('XID and ECC events arrive as health events with the XID and the device UUID (GPU and MIG)', async () => {
    const { fake, backend } = await start();
    const events: HealthEvent[] = [];
    backend.onHealthEvent((e) => events.push(e));
    const gpu = fake.inventory.gpus[1]!.uuid;
    const mig = fake.inventory.gpus.flatMap((g) => g.migDevices)[0]!.uuid;
    await writeFakeFaults(fake.files.faultsPath, {
      events: [
        { seq: 1, uuid: gpu, type: 'xid', data: 79 },
        { seq: 2, uuid: gpu, type: 'dbe' },
        { seq: 3, uuid: mig, type: 'xid', data: 31 },
      ],
    });
    await waitFor(() => events.length >= 3, { what: '3 health events' });
    expect(events).toContainEqual(expect.objectContaining({ kind: 'xid', uuid: gpu, xid: 79 }));
    expect(events).toContainEqual(expect.objectContaining({ kind: 'ecc-double-bit', uuid: gpu }));
    expect(events).toContainEqual(expect.objectContaining({ kind: 'xid', uuid: mig, xid: 31 }));
  });

  it('a lost GPU: its readings (and its MIG devices) stop, one gpu-lost event with the NVML error, others go on', async () => {
    const { fake, backend } = await start();
    const events: HealthEvent[] = [];
    backend.onHealthEvent((e) => events.push(e));
    const lostGpu = fake.inventory.gpus.find((g) => g.migEnabled)!;
    await writeFakeFaults(fake.files.faultsPath, { lost: [lostGpu.uuid] });
    const s1 = await backend.sample();
    const s2 = await backend.sample();
    for (const s of [s1, s2]) {
      const uuids = s.devices.map((d) => d.uuid);
      expect(uuids).not.toContain(lostGpu.uuid);
      for (const m of lostGpu.migDevices) expect(uuids).not.toContain(m.uuid);
      expect(uuids).toHaveLength(fake.inventory.gpus.length - 1 + fake.inventory.gpus.flatMap((g) => g.migDevices).length - lostGpu.migDevices.length);
    }
    const lost = events.filter((e) => e.kind === 'gpu-lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]?.uuid).toBe(lostGpu.uuid);
    const err = backend.lostDevices().get(lostGpu.uuid);
    expect(err).toBeInstanceOf(NvmlError);
    expect(err).toMatchObject({ code: 15, name: 'NVML_ERROR_GPU_IS_LOST' });
    expect(backend.inventory().gpus.map((g) => g.uuid)).toContain(lostGpu.uuid);

    // The GPU comes back: handles are not refetched per sample, only by the refresh scheduled refreshDelayMs after
    // the loss; once it is due, the next sample runs it, finds the GPU, and readings resume.
    await writeFakeFaults(fake.files.faultsPath, {});
    now += 99;
    expect((await backend.sample()).devices.map((d) => d.uuid)).not.toContain(lostGpu.uuid);
    now += 1;
    const back = await backend.sample(); // runs the due refresh first
    expect(back.devices.map((d) => d.uuid)).toContain(lostGpu.uuid);
    for (const m of lostGpu.migDevices) expect(back.devices.map((d) => d.uuid)).toContain(m.uuid);
    expect(backend.lostDevices().size).toBe(0);
    // ... and says so: one gpu-recovered for the GPU that answers again (src/gpu/health.ts clears its taints).
    expect(events.filter((e) => e.kind === 'gpu-recovered').map((e) => e.uuid)).toEqual([lostGpu.uuid]);
  });

  it('a GPU whose events cannot be registered is reported unmonitored, also to listeners that subscribe later', async () => {
    fake = await fakeSetup();
    Object.assign(process.env, fake.files.env);
    const target = fake.inventory.gpus[1]!.uuid;
    await writeFakeFaults(fake.files.faultsPath, { notSupported: { [target]: ['nvmlDeviceGetSupportedEventTypes'] } });
    backend = createNvmlBackend({ library: fake.library, sysfsRoot: fake.sysfsRoot, clock: () => now });
    await backend.init();
    const events: HealthEvent[] = [];
    backend.onHealthEvent((e) => events.push(e));
    expect(events).toEqual([expect.objectContaining({ kind: 'unmonitored', uuid: target })]);
  });

  it('NOT_SUPPORTED makes exactly that reading absent (undefined, not 0), on the chosen device only', async () => {
    const { fake, backend } = await start();
    const target = fake.inventory.gpus[0]!.uuid;
    const other = fake.inventory.gpus[2]!.uuid;
    await writeFakeFaults(fake.files.faultsPath, {
      notSupported: { [target]: ['nvmlDeviceGetPowerUsage', 'field:82'] },
    });
    const s = await backend.sample();
    const t = s.devices.find((d) => d.uuid === target)!;
    const o = s.devices.find((d) => d.uuid === other)!;
    expect('powerMilliwatts' in t).toBe(false);
    expect('memoryTemperatureCelsius' in t).toBe(false);
    expect(t.gpuTemperatureCelsius).toBeGreaterThan(0);
    expect(o.powerMilliwatts).toBeGreaterThan(0);
    expect(o.memoryTemperatureCelsius).toBeGreaterThan(0);
  });

  it('a slow NVML call runs off the event loop: a timer fires while the sample is in flight', async () => {
    const { fake, backend } = await start();
    await writeFakeFaults(fake.files.faultsPath, { slowMs: { nvmlDeviceGetPowerUsage: 100 } });
    // The timer counts its ticks while the sample is in flight: the sample takes ≥ 800 ms of wall time (one slow
    // call per GPU, 8 GPUs), in which a 10 ms timer fires unless the sample blocks the event loop, where no tick
    // could run before it ended.
    let ticksWhileRunning = 0;
    let done = false;
    const timer = setInterval(() => {
      if (!done) ticksWhileRunning++;
    }, 10);
    const s = await backend.sample().finally(() => {
      done = true;
      clearInterval(timer);
    });
    expect(ticksWhileRunning).toBeGreaterThan(0);
    expect(s.devices.length).toBeGreaterThan(0);
  });
});
