/**
 * Events of the fake libnvidia-ml: injected XID / ECC / GPU-unavailable events are delivered through
 * nvmlEventSetWait_v2 exactly once to every event set registered for their type on their GPU; waits without
 * an event end in NVML_ERROR_TIMEOUT; ECC totals count the injected ECC events.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { runDriver, streamDriver } from '../fixtures/fake-nvml/driver.js';
import { buildFakeNvmlArtifacts, writeFakeFaults, writeFakeMachine, type FakeNvmlBuild, type FakeNvmlFaults } from '../helpers/fake-nvml.js';

// nvml.h event type bits (checked against NVIDIA's header by test/native/nvml-abi.test.ts).
const XID = 0x8;
const DBE = 0x2;
const UNAVAILABLE = 0x4000;
const NO_INSTANCE = 0xffffffff;

interface EventLine { set: number; firstTimeout?: boolean; event?: { uuid: string; type: number; data: number; gpuInstanceId: number; computeInstanceId: number }; done?: boolean; timeoutsBeforeFirst?: number; events?: number }

describe('fake libnvidia-ml: events', () => {
  let build: FakeNvmlBuild;
  const dirs: string[] = [];
  const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'node-events');
  const gpu3 = inv.gpus[3]?.uuid ?? '';
  const gpu7 = inv.gpus[7];
  const mig = gpu7?.migDevices[2];

  const setup = async (faults: FakeNvmlFaults = {}): Promise<{ env: Record<string, string>; faultsPath: string }> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-fake-nvml-'));
    dirs.push(dir);
    const files = await writeFakeMachine(dir, inv, faults);
    return { env: { ...files.env }, faultsPath: files.faultsPath };
  };

  beforeAll(async () => {
    build = await buildFakeNvmlArtifacts();
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('an injected XID reaches both sets once; a MIG double-bit ECC and GPU-unavailable only the set registered for them', async () => {
    if (!gpu7 || !mig) throw new Error('dgx-h100 GPU 7 has MIG devices');
    const { env, faultsPath } = await setup();
    // Inject once each set has timed out at least once (the driver reports a set's first timeout); until then
    // a set waits 100 ms at a time, for up to 600 timeouts (a minute), however slow the machine.
    const timedOut = new Set<number>();
    let injected = false;
    const r = await streamDriver(build.driver, build.library, ['events', '100', '3', '600'], env, async (line) => {
      const l = line as EventLine;
      if (l.firstTimeout === true) timedOut.add(l.set);
      if (timedOut.size === 2 && !injected) {
        injected = true;
        await writeFakeFaults(faultsPath, {
          events: [
            { seq: 1, uuid: gpu3, type: 'xid', data: 79 },
            { seq: 2, uuid: mig.uuid, type: 'dbe' },
            { seq: 3, uuid: gpu3, type: 'unavailable' },
          ],
        });
      }
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.lines as EventLine[];
    expect(lines.filter((l) => 'registerError' in l)).toEqual([]);
    const eventsOf = (set: number): EventLine['event'][] => lines.filter((l) => l.set === set && l.event).map((l) => l.event);
    const xid = { uuid: gpu3, type: XID, data: 79, gpuInstanceId: NO_INSTANCE, computeInstanceId: NO_INSTANCE };
    const dbe = { uuid: gpu7.uuid, type: DBE, data: 0, gpuInstanceId: mig.gpuInstanceId, computeInstanceId: mig.computeInstanceId };
    const unavailable = { uuid: gpu3, type: UNAVAILABLE, data: 0, gpuInstanceId: NO_INSTANCE, computeInstanceId: NO_INSTANCE };
    expect(eventsOf(0)).toEqual([xid, dbe, unavailable]);
    expect(eventsOf(1)).toEqual([xid]);
    for (const set of [0, 1]) {
      const done = lines.find((l) => l.set === set && l.done);
      expect(done?.timeoutsBeforeFirst).toBeGreaterThanOrEqual(1); // NVML_ERROR_TIMEOUT while nothing happened
    }
  });

  it('events already present when a set registers are not replayed to it', async () => {
    const { env } = await setup({ events: [{ seq: 1, uuid: gpu3, type: 'xid', data: 48 }] });
    const r = await runDriver(build.driver, build.library, ['events', '20', '1'], env);
    const lines = r.lines as EventLine[];
    expect(lines.filter((l) => l.event)).toEqual([]);
    expect(lines.filter((l) => l.done).map((l) => l.events)).toEqual([0, 0]);
  });

  it('ECC totals and remapped rows count the injected ECC events of the GPU and its MIG devices', async () => {
    if (!gpu7 || !mig) throw new Error('dgx-h100 GPU 7 has MIG devices');
    const { env } = await setup({
      events: [
        { seq: 1, uuid: mig.uuid, type: 'dbe' },
        { seq: 2, uuid: gpu7.uuid, type: 'sbe' },
        { seq: 3, uuid: gpu7.uuid, type: 'sbe' },
      ],
    });
    const r = await runDriver(build.driver, build.library, ['sample', '1', '0'], env);
    const devs = (r.lines[0] as { devices: { uuid: string; calls: Record<string, number[]> }[] }).devices;
    const c = devs.find((d) => d.uuid === gpu7.uuid)?.calls ?? {};
    expect(c['nvmlDeviceGetTotalEccErrors']?.[2]).toBe(2);
    expect(c['nvmlDeviceGetTotalEccErrors:dbe']?.[2]).toBe(1);
    expect(c['nvmlDeviceGetRemappedRows']?.[3]).toBe(1);
    const other = devs.find((d) => d.uuid === gpu3)?.calls ?? {};
    expect(other['nvmlDeviceGetTotalEccErrors:dbe']?.[2]).toBe(0);
  });
});
