/**
 * Fault injection in the fake libnvidia-ml (FAKE_NVML_FAULTS): NOT_SUPPORTED per device or for all, a lost
 * GPU (its MIG devices too), a slow call, initError, and faults changed while the library is loaded.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { runDriver, streamDriver } from '../fixtures/fake-nvml/driver.js';
import { buildFakeNvmlArtifacts, writeFakeFaults, writeFakeMachine, type FakeNvmlBuild, type FakeNvmlFaults } from '../helpers/fake-nvml.js';

type Calls = Record<string, number[]>;
interface DeviceOut { uuid: string; mig: boolean; calls: Calls }
// nvml.h return codes.
const NOT_SUPPORTED = 3;
const DRIVER_NOT_LOADED = 9;
const GPU_IS_LOST = 15;

describe('fake libnvidia-ml: faults', () => {
  let build: FakeNvmlBuild;
  const dirs: string[] = [];
  const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-faults');
  const uuid = (i: number): string => inv.gpus[i]?.uuid ?? '';
  const setup = async (faults: FakeNvmlFaults): Promise<{ env: Record<string, string>; faultsPath: string }> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-fake-nvml-'));
    dirs.push(dir);
    const files = await writeFakeMachine(dir, inv, faults);
    return { env: { ...files.env }, faultsPath: files.faultsPath };
  };
  const sampleOnce = async (faults: FakeNvmlFaults): Promise<DeviceOut[]> => {
    const { env } = await setup(faults);
    const r = await runDriver(build.driver, build.library, ['sample', '1', '0'], env);
    expect(r.code, r.stderr).toBe(0);
    return (r.lines[0] as { devices: DeviceOut[] }).devices;
  };
  const calls = (devs: readonly DeviceOut[], id: string): Calls => {
    const d = devs.find((x) => x.uuid === id);
    if (!d) throw new Error(`device ${id} not sampled`);
    return d.calls;
  };

  beforeAll(async () => {
    build = await buildFakeNvmlArtifacts();
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('notSupported: only the named function on the named device (or on every device for "*")', async () => {
    const devs = await sampleOnce({
      notSupported: { [uuid(0)]: ['nvmlDeviceGetPowerUsage'], '*': ['nvmlDeviceGetPcieReplayCounter'] },
    });
    expect(calls(devs, uuid(0))['nvmlDeviceGetPowerUsage']?.[0]).toBe(NOT_SUPPORTED);
    expect(calls(devs, uuid(0))['nvmlDeviceGetTemperature']?.[0]).toBe(0);
    expect(calls(devs, uuid(1))['nvmlDeviceGetPowerUsage']?.[0]).toBe(0);
    for (const d of devs) expect(d.calls['nvmlDeviceGetPcieReplayCounter']?.[0]).toBe(NOT_SUPPORTED);
  });

  it('lost: every call on that GPU and its MIG devices is GPU_IS_LOST; the other GPUs go on', async () => {
    const devs = await sampleOnce({});
    const gpu6 = inv.gpus[6];
    expect(gpu6?.migEnabled).toBe(true);
    // Handles are fetched before the GPU is lost: run with the fault injected after the first sample.
    const { env, faultsPath } = await setup({});
    // Step mode (interval -1): the second sample is taken only once the fault file says the GPU is lost.
    const r = await streamDriver(build.driver, build.library, ['sample', '2', '-1'], env, async (_line, i, input) => {
      if (i === 0) {
        await writeFakeFaults(faultsPath, { lost: [uuid(6)] });
        input.next();
      }
    });
    expect(r.code, r.stderr).toBe(0);
    const [before, after] = r.lines.map((l) => (l as { devices: DeviceOut[] }).devices);
    if (!before || !after) throw new Error('two samples expected');
    expect(before.map((d) => d.uuid)).toEqual(devs.map((d) => d.uuid));
    const lostIds = [uuid(6), ...(gpu6?.migDevices.map((m) => m.uuid) ?? [])];
    for (const d of after) {
      const rcs = Object.entries(d.calls).map(([, v]) => v[0]);
      if (lostIds.includes(d.uuid)) expect(new Set(rcs)).toEqual(new Set([GPU_IS_LOST]));
      else expect(d.calls['nvmlDeviceGetMemoryInfo_v2']?.[0]).toBe(0);
    }
    expect(calls(before, uuid(6))['nvmlDeviceGetPowerUsage']?.[0]).toBe(0);
    // A new enumeration cannot open the lost GPU either.
    const fresh = await sampleOnce({ lost: [uuid(6)] });
    expect(fresh.map((d) => d.uuid)).not.toContain(uuid(6));
    expect(fresh.filter((d) => !d.mig)).toHaveLength(7);
  });

  it('slowMs: the named call takes at least that long and still succeeds', async () => {
    const devs = await sampleOnce({ slowMs: { nvmlDeviceGetPowerUsage: 120 } });
    const [rc, us = 0] = calls(devs, uuid(2))['nvmlDeviceGetPowerUsage'] ?? [];
    expect(rc).toBe(0);
    expect(us).toBeGreaterThanOrEqual(120_000);
  });

  it('faults are re-read while the library is loaded (next call sees the new file)', async () => {
    const { env, faultsPath } = await setup({});
    const r = await streamDriver(build.driver, build.library, ['sample', '2', '-1'], env, async (_line, i, input) => {
      if (i === 0) {
        await writeFakeFaults(faultsPath, { notSupported: { [uuid(3)]: ['nvmlDeviceGetTemperature'] } });
        input.next();
      }
    });
    const [first, second] = r.lines.map((l) => (l as { devices: DeviceOut[] }).devices);
    expect(calls(first ?? [], uuid(3))['nvmlDeviceGetTemperature']?.[0]).toBe(0);
    expect(calls(second ?? [], uuid(3))['nvmlDeviceGetTemperature']?.[0]).toBe(NOT_SUPPORTED);
  });

  it('initError 9: nvmlInit_v2 fails with NVML_ERROR_DRIVER_NOT_LOADED until the fault is removed', async () => {
    const { env, faultsPath } = await setup({ initError: DRIVER_NOT_LOADED });
    const failed = await runDriver(build.driver, build.library, ['init'], env);
    expect(failed.lines[0]).toMatchObject({ init: DRIVER_NOT_LOADED, text: 'Driver Not Loaded' });
    const inventory = await runDriver(build.driver, build.library, ['inventory'], env);
    expect(inventory.code).toBe(1);
    expect(inventory.stderr).toContain('Driver Not Loaded (9)');
    await writeFakeFaults(faultsPath, {});
    expect((await runDriver(build.driver, build.library, ['init'], env)).lines[0]).toMatchObject({ init: 0 });
  });

  it('a malformed fault file is ignored (no faults) with a notice on stderr', async () => {
    const { env, faultsPath } = await setup({});
    await writeFile(faultsPath, '{ "lost": [');
    const r = await runDriver(build.driver, build.library, ['sample', '1', '0'], env);
    expect(r.stderr).toContain('not valid JSON');
    const devs = (r.lines[0] as { devices: DeviceOut[] }).devices;
    expect(devs.filter((d) => !d.mig)).toHaveLength(8);
  });

  it('a missing machine file makes nvmlInit_v2 fail (NVML_ERROR_UNKNOWN) naming the variable', async () => {
    const r = await runDriver(build.driver, build.library, ['init'], {});
    expect(r.lines[0]).toMatchObject({ init: 999 });
    expect(r.stderr).toContain('FAKE_NVML_MACHINE');
  });
});
