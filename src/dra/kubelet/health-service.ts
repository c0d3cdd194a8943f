/**
 * DRAResourceHealth (KEP-4680; kubernetes/kubelet pkg/apis/dra-health/v1 and v1alpha1, the same messages in
 * two proto packages; both are served on the DRA socket, the kubelet picks one at registration): the kubelet opens one
 * NodeWatchResources stream per plugin; each message is the driver's COMPLETE device list. The kubelet
 * marks a device Unknown when it hears nothing about it for 30 s (or `health_check_timeout_seconds`), and
 * shows the result in the pod's `containerStatuses[].allocatedResourcesStatus`.
 *
 * This service sends the list on connect, on every change of the {@link HealthSource}, and again every
 * {@link HEALTH_RESEND_INTERVAL_MS} so a quiet but healthy node never goes Unknown. Streams end cleanly
 * (status OK) on {@link HealthServiceHandle.close}.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../errors.js';
import type { HealthApiVersion, WireDeviceHealth, WireEmpty, WireHealthStatus, WireWatchResponse } from './grpc-protos.js';

/** Health of one device as gpulet tracks it. */
export type DeviceHealthState = 'healthy' | 'unhealthy' | 'unknown';

/** One device's health, as the health source reports it. */
export interface DeviceHealthEntry {
  /** ResourceSlice pool name (the node name for gpulet). */
  readonly poolName: string;
  /** Device name in the pool, e.g. `gpu-0` or `gpu-0-mig-1g10gb-19-6`. */
  readonly deviceName: string;
  readonly health: DeviceHealthState;
  /** Human-readable detail (e.g. the XID event); truncated to 1024 characters on the wire. */
  readonly message: string;
  /** Unix time in seconds when the source last determined this status. */
  readonly lastUpdatedUnixSeconds: number;
}

/** Where device health comes from (the inventory/health tracker). */
export interface HealthSource {
  /** Current health of every device of the driver (the complete list). */
  snapshot(): readonly DeviceHealthEntry[];
  /** Subscribe to changes; returns the unsubscribe function. */
  onChange(cb: () => void): () => void;
}

/** Re-send period: well inside the kubelet's default 30 s health timeout. */
export const HEALTH_RESEND_INTERVAL_MS = 10_000;
/** Longest `message` upstream accepts (longer ones are cut to 1021 chars + "..."). */
export const MAX_HEALTH_MESSAGE = 1024;

const WIRE_STATUS: Record<DeviceHealthState, WireHealthStatus> = {
  healthy: 'HEALTHY',
  unhealthy: 'UNHEALTHY',
  unknown: 'UNKNOWN',
};

/** Cut `message` to {@link MAX_HEALTH_MESSAGE} characters the way upstream documents (1021 + "..."). */
export function truncateHealthMessage(message: string): string {
  return message.length <= MAX_HEALTH_MESSAGE ? message : `${message.slice(0, MAX_HEALTH_MESSAGE - 3)}...`;
}

/**
 * Pure: health entries → NodeWatchResourcesResponse. `last_updated_time` is the later of the entry's time
 * and `nowUnixSeconds`: every message re-asserts the status the live monitor holds at send time (this is
 * what keeps the kubelet from timing devices out).
 * @param healthCheckTimeoutSeconds per-device timeout to advertise; 0 = kubelet default (30 s)
 */
export function toWireHealth(
  entries: readonly DeviceHealthEntry[],
  nowUnixSeconds: number,
  healthCheckTimeoutSeconds = 0,
): WireWatchResponse {
  const devices: WireDeviceHealth[] = entries.map((e) => ({
    device: { pool_name: e.poolName, device_name: e.deviceName },
    health: WIRE_STATUS[e.health] ?? 'UNKNOWN',
    last_updated_time: Math.floor(Math.max(e.lastUpdatedUnixSeconds, nowUnixSeconds)),
    health_check_timeout_seconds: healthCheckTimeoutSeconds,
    message: truncateHealthMessage(e.message),
  }));
  return { devices };
}

/** Handle on the health service. */
export interface HealthServiceHandle {
  /** The gRPC implementation to register for `<version>.DRAResourceHealth`, per version. */
  readonly implementations: Readonly<Record<HealthApiVersion, grpc.UntypedServiceImplementation>>;
  /** Number of open NodeWatchResources streams (all versions). */
  activeStreams(): number;
  /** NodeWatchResources calls received since start, per API version (which version the kubelet chose). */
  streamsOpened(): Readonly<Record<HealthApiVersion, number>>;
  /** End every open stream (status OK) and refuse new ones. Idempotent. */
  close(): void;
}

/**
 * Build the DRAResourceHealth service.
 * @param opts.resendIntervalMs keep-alive re-send period, default {@link HEALTH_RESEND_INTERVAL_MS}
 * @param opts.healthCheckTimeoutSeconds advertised per-device timeout, default 0 (kubelet default)
 * @param opts.now clock in ms (tests), default `Date.now`
 */
export function createHealthService(opts: {
  source: HealthSource;
  logger: Logger;
  resendIntervalMs?: number;
  healthCheckTimeoutSeconds?: number;
  now?: () => number;
}): HealthServiceHandle {
  const interval = opts.resendIntervalMs ?? HEALTH_RESEND_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  const closers = new Set<() => void>();
  let closed = false;
  const opened: Record<HealthApiVersion, number> = { v1: 0, v1alpha1: 0 };

  const watchFor = (version: HealthApiVersion): grpc.handleServerStreamingCall<WireEmpty, WireWatchResponse> => (call) => {
    const log = opts.logger.child({ api: `dra-health.${version}` });
    opened[version] += 1;
    if (closed) {
      call.end();
      return;
    }
    const send = (): void => {
      try {
        const msg = toWireHealth(opts.source.snapshot(), Math.floor(now() / 1000), opts.healthCheckTimeoutSeconds);
        call.write(msg);
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'could not send device health');
      }
    };
    const unsubscribe = opts.source.onChange(send);
    const timer = setInterval(send, interval);
    timer.unref();
    let done = false;
    const cleanup = (): void => {
      if (done) return;
      done = true;
      clearInterval(timer);
      unsubscribe();
      closers.delete(finish);
    };
    const finish = (): void => {
      cleanup();
      call.end();
    };
    closers.add(finish);
    call.on('cancelled', cleanup);
    call.on('close', cleanup);
    call.on('error', cleanup);
    log.info('kubelet opened a device health stream');
    send();
  };

  return {
    implementations: { v1: { NodeWatchResources: watchFor('v1') }, v1alpha1: { NodeWatchResources: watchFor('v1alpha1') } },
    activeStreams: () => closers.size,
    streamsOpened: () => ({ ...opened }),
    close: () => {
      closed = true;
      for (const finish of [...closers]) finish();
    },
  };
}
