/**
 * Helpers of the end-to-end agent tests (test/agent/*.test.ts): start a whole agent
 * (`startAgent` from src/main.ts, configured by `loadConfig` exactly as the CLI is) with a KubeletSimulator on
 * its registry dir; create and allocate ResourceClaims through the real @kubernetes/client-node as the
 * scheduler would; read the CDI spec, the checkpoint and /metrics. (Waiting for a condition: ./wait.ts.)
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { CoreV1Api, KubeConfig, ResourceV1Api, type ResourceV1ResourceClaim, type V1DeviceAllocationConfiguration } from '@kubernetes/client-node';
import type { EmbeddedApiServer, RequestRecord } from '../../dev/apiserver/server.js';
import { clientKubeConfig, embeddedApiProvider } from '../../dev/embedded.js';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { DraApiVersion } from '../../src/dra/kubelet/grpc-protos.js';
import type { ClaimRef } from '../../src/model/types.js';
import { silentLogger } from '../../src/log.js';
import { startAgent, type Agent } from '../../src/main.js';
import { parsePrometheusText, type PromSample } from './promtext.js';
import { claimRef } from './names.js';
import { reference } from './reference.js';
import { WAIT_TIMEOUT_MS } from './wait.js';

/** Node name of every e2e agent. */
export const NODE = 'e2e-node';
/** gpulet's default DRA driver name. */
export const DRIVER = 'gpu.gpulet.dev';
/** Official CDI JSON schema (draft-07) of the reference data. */
export const CDI_SCHEMA_DIR = reference('cdi-schema');

/** A fresh temp dir under os.tmpdir(). */
export function tempDir(prefix = 'gpulet-e2e-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A running agent with a simulated kubelet. */
export interface Harness {
  readonly dir: string;
  readonly config: Config;
  readonly agent: Agent;
  /** A kubelet that registered the plugin (DRA version as forced, else v1). */
  readonly kubelet: KubeletSimulator;
  /** resource.k8s.io/v1 client on the agent's KubeConfig. */
  readonly api: ResourceV1Api;
  readonly core: CoreV1Api;
  /** Stop the simulator and the agent (not the dir, not an external server). Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  /** State dir (default: a new temp dir). */
  readonly dir?: string;
  /** Run in `--kube-api kubeconfig` mode against this server (its kubeconfig is written to `<dir>/api.kubeconfig`). */
  readonly server?: EmbeddedApiServer;
  /** Extra CLI arguments (after the defaults: later flags win in commander). */
  readonly extraArgs?: readonly string[];
  /** Force the simulated kubelet's DRA version. */
  readonly kubeletVersion?: DraApiVersion;
}

/** The CLI arguments of an e2e agent on `dir`. */
export function agentArgs(dir: string, extra: readonly string[] = []): string[] {
  return [
    '--node-name', NODE, '--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--sample-interval', '200',
    '--log-level', 'silent', '--shutdown-timeout', '8000', ...extra,
  ];
}

/**
 * Start an agent on `dir` (env `{}`: the host environment cannot leak in), a KubeletSimulator on its
 * registry dir, and wait until the plugin registered and the ResourceSlices are in sync.
 */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = opts.dir ?? (await tempDir());
  const extra = [...(opts.extraArgs ?? [])];
  if (opts.server !== undefined) {
    const kubeconfigPath = join(dir, 'api.kubeconfig');
    await writeFile(kubeconfigPath, opts.server.kubeconfig(), { mode: 0o600 });
    extra.push('--kube-api', 'kubeconfig', '--kubeconfig', kubeconfigPath);
  }
  const config = loadConfig(agentArgs(dir, extra), {}, dir);
  const agent = await startAgent(config, silentLogger(), { embeddedApi: embeddedApiProvider });
  const kubelet = new KubeletSimulator({
    registryDir: config.pluginRegistryDir,
    rescanIntervalMs: 200,
    ...(opts.kubeletVersion !== undefined ? { apiVersion: opts.kubeletVersion } : {}),
  });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      await kubelet.stop();
      await agent.stop();
    })());
  try {
    await kubelet.start();
    await kubelet.waitForPlugin(config.driverName, WAIT_TIMEOUT_MS);
    await agent.publisher.whenSynced();
  } catch (err) {
    await stop();
    throw err;
  }
  // The test's client: client-node against the API server the agent uses (the test's own, or the embedded one).
  let kc: KubeConfig;
  if (opts.server !== undefined) {
    kc = new KubeConfig();
    kc.loadFromString(opts.server.kubeconfig());
  } else {
    kc = clientKubeConfig(agent);
  }
  return { dir, config, agent, kubelet, stop, api: kc.makeApiClient(ResourceV1Api), core: kc.makeApiClient(CoreV1Api) };
}

/** Remove a temp dir. */
export function removeDir(dir: string | undefined): Promise<void> {
  return dir === undefined ? Promise.resolve() : rm(dir, { recursive: true, force: true });
}

/** One allocation result as the scheduler writes it. */
export interface ResultSpec {
  readonly device: string;
  readonly request?: string;
  readonly driver?: string;
  readonly pool?: string;
}

/** Create an (unallocated) ResourceClaim asking for `requests` (name → count) of DeviceClass gpu.gpulet.dev. */
export async function createClaim(api: ResourceV1Api, name: string, requests: Record<string, number> = { gpus: 1 }, namespace = 'default'): Promise<ResourceV1ResourceClaim> {
  return api.createNamespacedResourceClaim({
    namespace,
    body: {
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceClaim',
      metadata: { name },
      spec: {
        devices: {
          requests: Object.entries(requests).map(([req, count]) => ({ name: req, exactly: { deviceClassName: DRIVER, count } })),
        },
      },
    },
  });
}

/** Claim reference as the kubelet sends it, checked (test/helpers/names.ts; throws when the API object's metadata breaks the rules). */
export function refOf(claim: ResourceV1ResourceClaim): ClaimRef {
  return claimRef({ namespace: claim.metadata?.namespace ?? '', name: claim.metadata?.name ?? '', uid: claim.metadata?.uid ?? '' });
}

/** Options of {@link allocatedClaim}. */
export interface AllocateOptions {
  /** The pod the claim is reserved for (`status.reservedFor`). */
  readonly pod?: { readonly name: string; readonly uid: string };
  readonly namespace?: string;
  /** `status.allocation.devices.config` (resource.k8s.io/v1 DeviceAllocationConfiguration). */
  readonly config?: readonly V1DeviceAllocationConfiguration[];
}

/**
 * Create a claim and allocate it as the scheduler does (status subresource: `allocation.devices.results`,
 * `reservedFor` the pod). Results default to our driver, our pool and request `gpus`.
 */
export async function allocatedClaim(api: ResourceV1Api, name: string, results: readonly ResultSpec[], opts: AllocateOptions = {}): Promise<ClaimRef> {
  const namespace = opts.namespace ?? 'default';
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.request ?? 'gpus'] = (counts[r.request ?? 'gpus'] ?? 0) + 1;
  const created = await createClaim(api, name, counts, namespace);
  const updated = await api.replaceNamespacedResourceClaimStatus({
    namespace,
    name,
    body: {
      ...created,
      status: {
        allocation: {
          devices: {
            results: results.map((r) => ({ request: r.request ?? 'gpus', driver: r.driver ?? DRIVER, pool: r.pool ?? NODE, device: r.device })),
            ...(opts.config !== undefined ? { config: [...opts.config] } : {}),
          },
        },
        ...(opts.pod !== undefined ? { reservedFor: [{ resource: 'pods', name: opts.pod.name, uid: opts.pod.uid }] } : {}),
      },
    },
  });
  return refOf(updated);
}

/** The official CDI schema, compiled (as test/state/cdi.test.ts does). */
export function cdiValidator(): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema(JSON.parse(readFileSync(`${CDI_SCHEMA_DIR}/defs.json`, 'utf8')) as object, 'defs.json');
  return ajv.compile(JSON.parse(readFileSync(`${CDI_SCHEMA_DIR}/schema.json`, 'utf8')) as object);
}

/** Claim entries of the checkpoint file (`{}` when the file does not exist). */
export async function checkpointClaims(config: Config): Promise<Record<string, { state: string; namespace: string; name: string }>> {
  let text: string;
  try {
    text = await readFile(config.checkpointPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const doc = JSON.parse(text) as { claims?: Record<string, { state: string; namespace: string; name: string }> };
  return doc.claims ?? {};
}

/** GET /metrics and parse it with the strict exposition-format parser. */
export async function scrape(agent: Agent): Promise<PromSample[]> {
  const res = await fetch(`${agent.telemetry.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parsePrometheusText(await res.text()).samples;
}

/** GETs of one ResourceClaim the server recorded. */
export function claimGets(requests: readonly RequestRecord[], ref: Pick<ClaimRef, 'namespace' | 'name'>): RequestRecord[] {
  const path = `/apis/resource.k8s.io/v1/namespaces/${ref.namespace}/resourceclaims/${ref.name}`;
  return requests.filter((r) => r.method === 'GET' && r.path === path);
}
