/**
 * Telemetry composition: sampler → the catalogue and accounting series (built by metric-data.ts from
 * observe.ts and accounting.ts, own-metrics.ts) joined to the OTel MeterProvider's (DRA operation metrics) →
 * export paths:
 * - Prometheus (`@opentelemetry/exporter-prometheus`, `preventServerStart`, for the SDK's metrics; the own series
 *   written by prometheus-text.ts in the serializer's format), served by our HTTP server on `/metrics` together
 *   with the dcgm-exporter-compatible series (when `dcgmCompat`), `/healthz`, `/readyz`;
 * - OTLP gRPC (`@opentelemetry/exporter-metrics-otlp-grpc`) in a PeriodicExportingMetricReader, when an
 *   endpoint is given (src/config.ts resolves `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_METRIC_EXPORT_INTERVAL`).
 *   Imported only then (dynamic `import()`): the exporter brings @grpc/grpc-js and protobufjs, ~37 MiB of RSS
 *   a node without a collector never uses (BENCHMARKS.md, footprint).
 * The Resource merges the SDK defaults (`telemetry.sdk.*`), `OTEL_RESOURCE_ATTRIBUTES` / `OTEL_SERVICE_NAME`
 * (the SDK's env detector) and ours, ours winning: `service.name` "gpulet", `service.version`,
 * `k8s.node.name`, and the caller's `host.*` attributes.
 * The same meter carries the DRA operation metrics (dra-metrics.ts): the kubelet plugin reports its calls to
 * `Telemetry.dra`, and `/metrics` gives them NVIDIA-like Prometheus names (rename.ts).
 */
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import type { ClaimUsageStore, OwnershipSource, PodRef } from '../model/types.js';
import { errorMessage } from '../errors.js';
import type { HealthTracker } from '../gpu/health.js';
import type { GpuBackend, GpuInfo, Inventory, Sample } from '../gpu/types.js';
import type { Logger } from '../log.js';
import type { DriverName, PoolName } from '../model/names.js';
import { checkOption, OPTION_BOUNDS } from '../options.js';
import { withTimeout } from '../util/timeout.js';
import { ClaimAccounting } from './accounting.js';
import { deviceIdentities, type DeviceIdentity } from './attributes.js';
import { renderDcgm } from './dcgm.js';
import { DRA_PROMETHEUS_NAMES, DraMetrics, type PreparedClaimsSource } from './dra-metrics.js';
import { startHttpServer, type HttpLimits, type HttpServerStats } from './http.js';
import { INSTRUMENTS } from './instruments.js';
import type { ObservationContext } from './observe.js';
import { MetricDataBuilder } from './metric-data.js';
import { ExportFailureLog } from './export-failures.js';
import { hrNow, observeOwn, ownMetricsExporter } from './own-metrics.js';
import { renderOwnMetrics } from './prometheus-text.js';
import { renameMetrics } from './rename.js';
import { Sampler } from './sampler.js';
import { ScrapeCache, type ScrapeCacheStats } from './scrape-cache.js';

/** OTLP gRPC export settings. */
export interface OtlpOptions {
  /** Collector URL, e.g. `http://otel-collector:4317` (`http://` = plaintext, `https://` = TLS). */
  readonly endpoint: string;
  /**
   * Export interval, ms: an integer within `OPTION_BOUNDS.otlpExportIntervalMs` (src/options.ts, the bounds of
   * `--otlp-export-interval`); default 60000, the OTel default of `OTEL_METRIC_EXPORT_INTERVAL`.
   */
  readonly intervalMs?: number;
  /** Export timeout, ms (default 30000, clamped to the interval). */
  readonly timeoutMs?: number;
}

/** Options of {@link startTelemetry}. */
export interface TelemetryOptions {
  readonly backend: Pick<GpuBackend, 'sample' | 'inventory'>;
  readonly ownership: OwnershipSource;
  /** The prepared claims, for `gpulet_dra_prepared_claims` / `_devices` (main passes the claim state's view); none without. */
  readonly prepared?: PreparedClaimsSource;
  readonly health: HealthTracker;
  /** Kubernetes node name: `k8s.node.name` and dcgm `Hostname`. */
  readonly nodeName: string;
  /** `service.version` (the gpulet version). */
  readonly serviceVersion: string;
  /** Extra resource attributes, e.g. `host.name`, `host.id`, `host.arch`. */
  readonly resourceAttributes?: Readonly<Record<string, string>>;
  /** Interval between GPU samples, ms: an integer within `OPTION_BOUNDS.sampleIntervalMs` (src/options.ts, the bounds of `--sample-interval`). */
  readonly sampleIntervalMs: number;
  /** Listen host of `/metrics`, `/healthz`, `/readyz`. */
  readonly metricsHost: string;
  /** Listen port (0 = a free port; the CLI default is 9400 like dcgm-exporter). */
  readonly metricsPort: number;
  /** OTLP gRPC export; none when absent. */
  readonly otlp?: OtlpOptions;
  /** Also serve dcgm-exporter `DCGM_FI_*` series on `/metrics`. */
  readonly dcgmCompat: boolean;
  /** DRA driver name for `dra_driver_name` (`Config.driverName`). */
  readonly driverName: DriverName;
  /** DRA pool name for `dra_pool_name` (`Config.poolName`). */
  readonly poolName: PoolName;
  /**
   * The containers of a pod that use a claim, for the `container` label of the `DCGM_FI_*` series (main passes
   * the kubelet pod-resources client's, src/k8s/pod-resources.ts); no label when absent or undefined. Cheap, never throws.
   */
  readonly containersOf?: (pod: PodRef, claimName: string) => readonly string[] | undefined;
  /** Upper bound of `shutdown()`, ms (default 5000). */
  readonly shutdownTimeoutMs?: number;
  /** How long one rendered `/metrics` body is served again, ms (default `--metrics-cache-ttl`'s, src/options.ts;
   * 0: only scrapes arriving during a render share it). */
  readonly scrapeCacheMs?: number;
  /** Bounds of the HTTP server (concurrent scrapes, pipelining, idle sockets); defaults in http.ts. */
  readonly httpLimits?: Partial<HttpLimits>;
  /**
   * Asked on every `/readyz` once `setReady(true)`: a reason makes it 503 with that reason (main passes the
   * claim state's "state lock stuck since ..."); undefined keeps it 200. Must be cheap and never throw.
   */
  readonly notReady?: () => string | undefined;
  /** Where per-claim usage is carried across restarts (main passes the claim state's checkpoint); none: not carried. */
  readonly usageStore?: ClaimUsageStore;
  /** Compute slices of a GPU in MIG mode, for the MIG devices' energy shares (accounting.ts); default 7. */
  readonly computeSlicesOf?: (gpu: GpuInfo) => number | undefined;
  /** Interval between checkpoint writes of the claims' usage, ms (default accounting.ts `DEFAULT_PERSIST_INTERVAL_MS`). */
  readonly usagePersistIntervalMs?: number;
  readonly logger: Logger;
}


/** A running telemetry pipeline. */
export interface Telemetry {
  /** Port of the HTTP server. */
  readonly port: number;
  /** `http://<host>:<port>` of the HTTP server. */
  readonly url: string;
  /** Set `/readyz`: 200 when ready (and `notReady` has no reason), 503 with `reason` otherwise. Starts not ready ("starting"). */
  setReady(ready: boolean, reason?: string): void;
  /** Export to OTLP now (no-op without OTLP). Never rejects; failures are logged. */
  forceFlush(): Promise<void>;
  /** Flush, then stop sampling, readers and the HTTP server. Idempotent, bounded by `shutdownTimeoutMs`. */
  shutdown(): Promise<void>;
  /** Scrape counters: renders vs shared answers, and the HTTP server's bounds at work. */
  scrapeStats(): ScrapeCacheStats & HttpServerStats;
  /** The DRA operation metrics: hand it to the kubelet plugin as its call observer (src/main.ts does). */
  readonly dra: DraMetrics;
  /**
   * The backend's inventory changed (a dynamic MIG instance created by prepare or destroyed by unprepare, issue
   * 12): take a sample now (after the one in flight, which may predate the change) so the new device's readings
   * appear without waiting an interval, and drop the rendered `/metrics` body so no scrape is answered with
   * the departed device. Series of devices no longer in the inventory are never observed, whether this is
   * called or not (see `startTelemetry`); this only makes the change visible sooner. Never rejects.
   */
  inventoryChanged(): void;
  /**
   * A claim was prepared or unprepared: take a sample now (after the one in flight) so the per-claim accounting
   * starts or closes the claim's interval at once, not up to an interval later. Never rejects.
   */
  claimsChanged(): void;
  /** The per-claim accounting (accounting.ts). */
  readonly accounting: ClaimAccounting;
}

/** Wait for `p` at most `ms`; never rejects: a failure or the timeout is logged, naming `what`. */
function bounded(p: Promise<unknown>, ms: number, what: string, logger: Logger): Promise<void> {
  const settled = p.then(
    () => undefined,
    (err: unknown) => logger.warn({ err: errorMessage(err) }, `telemetry: ${what} failed`),
  );
  return withTimeout(settled, ms, () => logger.warn({ timeoutMs: ms }, `telemetry: ${what} timed out`));
}

/**
 * Start sampling, the OTel pipeline and the HTTP server. Takes one sample before returning (a failure is
 * logged; the endpoints then serve health and status only until a sample succeeds).
 * @throws RangeError for a `sampleIntervalMs` or `otlp.intervalMs` outside its bounds (src/options.ts); Error when
 *   the HTTP address cannot be bound.
 */
export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  const logger = opts.logger.child({ component: 'telemetry' });
  const accounting = new ClaimAccounting({
    logger,
    paths: opts.otlp === undefined ? ['prometheus'] : ['prometheus', 'otlp'],
    ...(opts.usageStore === undefined ? {} : { store: opts.usageStore }),
    ...(opts.computeSlicesOf === undefined ? {} : { computeSlicesOf: opts.computeSlicesOf }),
    ...(opts.usagePersistIntervalMs === undefined ? {} : { persistIntervalMs: opts.usagePersistIntervalMs }),
  });
  const sampler = new Sampler({
    backend: opts.backend,
    intervalMs: opts.sampleIntervalMs,
    logger,
    onSample: (sample) => accounting.observe(sample, opts.ownership.owners(), opts.backend.inventory()),
  });
  const ours = {
    'service.name': 'gpulet',
    'service.version': opts.serviceVersion,
    'k8s.node.name': opts.nodeName,
    ...opts.resourceAttributes,
  };
  const resource = defaultResource().merge(detectResources({ detectors: [envDetector] })).merge(resourceFromAttributes(ours));

  // The catalogue and accounting series are built by metric-data.ts, not by SDK instruments (the SDK would keep
  // every departed claim's attribute set for the life of the process); each export path adds them to the scope
  // of the meter below.
  const scope = { name: 'gpulet', version: opts.serviceVersion };
  const observe = () => observeOwn(INSTRUMENTS, context, () => accounting.collect(), logger);
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: IMetricReader[] = [prometheus];
  const exportFailures = opts.otlp === undefined ? undefined : new ExportFailureLog({ logger, endpoint: opts.otlp.endpoint });
  if (opts.otlp !== undefined) {
    const intervalMs = checkOption('otlpExportIntervalMs', opts.otlp.intervalMs ?? OPTION_BOUNDS.otlpExportIntervalMs.default);
    const timeoutMs = Math.min(opts.otlp.timeoutMs ?? 30_000, intervalMs);
    const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-grpc');
    const otlp = new OTLPMetricExporter({ url: opts.otlp.endpoint, timeoutMillis: timeoutMs });
    const exporter = ownMetricsExporter(otlp, scope, observe, (ok, error) => {
      exportFailures?.record(ok, error);
      if (ok) accounting.delivered('otlp');
    });
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: intervalMs, exportTimeoutMillis: timeoutMs }));
    logger.info({ endpoint: opts.otlp.endpoint, intervalMs }, 'telemetry: OTLP gRPC export enabled');
  }
  const provider = new MeterProvider({ resource, readers });
  const meter = provider.getMeter(scope.name, scope.version);

  let inventory: Inventory | undefined;
  let identities = new Map<string, DeviceIdentity>();
  const currentIdentities = (): Map<string, DeviceIdentity> => {
    const inv = opts.backend.inventory();
    if (inv !== inventory) {
      inventory = inv;
      identities = deviceIdentities(inv);
    }
    return identities;
  };
  // A sample may list a device the inventory no longer has (a MIG instance destroyed since the sample was
  // taken): its readings must leave with the device, not one sample interval later. Filtered once per
  // (sample, inventory) pair, so a scrape pays a map lookup.
  let filtered: { readonly sample: Sample; readonly identities: ReadonlyMap<string, DeviceIdentity>; readonly result: Sample } | undefined;
  const currentSample = (ids: ReadonlyMap<string, DeviceIdentity>): Sample | undefined => {
    const sample = sampler.latest();
    if (sample === undefined) return undefined;
    if (filtered?.sample === sample && filtered.identities === ids) return filtered.result;
    const devices = sample.devices.filter((d) => ids.has(d.uuid));
    const result = devices.length === sample.devices.length ? sample : { timestampMs: sample.timestampMs, devices };
    filtered = { sample, identities: ids, result };
    return result;
  };
  const context = (): ObservationContext => {
    const ids = currentIdentities();
    return { sample: currentSample(ids), identities: ids, owners: opts.ownership.owners(), health: opts.health };
  };
  const dra = new DraMetrics(meter, {
    driverName: opts.driverName,
    ...(opts.prepared === undefined ? {} : { prepared: opts.prepared }),
    kindOf: (uuid) => currentIdentities().get(uuid)?.kind,
  });
  // Always observed, so the SDK always reports the meter's scope: PeriodicExportingMetricReader skips an export
  // whose ResourceMetrics has no scope (sdk-metrics 3.x `_doRun`), and the own series ride on that export.
  meter
    .createObservableCounter('gpulet.telemetry.sample.failures', { unit: '{failure}', description: 'GPU samples that failed (the previous sample was kept)' })
    .addCallback((r) => r.observe(sampler.stats().failed));
  if (exportFailures !== undefined) {
    meter
      .createObservableCounter('gpulet.telemetry.otlp.export.failures', { unit: '{failure}', description: 'OTLP exports that failed (their interval did not reach the collector)' })
      .addCallback((r) => r.observe(exportFailures.failures()));
  }

  await sampler.sampleNow();
  sampler.start();

  const serializer = new PrometheusSerializer();
  const scrapeBuilder = new MetricDataBuilder(() => AggregationTemporality.CUMULATIVE, hrNow());
  const { driverName, poolName } = opts;
  let readiness = { ready: false, reason: 'starting' };
  const renderMetrics = async (): Promise<string> => {
    const { resourceMetrics, errors } = await prometheus.collect();
    for (const err of errors) logger.warn({ err: errorMessage(err) }, 'telemetry: collection error');
    // The SDK's metrics (target_info, the DRA operation metrics) through its serializer, then the own series
    // written directly (prometheus-text.ts: the same text, without the serializer's per-point regexes).
    let text = serializer.serialize(renameMetrics(resourceMetrics, DRA_PROMETHEUS_NAMES));
    if (!text.endsWith('\n')) text += '\n';
    text += renderOwnMetrics(scrapeBuilder.build(observe(), hrNow()), scope);
    accounting.delivered('prometheus');
    if (opts.dcgmCompat) {
      const c = context();
      text += renderDcgm({
        ...c, lastXid: (u) => opts.health.lastXid(u), hostname: opts.nodeName, driverName, poolName,
        ...(opts.containersOf === undefined ? {} : { containersOf: opts.containersOf }),
      });
    }
    return text;
  };
  const scrapes = new ScrapeCache({ render: renderMetrics, ttlMs: checkOption('metricsCacheMs', opts.scrapeCacheMs ?? OPTION_BOUNDS.metricsCacheMs.default) });
  let server;
  try {
    server = await startHttpServer({
      host: opts.metricsHost,
      port: opts.metricsPort,
      metrics: () => scrapes.get(),
      readiness: () => {
        const reason = readiness.ready ? opts.notReady?.() : undefined;
        return reason === undefined ? readiness : { ready: false, reason };
      },
      logger,
      ...(opts.httpLimits === undefined ? {} : { limits: opts.httpLimits }),
    });
  } catch (err) {
    await sampler.stop();
    await bounded(provider.shutdown(), 1000, 'meter provider shutdown', logger);
    throw err;
  }
  const httpServer = server;
  const hostForUrl = opts.metricsHost.includes(':') ? `[${opts.metricsHost}]` : opts.metricsHost;
  const shutdownTimeoutMs = opts.shutdownTimeoutMs ?? 5_000;
  let shuttingDown: Promise<void> | undefined;
  logger.info({ port: httpServer.port, dcgmCompat: opts.dcgmCompat }, 'telemetry: serving /metrics, /healthz, /readyz');

  return {
    port: httpServer.port,
    url: `http://${hostForUrl}:${httpServer.port}`,
    setReady(ready: boolean, reason = 'not ready') {
      readiness = { ready, reason: ready ? '' : reason };
    },
    forceFlush: () => bounded(provider.forceFlush(), shutdownTimeoutMs, 'flush', logger),
    scrapeStats: () => ({ ...scrapes.stats(), ...httpServer.stats() }),
    dra,
    accounting,
    claimsChanged() {
      void sampler.refresh().then(() => scrapes.invalidate());
    },
    inventoryChanged() {
      scrapes.invalidate();
      void sampler.refresh().then(() => scrapes.invalidate());
    },
    shutdown() {
      shuttingDown ??= (async () => {
        readiness = { ready: false, reason: 'shutting down' };
        await sampler.stop();
        await bounded(accounting.flush(), shutdownTimeoutMs, 'recording the claims\' usage', logger);
        // MeterProvider.shutdown() flushes every reader first (a final OTLP export), then shuts them down.
        await bounded(provider.shutdown(), shutdownTimeoutMs, 'meter provider shutdown', logger);
        await bounded(httpServer.close(), shutdownTimeoutMs, 'HTTP server close', logger);
      })();
      return shuttingDown;
    },
  };
}
