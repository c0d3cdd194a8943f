/**
 * A DaemonSet rolling update of gpulet under the kubelet's REAL plugin watcher and DRA manager (issue 10,
 * item 2): on the upstream cluster of test/upstream/, two whole gpulet agents for node-a and driver
 * gpu.gpulet.dev, with different `--pod-uid`s (socket names `<driver>-<pod UID>-reg.sock` and
 * `<driver>/dra-<pod UID>.sock`, src/dra/kubelet/sockets.ts) and one shared state dir (checkpoint + CDI dir), as
 * `maxSurge: 1` runs the old and the new pod side by side. The old one serves a pod; the new one starts and
 * registers; a pod created then is prepared through the new one; the old one stops; a pod created after is
 * prepared through the new one, and the old one's pod is unprepared through it. Nothing is lost: the claim
 * prepared before keeps its CDI spec (byte for byte) and its checkpoint entry throughout, the checkpoint
 * verifies (checksum recomputed) and equals the set of specs at every step.
 *
 * What the kubelet does with several registered endpoints of one driver (k8s.io/kubernetes v1.37.2):
 * - pkg/kubelet/pluginmanager/pluginwatcher/plugin_watcher.go (handleCreateEvent, handleDeleteEvent): every
 *   socket in the registry dir is a plugin of its own; a removed socket leaves the desired state of the world,
 *   and reconciler/reconciler.go reconcile unregisters it (operationExecutor.UnregisterPlugin →
 *   the handler's DeRegisterPlugin). operationexecutor/operation_generator.go GenerateRegisterPluginFunc: GetInfo,
 *   ValidatePlugin, RegisterPlugin, then NotifyRegistrationStatus(registered=true) — so a plugin told it is
 *   registered is in the DRA manager's store.
 * - pkg/kubelet/cm/dra/plugin/dra_plugin_manager.go: `store[driverName]` is a list ("There may be more than one
 *   plugin per driver", DRAPluginManager); add appends (the same endpoint twice is refused: "One plugin instance
 *   cannot hijack the endpoint of another instance") and opens a gRPC connection and, with
 *   ResourceHealthStatus, a DRAResourceHealth stream to each; get ("Heuristic: pick the most recent one",
 *   preferring connected plugins) answers GetPlugin; remove drops one endpoint; sync schedules wiping the
 *   driver's ResourceSlices only when no endpoint is usable (connected), after defaultWipingDelay (30 s,
 *   manager.go) — so while the new instance is connected, the old one going away wipes nothing.
 * - pkg/kubelet/cm/dra/manager.go prepareResources / unprepareResources call GetPlugin(driverName) for each
 *   call: once the new instance is registered and connected, every prepare and unprepare goes to it, including
 *   the unprepare of a claim the old instance prepared, which it finds in the shared checkpoint.
 *
 * Which instance served a call is read from each instance's own log ("claim prepared"/"claim unprepared" with
 * the claim's UID, src/state/claim-ops.ts); the new instance's connection is known to be up when the kubelet
 * has opened its health stream on it (the stream is an RPC over that connection).
 *
 * Skipped with a notice only where Go is absent.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/main.js';
import { assertConsistent, verifiedCheckpoint } from '../helpers/crash-harness.js';
import { recordingLogger, type RecordingLogger } from '../helpers/log.js';
import { findOne, installDocs } from '../helpers/manifests.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type ClusterNode, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { claimTemplate, createAll, deletePods, podWithTemplate, publishedDevices, startGpulet, waitRunning, type RunningPod } from '../helpers/upstream-pods.js';
import { waitFor } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/rolling-update.test.ts: ${unavailable}`);

const NODE = 'node-a';
/** Bound of each test (several pods, each waited for up to POD_TIMEOUT_MS): ends a hung test only. */
const TEST_TIMEOUT_MS = 300_000;
const SPEC = (stateDir: string, uid: string) => path.join(stateDir, 'cdi', `k8s.gpu.gpulet.dev-claim_${uid}.json`);

/** One gpulet pod of the DaemonSet: its UID, the agent, and what it logged. */
interface Instance {
  readonly podUid: string;
  readonly agent: Agent;
  readonly log: RecordingLogger;
}

/** The claim UIDs an instance logged `message` for. */
const claimUids = (i: Instance, message: string): string[] => i.log.withMessage(message).map((r) => String(r['claimUid']));

describe.skipIf(unavailable !== undefined)('a rolling update of gpulet under the kubelet plugin watcher (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let node: ClusterNode;
  let stateDir: string;
  const instances: Instance[] = [];

  async function start(): Promise<Instance> {
    const log = recordingLogger('info');
    const podUid = randomUUID();
    const agent = await startGpulet(cluster.kubeconfig, node, stateDir, log.logger, ['--pod-uid', podUid]);
    const instance = { podUid, agent, log };
    instances.push(instance);
    // Registered by the kubelet's plugin manager (NotifyRegistrationStatus comes after RegisterPlugin).
    await waitFor(() => agent.plugin.registration().registered === true, { what: `instance ${podUid} to be registered`, timeoutMs: 60_000 });
    return instance;
  }

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    node = cluster.nodes.find((n) => n.name === NODE)!;
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-roll-'));
    await createAll(cluster.admin, [findOne(installDocs(), 'DeviceClass', 'gpu.gpulet.dev'), claimTemplate('one-gpu', { deviceClassName: 'gpu.gpulet.dev' })]);
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    for (const i of instances) await i.agent.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('hands over from the old instance to the new one: pods before, during and after keep or get their claims, nothing is lost', async () => {
    const old = await start();
    // Pod-UID socket names, in the kubelet's registry dir and the driver's plugins dir.
    expect(old.agent.plugin.registrationSocket).toBe(path.join(node.registryDir, `gpu.gpulet.dev-${old.podUid}-reg.sock`));
    expect(old.agent.plugin.draSocket).toBe(path.join(node.pluginsDir, 'gpu.gpulet.dev', `dra-${old.podUid}.sock`));

    await createAll(cluster.admin, [podWithTemplate('before', 'one-gpu')]);
    const before = await waitRunning(cluster.admin, 'before');
    const beforeUid = before.claim.metadata!.uid!;
    expect(claimUids(old, 'claim prepared')).toEqual([beforeUid]);
    const beforeSpec = await readFile(SPEC(stateDir, beforeUid), 'utf8');
    expect((await verifiedCheckpoint(stateDir))?.claims[beforeUid]?.state).toBe('PrepareCompleted');
    const devicesBefore = [...(await publishedDevices(cluster.admin, NODE)).keys()].sort();

    // The surge pod: a second instance on the same node, driver and state dir.
    const next = await start();
    expect(readdirSync(node.registryDir).filter((f) => f.endsWith('-reg.sock')).sort()).toEqual(
      [`gpu.gpulet.dev-${old.podUid}-reg.sock`, `gpu.gpulet.dev-${next.podUid}-reg.sock`].sort(),
    );
    await next.log.waitForMessage('kubelet opened a device health stream', { timeoutMs: 60_000 });
    // Its start-up (reconciliation of the shared checkpoint) kept the old instance's claim as it was.
    expect(await readFile(SPEC(stateDir, beforeUid), 'utf8')).toBe(beforeSpec);
    await assertConsistent(stateDir);

    // During the handover (both registered): the kubelet prepares through the most recent connected plugin.
    await createAll(cluster.admin, [podWithTemplate('during', 'one-gpu')]);
    const during = await waitRunning(cluster.admin, 'during');
    const duringUid = during.claim.metadata!.uid!;
    expect(claimUids(next, 'claim prepared')).toEqual([duringUid]);
    expect(claimUids(old, 'claim prepared')).toEqual([beforeUid]);

    // The old pod goes: its sockets are removed and the plugin watcher unregisters it.
    await old.agent.stop();
    instances.splice(instances.indexOf(old), 1);
    expect(existsSync(old.agent.plugin.registrationSocket)).toBe(false);
    expect(existsSync(SPEC(stateDir, beforeUid))).toBe(true);

    await createAll(cluster.admin, [podWithTemplate('after', 'one-gpu')]);
    const after: RunningPod = await waitRunning(cluster.admin, 'after');
    const afterUid = after.claim.metadata!.uid!;
    expect(claimUids(next, 'claim prepared')).toEqual([duringUid, afterUid]);
    // Three pods, three devices, every claim recorded once with its spec; the slices are the new instance's, unchanged.
    expect(new Set([before.device.device, during.device.device, after.device.device]).size).toBe(3);
    const entries = await assertConsistent(stateDir);
    expect(Object.keys(entries).sort()).toEqual([beforeUid, duringUid, afterUid].sort());
    expect(await readFile(SPEC(stateDir, beforeUid), 'utf8')).toBe(beforeSpec);
    expect([...(await publishedDevices(cluster.admin, NODE)).keys()].sort()).toEqual(devicesBefore);

    // The old instance's pod is unprepared through the new instance (from the shared checkpoint).
    await deletePods(cluster.admin, ['before']);
    expect(claimUids(next, 'claim unprepared')).toEqual([beforeUid]);
    expect(existsSync(SPEC(stateDir, beforeUid))).toBe(false);
    expect(Object.keys(await assertConsistent(stateDir)).sort()).toEqual([duringUid, afterUid].sort());

    await deletePods(cluster.admin, ['during', 'after']);
    expect(claimUids(next, 'claim unprepared').sort()).toEqual([beforeUid, duringUid, afterUid].sort());
    expect(await assertConsistent(stateDir)).toEqual({});
  }, TEST_TIMEOUT_MS);
});
