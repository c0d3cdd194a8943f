/**
 * Readings of the fake libnvidia-ml over time, through the C driver: they move with CLOCK_MONOTONIC and stay
 * within the model's physical limits (src/gpu/mock/models.ts); MIG devices and GPUs in MIG mode report
 * NOT_SUPPORTED where NVML does.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMockInventory, GPU_MODELS, machineSpecByName, TEMPERATURE_RANGE_C } from '../../src/gpu/mock/index.js';
import { runDriver } from '../fixtures/fake-nvml/driver.js';
import { buildFakeNvmlArtifacts, writeFakeMachine } from '../helpers/fake-nvml.js';

/** [rc, elapsedUs, ...values] per call name (see driver-sample.inc). */
type Calls = Record<string, number[]>;
interface DeviceOut { uuid: string; mig: boolean; calls: Calls }

const NOT_SUPPORTED = 3; // nvml.h NVML_ERROR_NOT_SUPPORTED
const MIB = 1024 * 1024;
const H100 = GPU_MODELS['h100-80gb'];

describe('fake libnvidia-ml: readings', () => {
  let dir = '';
  let env: Record<string, string> = {};
  let samples: DeviceOut[][] = [];
  const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-readings');

  beforeAll(async () => {
    const build = await buildFakeNvmlArtifacts();
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-fake-nvml-'));
    env = { ...(await writeFakeMachine(dir, inv)).env };
    const r = await runDriver(build.driver, build.library, ['sample', '3', '250'], env);
    expect(r.code, r.stderr).toBe(0);
    samples = r.lines.map((l) => (l as { devices: DeviceOut[] }).devices);
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const gpuCalls = (s: number, uuid: string): Calls => {
    const d = samples[s]?.find((x) => x.uuid === uuid);
    if (!d) throw new Error(`device ${uuid} missing from sample ${s}`);
    return d.calls;
  };

  it('every GPU and MIG device is sampled (8 GPUs + 10 MIG devices)', () => {
    expect(samples).toHaveLength(3);
    for (const s of samples) {
      expect(s.filter((d) => !d.mig).map((d) => d.uuid)).toEqual(inv.gpus.map((g) => g.uuid));
      expect(s.filter((d) => d.mig).map((d) => d.uuid)).toEqual(inv.gpus.flatMap((g) => g.migDevices.map((m) => m.uuid)));
    }
  });

  it('energy (mJ) strictly grows; power (mW) stays between idle and the enforced limit', () => {
    for (const g of inv.gpus) {
      const energy = samples.map((_, s) => gpuCalls(s, g.uuid)['nvmlDeviceGetTotalEnergyConsumption'] ?? []);
      for (const e of energy) expect(e[0]).toBe(0);
      expect((energy[1]?.[2] ?? 0) > (energy[0]?.[2] ?? 0) && (energy[2]?.[2] ?? 0) > (energy[1]?.[2] ?? 0)).toBe(true);
      // ≥ idle power × elapsed time: 250 ms at ≥ 70 W is ≥ 17 500 mJ.
      expect((energy[1]?.[2] ?? 0) - (energy[0]?.[2] ?? 0)).toBeGreaterThanOrEqual(H100.idlePowerW * 250 * 0.9);
      for (let s = 0; s < 3; s++) {
        const [rc, , mw = -1] = gpuCalls(s, g.uuid)['nvmlDeviceGetPowerUsage'] ?? [];
        expect(rc).toBe(0);
        expect(mw).toBeGreaterThanOrEqual(H100.idlePowerW * 1000);
        expect(mw).toBeLessThanOrEqual(g.powerLimitMilliwatts);
      }
    }
  });

  it('temperature, clocks, memory and PCIe readings are within the model\'s ranges', () => {
    for (const g of inv.gpus) {
      const c = gpuCalls(0, g.uuid);
      const temp = c['nvmlDeviceGetTemperature']?.[2] ?? -1;
      expect(temp).toBeGreaterThanOrEqual(TEMPERATURE_RANGE_C.min);
      expect(temp).toBeLessThanOrEqual(TEMPERATURE_RANGE_C.max);
      const sm = c['nvmlDeviceGetClockInfo']?.[2] ?? -1;
      expect(sm).toBeGreaterThanOrEqual(H100.smClockIdleMhz);
      expect(sm).toBeLessThanOrEqual(H100.smClockMaxMhz);
      expect(c['nvmlDeviceGetClockInfo:mem']?.[2]).toBe(H100.memoryClockMhz);
      const [rc, , total = 0, reserved = 0, used = 0, free = 0] = c['nvmlDeviceGetMemoryInfo_v2'] ?? [];
      expect(rc).toBe(0);
      expect([total, reserved]).toEqual([g.memoryBytes, H100.reservedMiB * MIB]);
      expect(used + free).toBe(total);
      expect(used).toBeGreaterThanOrEqual(reserved);
      const tx = c['nvmlDeviceGetPcieThroughput']?.[2] ?? -1;
      expect(tx).toBeGreaterThanOrEqual(0);
      expect(tx).toBeLessThanOrEqual(H100.pcieBytesPerSecond / 1024);
      const [fvRc, , memTempRc, memTemp = -1] = c['nvmlDeviceGetFieldValues'] ?? [];
      expect([fvRc, memTempRc]).toEqual([0, 0]);
      expect(memTemp).toBeGreaterThanOrEqual(TEMPERATURE_RANGE_C.min); // NVML_FI_DEV_MEMORY_TEMP, °C
    }
  });

  it('utilization: percent on full GPUs, NOT_SUPPORTED on GPUs in MIG mode and on MIG devices', () => {
    for (const g of inv.gpus) {
      const [rc, , gpu = -1] = gpuCalls(0, g.uuid)['nvmlDeviceGetUtilizationRates'] ?? [];
      if (g.migEnabled) {
        expect(rc).toBe(NOT_SUPPORTED);
      } else {
        expect(rc).toBe(0);
        expect(gpu).toBeGreaterThanOrEqual(0);
        expect(gpu).toBeLessThanOrEqual(100);
      }
    }
    const migs = samples[0]?.filter((d) => d.mig) ?? [];
    expect(migs).toHaveLength(10);
    for (const m of migs) {
      expect(m.calls['nvmlDeviceGetUtilizationRates']?.[0]).toBe(NOT_SUPPORTED);
      expect(m.calls['nvmlDeviceGetPowerUsage']?.[0]).toBe(NOT_SUPPORTED);
      const mem = m.calls['nvmlDeviceGetMemoryInfo_v2'] ?? [];
      const ref = inv.gpus.flatMap((g) => g.migDevices).find((x) => x.uuid === m.uuid);
      expect(mem.slice(0, 1).concat(mem.slice(2, 3))).toEqual([0, ref?.memoryBytes]);
    }
  });

  it('sample-loop (the benchmark\'s plain C side) samples every GPU and MIG device with the addon\'s calls', async () => {
    const build = await buildFakeNvmlArtifacts();
    const out = await promisify(execFile)(build.sampleLoop, [build.library, '20'], { env: { ...process.env, ...env } });
    const r = JSON.parse(out.stdout) as { samples: number; gpus: number; migDevices: number; callsPerSample: number; usPerSample: number };
    // sample-loop.c makes 18 calls per GPU and 2 per MIG device.
    expect(r).toMatchObject({ samples: 20, gpus: 8, migDevices: 10, callsPerSample: 8 * 18 + 10 * 2 });
    expect(r.usPerSample).toBeGreaterThan(0);
  });
});
