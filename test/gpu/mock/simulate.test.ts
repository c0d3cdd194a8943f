/**
 * Simulated readings over a fake clock: they move, stay in physical ranges, obey the physics they model
 * (energy = ∫ power, only grows), follow NVML's support matrix for MIG, and faults behave as documented.
 */
import { describe, expect, it, vi } from 'vitest';
import { BackendError } from '../../../src/errors.js';
import { createMockBackend, GPU_MODELS, TEMPERATURE_RANGE_C } from '../../../src/gpu/mock/index.js';
import type { DeviceSample, HealthEvent, Sample } from '../../../src/gpu/types.js';

const T0 = Date.UTC(2025, 0, 1);

function fakeClock(): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = T0;
  return { now: () => t, advance: (ms) => (t += ms), set: (ms) => (t = ms) };
}

function pearson(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i]! - mx) * (ys[i]! - my);
    sxx += (xs[i]! - mx) ** 2;
    syy += (ys[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

async function run(machine: string, steps: number, stepMs: number, nodeName = 'node-a'): Promise<Sample[]> {
  const clock = fakeClock();
  const b = createMockBackend({ machine, nodeName, clock: clock.now });
  await b.init();
  const out: Sample[] = [];
  for (let i = 0; i < steps; i++) {
    out.push(await b.sample());
    clock.advance(stepMs);
  }
  await b.shutdown();
  return out;
}

const byUuid = (s: Sample, uuid: string): DeviceSample | undefined => s.devices.find((d) => d.uuid === uuid);

describe('mock readings over time (dgx-h100, 10 s steps for ~4 h)', async () => {
  const backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'node-a' });
  await backend.init();
  const inv = backend.inventory();
  const samples = await run('dgx-h100', 1500, 10_000);
  const h100 = GPU_MODELS['h100-80gb'];
  const fullGpus = inv.gpus.filter((g) => !g.migEnabled);
  const migGpus = inv.gpus.filter((g) => g.migEnabled);

  it('every GPU and MIG device appears in every sample, stamped with the clock', () => {
    const expected = inv.gpus.length + inv.gpus.reduce((n, g) => n + g.migDevices.length, 0);
    samples.forEach((s, i) => {
      expect(s.timestampMs).toBe(T0 + i * 10_000);
      expect(s.devices).toHaveLength(expected);
    });
  });

  it('full GPUs stay in physical ranges', () => {
    for (const g of fullGpus) {
      for (const s of samples) {
        const d = byUuid(s, g.uuid)!;
        expect(Number.isInteger(d.gpuUtilizationPercent)).toBe(true);
        expect(d.gpuUtilizationPercent).toBeGreaterThanOrEqual(0);
        expect(d.gpuUtilizationPercent).toBeLessThanOrEqual(100);
        expect(d.memoryUtilizationPercent).toBeGreaterThanOrEqual(0);
        expect(d.memoryUtilizationPercent).toBeLessThanOrEqual(100);
        expect(d.memoryTotalBytes).toBe(g.memoryBytes);
        expect(d.memoryUsedBytes!).toBeLessThanOrEqual(d.memoryTotalBytes!);
        // nvml.h (nvmlMemory_v2_t): used includes reserved; used + free = total.
        expect(d.memoryUsedBytes! + d.memoryFreeBytes!).toBe(d.memoryTotalBytes);
        expect(d.memoryReservedBytes).toBe(h100.reservedMiB * 1024 * 1024);
        expect(d.memoryReservedBytes!).toBeLessThanOrEqual(d.memoryUsedBytes!);
        expect(d.memoryUsedBytes!).toBeGreaterThan(d.memoryReservedBytes!);
        expect(d.memoryFreeBytes!).toBeGreaterThanOrEqual(0);
        expect(d.powerMilliwatts!).toBeGreaterThanOrEqual(h100.idlePowerW * 1000);
        expect(d.powerMilliwatts!).toBeLessThanOrEqual(d.powerLimitMilliwatts!);
        expect(d.powerLimitMilliwatts).toBe(700_000);
        expect(d.gpuTemperatureCelsius!).toBeGreaterThanOrEqual(TEMPERATURE_RANGE_C.min);
        expect(d.gpuTemperatureCelsius!).toBeLessThanOrEqual(TEMPERATURE_RANGE_C.max);
        expect(d.memoryTemperatureCelsius!).toBeGreaterThanOrEqual(d.gpuTemperatureCelsius!);
        expect(d.smClockMhz!).toBeGreaterThan(0);
        expect(d.smClockMhz!).toBeLessThanOrEqual(1980);
        expect(d.memoryClockMhz).toBe(2619);
        expect(d.eccCorrectedErrors).toBe(0);
        expect(d.eccUncorrectedErrors).toBe(0);
      }
    }
  });

  it('readings move: utilization, power and memory take many distinct values', () => {
    for (const g of fullGpus) {
      const util = samples.map((s) => byUuid(s, g.uuid)!.gpuUtilizationPercent!);
      expect(new Set(util).size).toBeGreaterThan(15);
      expect(Math.max(...util) - Math.min(...util)).toBeGreaterThan(20);
      expect(new Set(samples.map((s) => byUuid(s, g.uuid)!.memoryUsedBytes)).size).toBeGreaterThan(50);
    }
    // GPUs do not move in lock-step.
    const u0 = samples.map((s) => byUuid(s, fullGpus[0]!.uuid)!.gpuUtilizationPercent!);
    const u1 = samples.map((s) => byUuid(s, fullGpus[1]!.uuid)!.gpuUtilizationPercent!);
    expect(u0).not.toEqual(u1);
  });

  it('power follows utilization, memory follows load, temperature follows power', () => {
    for (const g of fullGpus) {
      const d = samples.map((s) => byUuid(s, g.uuid)!);
      expect(pearson(d.map((x) => x.gpuUtilizationPercent!), d.map((x) => x.powerMilliwatts!))).toBeGreaterThan(0.95);
      expect(pearson(d.map((x) => x.gpuUtilizationPercent!), d.map((x) => x.memoryUsedBytes!))).toBeGreaterThan(0.6);
      expect(pearson(d.map((x) => x.powerMilliwatts!), d.map((x) => x.gpuTemperatureCelsius!))).toBeGreaterThan(0.5);
    }
  });

  it('energy never decreases and its increments equal the integral of power (trapezoid)', () => {
    for (const g of inv.gpus) {
      for (let i = 1; i < samples.length; i++) {
        const a = byUuid(samples[i - 1]!, g.uuid)!;
        const b = byUuid(samples[i]!, g.uuid)!;
        const de = b.energyMillijoules! - a.energyMillijoules!;
        expect(de).toBeGreaterThanOrEqual(0);
        // 10 s at the average of the two power readings (mW × s = mJ), ±1 mJ rounding.
        expect(Math.abs(de - ((a.powerMilliwatts! + b.powerMilliwatts!) / 2) * 10)).toBeLessThanOrEqual(1);
        expect(b.pcieTxBytes!).toBeGreaterThanOrEqual(a.pcieTxBytes!);
        expect(b.pcieRxBytes!).toBeGreaterThanOrEqual(a.pcieRxBytes!);
      }
    }
  });

  it('MIG devices report memory only; their parent reports power/temp/clocks/energy but no utilization', () => {
    for (const g of migGpus) {
      for (const s of samples) {
        const parent = byUuid(s, g.uuid)!;
        expect(parent.gpuUtilizationPercent).toBeUndefined();
        expect(parent.powerMilliwatts).toBeGreaterThanOrEqual(h100.idlePowerW * 1000);
        expect(parent.gpuTemperatureCelsius).toBeDefined();
        expect(parent.smClockMhz).toBeDefined();
        expect(parent.energyMillijoules).toBeDefined();
        let migUsed = 0;
        for (const m of g.migDevices) {
          const d = byUuid(s, m.uuid)!;
          expect(d.gpuUtilizationPercent).toBeUndefined();
          expect(d.powerMilliwatts).toBeUndefined();
          expect(d.memoryTotalBytes).toBe(m.memoryBytes);
          expect(d.memoryUsedBytes!).toBeLessThanOrEqual(m.memoryBytes);
          expect(d.memoryUsedBytes! + d.memoryFreeBytes!).toBe(m.memoryBytes);
          expect(d.memoryReservedBytes).toBeUndefined();
          migUsed += d.memoryUsedBytes!;
        }
        // nvml.h: the parent's used = its reserved + what is allocated (here: by its MIG devices); used + free = total.
        expect(parent.memoryReservedBytes).toBe(h100.reservedMiB * 1024 * 1024);
        expect(parent.memoryUsedBytes).toBe(parent.memoryReservedBytes! + migUsed);
        expect(parent.memoryUsedBytes! + parent.memoryFreeBytes!).toBe(parent.memoryTotalBytes);
        expect(parent.memoryTotalBytes).toBe(g.memoryBytes);
      }
    }
  });
});

describe('mock readings: determinism and clock handling', () => {
  it('the same node name and clock sequence give identical samples', async () => {
    expect(await run('h100-80gb', 50, 7_000)).toEqual(await run('h100-80gb', 50, 7_000));
  });

  it('different node names give different readings', async () => {
    const a = await run('h100-80gb', 20, 60_000, 'node-a');
    const b = await run('h100-80gb', 20, 60_000, 'node-b');
    expect(a.map((s) => s.devices[0]!.gpuUtilizationPercent)).not.toEqual(b.map((s) => s.devices[0]!.gpuUtilizationPercent));
  });

  it('energy does not decrease when the clock stands still or steps back', async () => {
    const clock = fakeClock();
    const b = createMockBackend({ machine: 'a100-40gb', nodeName: 'n', clock: clock.now });
    await b.init();
    const e = async (): Promise<number> => (await b.sample()).devices[0]!.energyMillijoules!;
    const e0 = await e();
    clock.advance(60_000);
    const e1 = await e();
    expect(e1).toBeGreaterThan(e0);
    expect(await e()).toBe(e1);
    clock.set(T0 - 3_600_000);
    expect(await e()).toBeGreaterThanOrEqual(e1);
  });

  it('A100 readings use the A100 limits (400 W, 1410 MHz)', async () => {
    for (const s of await run('a100-40gb', 200, 30_000)) {
      const d = s.devices[0]!;
      expect(d.powerMilliwatts!).toBeLessThanOrEqual(400_000);
      expect(d.powerMilliwatts!).toBeGreaterThanOrEqual(GPU_MODELS['a100-40gb'].idlePowerW * 1000);
      expect(d.smClockMhz!).toBeLessThanOrEqual(1410);
    }
  });
});

describe('mock fault injection', () => {
  async function dgx(): Promise<{ b: ReturnType<typeof createMockBackend>; clock: ReturnType<typeof fakeClock> }> {
    const clock = fakeClock();
    const b = createMockBackend({ machine: 'dgx-h100', nodeName: 'node-f', clock: clock.now });
    await b.init();
    return { b, clock };
  }

  it('injectHealthEvent delivers to every listener; unsubscribe stops delivery; a throwing listener does not stop others', async () => {
    const { b } = await dgx();
    const uuid = b.inventory().gpus[0]!.uuid;
    const seen: HealthEvent[] = [];
    const thrower = vi.fn(() => {
      throw new Error('boom');
    });
    b.onHealthEvent(thrower);
    const off = b.onHealthEvent((e) => seen.push(e));
    const ev: HealthEvent = { kind: 'xid', uuid, xid: 79, timestampMs: T0, message: 'GPU has fallen off the bus' };
    b.injectHealthEvent(ev);
    expect(seen).toEqual([ev]);
    expect(thrower).toHaveBeenCalledTimes(1);
    off();
    b.injectHealthEvent(ev);
    expect(seen).toHaveLength(1);
  });

  it('ECC events bump the GPU ECC counters (a MIG event counts on its parent)', async () => {
    const { b } = await dgx();
    const gpu = b.inventory().gpus[7]!;
    b.injectHealthEvent({ kind: 'ecc-double-bit', uuid: gpu.migDevices[2]!.uuid, timestampMs: T0, message: 'DBE' });
    b.injectHealthEvent({ kind: 'ecc-single-bit', uuid: gpu.uuid, timestampMs: T0, message: 'SBE' });
    b.injectHealthEvent({ kind: 'ecc-single-bit', uuid: gpu.uuid, timestampMs: T0, message: 'SBE' });
    const d = byUuid(await b.sample(), gpu.uuid)!;
    expect(d.eccUncorrectedErrors).toBe(1);
    expect(d.eccCorrectedErrors).toBe(2);
  });

  it('markLost: a gpu-lost event fires and the GPU and its MIG devices vanish from samples until restored', async () => {
    const { b, clock } = await dgx();
    const inv = b.inventory();
    const gpu = inv.gpus[6]!;
    const events: HealthEvent[] = [];
    b.onHealthEvent((e) => events.push(e));
    clock.advance(5_000);
    b.markLost(gpu.uuid);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'gpu-lost', uuid: gpu.uuid, timestampMs: T0 + 5_000 });
    const s = await b.sample();
    const gone = [gpu.uuid, ...gpu.migDevices.map((m) => m.uuid)];
    for (const u of gone) expect(byUuid(s, u)).toBeUndefined();
    expect(s.devices).toHaveLength(8 + 10 - gone.length);
    expect(b.inventory()).toBe(inv);
    b.restoreDevice(gpu.uuid);
    const back = await b.sample();
    for (const u of gone) expect(byUuid(back, u)).toBeDefined();
    expect(events.map((e) => e.kind)).toEqual(['gpu-lost', 'gpu-recovered']);
    b.restoreDevice(gpu.uuid); // not lost: no event
    b.resetDevice(gpu.uuid); // a reset always says the device answers again
    expect(events.map((e) => [e.kind, e.uuid])).toEqual([['gpu-lost', gpu.uuid], ['gpu-recovered', gpu.uuid], ['gpu-recovered', gpu.uuid]]);
  });

  it('markLost on one MIG device hides only that device', async () => {
    const { b } = await dgx();
    const mig = b.inventory().gpus[7]!.migDevices[3]!;
    b.markLost(mig.uuid);
    const s = await b.sample();
    expect(byUuid(s, mig.uuid)).toBeUndefined();
    expect(byUuid(s, mig.parentUuid)).toBeDefined();
    expect(s.devices).toHaveLength(17);
  });

  it('setUnsupported hides chosen readings on one device or on all, and clears with []', async () => {
    const { b } = await dgx();
    const [g0, g1] = b.inventory().gpus;
    b.setUnsupported(['powerMilliwatts', 'energyMillijoules'], g0!.uuid);
    let s = await b.sample();
    expect(byUuid(s, g0!.uuid)!.powerMilliwatts).toBeUndefined();
    expect('energyMillijoules' in byUuid(s, g0!.uuid)!).toBe(false);
    expect(byUuid(s, g0!.uuid)!.gpuTemperatureCelsius).toBeDefined();
    expect(byUuid(s, g1!.uuid)!.powerMilliwatts).toBeDefined();
    b.setUnsupported(['memoryTemperatureCelsius']);
    s = await b.sample();
    for (const d of s.devices) expect(d.memoryTemperatureCelsius).toBeUndefined();
    b.setUnsupported([]);
    b.setUnsupported([], g0!.uuid);
    s = await b.sample();
    expect(byUuid(s, g0!.uuid)!.powerMilliwatts).toBeDefined();
    expect(byUuid(s, g1!.uuid)!.memoryTemperatureCelsius).toBeDefined();
  });

  it('unknown UUIDs are BackendErrors; shutdown is idempotent and stops sampling', async () => {
    const { b } = await dgx();
    expect(() => b.markLost('GPU-00000000-0000-0000-0000-000000000000')).toThrow(BackendError);
    expect(() => b.setUnsupported(['smClockMhz'], 'MIG-nope')).toThrow(/no GPU or MIG device with UUID MIG-nope/);
    await b.shutdown();
    await b.shutdown();
    await expect(b.sample()).rejects.toBeInstanceOf(BackendError);
  });
});
