/**
 * The whole agent end to end (issue #2), as dev/demo.ts plays it, with assertions: startAgent() on a mock
 * dgx-h100 → a KubeletSimulator registers the plugin over the real registration socket → ResourceSlices in the
 * API server → the scheduler's allocation (real @kubernetes/client-node) → NodePrepareResources over the real
 * DRA socket (v1 and v1beta1) → CDI spec (official schema), checkpoint, attributed /metrics →
 * NodeUnprepareResources. Plus: nothing is lost across an agent restart, and slices come back after the
 * kubelet deletes them and the plugin re-registers.
 *
 * Independent facts: device names from docs/contracts.md §4 and the H100 GI profile IDs of
 * test/reference/mig-profiles.md (3g.40gb = 9, 2g.20gb = 14, 1g.10gb = 19); the CDI schema of test/reference/cdi-schema;
 * the DRA socket path `<pluginsDir>/<driver>/dra.sock` (docs/contracts.md §2); the checkpoint format
 * (src/state/checkpoint.ts doc); the Prometheus exposition format (strict parser).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import { devicesByName } from '../../src/model/devices.js';
import type { WirePrepareResponse } from '../../src/dra/kubelet/grpc-protos.js';
import {
  allocatedClaim, cdiValidator, checkpointClaims, claimGets, DRIVER, NODE, removeDir, scrape, startHarness, tempDir,
  type Harness,
} from '../helpers/agent.js';
import { WAIT_TIMEOUT_MS, waitFor } from '../helpers/wait.js';

/** The 16 allocatable devices of the mock dgx-h100 (GPUs 0–5 whole; GPU 6: 3g.40gb@0, 2g.20gb@4, 1g.10gb@6; GPU 7: 7 × 1g.10gb). */
const EXPECTED_DEVICES = [
  'gpu-0', 'gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5',
  'gpu-6-mig-3g40gb-9-0', 'gpu-6-mig-2g20gb-14-4', 'gpu-6-mig-1g10gb-19-6',
  ...Array.from({ length: 7 }, (_, i) => `gpu-7-mig-1g10gb-19-${i}`),
].sort();
const MIG = 'gpu-7-mig-1g10gb-19-0';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const dir = opts.dir ?? (await tempDir());
  if (opts.dir === undefined) cleanups.push(() => removeDir(dir));
  const h = await startHarness({ ...opts, dir });
  cleanups.push(() => h.stop());
  return h;
}

async function apiServer(): Promise<EmbeddedApiServer> {
  const server = await startApiServer({ nodes: [NODE] });
  cleanups.push(() => server.close());
  return server;
}

/** The per-claim answer, asserting it exists and carries no error. */
function okDevices(res: WirePrepareResponse, uid: string) {
  const entry = res.claims[uid];
  expect(entry, `answer for claim ${uid}`).toBeDefined();
  expect(entry?.error).toBe('');
  return entry?.devices ?? [];
}

/** The claim's CDI spec file in the CDI dir, validated against the official schema; resolves each CDI ID. */
function checkCdiSpec(cdiDir: string, uid: string, cdiIds: readonly string[]): Record<string, unknown> {
  const files = readdirSync(cdiDir).filter((f) => f.includes(uid));
  expect(files).toHaveLength(1);
  const spec = JSON.parse(readFileSync(join(cdiDir, files[0]!), 'utf8')) as { kind: string; devices: { name: string }[] };
  const validate = cdiValidator();
  expect(validate(spec), JSON.stringify(validate.errors)).toBe(true);
  for (const id of cdiIds) {
    // A fully-qualified CDI device name is `<vendor>/<class>=<name>`; kind = `<vendor>/<class>`.
    const eq = id.indexOf('=');
    expect(eq).toBeGreaterThan(0);
    expect(id.slice(0, eq)).toBe(spec.kind);
    const name = id.slice(eq + 1);
    expect(name).toContain(uid);
    expect(spec.devices.map((d) => d.name)).toContain(name);
  }
  return spec;
}

describe('gpulet end to end on a mock dgx-h100', () => {
  it('registers, publishes 16 devices, prepares over v1 and v1beta1 with CDI, checkpoint and attributed metrics, unprepares', async () => {
    const server = await apiServer();
    const h = await harness({ server });
    const { config, agent, kubelet, api } = h;

    // Registration: GetInfo advertised the DRA socket as endpoint.
    const plugin = await kubelet.waitForPlugin(DRIVER, WAIT_TIMEOUT_MS);
    expect(plugin.endpoint).toBe(join(config.pluginsDir, DRIVER, 'dra.sock'));
    expect(plugin.endpoint).toBe(agent.plugin.draSocket);
    expect(lstatSync(plugin.endpoint).isSocket()).toBe(true);
    expect(plugin.version).toBe('v1');
    expect(agent.plugin.registration()).toMatchObject({ registered: true });

    // ResourceSlices of the node: 16 devices, pool = node, nodeName set, owned by the Node (with its UID).
    const node = await h.core.readNode({ name: NODE });
    const slices = (await api.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE}` })).items;
    expect(slices.length).toBeGreaterThan(0);
    const names: string[] = [];
    for (const s of slices) {
      expect(s.spec.driver).toBe(DRIVER);
      expect(s.spec.nodeName).toBe(NODE);
      expect(s.spec.pool.name).toBe(NODE);
      expect(s.spec.pool.resourceSliceCount).toBe(slices.length);
      expect(s.metadata?.ownerReferences).toEqual([
        expect.objectContaining({ apiVersion: 'v1', kind: 'Node', name: NODE, uid: node.metadata?.uid }),
      ]);
      names.push(...(s.spec.devices ?? []).map((d) => d.name));
    }
    expect(node.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(names.sort()).toEqual(EXPECTED_DEVICES);

    // The scheduler allocates gpu-0 + a MIG device to pod "trainer".
    const pod = { name: 'trainer', uid: randomUUID() };
    const ref = await allocatedClaim(api, 'train', [{ device: 'gpu-0' }, { device: MIG }], { pod });
    const prepared = await kubelet.prepare([ref]);
    expect(Object.keys(prepared.claims)).toEqual([ref.uid]);
    const devices = okDevices(prepared, ref.uid);
    expect(devices.map((d) => d.device_name).sort()).toEqual(['gpu-0', MIG].sort());
    for (const d of devices) {
      expect(d.pool_name).toBe(NODE);
      expect(d.request_names).toEqual(['gpus']);
      expect(d.cdi_device_ids).toHaveLength(1);
    }
    checkCdiSpec(config.cdiDir, ref.uid, devices.flatMap((d) => d.cdi_device_ids));
    expect((await checkpointClaims(config))[ref.uid]).toMatchObject({ state: 'PrepareCompleted', namespace: 'default', name: 'train' });

    // /metrics attributes both devices to the pod and the claim once a sample ran.
    const byName = devicesByName(agent.backend.inventory());
    const gpu0 = byName.get('gpu-0')!.uuid;
    const mig = byName.get(MIG)!.uuid;
    expect(mig).toMatch(/^MIG-/);
    const claimLabels = { gpulet_claim_name: 'train', gpulet_claim_namespace: 'default', gpulet_claim_uid: ref.uid };
    await waitFor(async () => {
      const samples = await scrape(agent);
      const util = samples.find((s) => s.name === 'hw_gpu_utilization' && s.labels['hw_id'] === gpu0 && s.labels['k8s_pod_uid'] === pod.uid);
      const mem = samples.find((s) => s.name === 'hw_gpu_memory_usage' && s.labels['hw_id'] === mig && s.labels['gpulet_claim_uid'] === ref.uid);
      if (util === undefined || mem === undefined) return undefined;
      expect(util.labels).toMatchObject({ ...claimLabels, k8s_pod_name: 'trainer', k8s_namespace_name: 'default' });
      expect(mem.labels).toMatchObject({ ...claimLabels, k8s_pod_uid: pod.uid, k8s_pod_name: 'trainer' });
      expect(util.value).toBeGreaterThanOrEqual(0);
      expect(mem.value).toBeGreaterThan(0);
      return true;
    }, { what: 'gpu-0 and the MIG device attributed on /metrics' });

    // Prepare again: the same answer, straight from the checkpoint (no GET of the claim).
    server.clearRequests();
    expect(await kubelet.prepare([ref])).toEqual(prepared);
    expect(claimGets(server.requests, ref)).toHaveLength(0);

    // Another claim, through a kubelet that speaks only v1beta1.
    const beta = new KubeletSimulator({ registryDir: config.pluginRegistryDir, apiVersion: 'v1beta1', rescanIntervalMs: 200 });
    cleanups.push(() => beta.stop());
    await beta.start();
    expect((await beta.waitForPlugin(DRIVER, WAIT_TIMEOUT_MS)).version).toBe('v1beta1');
    // This one carries an opaque config of our driver: its env reaches the containers through the CDI spec.
    const ref2 = await allocatedClaim(api, 'infer', [{ device: 'gpu-1', request: 'gpu' }], {
      pod: { name: 'server', uid: randomUUID() },
      config: [{ source: 'FromClaim', requests: ['gpu'], opaque: { driver: DRIVER, parameters: { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig', env: { MODEL: 'llama' } } } }],
    });
    const prepared2 = await beta.prepare([ref2]);
    const devices2 = okDevices(prepared2, ref2.uid);
    expect(devices2.map((d) => [d.device_name, d.pool_name, d.request_names])).toEqual([['gpu-1', NODE, ['gpu']]]);
    const spec2 = checkCdiSpec(config.cdiDir, ref2.uid, devices2.flatMap((d) => d.cdi_device_ids));
    expect(JSON.stringify(spec2)).toContain('"MODEL=llama"');
    expect((await checkpointClaims(config))[ref2.uid]?.state).toBe('PrepareCompleted');
    expect((await beta.unprepare([ref2])).claims[ref2.uid]?.error).toBe('');

    // Unprepare: spec and checkpoint entry gone, the devices no longer attributed; again: still success.
    const unprepared = await kubelet.unprepare([ref]);
    expect(unprepared.claims).toEqual({ [ref.uid]: { error: '' } });
    expect(readdirSync(config.cdiDir).filter((f) => f.includes(ref.uid))).toEqual([]);
    expect(await checkpointClaims(config)).toEqual({});
    await waitFor(async () => {
      const samples = await scrape(agent);
      const attributed = samples.some((s) => s.labels['k8s_pod_uid'] === pod.uid || s.labels['gpulet_claim_uid'] === ref.uid);
      const stillReported = samples.some((s) => s.name === 'hw_gpu_utilization' && s.labels['hw_id'] === gpu0);
      return !attributed && stillReported;
    }, { what: 'gpu-0 no longer attributed to the pod' });
    expect((await kubelet.unprepare([ref])).claims).toEqual({ [ref.uid]: { error: '' } });
  });

  it('loses nothing across a restart: the new agent answers from the checkpoint and unprepares', async () => {
    const server = await apiServer();
    const dir = await tempDir();
    cleanups.push(() => removeDir(dir));
    const first = await startHarness({ dir, server });
    let firstStopped = false;
    cleanups.push(() => (firstStopped ? Promise.resolve() : first.stop()));
    const ref = await allocatedClaim(first.api, 'survivor', [{ device: 'gpu-2' }, { device: 'gpu-6-mig-2g20gb-14-4' }], { pod: { name: 'p', uid: randomUUID() } });
    const prepared = await first.kubelet.prepare([ref]);
    okDevices(prepared, ref.uid);
    const spec = readdirSync(first.config.cdiDir).filter((f) => f.includes(ref.uid));
    expect(spec).toHaveLength(1);
    await first.stop();
    firstStopped = true;
    // The sockets went away with the agent; state stays on disk.
    expect(existsSync(first.agent.plugin.registrationSocket)).toBe(false);
    expect(existsSync(join(first.config.cdiDir, spec[0]!))).toBe(true);

    const second = await harness({ dir, server });
    expect(second.agent.claims.prepared().map((c) => c.claim.uid)).toEqual([ref.uid]);
    expect((await checkpointClaims(second.config))[ref.uid]?.state).toBe('PrepareCompleted');
    server.clearRequests();
    expect(await second.kubelet.prepare([ref])).toEqual(prepared);
    expect(claimGets(server.requests, ref)).toHaveLength(0);

    // After a reboot /var/run/cdi (tmpfs) is empty while the checkpoint remains: the kubelet's prepare
    // writes the spec back from the checkpoint entry (no GET: a prepared claim is never re-read, so a failure
    // there can never roll it back), with the same answer.
    rmSync(join(second.config.cdiDir, spec[0]!));
    expect(await second.kubelet.prepare([ref])).toEqual(prepared);
    expect(claimGets(server.requests, ref)).toHaveLength(0);
    expect(existsSync(join(second.config.cdiDir, spec[0]!))).toBe(true);

    expect((await second.kubelet.unprepare([ref])).claims[ref.uid]?.error).toBe('');
    expect(existsSync(join(second.config.cdiDir, spec[0]!))).toBe(false);
    expect(await checkpointClaims(second.config)).toEqual({});
  });

  it('concurrent prepares of one claim (two kubelet calls in flight) give one answer and one API read', async () => {
    const server = await apiServer();
    const h = await harness({ server });
    const ref = await allocatedClaim(h.api, 'racy', [{ device: 'gpu-3' }, { device: 'gpu-7-mig-1g10gb-19-6' }]);
    server.clearRequests();
    const [a, b] = await Promise.all([h.kubelet.prepare([ref]), h.kubelet.prepare([ref])]);
    okDevices(a, ref.uid);
    expect(b).toEqual(a);
    expect(claimGets(server.requests, ref)).toHaveLength(1);
    expect(readdirSync(h.config.cdiDir).filter((f) => f.includes(ref.uid))).toHaveLength(1);
    const [u1, u2] = await Promise.all([h.kubelet.unprepare([ref]), h.kubelet.unprepare([ref])]);
    expect([u1.claims[ref.uid]?.error, u2.claims[ref.uid]?.error]).toEqual(['', '']);
    expect(await checkpointClaims(h.config)).toEqual({});
  });

  it('republishes the ResourceSlices when the kubelet deleted them and the plugin re-registers', async () => {
    const h = await harness(); // embedded API server mode (the default)
    expect(h.agent.apiServer).toBeDefined();
    const selector = { fieldSelector: `spec.nodeName=${NODE}` };
    const before = (await h.api.listResourceSlice(selector)).items;
    expect(before.length).toBeGreaterThan(0);
    // A restarting kubelet deletes all slices of its node.
    await h.api.deleteCollectionResourceSlice(selector);
    expect((await h.api.listResourceSlice(selector)).items).toEqual([]);

    await h.kubelet.stop();
    const kubelet = new KubeletSimulator({ registryDir: h.config.pluginRegistryDir, rescanIntervalMs: 200 });
    cleanups.push(() => kubelet.stop());
    await kubelet.start();
    await kubelet.waitForPlugin(DRIVER, WAIT_TIMEOUT_MS);
    const after = await waitFor(async () => {
      const items = (await h.api.listResourceSlice(selector)).items;
      const count = items.reduce((n, s) => n + (s.spec.devices?.length ?? 0), 0);
      return count === EXPECTED_DEVICES.length ? items : undefined;
    }, { what: 'slices republished' });
    expect(after.flatMap((s) => (s.spec.devices ?? []).map((d) => d.name)).sort()).toEqual(EXPECTED_DEVICES);
    expect(after.every((s) => s.spec.nodeName === NODE && s.spec.pool.name === NODE)).toBe(true);
    // The republished pool supersedes the deleted one.
    expect(after[0]!.spec.pool.generation).toBeGreaterThanOrEqual(before[0]!.spec.pool.generation);
  });
});
