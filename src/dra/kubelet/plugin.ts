/**
 * The kubelet plugin: two gRPC servers on unix sockets (docs/contracts.md §1–3).
 * - DRA socket `<pluginsDir>/<driver>/dra[-<podUID>].sock`: DRAPlugin under both
 *   `k8s.io.kubelet.pkg.apis.dra.v1` and `...v1beta1` (Kubernetes ≥ 1.34 / 1.32), plus
 *   `v1.DRAResourceHealth` and `v1alpha1.DRAResourceHealth` when a health source is given (the kubelet 1.37
 *   picks v1, older ones v1alpha1).
 * - Registration socket `<registryDir>/<driver>[-<podUID>]-reg.sock`: pluginregistration.Registration,
 *   which the kubelet's plugin watcher discovers.
 * The DRA socket is listening before the registration socket appears, so the kubelet can use the endpoint
 * as soon as it learns of it; on stop the registration socket goes first. A socket that is removed while we
 * run (kubelet restart, cleanup) is re-created (`socket-guard.ts`), so the kubelet registers us again.
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import type { DriverName, ObjectUid } from '../../model/names.js';
import type { ClaimPreparer } from '../../model/types.js';
import { loadKubeletServices, type HealthApiVersion } from './grpc-protos.js';
import { bindUnix, removeOwnSocket, shutdownServer, type BoundSocket } from './grpc-unix.js';
import { createDraService, type DraCallObserver } from './grpc-dra-service.js';
import { createRegistrationService, type RegistrationCallback, type RegistrationState } from './registration.js';
import { createHealthService, type HealthServiceHandle, type HealthSource } from './health-service.js';
import { socketPaths } from './sockets.js';
import { guardSockets, type SocketGuard } from './socket-guard.js';

/** Options of {@link startKubeletPlugin}. */
export interface KubeletPluginOptions {
  /** DRA driver name (DNS subdomain ≤ 63 chars), e.g. `gpu.gpulet.dev`. */
  readonly driverName: DriverName;
  /** Kubelet plugin registry dir, e.g. `/var/lib/kubelet/plugins_registry`. */
  readonly registryDir: string;
  /** Kubelet plugins dir, e.g. `/var/lib/kubelet/plugins`. */
  readonly pluginsDir: string;
  /** Pod UID (downward API `metadata.uid`, a lower-case UUID) for rolling-update socket names; omit for the plain names. */
  readonly podUid?: ObjectUid | undefined;
  /** Prepares and unprepares claims. */
  readonly preparer: ClaimPreparer;
  /** Device health; when given, DRAResourceHealth is served and advertised. */
  readonly health?: HealthSource | undefined;
  readonly logger: Logger;
  /** Told of every NodePrepareResources / NodeUnprepareResources call, both API versions (telemetry's counters). */
  readonly observer?: DraCallObserver | undefined;
  /** Fired on every NotifyRegistrationStatus (republish ResourceSlices when `ok`). */
  readonly onRegistered?: RegistrationCallback | undefined;
  /** Graceful shutdown budget per server before forcing, in ms. Default 5000. */
  readonly shutdownTimeoutMs?: number;
  /** Health keep-alive re-send period in ms (tests). Default 10000. */
  readonly healthResendIntervalMs?: number;
  /** Period of the fallback check that re-creates removed sockets, ms. Default 2000. */
  readonly socketCheckIntervalMs?: number;
}

/** A running kubelet plugin. */
export interface KubeletPlugin {
  /** Absolute path of the registration socket. */
  readonly registrationSocket: string;
  /** Absolute path of the DRA socket (advertised as `PluginInfo.endpoint`). */
  readonly draSocket: string;
  /** Last registration status the kubelet reported. */
  registration(): RegistrationState;
  /**
   * NodeWatchResources calls received per DRAResourceHealth version (which one the kubelet negotiated); all
   * zero when health is not served.
   */
  healthStreamsOpened(): Readonly<Record<HealthApiVersion, number>>;
  /** Re-create a removed socket now (the guard also does it on its own: fs.watch + periodic check). */
  checkSockets(): Promise<void>;
  /** End health streams, stop both servers (graceful, then forced) and remove our sockets. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Start the kubelet plugin.
 * @throws ConfigError on an over-long socket path, a non-socket file in the way, or when a socket cannot be
 *   bound (whatever was started is stopped again first).
 */
export async function startKubeletPlugin(opts: KubeletPluginOptions): Promise<KubeletPlugin> {
  const logger = opts.logger;
  const paths = socketPaths(opts);
  const services = loadKubeletServices();
  const shutdownMs = opts.shutdownTimeoutMs ?? 5000;

  let health: HealthServiceHandle | undefined;
  if (opts.health) {
    health = createHealthService({
      source: opts.health,
      logger,
      ...(opts.healthResendIntervalMs !== undefined ? { resendIntervalMs: opts.healthResendIntervalMs } : {}),
    });
  }
  const registration = createRegistrationService({
    driverName: opts.driverName,
    endpoint: paths.dra,
    healthServed: health !== undefined,
    logger,
    onRegistered: opts.onRegistered,
  });
  const makeDraServer = (): grpc.Server => {
    const server = new grpc.Server();
    server.addService(services.dra.v1, createDraService(opts.preparer, 'v1', logger, opts.observer));
    server.addService(services.dra.v1beta1, createDraService(opts.preparer, 'v1beta1', logger, opts.observer));
    if (health) {
      server.addService(services.health.v1, health.implementations.v1);
      server.addService(services.health.v1alpha1, health.implementations.v1alpha1);
    }
    return server;
  };
  const makeRegServer = (): grpc.Server => {
    const server = new grpc.Server();
    server.addService(services.registration, registration.implementation);
    return server;
  };

  /** The two listeners, DRA first: index 0 = DRA, 1 = registration. */
  const bound: { server: grpc.Server; socket: BoundSocket }[] = [];
  const retired: Promise<void>[] = [];
  const guarded: { guard?: SocketGuard } = {};
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      guarded.guard?.stop();
      health?.close();
      // Registration first: the kubelet stops discovering us before the endpoint disappears.
      for (const b of [...bound].reverse()) {
        await removeOwnSocket(b.socket, logger);
        await shutdownServer(b.server, shutdownMs);
      }
      await Promise.all(retired);
      logger.info('kubelet plugin stopped');
    })();
    return stopping;
  };

  /** Bind a fresh server for listener `i` and retire the old one (its in-flight calls finish). */
  const rebind = async (i: number, make: () => grpc.Server, socketPath: string): Promise<BoundSocket> => {
    const server = make();
    const socket = await bindUnix(server, socketPath, logger);
    const old = bound[i];
    bound[i] = { server, socket };
    if (old) retired.push(shutdownServer(old.server, shutdownMs));
    return socket;
  };

  try {
    const draServer = makeDraServer();
    bound.push({ server: draServer, socket: await bindUnix(draServer, paths.dra, logger) });
    const regServer = makeRegServer();
    bound.push({ server: regServer, socket: await bindUnix(regServer, paths.registration, logger) });
  } catch (err) {
    await stop();
    throw err;
  }
  guarded.guard = guardSockets(
    [
      { current: () => bound[0]!.socket, recreate: () => rebind(0, makeDraServer, paths.dra) },
      { current: () => bound[1]!.socket, recreate: () => rebind(1, makeRegServer, paths.registration) },
    ],
    logger,
    opts.socketCheckIntervalMs,
  );
  logger.info(
    { driver: opts.driverName, registrationSocket: paths.registration, draSocket: paths.dra, health: !!health },
    'kubelet plugin listening',
  );
  return {
    registrationSocket: paths.registration,
    draSocket: paths.dra,
    registration: () => registration.state(),
    healthStreamsOpened: () => health?.streamsOpened() ?? { v1: 0, v1alpha1: 0 },
    checkSockets: () => guarded.guard?.check() ?? Promise.resolve(),
    stop,
  };
}
