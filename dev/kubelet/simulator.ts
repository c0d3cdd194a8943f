/**
 * KubeletSimulator: the kubelet's side of DRA plugin registration and claim preparation, for the demo and
 * tests (docs/contracts.md §2; upstream kubelet pluginmanager + pkg/kubelet/cm/dra/plugin):
 * - watches the plugin registry dir (fs.watch plus a periodic rescan; dot-files and non-sockets ignored);
 * - for each new socket: GetInfo (1 s deadline), checks `type` = "DRAPlugin", picks the DRAPlugin version
 *   (v1 before v1beta1, or the forced one), NotifyRegistrationStatus (5 s deadline);
 * - `prepare` / `unprepare` call NodePrepareResources / NodeUnprepareResources on the advertised endpoint
 *   over the chosen version (45 s deadline); `watchHealth` consumes DRAResourceHealth when advertised;
 * - a socket that disappears unregisters its plugin. Several instances of one driver (rolling update):
 *   the most recently registered one is used.
 * Events: 'registered' and 'unregistered' (with the {@link SimulatedPlugin}), 'registrationFailed'
 * (socket path, reason).
 */
import { EventEmitter } from 'node:events';
import { promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { silentLogger, type Logger } from '../../src/log.js';
import {
  loadKubeletServices,
  SERVICE_VERSIONS,
  type HealthApiVersion,
  type DraApiVersion,
  type WireClaim,
  type WirePrepareResponse,
  type WireUnprepareResponse,
  type WireWatchResponse,
} from '../../src/dra/kubelet/grpc-protos.js';
import { dialUnix, serverStream, unaryCall, type StreamHandle } from './grpc-client.js';

/** Kubelet deadlines (ms), from upstream. */
export const KUBELET_DEADLINES = { getInfo: 1_000, notify: 5_000, prepare: 45_000 } as const;

/** A plugin the simulator registered. */
export interface SimulatedPlugin {
  readonly driverName: string;
  readonly registrationSocket: string;
  /** DRA endpoint from GetInfo. */
  readonly endpoint: string;
  readonly supportedVersions: readonly string[];
  /** DRAPlugin version chosen. */
  readonly version: DraApiVersion;
  /** Whether `v1.DRAResourceHealth` or `v1alpha1.DRAResourceHealth` is advertised. */
  readonly healthSupported: boolean;
  /** DRAResourceHealth version chosen (v1 first, as the kubelet 1.37), when advertised. */
  readonly healthVersion?: HealthApiVersion;
  readonly registeredAt: number;
}

/** Options of {@link KubeletSimulator}. */
export interface KubeletSimulatorOptions {
  /** Registry dir to watch (created if missing). */
  readonly registryDir: string;
  /** Force this DRAPlugin version (a kubelet that speaks only v1 or only v1beta1). */
  readonly apiVersion?: DraApiVersion;
  /** Rescan period in ms, default 1000. */
  readonly rescanIntervalMs?: number;
  readonly logger?: Logger;
}

interface Entry {
  plugin: SimulatedPlugin;
  client: grpc.Client;
}

type Events = {
  registered: [SimulatedPlugin];
  unregistered: [SimulatedPlugin];
  registrationFailed: [string, string];
};

const VERSION_OF: Record<string, DraApiVersion> = {
  [SERVICE_VERSIONS.draV1]: 'v1',
  [SERVICE_VERSIONS.draV1beta1]: 'v1beta1',
};

/** Simulates the kubelet's plugin watcher and DRA manager. */
export class KubeletSimulator extends EventEmitter<Events> {
  private readonly services = loadKubeletServices();
  private readonly entries = new Map<string, Entry>();
  private readonly rejected = new Map<string, number>();
  private readonly log: Logger;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanWanted = false;
  private stopped = false;

  constructor(private readonly opts: KubeletSimulatorOptions) {
    super();
    this.log = (opts.logger ?? silentLogger()).child({ component: 'kubelet-simulator' });
  }

  /** DRAPlugin versions this kubelet speaks, in its order of preference. */
  get kubeletVersions(): string[] {
    const forced = this.opts.apiVersion;
    if (forced) return [forced === 'v1' ? SERVICE_VERSIONS.draV1 : SERVICE_VERSIONS.draV1beta1];
    return [SERVICE_VERSIONS.draV1, SERVICE_VERSIONS.draV1beta1];
  }

  /** Create the registry dir, start watching, and scan once. */
  async start(): Promise<void> {
    await fs.mkdir(this.opts.registryDir, { recursive: true });
    this.watcher = watch(this.opts.registryDir, () => this.requestScan());
    this.watcher.on('error', (err) => this.log.warn({ err: err.message }, 'registry watch failed; rescans continue'));
    this.timer = setInterval(() => this.requestScan(), this.opts.rescanIntervalMs ?? 1000);
    this.timer.unref();
    this.requestScan();
    await this.scanning;
  }

  /** Stop watching and close all plugin connections. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.scanning;
    for (const e of this.entries.values()) e.client.close();
    this.entries.clear();
  }

  /** Registered plugins, oldest first. */
  plugins(): SimulatedPlugin[] {
    return [...this.entries.values()].map((e) => e.plugin).sort((a, b) => a.registeredAt - b.registeredAt);
  }

  /**
   * Resolve with the plugin once `driverName` is registered (at once if it already is).
   * @throws Error after `timeoutMs` without registration.
   */
  waitForPlugin(driverName: string, timeoutMs: number): Promise<SimulatedPlugin> {
    const found = this.latest(driverName);
    if (found) return Promise.resolve(found.plugin);
    return new Promise((resolve, reject) => {
      const onReg = (p: SimulatedPlugin): void => {
        if (p.driverName !== driverName) return;
        clearTimeout(timer);
        this.off('registered', onReg);
        resolve(p);
      };
      const timer = setTimeout(() => {
        this.off('registered', onReg);
        reject(new Error(`driver ${driverName} did not register in ${this.opts.registryDir} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on('registered', onReg);
    });
  }

  /**
   * NodePrepareResources on the driver's endpoint (the only driver when `driverName` is omitted). The claims
   * go on the wire as given: plain strings, as a kubelet sends them (a `ClaimRef` is one; a test may send a
   * reference the plugin must refuse).
   */
  async prepare(claims: readonly Readonly<WireClaim>[], driverName?: string): Promise<WirePrepareResponse> {
    const e = this.pick(driverName);
    const method = this.services.dra[e.plugin.version].NodePrepareResources;
    return unaryCall(e.client, method, { claims: claims.map(wireClaim) }, KUBELET_DEADLINES.prepare);
  }

  /** NodeUnprepareResources on the driver's endpoint (claims as for {@link prepare}). */
  async unprepare(claims: readonly Readonly<WireClaim>[], driverName?: string): Promise<WireUnprepareResponse> {
    const e = this.pick(driverName);
    const method = this.services.dra[e.plugin.version].NodeUnprepareResources;
    return unaryCall(e.client, method, { claims: claims.map(wireClaim) }, KUBELET_DEADLINES.prepare);
  }

  /**
   * Open DRAResourceHealth.NodeWatchResources on the driver's endpoint.
   * Uses the version chosen at registration: `v1.DRAResourceHealth` when advertised, else `v1alpha1`, as the
   * kubelet 1.37 does (pkg/kubelet/cm/dra/plugin/dra_plugin_manager.go `pickHealthService`).
   * @throws Error when the plugin advertises neither.
   */
  watchHealth(
    onUpdate: (msg: WireWatchResponse) => void,
    opts: { driverName?: string; onEnd?: (status: grpc.StatusObject) => void } = {},
  ): StreamHandle {
    const e = this.pick(opts.driverName);
    const version = e.plugin.healthVersion;
    if (version === undefined) throw new Error(`driver ${e.plugin.driverName} does not advertise device health`);
    const method = this.services.health[version].NodeWatchResources;
    return serverStream(e.client, method, {}, onUpdate, opts.onEnd ?? (() => undefined));
  }

  private latest(driverName: string): Entry | undefined {
    let best: Entry | undefined;
    for (const e of this.entries.values()) {
      if (e.plugin.driverName === driverName && (!best || e.plugin.registeredAt >= best.plugin.registeredAt)) best = e;
    }
    return best;
  }

  private pick(driverName: string | undefined): Entry {
    const drivers = [...new Set(this.plugins().map((p) => p.driverName))];
    const name = driverName ?? (drivers.length === 1 ? drivers[0] : undefined);
    const e = name === undefined ? undefined : this.latest(name);
    if (e) return e;
    if (drivers.length === 0) throw new Error('no registered DRA driver');
    throw new Error(
      name === undefined
        ? `several DRA drivers are registered (${drivers.join(', ')}); name one`
        : `no registered DRA driver ${name} (registered: ${drivers.join(', ')})`,
    );
  }

  private requestScan(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescanWanted = true;
      return;
    }
    this.scanning = this.scan()
      .catch((err: unknown) => this.log.warn({ err: String(err) }, 'registry scan failed'))
      .finally(() => {
        this.scanning = undefined;
        if (this.rescanWanted) {
          this.rescanWanted = false;
          this.requestScan();
        }
      });
  }

  private async scan(): Promise<void> {
    const present = new Map<string, number>();
    for (const name of await fs.readdir(this.opts.registryDir)) {
      if (name.startsWith('.')) continue;
      const p = path.join(this.opts.registryDir, name);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st?.isSocket()) present.set(p, st.ino);
    }
    for (const [p, e] of this.entries) {
      if (present.has(p)) continue;
      this.entries.delete(p);
      e.client.close();
      this.log.info({ driver: e.plugin.driverName }, 'plugin socket removed: unregistered');
      this.emit('unregistered', e.plugin);
    }
    for (const [p, ino] of present) {
      if (this.stopped) return;
      if (this.entries.has(p) || this.rejected.get(p) === ino) continue;
      await this.register(p, ino);
    }
  }

  private async register(regSocket: string, ino: number): Promise<void> {
    const reg = dialUnix(regSocket);
    try {
      const info = await unaryCall(reg, this.services.registration.GetInfo, {}, KUBELET_DEADLINES.getInfo);
      const chosen = this.kubeletVersions.find((v) => info.supported_versions.includes(v));
      let problem: string | undefined;
      if (info.type !== 'DRAPlugin') problem = `plugin type ${JSON.stringify(info.type)} is not DRAPlugin`;
      else if (!info.name) problem = 'plugin name is empty';
      else if (!path.isAbsolute(info.endpoint)) problem = `endpoint ${JSON.stringify(info.endpoint)} is not absolute`;
      else if (!chosen) {
        problem = `none of the versions ${info.supported_versions.join(', ')} is supported (kubelet speaks ${this.kubeletVersions.join(', ')})`;
      }
      if (problem !== undefined || chosen === undefined) {
        const reason = problem ?? 'no version';
        await unaryCall(reg, this.services.registration.NotifyRegistrationStatus, { plugin_registered: false, error: reason }, KUBELET_DEADLINES.notify);
        this.rejected.set(regSocket, ino);
        this.emit('registrationFailed', regSocket, reason);
        return;
      }
      await unaryCall(reg, this.services.registration.NotifyRegistrationStatus, { plugin_registered: true, error: '' }, KUBELET_DEADLINES.notify);
      const healthVersion = info.supported_versions.includes(SERVICE_VERSIONS.healthV1)
        ? 'v1'
        : info.supported_versions.includes(SERVICE_VERSIONS.healthV1alpha1) ? 'v1alpha1' : undefined;
      const plugin: SimulatedPlugin = {
        driverName: info.name,
        registrationSocket: regSocket,
        endpoint: info.endpoint,
        supportedVersions: info.supported_versions,
        version: VERSION_OF[chosen] ?? 'v1',
        healthSupported: healthVersion !== undefined,
        ...(healthVersion === undefined ? {} : { healthVersion }),
        registeredAt: performance.now(),
      };
      this.entries.set(regSocket, { plugin, client: dialUnix(plugin.endpoint) });
      this.log.info({ driver: plugin.driverName, version: plugin.version }, 'plugin registered');
      this.emit('registered', plugin);
    } catch (err) {
      // Not ready yet or gone again: the next scan retries, as the kubelet's reconciler does.
      const reason = err instanceof Error ? err.message : String(err);
      this.log.debug({ socket: regSocket, err: reason }, 'registration attempt failed');
      this.emit('registrationFailed', regSocket, reason);
    } finally {
      reg.close();
    }
  }
}

function wireClaim(c: Readonly<WireClaim>): WireClaim {
  return { namespace: c.namespace, uid: c.uid, name: c.name };
}
