/**
 * gpulet's configuration: one schema, where every option has a flag, an environment variable, a default and a
 * description. Flags win over environment variables, which win over defaults. The defaults are the embedded
 * development setup (mock `dgx-h100`, in-process API server, everything under `./.gpulet/`); the DaemonSet
 * sets the production values through the environment (see daemonset/).
 */
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { LOG_LEVELS } from './log.js';
import {
  DEFAULT_DRIVER_NAME, dnsSubdomainSchema, driverNameSchema, objectUidSchema, poolNameOf,
  type DnsSubdomain, type DriverName, type ObjectUid, type PoolName,
} from './model/names.js';
import { parseMigMode, type MigModeConfig } from './model/mig-mode.js';
import { OPTION_BOUNDS, optionProblem, type BoundedOption } from './options.js';
import { DEFAULT_POD_RESOURCES_SOCKET } from './k8s/pod-resources-index.js';
import { FAULT_TAINT_EFFECTS, type FaultTaintEffect } from './dra/slices/taints.js';

/** Where the agent finds the Kubernetes API. */
export const KUBE_API_MODES = ['embedded', 'kubeconfig', 'in-cluster'] as const;
/** GPU backends. */
export const BACKENDS = ['mock', 'nvml'] as const;
/** Values of `--driver-userspace` (src/userspace/provider.ts). */
export const DRIVER_USERSPACE_MODES = ['auto', 'toolkit', 'discover', 'none'] as const;
/** A value of `--driver-userspace`. */
export type DriverUserspaceMode = (typeof DRIVER_USERSPACE_MODES)[number];

/** A host:port listen address. `port` 0 picks a free port. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * The validated configuration. Paths are absolute. Durations are milliseconds. Names were checked here, where
 * they enter, with the rules of src/model/names.ts, and are carried branded from here on.
 */
export interface Config {
  /** Kubernetes node name (a DNS subdomain, apimachinery `ValidateNodeName`): `spec.nodeName` of the slices, and the seed of mock identities. */
  readonly nodeName: DnsSubdomain;
  /** The ResourceSlice pool of this node: `poolNameOf(nodeName)`, decided here once for every component. */
  readonly poolName: PoolName;
  /** UID of the agent's pod (downward API `metadata.uid`, a lower-case UUID); when set, socket names carry it for seamless rolling updates. */
  readonly podUid: ObjectUid | undefined;
  /** DRA driver name (DNS subdomain ≤ 63 chars). */
  readonly driverName: DriverName;
  readonly backend: (typeof BACKENDS)[number];
  /** Mock machine name (see `MOCK_MACHINES`), for `backend = mock`. */
  readonly mockMachine: string;
  /** Path or soname of the NVML library, for `backend = nvml`. */
  readonly nvmlLibrary: string;
  /** Where sysfs is mounted (PCIe root of each GPU, for `resource.kubernetes.io/pcieRoot`), for `backend = nvml`. */
  readonly sysfsRoot: string;
  /** Retry GPU backend start-up (driver not loaded yet) instead of failing fast; not ready meanwhile. */
  readonly waitForDriver: boolean;
  /** `--mig-mode`: static or dynamic MIG publishing, per GPU (src/model/mig-mode.ts). */
  readonly migMode: MigModeConfig;
  /** `--mig-enable`: turn MIG mode on at start-up for the GPUs of `--mig-mode dynamic` that have it off. */
  readonly migEnable: boolean;
  /** Mock backend: the file its MIG state (mode, instances) is kept in across restarts (`<state-dir>/mock-mig-state.json`). */
  readonly mockMigStateFile: string | undefined;
  readonly kubeApi: (typeof KUBE_API_MODES)[number];
  /** Kubeconfig file, for `kubeApi = kubeconfig`. */
  readonly kubeconfig: string | undefined;
  /** Port of the embedded API server (`kubeApi = embedded`); 0 picks a free one. */
  readonly embeddedApiPort: number;
  /** Agent state: the checkpoint, and in embedded mode the kubeconfig. */
  readonly stateDir: string;
  /** Kubelet plugin registration directory (`/var/lib/kubelet/plugins_registry` on a node). */
  readonly pluginRegistryDir: string;
  /** Kubelet plugins directory (`/var/lib/kubelet/plugins`): the DRA socket is `<dir>/<driver>/dra.sock`. */
  readonly pluginsDir: string;
  /** Where CDI specs are written (`/var/run/cdi` on a node). */
  readonly cdiDir: string;
  /** When set, CDI device nodes point at stand-ins under this dir (mock mode); unset on real nodes. */
  readonly devRoot: string | undefined;
  /**
   * Where a claim's container gets the driver's userspace (src/userspace/provider.ts): `auto` (the toolkit's
   * spec when there, else discover), `toolkit`, `discover`, `none`. Default `auto` with the nvml backend, `none` with mock.
   */
  readonly driverUserspace: DriverUserspaceMode;
  /** The driver's root as the host sees it (`/`, or `/run/nvidia/driver` under the GPU Operator): CDI host paths are under it. */
  readonly nvidiaDriverRoot: string;
  /** Where the agent sees the driver's root (its mount of it); default: `nvidiaDriverRoot`. */
  readonly containerDriverRoot: string;
  /** Host path of `nvidia-cdi-hook`; unset: looked for under the driver root (no hooks when absent). */
  readonly nvidiaCdiHookPath: string | undefined;
  /** Checkpoint file (`<stateDir>/checkpoint.json`). */
  readonly checkpointPath: string;
  /** Prometheus `/metrics`, `/healthz`, `/readyz` listen address. */
  readonly metricsAddress: ListenAddress;
  /** Also expose dcgm-exporter-compatible `DCGM_FI_*` series on `/metrics`. */
  readonly dcgmCompat: boolean;
  /**
   * The kubelet's pod-resources socket (`/var/lib/kubelet/pod-resources/kubelet.sock`), read for the `container`
   * label of the `DCGM_FI_*` series (src/k8s/pod-resources.ts); undefined (`--pod-resources-socket ""`): not read.
   */
  readonly podResourcesSocket: string | undefined;
  /** OTLP gRPC endpoint (e.g. `http://otel-collector:4317`); no OTLP export when unset. */
  readonly otlpEndpoint: string | undefined;
  /** OTLP export interval, ms. */
  readonly otlpExportIntervalMs: number;
  /** GPU sampling interval, ms. */
  readonly sampleIntervalMs: number;
  /** Period of the check that unprepares claims the API server no longer has, ms; 0 disables it. */
  readonly cleanupIntervalMs: number;
  /** Bound on graceful shutdown, ms; a second signal exits at once. */
  readonly shutdownTimeoutMs: number;
  /** How long one rendered `/metrics` body is served to every scraper, ms (0: only concurrent scrapes share). */
  readonly metricsCacheMs: number;
  /**
   * Effect of the device taints that keep a faulty device from use (`<driver>/xid` for a fatal XID,
   * `<driver>/gpu-lost`): `NoSchedule` (default, as NVIDIA's DRA driver) or `NoExecute` (the
   * kube-controller-manager's device-taint-eviction controller then evicts the pods using the device).
   */
  readonly deviceTaintEffect: FaultTaintEffect;
  /** Quiet time after which an XID / ECC fault is considered recovered, ms; 0 = never (src/gpu/health.ts). */
  readonly healthRecoveryMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/** Parse `host:port`, `:port` or `port`. @throws ConfigError */
export function parseListenAddress(value: string, option: string): ListenAddress {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[^:]*):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || optionProblem('port', port) !== undefined) {
    throw new ConfigError(`${option}: "${value}" is not a listen address; use host:port, e.g. 0.0.0.0:9400`);
  }
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port };
}

const isTrue = (v: boolean | string): boolean => v === true || v === 'true' || v === '1';

/** A flag or variable holding an integer bounded by {@link OPTION_BOUNDS}. */
const bounded = (name: BoundedOption) => z.coerce.number().int().min(OPTION_BOUNDS[name].min).max(OPTION_BOUNDS[name].max);

/** The CLI default of a bounded option, as commander wants it (a string). */
const defaultOf = (name: Exclude<BoundedOption, 'port'>): string => String(OPTION_BOUNDS[name].default);

const rawSchema = z.object({
  nodeName: dnsSubdomainSchema,
  podUid: objectUidSchema.optional(),
  driverName: driverNameSchema,
  backend: z.enum(BACKENDS),
  mockMachine: z.string().min(1),
  nvmlLibrary: z.string().min(1),
  sysfsRoot: z.string().min(1),
  waitForDriver: z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]),
  migMode: z.string(),
  migEnable: z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]),
  kubeApi: z.enum(KUBE_API_MODES),
  kubeconfig: z.string().min(1).optional(),
  embeddedApiPort: bounded('port'),
  stateDir: z.string().min(1),
  pluginRegistryDir: z.string().min(1).optional(),
  pluginsDir: z.string().min(1).optional(),
  cdiDir: z.string().min(1).optional(),
  devRoot: z.string().optional(),
  driverUserspace: z.enum(DRIVER_USERSPACE_MODES).optional(),
  nvidiaDriverRoot: z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute host path'),
  containerDriverRoot: z.string().min(1).optional(),
  nvidiaCdiHookPath: z.string().min(1).refine((p) => p.startsWith('/'), 'must be an absolute host path').optional(),
  metricsAddress: z.string(),
  dcgmCompat: z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]),
  podResourcesSocket: z.string().max(4096),
  otlpEndpoint: z.string().url('must be a URL such as http://otel-collector:4317').optional(),
  otlpExportInterval: bounded('otlpExportIntervalMs'),
  sampleInterval: bounded('sampleIntervalMs'),
  shutdownTimeout: bounded('shutdownTimeoutMs'),
  cleanupInterval: bounded('cleanupIntervalMs'),
  metricsCacheTtl: bounded('metricsCacheMs'),
  deviceTaintEffect: z.enum(FAULT_TAINT_EFFECTS),
  healthRecoveryInterval: bounded('healthRecoveryMs'),
  logLevel: z.enum(LOG_LEVELS),
});

/** Build the commander program: the single source of flags, env vars, defaults and help texts. */
export function buildCommand(): Command {
  const opt = (flags: string, env: string, description: string, def?: string | boolean) => {
    const o = new Option(flags, description).env(env);
    return def === undefined ? o : o.default(def);
  };
  return new Command('gpulet')
    .description('Node-level GPU agent for Kubernetes: DRA driver, CDI, and GPU telemetry')
    .addOption(opt('--node-name <name>', 'NODE_NAME', 'Kubernetes node name (pool name)', os.hostname().toLowerCase()))
    .addOption(opt('--pod-uid <uid>', 'POD_UID', 'UID of the agent pod; suffixes socket names for rolling updates'))
    .addOption(opt('--driver-name <name>', 'GPULET_DRIVER_NAME', 'DRA driver name', DEFAULT_DRIVER_NAME))
    .addOption(opt('--backend <kind>', 'GPULET_BACKEND', 'GPU backend', 'mock').choices(BACKENDS))
    .addOption(opt('--mock-machine <name>', 'GPULET_MOCK_MACHINE', 'mock machine (backend=mock)', 'dgx-h100'))
    .addOption(opt('--nvml-library <path>', 'GPULET_NVML_LIBRARY', 'NVML library to dlopen (backend=nvml)', 'libnvidia-ml.so.1'))
    .addOption(opt('--sysfs-root <dir>', 'GPULET_SYSFS_ROOT', 'where sysfs is mounted (PCIe roots; backend=nvml)', '/sys'))
    .addOption(opt('--wait-for-driver [bool]', 'GPULET_WAIT_FOR_DRIVER', 'retry GPU start-up until the driver is loaded (not ready meanwhile) instead of failing fast', 'false'))
    .addOption(opt('--mig-enable [bool]', 'GPULET_MIG_ENABLE', 'turn MIG mode on at start-up for GPUs of --mig-mode dynamic that have it off (an A100 needs a GPU reset after: gpulet says so)', 'false'))
    .addOption(opt('--mig-mode <modes>', 'GPULET_MIG_MODE', 'MIG publishing: static | dynamic, with per-GPU overrides by UUID or NVML index (e.g. dynamic,GPU-…=static,3=static)', 'static'))
    .addOption(opt('--kube-api <mode>', 'GPULET_KUBE_API', 'where the Kubernetes API is (embedded: the development API server of `npm start`)', 'embedded').choices(KUBE_API_MODES))
    .addOption(opt('--kubeconfig <path>', 'KUBECONFIG', 'kubeconfig file (kube-api=kubeconfig)'))
    .addOption(opt('--embedded-api-port <port>', 'GPULET_EMBEDDED_API_PORT', 'port of the embedded API server (0 = free port)', '0'))
    .addOption(opt('--state-dir <dir>', 'GPULET_STATE_DIR', 'state directory (checkpoint; embedded kubeconfig)', '.gpulet'))
    .addOption(opt('--plugin-registry-dir <dir>', 'GPULET_PLUGIN_REGISTRY_DIR', 'kubelet plugin registry dir [<state-dir>/plugins_registry]'))
    .addOption(opt('--plugins-dir <dir>', 'GPULET_PLUGINS_DIR', 'kubelet plugins dir [<state-dir>/plugins]'))
    .addOption(opt('--cdi-dir <dir>', 'GPULET_CDI_DIR', 'CDI spec dir [<state-dir>/cdi]'))
    .addOption(opt('--dev-root <dir>', 'GPULET_DEV_ROOT', 'host dir of device-node stand-ins ["" = real /dev; default <state-dir>/dev with backend=mock]'))
    .addOption(opt('--driver-userspace <source>', 'GPULET_DRIVER_USERSPACE', "where a claim's container gets the driver's libraries and binaries: the NVIDIA Container Toolkit's CDI spec, discovered in the driver root, or none [auto with backend=nvml, none with mock]").choices(DRIVER_USERSPACE_MODES))
    .addOption(opt('--nvidia-driver-root <dir>', 'NVIDIA_DRIVER_ROOT', "host path of the driver's root (/run/nvidia/driver under the GPU Operator)", '/'))
    .addOption(opt('--container-driver-root <dir>', 'CONTAINER_DRIVER_ROOT', "where the agent sees the driver's root [--nvidia-driver-root]"))
    .addOption(opt('--nvidia-cdi-hook-path <path>', 'NVIDIA_CDI_HOOK_PATH', 'host path of nvidia-cdi-hook [looked for under the driver root; no hooks when absent]'))
    .addOption(opt('--metrics-address <addr>', 'GPULET_METRICS_ADDRESS', 'listen address of /metrics, /healthz, /readyz', '0.0.0.0:9400'))
    .addOption(opt('--dcgm-compat <bool>', 'GPULET_DCGM_COMPAT', 'also expose dcgm-exporter DCGM_FI_* series', 'true'))
    .addOption(opt('--pod-resources-socket <path>', 'GPULET_POD_RESOURCES_SOCKET', "the kubelet's pod-resources socket, for the container label of the DCGM_FI_* series (\"\" = not read)", DEFAULT_POD_RESOURCES_SOCKET))
    .addOption(opt('--otlp-endpoint <url>', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTLP gRPC endpoint; no OTLP export when unset'))
    .addOption(opt('--otlp-export-interval <ms>', 'OTEL_METRIC_EXPORT_INTERVAL', 'OTLP export interval (ms)', defaultOf('otlpExportIntervalMs')))
    .addOption(opt('--sample-interval <ms>', 'GPULET_SAMPLE_INTERVAL', 'GPU sampling interval (ms)', defaultOf('sampleIntervalMs')))
    .addOption(opt('--cleanup-interval <ms>', 'GPULET_CLEANUP_INTERVAL', 'how often prepared claims are checked against the API server (ms; 0 = off)', defaultOf('cleanupIntervalMs')))
    .addOption(opt('--metrics-cache-ttl <ms>', 'GPULET_METRICS_CACHE_TTL', 'how long one rendered /metrics body is shared by scrapers (ms; 0 = only concurrent scrapes)', defaultOf('metricsCacheMs')))
    .addOption(opt('--device-taint-effect <effect>', 'GPULET_DEVICE_TAINT_EFFECT', 'effect of the <driver>/xid (fatal XID) and <driver>/gpu-lost device taints (NoExecute: pods using the device are evicted)', 'NoSchedule').choices(FAULT_TAINT_EFFECTS))
    .addOption(opt('--health-recovery-interval <ms>', 'GPULET_HEALTH_RECOVERY_INTERVAL', 'quiet time after which an XID / ECC fault is considered recovered (ms; 0 = never, as NVIDIA\'s driver)', defaultOf('healthRecoveryMs')))
    .addOption(opt('--shutdown-timeout <ms>', 'GPULET_SHUTDOWN_TIMEOUT', 'bound on graceful shutdown (ms)', defaultOf('shutdownTimeoutMs')))
    .addOption(opt('--log-level <level>', 'GPULET_LOG_LEVEL', 'log level', 'info').choices(LOG_LEVELS))
    .showHelpAfterError()
    .allowExcessArguments(false);
}

/**
 * Parse and validate the configuration.
 * @param argv arguments after the program name (e.g. `process.argv.slice(2)`)
 * @param env environment (commander reads `process.env`; pass overrides for tests)
 * @param cwd base for relative paths
 * @throws ConfigError naming the option and the problem
 */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const saved = process.env;
  process.env = { ...env };
  let raw: Record<string, unknown>;
  try {
    const cmd = buildCommand().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    cmd.parse([...argv], { from: 'user' });
    raw = cmd.opts();
  } catch (err: unknown) {
    const msg = err instanceof Error ? err.message.replace(/^error: /, '') : String(err);
    throw new ConfigError(msg, { cause: err });
  } finally {
    process.env = saved;
  }
  if (raw['otlpEndpoint'] === undefined && env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']) {
    raw['otlpEndpoint'] = env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'];
  }
  const parsed = rawSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const key = String(first?.path[0] ?? 'config');
    const flag = '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
    throw new ConfigError(`${flag} = ${JSON.stringify(raw[key])}: ${first?.message ?? 'invalid'}`);
  }
  const r = parsed.data;
  const abs = (p: string) => path.resolve(cwd, p);
  const stateDir = abs(r.stateDir);
  if (r.kubeApi === 'kubeconfig' && !r.kubeconfig) {
    throw new ConfigError('--kube-api=kubeconfig needs --kubeconfig <path> (or KUBECONFIG)');
  }
  const migMode = parseMigMode(r.migMode);
  if (!migMode.ok) throw new ConfigError(`--mig-mode = ${JSON.stringify(r.migMode.slice(0, 80))}: ${migMode.problem}`);
  const devRoot = r.devRoot !== undefined ? (r.devRoot === '' ? undefined : abs(r.devRoot)) : r.backend === 'mock' ? path.join(stateDir, 'dev') : undefined;
  return {
    nodeName: r.nodeName,
    poolName: poolNameOf(r.nodeName),
    podUid: r.podUid,
    driverName: r.driverName,
    backend: r.backend,
    mockMachine: r.mockMachine,
    nvmlLibrary: r.nvmlLibrary,
    sysfsRoot: abs(r.sysfsRoot),
    waitForDriver: isTrue(r.waitForDriver),
    migMode: migMode.config,
    migEnable: isTrue(r.migEnable),
    mockMigStateFile: r.backend === 'mock' ? path.join(stateDir, 'mock-mig-state.json') : undefined,
    kubeApi: r.kubeApi,
    kubeconfig: r.kubeconfig === undefined ? undefined : abs(r.kubeconfig),
    embeddedApiPort: r.embeddedApiPort,
    stateDir,
    pluginRegistryDir: abs(r.pluginRegistryDir ?? path.join(stateDir, 'plugins_registry')),
    pluginsDir: abs(r.pluginsDir ?? path.join(stateDir, 'plugins')),
    cdiDir: abs(r.cdiDir ?? path.join(stateDir, 'cdi')),
    devRoot,
    driverUserspace: r.driverUserspace ?? (r.backend === 'nvml' ? 'auto' : 'none'),
    nvidiaDriverRoot: path.posix.normalize(r.nvidiaDriverRoot),
    containerDriverRoot: abs(r.containerDriverRoot ?? r.nvidiaDriverRoot),
    nvidiaCdiHookPath: r.nvidiaCdiHookPath,
    checkpointPath: path.join(stateDir, 'checkpoint.json'),
    metricsAddress: parseListenAddress(r.metricsAddress, '--metrics-address'),
    dcgmCompat: isTrue(r.dcgmCompat),
    podResourcesSocket: r.podResourcesSocket === '' ? undefined : abs(r.podResourcesSocket),
    otlpEndpoint: r.otlpEndpoint,
    otlpExportIntervalMs: r.otlpExportInterval,
    sampleIntervalMs: r.sampleInterval,
    shutdownTimeoutMs: r.shutdownTimeout,
    cleanupIntervalMs: r.cleanupInterval,
    metricsCacheMs: r.metricsCacheTtl,
    deviceTaintEffect: r.deviceTaintEffect,
    healthRecoveryMs: r.healthRecoveryInterval,
    logLevel: r.logLevel,
  };
}
