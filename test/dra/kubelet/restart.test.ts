/**
 * Kubelet restart and socket loss, with the whole agent: a removed registration (or DRA) socket is re-created,
 * the kubelet registers the plugin again, and the ResourceSlices it wiped come back. Fails if the socket guard
 * (src/dra/kubelet/socket-guard.ts) or the republish-on-registration wiring (src/main.ts) is removed.
 */
import { lstat, rm, unlink } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeletSimulator } from '../../../dev/kubelet/simulator.js';
import { DRIVER, NODE, allocatedClaim, removeDir, startHarness, type Harness } from '../../helpers/agent.js';
import { WAIT_TIMEOUT_MS, waitFor } from '../../helpers/wait.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(): Promise<Harness> {
  const h = await startHarness();
  cleanups.push(async () => {
    await h.stop();
    await removeDir(h.dir);
  });
  return h;
}

const isSocket = async (p: string): Promise<boolean> => (await lstat(p).catch(() => undefined))?.isSocket() ?? false;

describe('kubelet restart and socket loss', () => {
  it('re-creates a deleted registration socket and the kubelet registers the plugin again', async () => {
    const h = await harness();
    let registrations = 0;
    h.kubelet.on('registered', () => registrations++);
    const { registrationSocket } = h.agent.plugin;
    await unlink(registrationSocket);
    expect(await isSocket(registrationSocket)).toBe(false);
    // The guard reacts to the directory event (or its periodic check) without being asked.
    await waitFor(() => isSocket(registrationSocket), { what: 'registration socket re-created' });
    await waitFor(() => registrations > 0, { what: 'kubelet re-registered the plugin' });
    expect(h.agent.plugin.registration().registered).toBe(true);
  });

  it('survives a kubelet restart that wipes the node slices and the registry dir', async () => {
    const h = await harness();
    const selector = { fieldSelector: `spec.nodeName=${NODE}` };
    expect((await h.api.listResourceSlice(selector)).items.length).toBeGreaterThan(0);
    // The kubelet goes away, deletes the node's slices when it starts again, and its registry dir is recreated.
    await h.kubelet.stop();
    await h.api.deleteCollectionResourceSlice(selector);
    await rm(h.config.pluginRegistryDir, { recursive: true, force: true });
    const kubelet = new KubeletSimulator({ registryDir: h.config.pluginRegistryDir, rescanIntervalMs: 200 });
    cleanups.push(() => kubelet.stop());
    await kubelet.start();
    await kubelet.waitForPlugin(DRIVER, 15_000);
    const slices = await waitFor(async () => {
      const items = (await h.api.listResourceSlice(selector)).items;
      return items.length > 0 ? items : undefined;
    }, { what: 'slices republished' });
    expect(slices.every((s) => s.spec.nodeName === NODE)).toBe(true);
    // The restarted kubelet can prepare through the re-created sockets.
    const ref = await allocatedClaim(h.api, 'after-restart', [{ device: 'gpu-2' }]);
    const res = await kubelet.prepare([ref]);
    expect(res.claims[ref.uid]?.error ?? '').toBe('');
    expect(res.claims[ref.uid]?.devices.map((d) => d.device_name)).toEqual(['gpu-2']);
  });

  it('re-creates a deleted DRA socket so prepares keep working', async () => {
    const h = await harness();
    await unlink(h.agent.plugin.draSocket);
    await h.agent.plugin.checkSockets();
    expect(await isSocket(h.agent.plugin.draSocket)).toBe(true);
    const ref = await allocatedClaim(h.api, 'after-dra-loss', [{ device: 'gpu-4' }]);
    const kubelet = new KubeletSimulator({ registryDir: h.config.pluginRegistryDir, rescanIntervalMs: 200 });
    cleanups.push(() => kubelet.stop());
    await h.kubelet.stop();
    await kubelet.start();
    await kubelet.waitForPlugin(DRIVER, WAIT_TIMEOUT_MS);
    const res = await kubelet.prepare([ref]);
    expect(res.claims[ref.uid]?.error ?? '').toBe('');
  });
});
