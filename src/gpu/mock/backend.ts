/**
 * The mock {@link GpuBackend}: a machine built from a {@link MachineSpec}, with simulated readings driven by an
 * injectable clock, and fault injection for tests and the demo.
 */
import { BackendError, ConfigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { DeviceSample, GpuBackend, HealthEvent, Inventory, Sample } from '../types.js';
import { buildMockInventory, mockMigDevices } from './inventory.js';
import { MockMig, type MockMigGpuState } from './mig.js';
import { GPU_MODELS } from './models.js';
import { GpuSimulator } from './simulate.js';
import { machineSpecByName, type MachineSpec } from './spec.js';
import { validateMachineSpec } from './validate.js';

/** A reading name of {@link DeviceSample} (every field but `uuid`). */
export type ReadingName = Exclude<keyof DeviceSample, 'uuid'>;

/** Options of {@link createMockBackend}. */
export interface MockBackendOptions {
  /** A built-in machine name (`MOCK_MACHINES`) or a custom description (validated). */
  readonly machine: string | MachineSpec;
  /** Node name: seeds UUIDs and serials, so the same node always gets the same identities. */
  readonly nodeName: string;
  /** Clock for samples and events, Unix ms. Default `Date.now`. */
  readonly clock?: () => number;
  /** Logger for listener failures. Optional. */
  readonly logger?: Logger;
  /**
   * Keep the MIG state (mode, GPU and compute instances) in this file, read at `init()` and written on every
   * change, so instances survive an agent restart as a real GPU's do (src/gpu/mock/mig.ts). Default: in memory.
   */
  readonly migStateFile?: string;
}

/** The mock backend: a {@link GpuBackend} plus fault injection. */
export interface MockBackend extends GpuBackend {
  readonly kind: 'mock';
  /** The validated machine description. */
  readonly machine: MachineSpec;
  readonly nodeName: string;
  /** Deliver `event` to every health listener (synchronously). `ecc-*` events also bump that GPU's ECC counters. */
  injectHealthEvent(event: HealthEvent): void;
  /**
   * Mark a GPU or MIG device lost: its readings (and, for a GPU, its MIG devices' readings) disappear from
   * samples and a `gpu-lost` HealthEvent fires. The inventory is unchanged.
   * @throws BackendError for an unknown UUID.
   */
  markLost(uuid: string): void;
  /**
   * Undo {@link markLost}: readings come back and, when the device was lost, a `gpu-recovered` HealthEvent
   * fires (as the NVML backend's refresh does when a lost device answers again).
   * @throws BackendError for an unknown UUID.
   */
  restoreDevice(uuid: string): void;
  /**
   * Simulate a GPU reset with the same UUID (`nvidia-smi -r`): undoes {@link markLost} and always fires
   * `gpu-recovered` (src/gpu/health.ts: the device's health conditions are cleared).
   * @throws BackendError for an unknown UUID.
   */
  resetDevice(uuid: string): void;
  /**
   * Make readings unsupported (absent, as for NVML_ERROR_NOT_SUPPORTED) on one device, or on all devices
   * when `uuid` is omitted. Pass an empty list to clear. @throws BackendError for an unknown UUID.
   */
  setUnsupported(readings: readonly ReadingName[], uuid?: string): void;
  /** MIG management, with the mock's fault switch (`injectFault`), `setMigBusy` and a reset (`applyPending`). */
  readonly mig: MockMig;
}

class MockGpuBackend implements MockBackend {
  readonly kind = 'mock' as const;
  private inv: Inventory | undefined;
  private sims: GpuSimulator[] = [];
  private readonly listeners = new Set<(event: HealthEvent) => void>();
  private readonly lost = new Set<string>();
  private readonly unsupported = new Map<string, ReadonlySet<ReadingName>>();
  private closed = false;
  private readonly clock: () => number;
  readonly mig: MockMig;

  constructor(
    readonly machine: MachineSpec,
    readonly nodeName: string,
    clock: (() => number) | undefined,
    private readonly logger: Logger | undefined,
    migStateFile: string | undefined,
  ) {
    this.clock = clock ?? Date.now;
    const initial = new Map<number, MockMigGpuState>(
      machine.gpus.map((g, i) => [i, {
        migEnabled: g.mig !== undefined,
        pendingMigEnabled: g.mig !== undefined,
        instances: (g.mig ?? []).map((m) => ({ profile: m.profile, placementStart: m.placementStart, computeInstance: true })),
      }]),
    );
    this.mig = new MockMig(
      {
        nodeName,
        uuidOf: (i) => this.inventory().gpus[i]?.uuid ?? '',
        modelOf: (i) => this.machine.gpus[i]?.model ?? 'h100-80gb',
        gpuByUuid: (uuid) => this.inv?.gpus.find((g) => g.uuid === uuid),
        changed: (i) => this.rebuildGpu(i),
      },
      initial,
      migStateFile,
    );
  }

  init(): Promise<void> {
    if (this.closed) return Promise.reject(new BackendError('mock backend: init() after shutdown()'));
    if (!this.inv) {
      this.inv = buildMockInventory(this.machine, this.nodeName);
      this.sims = this.inv.gpus.map((g, i) => new GpuSimulator(g, GPU_MODELS[this.machine.gpus[i]?.model ?? 'h100-80gb']));
      try {
        this.mig.load();
      } catch (err) {
        this.inv = undefined;
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      for (let i = 0; i < this.inv.gpus.length; i++) this.rebuildGpu(i);
    }
    return Promise.resolve();
  }

  /** Replace GPU `index`'s inventory entry and simulator after a MIG change (mode, instances). */
  private rebuildGpu(index: number): void {
    const inv = this.inv;
    const old = inv?.gpus[index];
    const spec = this.machine.gpus[index];
    if (inv === undefined || old === undefined || spec === undefined) return;
    const state = this.mig.stateOf(index);
    const layout = state.instances.filter((m) => m.computeInstance).map((m) => ({ profile: m.profile, placementStart: m.placementStart }));
    const migDevices = state.migEnabled ? mockMigDevices({ ...spec, mig: layout }, this.nodeName, index, old.uuid) : [];
    const sameMigs = migDevices.length === old.migDevices.length && migDevices.every((m, i) => m.uuid === old.migDevices[i]?.uuid);
    if (sameMigs && old.migEnabled === state.migEnabled) return;
    const gpu = { ...old, migEnabled: state.migEnabled, migDevices };
    this.inv = { ...inv, gpus: inv.gpus.map((g, i) => (i === index ? gpu : g)) };
    this.sims[index]?.setInfo(gpu);
  }

  inventory(): Inventory {
    if (!this.inv) throw new BackendError('mock backend: inventory() before init(): call init() first');
    return this.inv;
  }

  sample(): Promise<Sample> {
    if (!this.inv) return Promise.reject(new BackendError('mock backend: sample() before init(): call init() first'));
    if (this.closed) return Promise.reject(new BackendError('mock backend: sample() after shutdown()'));
    const timestampMs = this.clock();
    const devices: DeviceSample[] = [];
    for (const sim of this.sims) {
      const gpu = sim.sampleGpu(timestampMs);
      const migs = sim.sampleMigs(timestampMs);
      if (this.lost.has(gpu.uuid)) continue;
      devices.push(this.strip(gpu));
      for (const m of migs) if (!this.lost.has(m.uuid)) devices.push(this.strip(m));
    }
    return Promise.resolve({ timestampMs, devices });
  }

  onHealthEvent(listener: (event: HealthEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  shutdown(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    return Promise.resolve();
  }

  injectHealthEvent(event: HealthEvent): void {
    const sim = this.simFor(event.uuid);
    if (sim && event.kind === 'ecc-single-bit') sim.recordEcc('corrected');
    if (sim && event.kind === 'ecc-double-bit') sim.recordEcc('uncorrected');
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (err) {
        this.logger?.warn({ uuid: event.uuid, err: errorMessage(err) }, 'mock backend: health listener threw');
      }
    }
  }

  markLost(uuid: string): void {
    this.requireKnown(uuid);
    this.lost.add(uuid);
    this.injectHealthEvent({
      kind: 'gpu-lost',
      uuid,
      timestampMs: this.clock(),
      message: `GPU ${uuid} has fallen off the bus (injected: NVML_ERROR_GPU_IS_LOST)`,
    });
  }

  restoreDevice(uuid: string): void {
    this.requireKnown(uuid);
    if (this.lost.delete(uuid)) this.recovered(uuid, `GPU ${uuid} answers again (injected)`);
  }

  resetDevice(uuid: string): void {
    this.requireKnown(uuid);
    this.lost.delete(uuid);
    this.recovered(uuid, `GPU ${uuid} was reset and answers again with the same UUID (injected)`);
  }

  private recovered(uuid: string, message: string): void {
    this.injectHealthEvent({ kind: 'gpu-recovered', uuid, timestampMs: this.clock(), message });
  }

  setUnsupported(readings: readonly ReadingName[], uuid?: string): void {
    if (uuid !== undefined) this.requireKnown(uuid);
    const key = uuid ?? '*';
    if (readings.length === 0) this.unsupported.delete(key);
    else this.unsupported.set(key, new Set(readings));
  }

  private strip(s: DeviceSample): DeviceSample {
    if (this.unsupported.size === 0) return s;
    const drop = [...(this.unsupported.get('*') ?? []), ...(this.unsupported.get(s.uuid) ?? [])];
    if (drop.length === 0) return s;
    const out: Record<string, unknown> = { ...s };
    for (const r of drop) delete out[r];
    return out as unknown as DeviceSample;
  }

  /** The simulator of the GPU that `uuid` is, or is a MIG device of. */
  private simFor(uuid: string): GpuSimulator | undefined {
    return this.sims.find((s) => s.info.uuid === uuid || s.info.migDevices.some((m) => m.uuid === uuid));
  }

  private requireKnown(uuid: string): void {
    if (!this.inv) throw new BackendError('mock backend: call init() before injecting faults');
    if (!this.simFor(uuid)) {
      throw new BackendError(`mock backend: no GPU or MIG device with UUID ${uuid} on node ${this.nodeName}`);
    }
  }
}

/**
 * Create a mock backend. Call `init()` before `inventory()` / `sample()`.
 * @throws ConfigError for an unknown machine name (listing the valid names), an invalid MachineSpec (naming
 *   each problem), or an empty node name.
 */
export function createMockBackend(opts: MockBackendOptions): MockBackend {
  if (typeof opts.nodeName !== 'string' || opts.nodeName.length === 0) {
    throw new ConfigError('mock backend: nodeName must be a non-empty string (it seeds device identities)');
  }
  const spec = typeof opts.machine === 'string' ? machineSpecByName(opts.machine) : validateMachineSpec(opts.machine);
  return new MockGpuBackend(spec, opts.nodeName, opts.clock, opts.logger, opts.migStateFile);
}
