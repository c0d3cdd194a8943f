/**
 * Per-claim accounting (issue 13 item 3): for every ResourceClaim that holds a device on this node, the energy
 * it used (J), the device-seconds it held, its active-seconds and its peak memory used, integrated sample by
 * sample from the one sampler's readings and the ownership of the devices. Pure state and arithmetic: no I/O
 * but the injected {@link ClaimUsageStore} (the checkpoint) and the logger. The OTel instruments over it are
 * accounting-metrics.ts.
 *
 * Integration, for each sample (Unix ms `t`) and the claims holding devices at `t` (`OwnershipSource.owners()`):
 * - a claim seen for the first time starts from its recorded usage (the checkpoint: an agent restart) and
 *   integrates the gap from there, or else starts at `t` with its baselines and nothing accrued;
 * - the interval `(last, t]` is attributed to the claims that held a device at `last` (still holding it, or
 *   released since), per device:
 *   - device-seconds: `t − last` (each claim that holds a device holds it for the whole time);
 *   - energy: the delta of the device's energy source counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ, which
 *     counts since the driver loaded) × the device's share of that source ÷ the number of claims holding the
 *     device at `last`. A full GPU is its own source (share 1). A MIG device has no energy counter: its source is its
 *     parent GPU and its share the compute slices of its GPU instance over the GPU's compute slices
 *     ({@link migEnergyShare}), so the MIG devices of a fully partitioned GPU that all are held share out the
 *     GPU's whole delta, and the share of an instance nobody holds (or a GPU's unpartitioned slices) is left
 *     unattributed;
 *   - active-seconds: {@link activeFraction} of the device at `t` × `(t − last)` ÷ the holders (none where the
 *     device gives no activity reading: a MIG device without GPM has no utilization, so for it the total stays
 *     absent). The interval that crosses an agent restart adds no
 *     active-seconds (the activity while the agent was down is not known; energy and device-seconds of that
 *     gap are exact, from the cumulative counter and the recorded sample time);
 *   - memory: the sum over its devices of memory used (NVML used less the driver's reserved memory where NVML
 *     reports it, as dcgm-exporter's `DCGM_FI_DEV_FB_USED`), its peak kept.
 * - a claim that no longer holds its devices at `t` (unprepared since `last`) gets `(last, t]` attributed too
 *   (so its interval is closed within one sample interval; the agent takes a sample right after each
 *   unprepare, so in practice within one sample's latency), then its final totals are logged (info) and kept
 *   for one more collection by each export path ({@link ClaimAccounting.delivered}), at most
 *   {@link DEPARTED_MAX_AGE_MS}, then forgotten.
 * Counter resets (a driver reload, a reboot: the counter decreases) and implausible jumps (more than twice the
 * GPU's power limit over the interval) attribute no energy for that interval and restart from the new reading:
 * never a negative delta. A wall clock that goes back restarts the baselines without accruing.
 *
 * Persistence: the usage of the prepared claims is recorded in the checkpoint when a claim prepared while the agent
 * runs is first seen (its baselines), then at most every `persistIntervalMs`, and once more at shutdown
 * ({@link flush}; accounting-recorder.ts). The first sample after start-up writes nothing (the claims it finds continue from their records;
 * one without a record gets it at the interval), so a start-up never writes the checkpoint for accounting.
 */
import type { ClaimRef, ClaimUsage, ClaimUsageStore, DeviceOwner, PodRef } from '../model/types.js';
import type { DeviceSample, GpuInfo, Inventory, Sample } from '../gpu/types.js';
import type { Logger } from '../log.js';
import type { Attrs } from './attributes.js';
import { UsageRecorder } from './accounting-recorder.js';
import { Holdings, SampleReadings, type Holding } from './accounting-inputs.js';
import { activeFraction, claimAttributes, energySources, memoryUsedSum, plausibleEnergyDeltaMj, type EnergySource } from './accounting-rules.js';

/** How long a departed claim's final totals are kept at most when no export path collects them, ms. */
export const DEPARTED_MAX_AGE_MS = 15 * 60_000;

/** Default interval between two checkpoint writes of the usage (besides a new claim and shutdown), ms. */
export const DEFAULT_PERSIST_INTERVAL_MS = 60_000;

/** One claim's totals as reported: {@link ClaimUsage} without the baselines, with its series' attributes. */
export interface ClaimTotals {
  readonly claim: ClaimRef;
  readonly pods: readonly PodRef[];
  /** `k8s.namespace.name`, `gpulet.claim.{name,namespace,uid}`, and `k8s.pod.{name,uid}` for a claim of one pod. */
  readonly attributes: Attrs;
  readonly deviceSeconds: number;
  readonly energyJoules?: number;
  readonly activeSeconds?: number;
  readonly memoryPeakBytes?: number;
  /** Set for a claim that no longer holds its devices (its final totals): Unix ms of the sample that saw it gone. */
  readonly departedAtMs?: number;
}

/** Options of {@link ClaimAccounting}. */
export interface ClaimAccountingOptions {
  readonly logger: Logger;
  /** Where usage is carried across restarts; none: nothing is recorded or restored. */
  readonly store?: ClaimUsageStore;
  /** Compute slices of a GPU in MIG mode (its largest profile's); default `DEFAULT_COMPUTE_SLICES` (accounting-rules.ts). */
  readonly computeSlicesOf?: (gpu: GpuInfo) => number | undefined;
  /** Interval between checkpoint writes, ms (default {@link DEFAULT_PERSIST_INTERVAL_MS}). */
  readonly persistIntervalMs?: number;
  /** Export paths that must each collect a departed claim's final totals before they are forgotten (e.g. `prometheus`, `otlp`). */
  readonly paths: readonly string[];
  /** Clock for the departed claims' age, Unix ms (default `Date.now`). */
  readonly now?: () => number;
}

interface LiveDevice {
  readonly uuid: string;
  /** Energy source counter at the claim's `lastSampleMs`, mJ; undefined until read. */
  energyMj: number | undefined;
  /** The source, as known when the device was last seen in the inventory. */
  energy: EnergySource | undefined;
}

interface LiveClaim {
  readonly claim: ClaimRef;
  pods: readonly PodRef[];
  attributes: Attrs;
  lastSampleMs: number;
  /** The next interval crosses an agent restart (restored from the checkpoint): no active-seconds for it. */
  gap: boolean;
  deviceSeconds: number;
  energyJoules: number | undefined;
  activeSeconds: number | undefined;
  memoryPeakBytes: number | undefined;
  readonly devices: Map<string, LiveDevice>;
}

interface Departed {
  readonly totals: ClaimTotals;
  /** Reported by a collection since it departed. */
  observed: boolean;
  readonly delivered: Set<string>;
  readonly atMs: number;
}

/** See module docs. */
export class ClaimAccounting {
  private readonly live = new Map<string, LiveClaim>();
  private readonly departed = new Map<string, Departed>();
  private readonly log: Logger;
  private readonly now: () => number;
  private sources: { readonly inventory: Inventory; readonly map: ReadonlyMap<string, EnergySource> } | undefined;
  private readonly readings = new SampleReadings();
  private readonly holdings = new Holdings();
  /** The `held` map whose claims are all live (see {@link observe}). */
  private heldSeen: ReadonlyMap<string, Holding> | undefined;
  /** Holders per device of the live claims; undefined when the live claims or their devices changed since. */
  private sharers: ReadonlyMap<string, number> | undefined;
  private readonly recorder: UsageRecorder;

  constructor(private readonly options: ClaimAccountingOptions) {
    this.log = options.logger.child({ component: 'accounting' });
    this.recorder = new UsageRecorder({
      store: options.store,
      intervalMs: options.persistIntervalMs ?? DEFAULT_PERSIST_INTERVAL_MS,
      usages: () => this.usages(),
      logger: this.log,
    });
    this.now = options.now ?? Date.now;
  }

  /**
   * Integrate one sample (see module docs). Never throws for bad readings (an unreadable one adds nothing).
   * @param sample the node's sample (`GpuBackend.sample()`)
   * @param owners device UUID → holders at the time of the sample (`OwnershipSource.owners()`; read again when a
   *   device's owner array is another object than at the last sample, or devices came or went)
   * @param inventory the current inventory (MIG parents and profiles, power limits)
   */
  observe(sample: Sample, owners: ReadonlyMap<string, readonly DeviceOwner[]>, inventory: Inventory): void {
    const t = sample.timestampMs;
    const readings = this.readings.of(sample);
    const sources = this.sourcesOf(inventory);
    const held = this.holdings.of(owners);
    // Claims seen for the first time: from their recorded usage, or baselines only (nothing accrued). Once per
    // `held`: while it is unchanged, every claim in it is live with its pods and devices.
    let fresh: Set<string> | undefined;
    let stored: ReadonlyMap<string, ClaimUsage> | undefined;
    for (const [uid, h] of this.heldSeen === held ? [] : held) {
      let live = this.live.get(uid);
      if (live === undefined) {
        stored ??= this.recorder.stored();
        live = this.start(h.claim, h.pods, h.devices, stored.get(uid), sources, readings, t);
        this.live.set(uid, live);
        this.sharers = undefined;
        this.departed.delete(uid); // prepared again under the same UID: its new series replace the final ones
        // A claim prepared while the agent runs is recorded at once; the claims found by the first sample (start-up)
        // were recorded by the agent before, or are at the persist interval (no checkpoint write at start-up).
        this.recorder.claimArrived();
        if (live.lastSampleMs === t) (fresh ??= new Set()).add(uid);
      }
      if (h.pods !== live.pods) {
        live.pods = h.pods;
        live.attributes = claimAttributes(live.claim, h.pods);
      }
      for (const uuid of h.devices) {
        if (!live.devices.has(uuid)) {
          live.devices.set(uuid, { uuid, energyMj: undefined, energy: sources.get(uuid) });
          this.sharers = undefined;
        }
      }
    }
    // The claims the interval is shared by, per device: those that held it at the last sample (still holding it,
    // or departing now); a claim that arrived since starts at `t` and shares nothing of the interval. Unchanged
    // while the live claims and their devices are (kept across samples).
    this.heldSeen = held;
    const sharers = fresh === undefined ? (this.sharers ??= this.sharersOf(undefined)) : this.sharersOf(fresh);
    for (const live of this.live.values()) {
      const uid = live.claim.uid;
      if (fresh === undefined || !fresh.has(uid)) this.advance(live, t, readings, sources, sharers);
      if (held.has(uid)) {
        const used = memoryUsedSum(live.devices.values(), readings);
        if (used !== undefined) live.memoryPeakBytes = Math.max(live.memoryPeakBytes ?? 0, used);
      } else {
        this.live.delete(uid);
        this.sharers = undefined;
        this.depart(live, t);
      }
    }
    this.recorder.sampled(t);
  }

  /** Device UUID → how many live claims (but those in `fresh`) hold it. */
  private sharersOf(fresh: ReadonlySet<string> | undefined): Map<string, number> {
    const sharers = new Map<string, number>();
    for (const live of this.live.values()) {
      if (fresh?.has(live.claim.uid) === true) continue;
      for (const d of live.devices.values()) sharers.set(d.uuid, (sharers.get(d.uuid) ?? 0) + 1);
    }
    return sharers;
  }

  /**
   * The totals to report now: every live claim, and every departed claim's final totals until each export path
   * collected them (marks them as reported: call it from the collection callback).
   */
  collect(): ClaimTotals[] {
    const out: ClaimTotals[] = [];
    for (const live of this.live.values()) out.push(this.totalsOf(live));
    for (const d of this.departed.values()) {
      d.observed = true;
      out.push(d.totals);
    }
    return out;
  }

  /**
   * Export path `path` finished a collection (a `/metrics` render, an OTLP export): departed claims reported by
   * a collection before it count as delivered to it; those delivered to every path, or older than
   * {@link DEPARTED_MAX_AGE_MS}, are forgotten.
   */
  delivered(path: string): void {
    const now = this.now();
    for (const [uid, d] of this.departed) {
      if (d.observed) d.delivered.add(path);
      if (this.options.paths.every((p) => d.delivered.has(p)) || now - d.atMs > DEPARTED_MAX_AGE_MS) this.departed.delete(uid);
    }
  }

  /** The current usage of every live claim, by claim UID (what {@link ClaimUsageStore.record} writes). */
  usages(): Map<string, ClaimUsage> {
    const out = new Map<string, ClaimUsage>();
    for (const [uid, live] of this.live) {
      const baselines: { uuid: string; energyMillijoules: number }[] = [];
      for (const d of live.devices.values()) if (d.energyMj !== undefined) baselines.push({ uuid: d.uuid, energyMillijoules: d.energyMj });
      out.set(uid, {
        lastSampleMs: live.lastSampleMs,
        deviceSeconds: live.deviceSeconds,
        ...(live.energyJoules === undefined ? {} : { energyJoules: live.energyJoules }),
        ...(live.activeSeconds === undefined ? {} : { activeSeconds: live.activeSeconds }),
        ...(live.memoryPeakBytes === undefined ? {} : { memoryPeakBytes: live.memoryPeakBytes }),
        baselines,
      });
    }
    return out;
  }

  /** Totals of a live or departed claim by UID (tests, the final log line); undefined when unknown. */
  totals(uid: string): ClaimTotals | undefined {
    const live = this.live.get(uid);
    return live !== undefined ? this.totalsOf(live) : this.departed.get(uid)?.totals;
  }

  /**
   * Record the usage now (after a write in flight); the persist interval starts again from the last sample
   * integrated. Never rejects: a failure is logged.
   */
  async flush(): Promise<void> {
    await this.recorder.flush(() => {
      let last: number | undefined;
      for (const live of this.live.values()) last = Math.max(last ?? live.lastSampleMs, live.lastSampleMs);
      return last;
    });
  }

  /** A claim seen for the first time: from its recorded usage (restart), or baselines at `t`. */
  private start(
    claim: ClaimRef,
    pods: readonly PodRef[],
    devices: readonly string[],
    usage: ClaimUsage | undefined,
    sources: ReadonlyMap<string, EnergySource>,
    readings: ReadonlyMap<string, DeviceSample>,
    t: number,
  ): LiveClaim {
    const base = new Map(usage?.baselines.map((b) => [b.uuid, b.energyMillijoules]) ?? []);
    const restored = usage !== undefined && usage.lastSampleMs < t;
    const live: LiveClaim = {
      claim,
      pods,
      attributes: claimAttributes(claim, pods),
      lastSampleMs: restored ? usage.lastSampleMs : t,
      gap: restored,
      deviceSeconds: usage?.deviceSeconds ?? 0,
      energyJoules: usage?.energyJoules,
      activeSeconds: usage?.activeSeconds,
      memoryPeakBytes: usage?.memoryPeakBytes,
      devices: new Map(),
    };
    for (const uuid of devices) {
      const energy = sources.get(uuid);
      const now = energy === undefined ? undefined : readings.get(energy.source)?.energyMillijoules;
      live.devices.set(uuid, { uuid, energy, energyMj: restored ? base.get(uuid) : now });
    }
    if (!restored && live.energyJoules === undefined && [...live.devices.values()].some((d) => d.energyMj !== undefined && d.energy?.share !== undefined)) {
      live.energyJoules = 0;
    }
    if (usage !== undefined) {
      this.log.info({ claimUid: claim.uid, claim: `${claim.namespace}/${claim.name}`, fromMs: usage.lastSampleMs }, 'accounting: continuing the claim from its recorded usage');
    }
    return live;
  }

  /** Attribute `(live.lastSampleMs, t]` to the claim (see module docs). */
  private advance(live: LiveClaim, t: number, readings: ReadonlyMap<string, DeviceSample>, sources: ReadonlyMap<string, EnergySource>, holders: ReadonlyMap<string, number>): void {
    const dtMs = t - live.lastSampleMs;
    if (dtMs === 0) return;
    const back = dtMs < 0; // the wall clock went back: restart the baselines
    const dt = dtMs / 1000;
    for (const d of live.devices.values()) {
      d.energy = sources.get(d.uuid) ?? d.energy; // a departed MIG device keeps its last known source
      const n = Math.max(1, holders.get(d.uuid) ?? 1);
      const energy = d.energy;
      const counter = energy === undefined ? undefined : readings.get(energy.source)?.energyMillijoules;
      if (!back) {
        live.deviceSeconds += dt;
        if (energy?.share !== undefined && counter !== undefined) {
          const deltaMj = d.energyMj === undefined ? 0 : plausibleEnergyDeltaMj(d.energyMj, counter, energy.powerLimitMw, dt);
          if (deltaMj !== undefined) live.energyJoules = (live.energyJoules ?? 0) + (deltaMj / 1000) * energy.share / n;
          else this.log.debug({ claimUid: live.claim.uid, uuid: energy.source }, 'accounting: energy counter went back (driver reload) or jumped; this interval adds no energy');
        }
        const reading = readings.get(d.uuid);
        const fraction = reading === undefined || live.gap ? undefined : activeFraction(reading);
        if (fraction !== undefined) live.activeSeconds = (live.activeSeconds ?? 0) + (fraction * dt) / n;
      }
      d.energyMj = counter;
    }
    live.gap = false;
    live.lastSampleMs = t;
  }

  private totalsOf(live: LiveClaim, departedAtMs?: number): ClaimTotals {
    return {
      claim: live.claim,
      pods: live.pods,
      attributes: live.attributes,
      deviceSeconds: live.deviceSeconds,
      ...(live.energyJoules === undefined ? {} : { energyJoules: live.energyJoules }),
      ...(live.activeSeconds === undefined ? {} : { activeSeconds: live.activeSeconds }),
      ...(live.memoryPeakBytes === undefined ? {} : { memoryPeakBytes: live.memoryPeakBytes }),
      ...(departedAtMs === undefined ? {} : { departedAtMs }),
    };
  }

  /** The claim released its devices: the final log line, and its final totals kept for the export paths. */
  private depart(live: LiveClaim, t: number): void {
    const totals = this.totalsOf(live, t);
    this.departed.set(live.claim.uid, { totals, observed: false, delivered: new Set(), atMs: this.now() });
    this.log.info(
      {
        claimUid: live.claim.uid,
        claim: `${live.claim.namespace}/${live.claim.name}`,
        pods: live.pods.map((p) => p.name),
        devices: [...live.devices.keys()],
        deviceSeconds: totals.deviceSeconds,
        energyJoules: totals.energyJoules,
        activeSeconds: totals.activeSeconds,
        memoryPeakBytes: totals.memoryPeakBytes,
      },
      'accounting: claim released its devices; final totals',
    );
  }

  private sourcesOf(inventory: Inventory): ReadonlyMap<string, EnergySource> {
    if (this.sources?.inventory !== inventory) this.sources = { inventory, map: energySources(inventory, this.options.computeSlicesOf) };
    return this.sources.map;
  }
}
