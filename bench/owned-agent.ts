/**
 * The footprint setting (issue 14): the compiled agent (`node dist/agent/cli.js`, the image's entry) on the mock dgx-h100 with
 * every GPU in MIG mode, seven `1g.10gb` each (8 GPUs + 56 MIG devices, written to the mock's MIG state file
 * before the start), every MIG device held by its own claim prepared through the kubelet plugin's unix socket,
 * Prometheus + OTLP gRPC on. In this (the bench's) process: the API server (dev/embedded.ts, reached with
 * `--kube-api=kubeconfig`), the OTLP sink and a KubeletSimulator, as in a cluster where none of them is the
 * agent's. `churn(k)` is a pod replaced: k claims unprepared and deleted, k new claims (new names, UIDs and pods)
 * for the same devices allocated and prepared — the attribute churn of a node whose pods come and go.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ResourceV1Api } from '@kubernetes/client-node';
import { clientKubeConfig, startEmbeddedApi, type EmbeddedApi } from '../dev/embedded.js';
import { KubeletSimulator } from '../dev/kubelet/simulator.js';
import { createBackend } from '../src/gpu/backend.js';
import { silentLogger } from '../src/log.js';
import { allocatableDevices } from '../src/model/devices.js';
import { dnsSubdomainSchema } from '../src/model/names.js';
import type { ClaimRef } from '../src/model/types.js';
import { spawnAgent, type AgentVariant, type SpawnedAgent } from './agent-process.js';
import { createAllocatedClaims } from './claims.js';
import { startOtlpSink, type OtlpSink } from './otlp-sink.js';

const NODE = 'bench-node';
const DRIVER = 'gpu.gpulet.dev';
const NAMESPACE = 'default';

/** A running owned agent and its peers. */
export interface OwnedAgent {
  readonly agent: SpawnedAgent;
  readonly pid: number;
  readonly api: EmbeddedApi;
  readonly sink: OtlpSink;
  /** Devices held (one claim each). */
  readonly devices: number;
  /** Replace the `k` oldest claims by new ones on the same devices (unprepare, delete, create, allocate, prepare). */
  churn(k: number): Promise<void>;
  /** Claims replaced so far. */
  churned(): number;
  close(): Promise<void>;
}

/** The agent's mock backend, in this process (same node name: same UUIDs), for its UUIDs and device names. */
function mockBackend(migStateFile: string | undefined): ReturnType<typeof createBackend> {
  return createBackend(
    { backend: 'mock', mockMachine: 'dgx-h100', nodeName: dnsSubdomainSchema.parse(NODE), nvmlLibrary: 'libnvidia-ml.so.1', sysfsRoot: '/sys', ...(migStateFile === undefined ? {} : { mockMigStateFile: migStateFile }) },
    silentLogger(),
  );
}

/** The mock MIG state file's text: every GPU of dgx-h100 (UUIDs as the mock derives them for `NODE`) in MIG mode with seven 1g.10gb. */
async function mig56State(): Promise<string> {
  const backend = mockBackend(undefined);
  await backend.init();
  const gpus: Record<string, unknown> = {};
  for (const g of backend.inventory().gpus) {
    gpus[g.uuid] = {
      migEnabled: true,
      pendingMigEnabled: true,
      instances: Array.from({ length: 7 }, (_, i) => ({ profile: '1g.10gb', placementStart: i, computeInstance: true })),
    };
  }
  await backend.shutdown();
  return JSON.stringify({ version: 1, gpus });
}

/**
 * Start the owned agent: 56 MIG devices each prepared for its own claim.
 * @param nodeArgs flags of the agent command (after the defaults), e.g. `--sample-interval 1000`
 * @param env extra environment of the agent (the heap probe's `BENCH_HEAP_PROBE`)
 * @throws Error when the agent does not start, or a prepare answers an error
 */
export async function startOwnedAgent(v: AgentVariant, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<OwnedAgent> {
  const apiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-owned-'));
  const api = await startEmbeddedApi({ stateDir: apiDir, nodeName: dnsSubdomainSchema.parse(NODE), embeddedApiPort: 0 }, silentLogger());
  const sink = await startOtlpSink();
  let agent: SpawnedAgent | undefined;
  let kubelet: KubeletSimulator | undefined;
  const close = async (): Promise<void> => {
    await kubelet?.stop().catch(() => undefined);
    await agent?.stop().catch(() => undefined);
    await sink.close().catch(() => undefined);
    await api.close().catch(() => undefined);
    fs.rmSync(apiDir, { recursive: true, force: true });
  };
  try {
    const migState = await mig56State();
    agent = await spawnAgent(v, ['--otlp-endpoint', sink.endpoint, '--kube-api', 'kubeconfig', '--kubeconfig', api.kubeconfigPath, ...args], env, (dir) =>
      fs.writeFileSync(path.join(dir, 'mock-mig-state.json'), migState),
    );
    const pid = agent.pid;
    if (pid === undefined) throw new Error('cannot find the agent process');
    kubelet = new KubeletSimulator({ registryDir: path.join(agent.dir, 'plugins_registry') });
    await kubelet.start();
    await kubelet.waitForPlugin(DRIVER, 10_000);
    const backend = mockBackend(path.join(agent.dir, 'mock-mig-state.json'));
    await backend.init();
    const names = allocatableDevices(backend.inventory()).map((d) => d.name);
    await backend.shutdown();
    const kc = clientKubeConfig({ apiServer: { kubeconfigPath: api.kubeconfigPath } });
    const resource = kc.makeApiClient(ResourceV1Api);
    let serial = 0;
    const held: { ref: ClaimRef; device: string }[] = [];
    const sim = kubelet;
    const hold = async (devices: readonly string[]): Promise<void> => {
      const plans = devices.map((d) => ({ namespace: NAMESPACE, name: `soak-${serial++}-${randomUUID().slice(0, 8)}`, devices: [d] }));
      const refs = await createAllocatedClaims(kc, DRIVER, NODE, plans);
      const res = await sim.prepare(refs);
      for (const [i, ref] of refs.entries()) {
        const r = res.claims[ref.uid];
        if (r === undefined || r.error !== '') throw new Error(`prepare of ${ref.name} answered ${JSON.stringify(r)}`);
        held.push({ ref, device: devices[i] ?? '' });
      }
    };
    await hold(names);
    let churned = 0;
    return {
      agent,
      pid,
      api,
      sink,
      devices: names.length,
      churned: () => churned,
      async churn(k) {
        const out = held.splice(0, k);
        const un = await sim.unprepare(out.map((o) => o.ref));
        for (const o of out) {
          const e = un.claims[o.ref.uid]?.error;
          if (e !== '' && e !== undefined) throw new Error(`unprepare of ${o.ref.name} answered ${e}`);
        }
        await Promise.all(out.map((o) => resource.deleteNamespacedResourceClaim({ namespace: NAMESPACE, name: o.ref.name })));
        await hold(out.map((o) => o.device));
        churned += out.length;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
