/**
 * End to end through the registry dir, as the kubelet does it (docs/contracts.md §2): the simulator discovers
 * the plugin's registration socket, registers it (GetInfo + NotifyRegistrationStatus → onRegistered),
 * prepares/unprepares through the advertised endpoint, and drops the plugin when its socket goes.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeletPlugin, type KubeletPlugin } from '../../../src/dra/kubelet/plugin.js';
import { silentLogger } from '../../../src/log.js';
import { driverName } from '../../helpers/names.js';
import { objectUidSchema, type ObjectUid } from '../../../src/model/names.js';
import { InMemoryPreparer } from '../../../dev/kubelet/fake-preparer.js';
import { KubeletSimulator, type SimulatedPlugin } from '../../../dev/kubelet/simulator.js';
import { WAIT_TIMEOUT_MS, waitFor } from '../../helpers/wait.js';

const UID = '3f1c1f0e-9a4b-4d4e-8f59-5b7c4e2a9d10';
const claim = { namespace: 'default', name: 'gpu-claim', uid: UID };

let dir: string;
let sim: KubeletSimulator | undefined;
const plugins: KubeletPlugin[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-sim-'));
});
afterEach(async () => {
  await sim?.stop();
  sim = undefined;
  for (const p of plugins.splice(0)) await p.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function start(preparer = new InMemoryPreparer(), extra: { podUid?: ObjectUid } = {}) {
  const registered: boolean[] = [];
  const p = await startKubeletPlugin({
    driverName: driverName('gpu.gpulet.dev'),
    registryDir: path.join(dir, 'plugins_registry'),
    pluginsDir: path.join(dir, 'plugins'),
    preparer,
    logger: silentLogger(),
    onRegistered: (ok) => registered.push(ok),
    ...extra,
  });
  plugins.push(p);
  return { plugin: p, registered, preparer };
}

describe('KubeletSimulator', () => {
  it('registers a plugin found in the registry dir and prepares through it (v1 preferred)', async () => {
    sim = new KubeletSimulator({ registryDir: path.join(dir, 'plugins_registry'), rescanIntervalMs: 200 });
    await sim.start();
    // Dot-files and non-sockets in the registry dir are ignored.
    await fs.writeFile(path.join(dir, 'plugins_registry', 'not-a-socket.sock'), '');
    await fs.writeFile(path.join(dir, 'plugins_registry', '.hidden'), '');
    const { plugin, registered, preparer } = await start();
    const p = await sim.waitForPlugin('gpu.gpulet.dev', WAIT_TIMEOUT_MS);
    expect(p).toMatchObject({ driverName: driverName('gpu.gpulet.dev'), endpoint: plugin.draSocket, version: 'v1', healthSupported: false });
    await waitFor(() => registered.length > 0, { what: 'the registration status reported to the plugin' });
    expect(registered).toEqual([true]);
    expect(plugin.registration().registered).toBe(true);
    expect(sim.plugins()).toHaveLength(1);

    const res = await sim.prepare([claim]);
    expect(res.claims[UID]?.error).toBe('');
    expect(res.claims[UID]?.devices.map((d) => d.device_name)).toEqual(['gpu-0']);
    expect(preparer.calls).toEqual([{ op: 'prepare', claims: [claim] }]);
    const un = await sim.unprepare([claim], 'gpu.gpulet.dev');
    expect(un.claims).toEqual({ [UID]: { error: '' } });
  });

  it('a kubelet that speaks only v1beta1 uses v1beta1', async () => {
    const { plugin } = await start();
    sim = new KubeletSimulator({ registryDir: path.join(dir, 'plugins_registry'), apiVersion: 'v1beta1' });
    await sim.start();
    const p = await sim.waitForPlugin('gpu.gpulet.dev', WAIT_TIMEOUT_MS);
    expect(p.version).toBe('v1beta1');
    expect(p.endpoint).toBe(plugin.draSocket);
    const res = await sim.prepare([claim]);
    expect(res.claims[UID]?.devices).toHaveLength(1);
  });

  it('unregisters when the plugin stops and registers the next instance (pod-UID sockets)', async () => {
    sim = new KubeletSimulator({ registryDir: path.join(dir, 'plugins_registry'), rescanIntervalMs: 200 });
    await sim.start();
    const first = await start(undefined, { podUid: objectUidSchema.parse('11111111-2222-4333-8444-555555555555') });
    await sim.waitForPlugin('gpu.gpulet.dev', WAIT_TIMEOUT_MS);
    const gone = new Promise<SimulatedPlugin>((r) => sim!.once('unregistered', r));
    await first.plugin.stop();
    expect((await gone).endpoint).toBe(first.plugin.draSocket);
    expect(sim.plugins()).toEqual([]);
    await expect(sim.prepare([claim])).rejects.toThrow(/no registered DRA driver/);

    const second = await start(undefined, { podUid: objectUidSchema.parse('66666666-7777-4888-8999-000000000000') });
    const p = await sim.waitForPlugin('gpu.gpulet.dev', WAIT_TIMEOUT_MS);
    expect(p.endpoint).toBe(second.plugin.draSocket);
    expect((await sim.prepare([claim])).claims[UID]?.error).toBe('');
    expect(second.preparer.calls).toHaveLength(1);
    expect(first.preparer.calls).toHaveLength(0);
  });

  it('waitForPlugin times out with a clear error', async () => {
    sim = new KubeletSimulator({ registryDir: path.join(dir, 'plugins_registry') });
    await sim.start();
    await expect(sim.waitForPlugin('other.example.com', 300)).rejects.toThrow(/did not register/);
  });
});
