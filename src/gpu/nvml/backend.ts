/**
 * The NVML {@link GpuBackend}: discovery, samples and health events from libnvidia-ml through the native
 * addon (`native/`). Policy lives here, not in C++: which devices are lost, when handles are refreshed, how
 * native facts map to gpulet's model (map-inventory.ts, map-readings.ts).
 *
 * - `init()`: open the library, `nvmlInit_v2`, discover, start the event thread. Any failure shuts the session
 *   down again and rejects with a {@link BackendError} naming the library and what to check.
 * - `sample()`: one native call per sample. A device answering NVML_ERROR_GPU_IS_LOST is left out of the
 *   sample, gets one `gpu-lost` HealthEvent, and a handle refresh is scheduled (after `refreshDelayMs`,
 *   doubling up to 5 min while devices stay lost); other devices go on. Handles are never refetched per sample.
 * - The inventory is stable after `init()`: a lost GPU stays in it (health marks it unhealthy). A refresh that
 *   finds a lost device answering again emits `gpu-recovered` for it.
 * - `mig` (mig-manager.ts): MIG management. Each change reads the GPU again; the inventory takes the new read
 *   (its MIG devices, and `migProfiles(uuid)` its profiles with possible placements), so it follows instances
 *   as they come and go. A GPU whose read-back fails keeps its previous entry.
 * - A GPU whose events could not be registered (`registered[i] === 0`: unsupported, or an NVML error), or every
 *   GPU when the event thread could not start, gets one `unmonitored` HealthEvent; listeners that subscribe
 *   after `init()` receive these first (src/gpu/health.ts: the `<driver>/unmonitored` taint).
 */
import { BackendError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DeviceSample, GpuBackend, GpuInfo, HealthEvent, Inventory, MigManager, Sample } from '../types.js';
import { loadAddon, type NativeAddon } from './addon.js';
import { mapInventory, type PcieRootResolver } from './map-inventory.js';
import { mapMigProfiles, type NvmlMigProfile } from './map-mig.js';
import { PcieIntegrator, toDeviceSample, toHealthEvent } from './map-readings.js';
import { NvmlMigManager } from './mig-manager.js';
import type { NvmlDiscovery, NvmlGpuFacts, NvmlRawEvent } from './native-types.js';
import { NvmlError, NVML_RETURN } from './nvml-error.js';
import { sysfsPcieRootResolver } from './pcie-root.js';
import type { NvmlSession } from './session.js';
import { initFailed, libraryNotFound, missingSymbol } from './startup-errors.js';

/** Options of {@link createNvmlBackend}. */
export interface NvmlBackendOptions {
  /** Path or soname of libnvidia-ml to dlopen (`--nvml-library`), e.g. `libnvidia-ml.so.1`. */
  readonly library: string;
  readonly logger?: Logger;
  /** Resolves the PCIe root of a bus ID. Default: sysfs under `sysfsRoot`. */
  readonly pcieRoot?: PcieRootResolver;
  /** sysfs mount point for the default PCIe-root resolver. Default `/sys`. */
  readonly sysfsRoot?: string;
  /** First delay before a handle refresh after NVML_ERROR_GPU_IS_LOST, ms. Default 5000. */
  readonly refreshDelayMs?: number;
  /** The addon (tests). Default: {@link loadAddon}. */
  readonly addon?: NativeAddon;
  /** Clock, Unix ms. Default `Date.now`. */
  readonly clock?: () => number;
}

const MAX_REFRESH_DELAY_MS = 300_000;

/** The NVML backend, plus what it knows about lost devices and symbol resolution. */
export class NvmlBackend implements GpuBackend {
  readonly kind = 'nvml' as const;
  private session: NvmlSession | undefined;
  private inv: Inventory | undefined;
  private initializing: Promise<void> | undefined;
  private closed = false;
  private readonly listeners = new Set<(event: HealthEvent) => void>();
  /** Per discovery position: GPU UUID, and per MIG position its UUID (undefined: not in the inventory). */
  private gpuUuids: (string | undefined)[] = [];
  private migUuids: (string | undefined)[][] = [];
  private readonly lost = new Map<string, NvmlError>();
  /** `unmonitored` events found at init, replayed to every new listener. */
  private readonly unmonitored = new Map<string, HealthEvent>();
  private refreshAt: number | undefined;
  private refreshDelay: number;
  private readonly pcie = new PcieIntegrator();
  private readonly clock: () => number;
  private readonly pcieRoot: PcieRootResolver;
  /** The discovery the inventory is mapped from (GPU entries replaced by MIG read-backs). */
  private discovery: NvmlDiscovery | undefined;
  /** Per GPU UUID: its MIG profiles with possible placements (NVML, while MIG mode is on). */
  private profiles = new Map<string, readonly NvmlMigProfile[]>();
  /** Mapping problems already logged (bounded by the devices and profiles of the node). */
  private readonly logged = new Set<string>();
  /** MIG management (issue 12): create / destroy at exact placements, MIG mode. */
  readonly mig: MigManager;

  constructor(private readonly opts: NvmlBackendOptions) {
    this.mig = new NvmlMigManager({
      library: opts.library,
      requireSession: () => this.requireSession(),
      positionOf: (uuid) => this.positionOf(uuid),
      applyGpu: (position, facts) => this.applyGpu(position, facts),
    });
    this.clock = opts.clock ?? Date.now;
    this.pcieRoot = opts.pcieRoot ?? sysfsPcieRootResolver(opts.sysfsRoot);
    this.refreshDelay = opts.refreshDelayMs ?? 5000;
  }

  /** The library path given. */
  get library(): string {
    return this.opts.library;
  }

  /** Per NVML function gpulet uses: the symbol that resolved, or null (after `init()`). */
  symbols(): Readonly<Record<string, string | null>> {
    return this.session?.symbols ?? {};
  }

  /** Devices currently lost (UUID → the NVML error that said so). */
  lostDevices(): ReadonlyMap<string, NvmlError> {
    return this.lost;
  }

  init(): Promise<void> {
    if (this.closed) return Promise.reject(new BackendError('nvml backend: init() after shutdown()', { library: this.library }));
    this.initializing ??= this.start();
    return this.initializing;
  }

  private async start(): Promise<void> {
    const addon = this.opts.addon ?? loadAddon();
    const opened = addon.open(this.library);
    if (!opened.ok) {
      throw opened.missingSymbol !== undefined
        ? missingSymbol(this.library, opened.missingSymbol)
        : libraryNotFound(this.library, opened.error);
    }
    const session = opened.session;
    try {
      await session.init();
      const discovery = await session.discover();
      this.discovery = discovery;
      this.remap();
      this.index(discovery);
      this.session = session;
      await this.startEvents(session);
    } catch (err) {
      this.session = undefined;
      this.inv = undefined;
      this.discovery = undefined;
      await session.shutdown().catch(() => undefined);
      throw initFailed(this.library, err);
    }
  }

  /** Map {@link discovery} to the inventory and the MIG profile tables; problems go to the log. */
  private remap(): void {
    if (!this.discovery) return;
    const mapped = mapInventory(this.discovery, this.pcieRoot);
    const problems = [...mapped.problems];
    const profiles = new Map<string, readonly NvmlMigProfile[]>();
    for (const g of this.discovery.gpus) {
      const gpu = mapped.inventory.gpus.find((x) => x.uuid === g.uuid);
      if (gpu) profiles.set(gpu.uuid, mapMigProfiles(g, gpu.memoryBytes, problems));
    }
    for (const p of problems) {
      if (this.logged.has(p)) continue; // once per process: a MIG change maps every GPU again
      this.logged.add(p);
      this.opts.logger?.warn({ library: this.library }, `nvml: left out ${p}`);
    }
    this.inv = mapped.inventory;
    this.profiles = profiles;
  }

  /** Discovery index of GPU `uuid` (the addon's GPU argument), or undefined. */
  private positionOf(uuid: string): number | undefined {
    const i = this.gpuUuids.indexOf(uuid);
    return i < 0 ? undefined : i;
  }

  /** Take a read-back of GPU `position` into the discovery and the inventory (not when it failed). */
  private applyGpu(position: number, facts: NvmlGpuFacts): GpuInfo | undefined {
    const d = this.discovery;
    const uuid = this.gpuUuids[position];
    if (!d || uuid === undefined || facts.error !== undefined || facts.uuid !== uuid) return undefined;
    this.discovery = { system: d.system, gpus: d.gpus.map((g, i) => (i === position ? facts : g)) };
    this.remap();
    this.index(this.discovery);
    return this.inv?.gpus.find((g) => g.uuid === uuid);
  }

  /**
   * GPU `gpuUuid`'s MIG profiles with their possible placements, as NVML reports them
   * (`nvmlDeviceGetGpuInstanceProfileInfoV`, `nvmlDeviceGetGpuInstancePossiblePlacements_v2`), in the shape of
   * src/model/mig-placements.ts `MigProfileSpec`. Undefined for an unknown GPU or one with MIG mode off (NVML
   * reads them only while MIG mode is on); current as of init() or the GPU's last MIG change.
   */
  migProfiles(gpuUuid: string): readonly NvmlMigProfile[] | undefined {
    const p = this.profiles.get(gpuUuid);
    return p !== undefined && p.length > 0 ? p : undefined;
  }

  private async startEvents(session: NvmlSession): Promise<void> {
    try {
      const reg = await session.startEvents(
        (e) => this.onNativeEvent(e),
        (err) => this.opts.logger?.error({ err: errorMessage(err) }, 'nvml: malformed event from the native addon'),
      );
      for (const e of reg.errors) this.opts.logger?.warn({ nvmlFunction: e.nvmlFunction, code: e.code }, `nvml: event registration: ${e.message}`);
      this.gpuUuids.forEach((uuid, i) => {
        if (uuid !== undefined && (reg.registered[i] ?? 0) === 0) {
          this.markUnmonitored(uuid, 'no NVML health event could be registered (nvmlDeviceGetSupportedEventTypes / nvmlDeviceRegisterEvents: unsupported or failed)');
        }
      });
    } catch (err) {
      this.opts.logger?.warn({ err: errorMessage(err) }, 'nvml: health events unavailable (no event thread)');
      for (const uuid of this.gpuUuids) if (uuid !== undefined) this.markUnmonitored(uuid, `NVML health events unavailable: ${errorMessage(err)}`);
    }
  }

  private markUnmonitored(uuid: string, why: string): void {
    const event: HealthEvent = { kind: 'unmonitored', uuid, timestampMs: this.clock(), message: `${uuid} is unmonitored: ${why}` };
    this.unmonitored.set(uuid, event);
    this.emit(event);
  }

  /** Position → UUID tables of a discovery, restricted to devices of the inventory. */
  private index(d: NvmlDiscovery): void {
    const gpus = new Map((this.inv?.gpus ?? []).map((g) => [g.uuid, g]));
    this.gpuUuids = d.gpus.map((g) => (g.uuid !== undefined && gpus.has(g.uuid) ? g.uuid : undefined));
    this.migUuids = d.gpus.map((g) => {
      const known = new Set((g.uuid !== undefined ? gpus.get(g.uuid)?.migDevices ?? [] : []).map((m) => m.uuid));
      return g.migDevices.map((m) => (m.uuid !== undefined && known.has(m.uuid) ? m.uuid : undefined));
    });
  }

  inventory(): Inventory {
    if (!this.inv) throw new BackendError('nvml backend: inventory() before init(): call init() first', { library: this.library });
    return this.inv;
  }

  /**
   * Refetch device handles now (a rediscovery; the inventory is unchanged). Devices readable again leave the
   * lost set. Called by `sample()` when a refresh is due; callable after a driver reload.
   * @throws NvmlError when the device count cannot be read.
   */
  async refresh(): Promise<void> {
    const session = this.requireSession();
    const d = await session.discover();
    this.index(d);
    const answering: string[] = [];
    for (const g of d.gpus) {
      if (g.error === undefined && g.uuid !== undefined) answering.push(g.uuid);
      for (const m of g.migDevices) if (m.error === undefined && m.uuid !== undefined) answering.push(m.uuid);
    }
    for (const uuid of answering) {
      if (!this.lost.delete(uuid)) continue;
      this.emit({ kind: 'gpu-recovered', uuid, timestampMs: this.clock(), message: `${uuid} answers again after a handle refresh (same UUID)` });
    }
  }

  async sample(): Promise<Sample> {
    const session = this.requireSession();
    if (this.refreshAt !== undefined && this.clock() >= this.refreshAt) await this.runRefresh();
    const skip: number[] = [];
    this.gpuUuids.forEach((uuid, i) => {
      if (uuid === undefined || this.lost.has(uuid)) skip.push(i);
    });
    const raw = await session.sample(skip);
    const devices: DeviceSample[] = [];
    for (const r of raw.devices) {
      const uuid = r.mig < 0 ? this.gpuUuids[r.gpu] : this.migUuids[r.gpu]?.[r.mig];
      if (uuid === undefined || this.lost.has(uuid)) continue;
      if (r.error) {
        this.markLost(uuid, r.error);
        continue;
      }
      for (const e of r.errors ?? []) this.opts.logger?.debug({ uuid, nvmlFunction: e.nvmlFunction, code: e.code }, `nvml: reading failed: ${e.message}`);
      devices.push(toDeviceSample(uuid, r, raw.timestampMs, this.pcie));
    }
    return { timestampMs: raw.timestampMs, devices };
  }

  private async runRefresh(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.opts.logger?.warn({ err: errorMessage(err) }, 'nvml: handle refresh failed');
    }
    if (this.lost.size === 0) {
      this.refreshAt = undefined;
      this.refreshDelay = this.opts.refreshDelayMs ?? 5000;
    } else {
      this.refreshDelay = Math.min(MAX_REFRESH_DELAY_MS, this.refreshDelay * 2);
      this.refreshAt = this.clock() + this.refreshDelay;
    }
  }

  private markLost(uuid: string, error: NvmlError): void {
    if (this.lost.has(uuid)) return;
    this.lost.set(uuid, error);
    this.refreshAt ??= this.clock() + this.refreshDelay;
    this.emit({
      kind: 'gpu-lost',
      uuid,
      timestampMs: this.clock(),
      message: `${uuid} is lost: ${error.name} (code ${error.code}) from ${error.nvmlFunction}; its readings stop until a handle refresh finds it again`,
    });
  }

  private onNativeEvent(e: NvmlRawEvent): void {
    if (this.closed || !this.inv) return;
    const event = toHealthEvent(e, this.gpuUuids, this.inv);
    if (!event) {
      if (e.error && e.error.code !== NVML_RETURN.ERROR_GPU_IS_LOST) {
        this.opts.logger?.warn({ code: e.error.code }, `nvml: event wait failed: ${e.error.message}`);
      }
      return;
    }
    if (event.kind === 'gpu-lost' && e.error) {
      this.markLost(event.uuid, e.error);
      return;
    }
    this.emit(event);
  }

  private emit(event: HealthEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.opts.logger?.warn({ uuid: event.uuid, err: errorMessage(err) }, 'nvml: health listener threw');
      }
    }
  }

  onHealthEvent(listener: (event: HealthEvent) => void): () => void {
    this.listeners.add(listener);
    for (const event of this.unmonitored.values()) {
      try {
        listener(event);
      } catch (err) {
        this.opts.logger?.warn({ uuid: event.uuid, err: errorMessage(err) }, 'nvml: health listener threw');
      }
    }
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Stop the event thread, `nvmlShutdown`, release the library. Idempotent; never rejects. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await this.initializing?.catch(() => undefined);
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    try {
      await session.shutdown();
    } catch (err) {
      this.opts.logger?.warn({ err: errorMessage(err) }, 'nvml: nvmlShutdown failed');
    }
  }

  private requireSession(): NvmlSession {
    if (this.closed) throw new BackendError('nvml backend: used after shutdown()', { library: this.library });
    if (!this.session) throw new BackendError('nvml backend: call init() first', { library: this.library });
    return this.session;
  }
}

/** Create (not init) the NVML backend. */
export function createNvmlBackend(opts: NvmlBackendOptions): NvmlBackend {
  return new NvmlBackend(opts);
}
