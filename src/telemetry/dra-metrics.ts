/**
 * DRA operation metrics: the kubelet's NodePrepareResources / NodeUnprepareResources calls as gpulet served
 * them (requests by operation and result, their duration, the calls in flight, claims answered with an error
 * by reason) and the prepared state (claims, devices by type).
 *
 * Same structure as NVIDIA's DRA driver's `nvidia_dra_*` metrics (kubernetes-sigs/dra-driver-nvidia-gpu
 * package `pkg/metrics`, recorded by cmd/gpu-kubelet-plugin/driver.go `nodePrepareResource` /
 * `nodeUnprepareResource`, commit 1191eaaa; test/reference/metrics.md), with these differences, on purpose:
 * - NVIDIA counts per claim, and only claims that succeeded (`ObserveRequest` runs on the success path; failures
 *   go to `nvidia_dra_node_{prepare,unprepare}_errors_total{error_type}` instead). gpulet counts per gRPC call
 *   (the kubelet sends one pod's claims per call, so for the usual one-claim pod the two agree), with a `result`
 *   label: `success` when every claim of the call was prepared (unprepared), `error` when the call was refused
 *   or any claim got an error. Failed claims are counted one by one in `gpulet_dra_claim_errors_total`, with
 *   `operation` and NVIDIA's `error_type` label.
 * - The duration is that of the whole call, from the handler's entry to the answer (the state lock's wait
 *   included, as NVIDIA's `t0` is taken before its prepare/unprepare lock), for successes and errors alike.
 * - Operation values are the gRPC method names (`NodePrepareResources`, `NodeUnprepareResources`: the
 *   kubelet's own `dra_grpc_operations_duration_seconds{method_name}` names them so too) where NVIDIA says
 *   `prepare` / `unprepare`.
 * - No `node` label on the prepared-device gauge: the node is the resource's `k8s.node.name` (Prometheus:
 *   `target_info`, or the scrape's target labels), as on every gpulet series.
 * - gpulet's start-up and periodic clean-up unprepare claims without a kubelet call; they are not counted
 *   (NVIDIA's checkpoint clean-up calls the same `nodeUnprepareResource` and is).
 *
 * OTel names and units follow the OTel conventions (`http.server.request.duration` in `s`,
 * `http.server.active_requests` in `{request}`); the Prometheus names are NVIDIA's with gpulet's prefix, set by
 * {@link DRA_PROMETHEUS_NAMES} on `/metrics` only (OTLP carries the OTel names).
 *
 * Hot path: a call costs four SDK records with attribute objects made once here; nothing is allocated by this
 * module per call.
 */
import type { Attributes, Counter, Histogram, Meter, UpDownCounter } from '@opentelemetry/api';

/** The DRAPlugin method a call was (the kubelet's proto, pkg/apis/dra/v1/api.proto `service DRAPlugin`). */
export type DraOperation = 'NodePrepareResources' | 'NodeUnprepareResources';

/** Why a claim was answered with an error (src/dra/kubelet/grpc-dra-service.ts `DraClaimErrorReason`). */
export type DraClaimErrorReason = 'invalid_claim' | 'prepare_devices' | 'unprepare_devices' | 'batch_failed' | 'missing_result';

/** Every operation, in exposition order. */
export const DRA_OPERATIONS: readonly DraOperation[] = ['NodePrepareResources', 'NodeUnprepareResources'];

/** OTel instrument names of the DRA metrics. */
export const DRA_METRICS = {
  requests: 'gpulet.dra.requests',
  duration: 'gpulet.dra.request.duration',
  active: 'gpulet.dra.active_requests',
  claimErrors: 'gpulet.dra.claim.errors',
  preparedClaims: 'gpulet.dra.prepared_claims',
  preparedDevices: 'gpulet.dra.prepared_devices',
} as const;

/**
 * Prometheus names that are not the OTel name with `.` → `_` (plus `_total` for a counter, which the exporter
 * adds itself): the OTel→Prometheus compatibility spec's unit suffix `_seconds`, and NVIDIA's `requests_inflight`.
 */
export const DRA_PROMETHEUS_NAMES: ReadonlyMap<string, string> = new Map([
  [DRA_METRICS.duration, 'gpulet_dra_request_duration_seconds'],
  [DRA_METRICS.active, 'gpulet_dra_requests_inflight'],
]);

/**
 * Bucket bounds of `gpulet.dra.request.duration`, seconds: NVIDIA's nine (`prometheus.ExponentialBuckets(0.05,
 * 2, 9)`: 0.05 … 12.8, so every `le` a dashboard of `nvidia_dra_request_duration_seconds` uses exists here),
 * three below them (a gpulet prepare takes milliseconds: one API GET and two fsynced writes) and two above, up
 * to the 40 s a gpulet session may take (10 s lock wait + 30 s deadline), inside the kubelet's 45 s timeout.
 */
export const DRA_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 40];

/** The prepared claims, as telemetry reads them at each collection (src/state/ownership.ts `OwnershipView`). */
export interface PreparedClaimsSource {
  /** Claims in PrepareCompleted, each with its devices' UUIDs (`GPU-…` / `MIG-…`). */
  prepared(): readonly { readonly devices: readonly { readonly uuid: string }[] }[];
}

/** Options of {@link DraMetrics}. */
export interface DraMetricsOptions {
  /** DRA driver name, the `driver` attribute of every series (NVIDIA's label). */
  readonly driverName: string;
  /** The prepared claims; without it there are no `prepared_*` series. */
  readonly prepared?: PreparedClaimsSource;
  /** Kind of a device by UUID (from the inventory); undefined falls back to the UUID's prefix. */
  readonly kindOf?: (uuid: string) => 'gpu' | 'mig' | undefined;
}

type ByOperation<T> = Readonly<Record<DraOperation, T>>;

/**
 * The DRA metrics on one meter. Its three methods are the kubelet plugin's call hooks
 * (src/dra/kubelet/grpc-dra-service.ts `DraCallObserver`): src/main.ts hands this object to the plugin.
 */
export class DraMetrics {
  private readonly requests: Counter;
  private readonly duration: Histogram;
  private readonly active: UpDownCounter;
  private readonly claimErrors: Counter;
  private readonly attrs: ByOperation<{ readonly operation: Attributes; readonly success: Attributes; readonly error: Attributes; readonly reasons: Readonly<Record<DraClaimErrorReason, Attributes>> }>;

  /** Create the instruments on `meter`; the request and in-flight series start at 0 for both operations. */
  constructor(meter: Meter, opts: DraMetricsOptions) {
    const driver = opts.driverName;
    this.requests = meter.createCounter(DRA_METRICS.requests, {
      unit: '{request}',
      description: 'NodePrepareResources and NodeUnprepareResources calls served, by operation and result (error: the call was refused or a claim failed)',
    });
    this.duration = meter.createHistogram(DRA_METRICS.duration, {
      unit: 's',
      description: 'Duration of NodePrepareResources and NodeUnprepareResources calls, from the request to the answer',
      advice: { explicitBucketBoundaries: [...DRA_DURATION_BUCKETS] },
    });
    this.active = meter.createUpDownCounter(DRA_METRICS.active, {
      unit: '{request}',
      description: 'NodePrepareResources and NodeUnprepareResources calls in flight',
    });
    this.claimErrors = meter.createCounter(DRA_METRICS.claimErrors, {
      unit: '{error}',
      description: 'Claims answered with an error by NodePrepareResources or NodeUnprepareResources, by reason (error.type)',
    });
    const forOperation = (operation: DraOperation) => {
      const reason = (r: DraClaimErrorReason): Attributes => ({ driver, operation, 'error.type': r });
      return {
        operation: { driver, operation },
        success: { driver, operation, result: 'success' },
        error: { driver, operation, result: 'error' },
        reasons: {
          invalid_claim: reason('invalid_claim'),
          prepare_devices: reason('prepare_devices'),
          unprepare_devices: reason('unprepare_devices'),
          batch_failed: reason('batch_failed'),
          missing_result: reason('missing_result'),
        },
      };
    };
    this.attrs = { NodePrepareResources: forOperation('NodePrepareResources'), NodeUnprepareResources: forOperation('NodeUnprepareResources') };
    for (const op of DRA_OPERATIONS) {
      // Series visible from the first scrape, so that `increase()` sees the first call (NVIDIA pre-creates them too).
      this.requests.add(0, this.attrs[op].success);
      this.requests.add(0, this.attrs[op].error);
      this.active.add(0, this.attrs[op].operation);
    }
    const prepared = opts.prepared;
    if (prepared !== undefined) {
      const claims = meter.createObservableUpDownCounter(DRA_METRICS.preparedClaims, { unit: '{claim}', description: 'ResourceClaims prepared on this node (PrepareCompleted)' });
      const devices = meter.createObservableUpDownCounter(DRA_METRICS.preparedDevices, { unit: '{device}', description: 'Devices of the prepared ResourceClaims, by device type (gpu, mig)' });
      const claimAttrs: Attributes = { driver };
      const gpuAttrs: Attributes = { driver, device_type: 'gpu' };
      const migAttrs: Attributes = { driver, device_type: 'mig' };
      const kindOf = opts.kindOf ?? (() => undefined);
      meter.addBatchObservableCallback(
        (result) => {
          const list = prepared.prepared();
          let gpus = 0;
          let migs = 0;
          for (const claim of list) {
            for (const d of claim.devices) {
              const kind = kindOf(d.uuid) ?? (d.uuid.startsWith('MIG-') ? 'mig' : 'gpu');
              if (kind === 'mig') migs += 1;
              else gpus += 1;
            }
          }
          result.observe(claims, list.length, claimAttrs);
          result.observe(devices, gpus, gpuAttrs);
          result.observe(devices, migs, migAttrs);
        },
        [claims, devices],
      );
    }
  }

  /** A call entered the plugin's handler. */
  readonly started = (operation: DraOperation): void => {
    this.active.add(1, this.attrs[operation].operation);
  };

  /** One claim of a call was answered with an error, for `reason`. */
  readonly claimFailed = (operation: DraOperation, reason: DraClaimErrorReason): void => {
    this.claimErrors.add(1, this.attrs[operation].reasons[reason]);
  };

  /** A call was answered after `seconds`; `ok` false when it was refused or a claim failed. */
  readonly finished = (operation: DraOperation, seconds: number, ok: boolean): void => {
    const a = this.attrs[operation];
    const outcome = ok ? a.success : a.error;
    this.active.add(-1, a.operation);
    this.requests.add(1, outcome);
    this.duration.record(seconds, outcome);
  };
}
