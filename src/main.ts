/**
 * The one composition root: builds every part from the configuration, starts them in dependency order and
 * stops them in reverse. No other module constructs another module's parts.
 *
 * Start order: GPU backend → health tracker → Kubernetes client (embedded API server in dev) → claim state
 * (checkpoint) → ResourceSlice publisher → claim status writer → kubelet plugin (registration once the claim
 * state can serve) → telemetry (/metrics, /healthz, /readyz, OTLP; its modules imported only then, so they do not
 * delay registration; the DRA call metrics of the calls in between are replayed). Stopped in reverse, except
 * that the kubelet plugin stops before the telemetry.
 */
import type { Config } from './config.js';
import { createBackend } from './gpu/backend.js';
import { initBackend } from './gpu/wait-for-driver.js';
import { startHttpServer } from './telemetry/http.js';
import { HealthTracker } from './gpu/health.js';
import { getHostFacts, hostResourceAttributes } from './gpu/host.js';
import type { GpuBackend, GpuInfo } from './gpu/types.js';
import { embeddedApiFor, type EmbeddedApiProvider } from './k8s/embedded-api.js';
import { loadKubeConfig } from './k8s/kubeconfig.js';
import { PodResourcesWatcher } from './k8s/pod-resources.js';
import type { KubeConnection } from './k8s/rest.js';
import type { Logger } from './log.js';
import { SlicePublisher } from './dra/slices/publisher.js';
import { taintsByUuid } from './dra/slices/taints.js';
import { DynamicMigProblem, dynamicMigPolicy, type DynamicMigPolicy } from './dra/slices/dynamic-mig.js';
import { ConfigError } from './errors.js';
import { migProfilesByProductName } from './gpu/mock/index.js';
import { NvmlBackend } from './gpu/nvml/index.js';
import { formatMigMode } from './model/mig-mode.js';
import type { PodRef } from './model/types.js';
import { startKubeletPlugin, type KubeletPlugin } from './dra/kubelet/plugin.js';
import { LateDraObserver } from './dra/kubelet/late-observer.js';
import { deviceHealthSource } from './dra/kubelet/device-health.js';
import { createClaimStatusClient } from './dra/claim-status/client.js';
import { withClaimStatus } from './dra/claim-status/preparer.js';
import { ClaimStatusWriter } from './dra/claim-status/writer.js';
import { ClaimOps } from './state/claim-ops.js';
import { migModeOffGpus, ownMigDeviceNames } from './state/mig-ops.js';
import { startDynamicMigModes } from './state/mig-startup.js';
import { ClaimStore } from './state/claim-store.js';
import { KubeClaimSource } from './state/claim-source.js';
import { OwnershipView } from './state/ownership.js';
import { Preparer } from './state/preparer.js';
import { initAndReconcile, startClaimCleanup } from './state/reconcile.js';
import { stuckReason } from './state/session.js';
import { ClaimRecovery } from './state/recovery.js';
import { withClaimsChanged } from './telemetry/claims-changed.js';
import type { Telemetry } from './telemetry/exporters.js';
import { toolkitSpecDirs, UserspaceProvider } from './userspace/provider.js';
import { withTimeout } from './util/timeout.js';
import { PACKAGE_VERSION } from './version.js';

/** A running agent. `stop()` is idempotent and bounded by `config.shutdownTimeoutMs`. */
export interface Agent {
  readonly config: Config;
  readonly backend: GpuBackend;
  /** The prepared claims, read-only (what telemetry attributes metrics from). */
  readonly claims: OwnershipView;
  readonly publisher: SlicePublisher;
  readonly telemetry: Telemetry;
  readonly plugin: KubeletPlugin;
  /** The agent's connection to the API server (src/k8s/kubeconfig.ts). */
  readonly kubeConfig: KubeConnection;
  /** Embedded API server, when `config.kubeApi === 'embedded'`. */
  readonly apiServer: { readonly url: string; readonly kubeconfigPath: string } | undefined;
  stop(): Promise<void>;
}

/** Package version (package.json's), for `service.version`. */
export const VERSION: string = PACKAGE_VERSION;

/** Options of {@link startAgent}. */
export interface StartOptions {
  /** Cancels start-up (SIGTERM while `--wait-for-driver` waits, or during the claims' start-up reconciliation, which stops between two claims): rejects with StartupAbortedError. */
  readonly signal?: AbortSignal;
  /**
   * Starts the API server of `--kube-api=embedded` (a development tool: dev/embedded.ts's
   * `embeddedApiProvider`). Required in that mode, unused in the others.
   */
  readonly embeddedApi?: EmbeddedApiProvider;
}

/**
 * Build and start the whole agent.
 * @throws BackendError / ConfigError / CheckpointError when a part cannot start, StartupAbortedError when
 *   cancelled; parts already started are stopped before the error propagates, so nothing is left
 *   half-registered. ConfigError before anything starts when `config.kubeApi` is `embedded` and
 *   `options.embeddedApi` is not given.
 */
export async function startAgent(config: Config, logger: Logger, options: StartOptions = {}): Promise<Agent> {
  const embeddedApi = embeddedApiFor(config, options.embeddedApi);
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s.stop();
      } catch (err: unknown) {
        logger.warn({ err, component: s.name }, 'error while stopping');
      }
    }
    stops.length = 0;
  };
  try {
    const backend = await startBackend(config, logger, options.signal);
    stops.push({ name: 'backend', stop: () => backend.shutdown() });
    const inventory = backend.inventory();
    logger.info(
      { backend: backend.kind, gpus: inventory.gpus.length, driverVersion: inventory.system.driverVersion },
      'GPU inventory discovered',
    );

    // --mig-mode: which GPUs publish every MIG placement (dynamic) with their profile tables: as NVML reports them
    // (profiles + possible placements, read while MIG mode is on), else the catalogue of src/gpu/mock/models.ts.
    let migDecision;
    try {
      migDecision = dynamicMigPolicy(config.migMode, inventory, (gpu) => (backend instanceof NvmlBackend ? backend.migProfiles(gpu.uuid) : undefined) ?? migProfilesByProductName(gpu.productName));
    } catch (err) {
      if (err instanceof DynamicMigProblem) throw new ConfigError(err.message, { cause: err });
      throw err;
    }
    // A dynamic GPU with MIG mode off is published as the full GPU it is (static), not as placements nothing can
    // create — unless gpulet turned MIG mode off to hand that full GPU to a claim (the checkpoint's `migModeOff`):
    // it stays dynamic, its full GPU allocated and consuming every counter. Its MIG devices gpulet made are the
    // checkpoint's (ownInstances: they stay placement devices). Both are bound once the claim store exists.
    let ownInstances: () => ReadonlySet<string> = () => new Set();
    let modeOffGpus: () => ReadonlySet<string> = () => new Set();
    const dynamicPolicy: DynamicMigPolicy | undefined =
      migDecision.policy === undefined
        ? undefined
        : {
            geometryOf: (gpu) => (gpu.migEnabled || modeOffGpus().has(gpu.uuid) ? migDecision.policy?.geometryOf(gpu) : undefined),
            get ownInstances() {
              return ownInstances();
            },
          };
    // After each MIG device created or destroyed: the slices follow the inventory (bound once the publisher runs).
    let inventoryChanged = (): void => {};
    if (migDecision.unmatched.length > 0) {
      logger.warn({ migMode: formatMigMode(config.migMode), unmatched: migDecision.unmatched }, '--mig-mode names GPUs this node does not have');
    }
    if (migDecision.dynamicGpus.length > 0) logger.info({ gpus: migDecision.dynamicGpus }, 'dynamic MIG: publishing every MIG placement of these GPUs');

    const health = new HealthTracker(inventory, { recoveryMs: config.healthRecoveryMs });
    const unsubscribeHealth = backend.onHealthEvent((event) => {
      logger.warn({ uuid: event.uuid, kind: event.kind, xid: event.xid }, event.message);
      health.record(event);
    });
    stops.push({
      name: 'health',
      stop: () => {
        unsubscribeHealth();
        health.close();
        return Promise.resolve();
      },
    });

    let apiServer: Agent['apiServer'];
    let kubeConfig: KubeConnection;
    if (embeddedApi !== undefined) {
      const embedded = await embeddedApi.start(config, logger.child({ component: 'embedded-apiserver' }));
      stops.push({ name: 'embedded-apiserver', stop: () => embedded.close() });
      apiServer = { url: embedded.url, kubeconfigPath: embedded.kubeconfigPath };
      kubeConfig = await loadKubeConfig({ mode: 'yaml', yaml: embedded.kubeconfig() });
      logger.info({ url: embedded.url, kubeconfig: embedded.kubeconfigPath }, 'embedded API server listening');
    } else if (config.kubeApi === 'in-cluster') {
      kubeConfig = await loadKubeConfig({ mode: 'in-cluster' });
    } else {
      kubeConfig = await loadKubeConfig({ mode: 'kubeconfig', path: config.kubeconfig ?? '' });
    }

    const claimSource = new KubeClaimSource(kubeConfig);
    // The claim state, in parts: each client gets only its part (the kubelet plugin the preparer, telemetry
    // the ownership view, start-up and clean-up the store's sessions and the recovery steps).
    const store = new ClaimStore({ checkpointPath: config.checkpointPath, logger });
    stops.push({ name: 'claim-store', stop: () => store.close() }); // last: closes the checkpoint file it keeps open
    // The driver's userspace in every claim's container: decided now for the running driver version (before
    // start-up reconciliation rebuilds any spec), again only when that version changes.
    const userspace = new UserspaceProvider({
      mode: config.driverUserspace,
      hostDriverRoot: config.nvidiaDriverRoot,
      containerDriverRoot: config.containerDriverRoot,
      toolkitSpecDirs: toolkitSpecDirs(config.cdiDir),
      ...(config.nvidiaCdiHookPath === undefined ? {} : { cdiHookPath: config.nvidiaCdiHookPath }),
      logger: logger.child({ component: 'driver-userspace' }),
    });
    await userspace.refresh(inventory.system.driverVersion);
    const ops = new ClaimOps({
      store,
      driverName: config.driverName,
      poolName: config.poolName,
      inventory: () => backend.inventory(),
      claimSource,
      cdiDir: config.cdiDir,
      ...(config.devRoot === undefined ? {} : { devRoot: config.devRoot }),
      userspace,
      ...(dynamicPolicy === undefined
        ? {}
        : { dynamicMig: { geometryOf: (gpu: GpuInfo) => dynamicPolicy.geometryOf(gpu), manager: backend.mig, onInventoryChange: () => inventoryChanged() } }),
      logger,
    });
    ownInstances = () => ownMigDeviceNames(store.entries());
    modeOffGpus = () => migModeOffGpus(store.entries());
    const preparer = new Preparer({ store, ops });
    const recovery = new ClaimRecovery({ store, ops, logger });
    const claims = new OwnershipView(store);
    // Before the kubelet can call us: roll back half-finished prepares, restore CDI specs lost with a reboot,
    // drop claims no pod holds any more, rebuild from the API server when the checkpoint was unusable; all
    // under the node-wide state lock (another instance may be serving during a rolling update).
    await initAndReconcile({ store, recovery, source: claimSource, logger, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    // --mig-enable and the MIG mode warnings after recovery: a full GPU gpulet handed out with MIG mode off stays so
    // while its claim is prepared; recovery turned MIG mode on again for every claim it rolled back.
    if (migDecision.dynamicGpus.length > 0) {
      // GPUs whose full GPU a recorded claim holds: MIG mode off for it (recorded), or — after a lost checkpoint —
      // a full GPU with MIG mode off that the rebuild prepared again (its device UUID is the GPU's).
      const held = new Set([...modeOffGpus(), ...Object.values(store.entries()).flatMap((e) => e.devices.map((d) => d.uuid))]);
      await startDynamicMigModes(backend, migDecision.dynamicGpus, held, config.migEnable, logger);
    }
    const cleanup = startClaimCleanup({ store, recovery, source: claimSource, periodMs: config.cleanupIntervalMs, logger });
    stops.push({ name: 'claim-cleanup', stop: () => cleanup.stop() });

    const publisher = new SlicePublisher({
      kubeConfig,
      driverName: config.driverName,
      nodeName: config.nodeName,
      poolName: config.poolName,
      logger,
      ...(dynamicPolicy === undefined ? {} : { dynamicMig: dynamicPolicy }),
    });
    publisher.start();
    const taints = () => taintsByUuid(config.driverName, health.allConditions(), config.deviceTaintEffect);
    publisher.update(backend.inventory(), taints());
    inventoryChanged = () => publisher.update(backend.inventory(), taints());
    const unsubscribeSlices = health.onChange(() => publisher.update(backend.inventory(), taints()));
    stops.push({
      name: 'publisher',
      stop: async () => {
        unsubscribeSlices();
        await publisher.stop();
      },
    });

    // The containers using each claim (the DCGM_FI_* `container` label), from the kubelet's pod-resources API:
    // node-local, so gpulet needs no RBAC to read pods (src/k8s/pod-resources.ts).
    let podResources: PodResourcesWatcher | undefined;
    if (config.dcgmCompat && config.podResourcesSocket !== undefined) {
      const watcher = new PodResourcesWatcher({
        socketPath: config.podResourcesSocket,
        driverName: config.driverName,
        poolName: config.poolName,
        intervalMs: config.sampleIntervalMs,
        logger: logger.child({ component: 'pod-resources' }),
      });
      watcher.start();
      podResources = watcher;
      stops.push({ name: 'pod-resources', stop: () => Promise.resolve(watcher.stop()) });
    }

    // The claims' status.devices (KEP-4817), written after each prepare and removed after each unprepare;
    // asynchronous, never failing or delaying the kubelet's answer (src/dra/claim-status/writer.ts).
    const claimStatus = new ClaimStatusWriter({
      client: createClaimStatusClient(kubeConfig, config.driverName),
      driverName: config.driverName,
      nodeName: config.nodeName,
      inventory: () => backend.inventory(),
      logger,
    });
    stops.push({ name: 'claim-status', stop: () => claimStatus.stop() });

    // The kubelet plugin starts before the telemetry, so registration does not wait for the OpenTelemetry
    // modules (imported only now), the host facts and the first sample: calls until then are replayed into the
    // DRA metrics (LateDraObserver), and the telemetry's first sample sees every claim prepared before it.
    const late: { telemetry?: Telemetry } = {};
    const draObserver = new LateDraObserver();
    const plugin = await startKubeletPlugin({
      driverName: config.driverName,
      registryDir: config.pluginRegistryDir,
      pluginsDir: config.pluginsDir,
      ...(config.podUid === undefined ? {} : { podUid: config.podUid }),
      preparer: withClaimsChanged(withClaimStatus(preparer, claimStatus), () => {
        late.telemetry?.claimsChanged();
        podResources?.claimsChanged(); // the kubelet lists the pod's claims once the prepare returned
      }),
      observer: draObserver, // DRA operation metrics (src/telemetry/dra-metrics.ts), once the telemetry runs
      health: deviceHealthSource(config.poolName, () => backend.inventory(), health),
      logger: logger.child({ component: 'kubelet-plugin' }),
      onRegistered: (ok, error) => {
        if (ok) {
          logger.info('registered with the kubelet; republishing ResourceSlices');
          publisher.republish();
        } else {
          logger.error({ error }, 'the kubelet rejected the registration');
        }
      },
    });
    const pluginStop = { name: 'kubelet-plugin', stop: () => plugin.stop() };
    stops.push(pluginStop);

    const host = await getHostFacts();
    const { startTelemetry } = await import('./telemetry/exporters.js');
    const running = await startTelemetry({
      backend,
      ownership: claims,
      prepared: claims,
      health,
      nodeName: config.nodeName,
      serviceVersion: VERSION,
      resourceAttributes: hostResourceAttributes(host),
      sampleIntervalMs: config.sampleIntervalMs,
      scrapeCacheMs: config.metricsCacheMs,
      metricsHost: config.metricsAddress.host,
      metricsPort: config.metricsAddress.port,
      ...(config.otlpEndpoint === undefined
        ? {}
        : { otlp: { endpoint: config.otlpEndpoint, intervalMs: config.otlpExportIntervalMs, timeoutMs: 10_000 } }),
      dcgmCompat: config.dcgmCompat,
      driverName: config.driverName,
      poolName: config.poolName,
      ...(podResources === undefined ? {} : { containersOf: (pod: PodRef, claim: string) => podResources.containersOf(pod, claim) }),
      notReady: () => stuckReason(store.stuck()), // a claim-state session past its deadline
      // Per-claim accounting carried in the checkpoint entries; MIG energy shares over each GPU's compute slices.
      usageStore: { usages: () => claims.usages(), record: (usages) => store.recordUsage(usages) },
      computeSlicesOf: (gpu) => computeSlices((backend instanceof NvmlBackend ? backend.migProfiles(gpu.uuid) : undefined) ?? migProfilesByProductName(gpu.productName)),
      logger,
    });
    late.telemetry = running;
    const telemetry = running;
    // Stopped after the kubelet plugin (stops run in reverse): no call reaches a telemetry already shut down.
    stops.splice(stops.indexOf(pluginStop), 0, { name: 'telemetry', stop: () => running.shutdown() });
    draObserver.attach(running.dra);
    // A dynamic MIG instance created or destroyed: the slices and the telemetry follow it (issue 12 item 6).
    const slicesFollow = inventoryChanged;
    inventoryChanged = () => {
      slicesFollow();
      running.inventoryChanged();
    };
    running.setReady(true);
    logger.info(
      { registrationSocket: plugin.registrationSocket, draSocket: plugin.draSocket, metrics: telemetry.url },
      'gpulet is running',
    );

    let stopping: Promise<void> | undefined;
    return {
      config,
      backend,
      claims,
      publisher,
      telemetry,
      plugin,
      kubeConfig,
      apiServer,
      stop: () => {
        stopping ??= (async () => {
          telemetry.setReady(false, 'shutting down');
          await withTimeout(stopAll(), config.shutdownTimeoutMs, () =>
            logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'graceful shutdown timed out'),
          );
        })();
        return stopping;
      },
    };
  } catch (err: unknown) {
    await stopAll();
    throw err;
  }
}

/** A GPU's compute slices: its largest MIG profile's (undefined without a profile table). */
function computeSlices(profiles: readonly { readonly computeSlices: number }[] | undefined): number | undefined {
  const most = Math.max(0, ...(profiles ?? []).map((p) => p.computeSlices));
  return most > 0 ? most : undefined;
}

/**
 * Create and init the GPU backend. With `--wait-for-driver`, a status server answers `/healthz` (200) and
 * `/readyz` (503, saying what is missing) on the metrics address while start-up is retried; it closes once the
 * devices are known, before telemetry takes the address over.
 */
async function startBackend(config: Config, logger: Logger, signal: AbortSignal | undefined): Promise<GpuBackend> {
  const create = (): GpuBackend => createBackend(config, logger.child({ component: 'backend' }));
  if (!config.waitForDriver) return initBackend(create, { wait: false, logger });
  let reason = 'starting the GPU backend';
  const status = await startHttpServer({
    host: config.metricsAddress.host,
    port: config.metricsAddress.port,
    metrics: () => Promise.resolve(''),
    readiness: () => ({ ready: false, reason }),
    logger,
  });
  try {
    return await initBackend(create, {
      wait: true,
      logger,
      onWaiting: (why) => (reason = `waiting for the GPU driver: ${why}`),
      ...(signal === undefined ? {} : { signal }),
    });
  } finally {
    await status.close();
  }
}
