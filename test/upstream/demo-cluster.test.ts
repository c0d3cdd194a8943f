/**
 * `npm run demo -- --cluster <dir>` (dev/demo-cluster.ts) against a started upstream cluster of test/upstream/
 * (issue 10, item 2): the demo runs gpulet as node-a's DRA driver and shows the REAL scheduler's allocation of
 * the example claim and the node agent's prepare. While it runs, the test reads the example pod's claim from the
 * API server itself (the scheduler's answer, independently of the demo) and then checks that the demo's output
 * names that device and the CDI device ID the node agent recorded for that claim, that it exits 0, and that
 * it removed what it created (the pod and the template; the claim goes with its pod).
 *
 * Skipped with a notice only where Go is absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, ResourceV1Api } from '@kubernetes/client-node';
import { DEMO_TIMEOUT_MS, runDemo } from '../helpers/demo.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { GiveUp, waitFor } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/demo-cluster.test.ts: ${unavailable}`);

const NODE = 'node-a';

describe.skipIf(unavailable !== undefined)('npm run demo -- --cluster (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await cluster?.stop();
  }, 90_000);

  it("shows the real scheduler's allocation of the example claim and the node agent's prepare through gpulet", async () => {
    const resource = cluster.admin.makeApiClient(ResourceV1Api);
    // The scheduler's allocation of the example pod's claim, as the API server has it while the demo runs.
    let seen: { uid: string; result: { driver: string; pool: string; request: string; device: string } } | undefined;
    let finished = false;
    const demo = runDemo(['--cluster', cluster.dir]).finally(() => (finished = true));
    const observed = waitFor(
      async () => {
        if (finished) throw new GiveUp('the demo ended before its claim was seen allocated');
        const claims = await resource.listNamespacedResourceClaim({ namespace: 'default' });
        const c = claims.items.find((x) => x.status?.reservedFor?.some((r) => r.resource === 'pods' && r.name === 'gpu-smoke') && x.status.allocation);
        const r = c?.status?.allocation?.devices?.results?.[0];
        return c === undefined || r === undefined ? undefined : (seen = { uid: c.metadata!.uid!, result: r });
      },
      { what: "the example pod's claim allocated by the scheduler", timeoutMs: DEMO_TIMEOUT_MS, intervalMs: 50 },
    );
    const run = await demo;
    await observed.catch(() => undefined);
    expect(run.code, `${run.stderr}\n${run.stdout.slice(-3000)}`).toBe(0);
    expect(seen, 'the claim was seen allocated while the demo ran').toBeDefined();
    const { uid, result } = seen!;
    expect(result).toMatchObject({ driver: 'gpu.gpulet.dev', pool: NODE, request: 'gpu' });
    const device = result.device;
    expect(run.stdout).toContain(`allocated: request gpu → driver gpu.gpulet.dev pool ${NODE} device ${device}`);
    expect(run.stdout).toContain(`{"main":["k8s.gpu.gpulet.dev/claim=${uid}-${device}"]}`);
    expect(run.stdout).toContain('CDI spec present after unprepare: false');

    // What the demo created is gone.
    const core = cluster.admin.makeApiClient(CoreV1Api);
    const gone = async (read: () => Promise<unknown>) => read().then(() => false, (err: unknown) => err instanceof ApiException && err.code === 404);
    expect(await gone(() => core.readNamespacedPod({ namespace: 'default', name: 'gpu-smoke' }))).toBe(true);
    expect(await gone(() => resource.readNamespacedResourceClaimTemplate({ namespace: 'default', name: 'single-gpu' }))).toBe(true);
  }, DEMO_TIMEOUT_MS + 60_000);
});
