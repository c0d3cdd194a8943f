/**
 * src/k8s/pod-resources*.ts: the `container` label's source, the kubelet's pod-resources API v1. The server here is
 * a gRPC server built with @grpc/grpc-js from the same transcribed proto (proto/podresources/v1/api.proto), to
 * drive what the real kubelet rarely does: answers too large or malformed, no answer, no socket. The real server
 * (k8s.io/kubernetes pkg/kubelet/apis/podresources/server_v1.go) is exercised by test/upstream/pod-resources.test.ts.
 *
 * The answers follow the kubelet's shape (container_manager_linux.go GetDynamicResources): one DynamicResource per
 * claim a container's resources.claims names, with the ResourceClaim's name and namespace and one ClaimResource
 * per allocated device.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { indexClaimContainers, listPodResourcesResponseSchema } from '../../src/k8s/pod-resources-index.js';
import { loadListMethod, PodResourcesWatcher } from '../../src/k8s/pod-resources.js';
import { recordingLogger } from '../helpers/log.js';
import { waitFor } from '../helpers/wait.js';

const DRIVER = 'gpu.gpulet.dev';
const POOL = 'node-a';

const device = (device_name: string, driver_name = DRIVER, pool_name = POOL) => ({ cdi_devices: [{ name: `k8s.${driver_name}/claim=x-${device_name}` }], driver_name, pool_name, device_name });
const claim = (claim_name: string, devices: ReturnType<typeof device>[], claim_namespace = 'ml') => ({ claim_name, claim_namespace, claim_resources: devices });

/** Pod ml/train: main and sidecar use claim train-gpu (our gpu-0), logs uses none, main also a NIC of another driver. */
const ANSWER = {
  pod_resources: [
    {
      name: 'train',
      namespace: 'ml',
      containers: [
        { name: 'main', dynamic_resources: [claim('train-gpu', [device('gpu-0')]), claim('train-nic', [device('nic-0', 'nic.example.com')])] },
        { name: 'sidecar', dynamic_resources: [claim('train-gpu', [device('gpu-0')])] },
        { name: 'logs', dynamic_resources: [] },
      ],
    },
    // Another node's pool (a network-attached device of the same driver name) is not ours.
    { name: 'remote', namespace: 'ml', containers: [{ name: 'main', dynamic_resources: [claim('remote-gpu', [device('gpu-0', DRIVER, 'node-b')])] }] },
  ],
};

describe('proto/podresources/v1/api.proto', () => {
  // Hand-transcribed from k8s.io/kubelet v0.37.2 pkg/apis/podresources/v1/api.proto (the fields gpulet reads).
  const UPSTREAM: Record<string, Array<[string, number]>> = {
    ListPodResourcesResponse: [['pod_resources', 1]],
    PodResources: [['name', 1], ['namespace', 2], ['containers', 3], ['cpu_ids', 4], ['memory', 5]],
    ContainerResources: [['name', 1], ['devices', 2], ['cpu_ids', 3], ['memory', 4], ['dynamic_resources', 5]],
    DynamicResource: [['claim_name', 2], ['claim_namespace', 3], ['claim_resources', 4]],
    ClaimResource: [['cdi_devices', 1], ['driver_name', 2], ['pool_name', 3], ['device_name', 4], ['share_id', 5]],
    CDIDevice: [['name', 1]],
  };

  it('has upstream field names and numbers, and List at /v1.PodResourcesLister/List', () => {
    const protoFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../proto/podresources/v1/api.proto');
    const def = protoLoader.loadSync(protoFile, { keepCase: true });
    for (const [message, fields] of Object.entries(UPSTREAM)) {
      const type = (def[`v1.${message}`] as { type: { field: Array<{ name: string; number: number }> } }).type;
      expect(type.field.map((f) => [f.name, f.number]), message).toEqual(fields);
    }
    expect(loadListMethod().path).toBe('/v1.PodResourcesLister/List');
    expect(() => execFileSync('protoc', [`-I${path.dirname(path.dirname(path.dirname(protoFile)))}`, '--descriptor_set_out=/dev/null', protoFile], { stdio: 'pipe' })).not.toThrow();
  });
});

describe('indexClaimContainers', () => {
  const index = indexClaimContainers(listPodResourcesResponseSchema.parse(ANSWER), DRIVER, POOL);

  it('names the containers whose claims hold a device of our driver and pool, in the kubelet order', () => {
    expect(index.containersOf('ml', 'train', 'train-gpu')).toEqual(['main', 'sidecar']);
    expect(index.size).toBe(1);
  });

  it("knows nothing of other drivers' claims, other pools, other pods or namespaces", () => {
    expect(index.containersOf('ml', 'train', 'train-nic')).toBeUndefined();
    expect(index.containersOf('ml', 'remote', 'remote-gpu')).toBeUndefined();
    expect(index.containersOf('ml', 'other', 'train-gpu')).toBeUndefined();
    expect(index.containersOf('prod', 'train', 'train-gpu')).toBeUndefined();
  });

  it('refuses answers beyond its bounds', () => {
    expect(listPodResourcesResponseSchema.safeParse({ pod_resources: [{ name: 'x'.repeat(254), namespace: 'ml', containers: [] }] }).success).toBe(false);
    expect(listPodResourcesResponseSchema.safeParse({ pod_resources: 'many' }).success).toBe(false);
  });
});

describe('PodResourcesWatcher', () => {
  let dir: string;
  let socket: string;
  let server: grpc.Server | undefined;
  let watcher: PodResourcesWatcher | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gpulet-podres-'));
    socket = path.join(dir, 'kubelet.sock');
  });
  afterEach(async () => {
    watcher?.stop();
    watcher = undefined;
    if (server !== undefined) server.forceShutdown();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  /** `List` calls the server received. */
  let calls = 0;

  /** Serve `List` on the socket with `answer` (a function of the call number; undefined: never answer). */
  async function serve(answer: (n: number) => unknown): Promise<void> {
    const list = loadListMethod();
    const s = new grpc.Server();
    let n = 0;
    calls = 0;
    s.addService({ List: list }, {
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        calls = ++n;
        const a = answer(n - 1);
        if (a !== undefined) cb(null, a);
      },
    });
    await new Promise<void>((resolve, reject) => s.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
    server = s;
  }

  const watch = (log = recordingLogger(), extra: { timeoutMs?: number; maxMessageBytes?: number; intervalMs?: number; now?: () => number } = {}) => {
    watcher = new PodResourcesWatcher({ socketPath: socket, driverName: DRIVER, poolName: POOL, intervalMs: 60_000, logger: log.logger, ...extra });
    return watcher;
  };
  const POD = { namespace: 'ml', name: 'train' };

  it('answers from the last List; an answer without the pod empties it', async () => {
    await serve((n) => (n === 0 ? ANSWER : { pod_resources: [] }));
    const w = watch();
    await w.refresh();
    expect(w.containersOf(POD, 'train-gpu')).toEqual(['main', 'sidecar']);
    await w.refresh();
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
  });

  it('calls List at start, then when a read finds the last call an interval old (the read answers from the last answer), never on its own', async () => {
    await serve((n) => (n === 0 ? { pod_resources: [] } : ANSWER));
    let now = 0;
    const w = watch(recordingLogger(), { intervalMs: 1000, now: () => now });
    const refresh = vi.spyOn(w, 'refresh');
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(refresh).not.toHaveBeenCalled(); // not started: reads call nothing
    w.start();
    expect(refresh).toHaveBeenCalledTimes(1);
    await refresh.mock.results[0]?.value;
    now = 999;
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined(); // the start's answer (no such pod)
    expect(refresh).toHaveBeenCalledTimes(1); // within the interval: no call
    now = 1000;
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined(); // an interval on: this read starts a call, answers from the last answer
    w.containersOf(POD, 'train-gpu'); // one call at a time
    expect(refresh).toHaveBeenCalledTimes(2);
    await refresh.mock.results[1]?.value;
    expect(w.containersOf(POD, 'train-gpu')).toEqual(['main', 'sidecar']); // the next read: the new answer, no call
    expect(refresh).toHaveBeenCalledTimes(2);
    expect(calls).toBe(2);
  });

  it('calls List an interval after the claims changed, once for several changes; not before start nor after stop', async () => {
    await serve(() => ANSWER);
    const w = watch(recordingLogger(), { intervalMs: 50 });
    const refresh = vi.spyOn(w, 'refresh');
    w.claimsChanged(); // not started: nothing scheduled
    w.start();
    await refresh.mock.results[0]?.value;
    w.claimsChanged();
    w.claimsChanged();
    await waitFor(() => calls === 2 || undefined, { what: 'the call after the claims changed' });
    expect(refresh).toHaveBeenCalledTimes(2); // start, and one for both changes
    w.claimsChanged();
    w.stop(); // the pending call is dropped with the channel
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it('without a socket: no label, one warning for any number of failures, then recovers when the kubelet answers', async () => {
    const log = recordingLogger();
    const w = watch(log, { timeoutMs: 2_000 });
    await w.refresh();
    await w.refresh();
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(log.withMessage('pod-resources: List failed')).toHaveLength(1);
    await serve(() => ANSWER);
    // grpc-js retries the channel with backoff; wait for the call that reaches the new server.
    const containers = await waitFor(async () => {
      await w.refresh();
      return w.containersOf(POD, 'train-gpu');
    }, { what: 'the watcher to reach the new server', timeoutMs: 30_000 });
    expect(containers).toEqual(['main', 'sidecar']);
    expect(log.withMessage('pod-resources: the kubelet answers')).toHaveLength(1);
    expect(log.withMessage('pod-resources: List failed')).toHaveLength(1);
  });

  it('an answer larger than the bound, a malformed one, and no answer within the deadline all leave no label', async () => {
    const big = { pod_resources: Array.from({ length: 400 }, (_, i) => ({ name: `p${i}`, namespace: 'ml', containers: [{ name: 'main', dynamic_resources: [claim(`c${i}`, [device('gpu-0')])] }] })) };
    await serve((n) => [ANSWER, big, ANSWER, { pod_resources: [{ name: 'x'.repeat(300), namespace: 'ml', containers: [] }] }, ANSWER][n]);
    const log = recordingLogger();
    const w = watch(log, { maxMessageBytes: 4096, timeoutMs: 2_000 });
    await w.refresh();
    expect(w.containersOf(POD, 'train-gpu')).toEqual(['main', 'sidecar']);
    await w.refresh(); // > 4096 bytes: RESOURCE_EXHAUSTED
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(log.withMessage('pod-resources: List failed').at(-1)?.['err']).toMatch(/RESOURCE_EXHAUSTED|larger than max/i);
    await w.refresh();
    expect(w.containersOf(POD, 'train-gpu')).toEqual(['main', 'sidecar']);
    await w.refresh(); // a pod name beyond 253 characters
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(log.withMessage('pod-resources: List failed').at(-1)?.['err']).toMatch(/unexpected answer at pod_resources\.0\.name/);
    await w.refresh();
    await w.refresh(); // never answered: the deadline
    expect(w.containersOf(POD, 'train-gpu')).toBeUndefined();
    expect(log.withMessage('pod-resources: List failed').at(-1)?.['err']).toMatch(/DEADLINE_EXCEEDED/);
  });
});
