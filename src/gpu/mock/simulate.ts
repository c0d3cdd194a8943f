/**
 * Simulated readings of one GPU and its MIG devices. Deterministic given the seeds and the sequence of sample
 * times. Stateful only where physics is: energy (integral of power, trapezoid rule), temperature (first-order
 * lag behind power, 60 s time constant), cumulative PCIe and NVLink bytes (NVLink: 30 % of the board's
 * bandwidth at full load) and ECC counters.
 *
 * Shapes: utilization follows the device's load curve (curve.ts); power = idle + (limit − idle) × load^1.1;
 * memory follows nvml.h (`nvmlMemory_v2_t`): `used` = reserved + allocated and `used + free = total`, where the
 * allocated part follows the smooth trend (in MIG mode: the sum of the MIG devices' used memory); SM clock rises
 * with load and drops under the power cap; clock event reasons use NVML's bits (GpuIdle 0x1, SwPowerCap 0x4,
 * SwThermalSlowdown 0x20). A GPU in MIG mode reports power, temperature, clocks and energy (its load is the
 * compute-slice-weighted load of its MIG devices) but no utilization (NVML_ERROR_NOT_SUPPORTED in MIG mode);
 * its MIG devices report memory only (used + free = total; no reserved reading). On Hopper and newer, every
 * sample after the first carries GPM profiling metrics (`gpm`, the constant activity model of gpm.ts, as NVML
 * needs two samples); an Ampere GPU and its MIG devices have none.
 */
import type { DeviceSample, GpmMetrics, GpuInfo, MigDeviceInfo } from '../types.js';
import { loadAt, loadCurve, trendAt, valueNoise, type LoadCurve } from './curve.js';
import { gpmActivity, gpmMetricsOf, gpmSupported } from './gpm.js';
import { mockSeed } from './identity.js';
import type { GpuModel } from './models.js';

/** NVML `nvmlClocksEventReason*` bits used by the simulator. */
export const CLOCK_EVENT_REASON = { gpuIdle: 0x1, swPowerCap: 0x4, swThermalSlowdown: 0x20 } as const;

/** Temperature range of the simulated GPU sensor, °C. */
export const TEMPERATURE_RANGE_C = { min: 30, max: 85 } as const;

const MIB = 1024 * 1024;

/** `T` with its fields writable: a sample is built in place, then handed out read-only. */
type Mutable<T> = { -readonly [K in keyof T]: T[K] };
const TEMP_TAU_S = 60;

interface MigSim {
  readonly info: MigDeviceInfo;
  readonly curve: LoadCurve;
  readonly computeSlices: number;
}

/** Simulator of one GPU (and its MIG devices). */
function migSim(m: MigDeviceInfo): MigSim {
  return { info: m, curve: loadCurve(mockSeed(m.uuid)), computeSlices: Number(/^(\d+)g\./.exec(m.profile)?.[1] ?? '1') };
}

export class GpuSimulator {
  private readonly curve: LoadCurve;
  private migs: readonly MigSim[];
  private lastTSec: number | undefined;
  private lastPowerMw = 0;
  private energyMj: number;
  private tempC = 0;
  private pcieTx = 0;
  private pcieRx = 0;
  private nvlinkBytes = 0;
  private eccCorrected = 0;
  private eccUncorrected = 0;
  /** GPM needs two samples: devices sampled once already (UUIDs; null), with their metrics once computed. */
  private readonly gpmSeen = new Map<string, { readonly a: number; readonly mig: boolean; readonly metrics: GpmMetrics } | null>();

  constructor(
    public info: GpuInfo,
    private readonly model: GpuModel,
  ) {
    const seed = mockSeed(info.uuid);
    this.curve = loadCurve(seed);
    this.migs = info.migDevices.map(migSim);
    // Energy since the driver loaded: 1–30 days at idle power, so counters start large like real ones.
    const uptimeS = 86_400 * (1 + 29 * ((seed >>> 8) / 2 ** 24));
    this.energyMj = Math.round(uptimeS * model.idlePowerW * 1000);
  }

  /**
   * The GPU's MIG mode or devices changed (dynamic MIG, src/gpu/mock/mig.ts): follow `info`, keeping the GPU's
   * integrators (energy, PCIe bytes, ECC counts never go back) and each remaining MIG device's curve.
   */
  setInfo(info: GpuInfo): void {
    this.info = info;
    this.migs = info.migDevices.map((m) => this.migs.find((old) => old.info.uuid === m.uuid) ?? migSim(m));
  }

  /** Count one ECC error (from an injected `ecc-single-bit` / `ecc-double-bit` health event). */
  recordEcc(kind: 'corrected' | 'uncorrected'): void {
    if (kind === 'corrected') this.eccCorrected++;
    else this.eccUncorrected++;
  }

  /** Load of the GPU, 0–1: its own curve, or in MIG mode the compute-weighted load of its MIG devices. */
  private load(tSec: number): number {
    if (!this.info.migEnabled) return loadAt(this.curve, tSec);
    return this.migs.reduce((sum, m) => sum + (m.computeSlices / 7) * loadAt(m.curve, tSec), 0);
  }

  private powerMw(load: number): number {
    const { idlePowerW, powerLimitW } = this.model;
    return Math.round((idlePowerW + (powerLimitW - idlePowerW) * load ** 1.1) * 1000);
  }

  /** Advance the integrators to `tSec` (a time earlier than the last one counts as no time passing). */
  private advance(tSec: number, powerMw: number, load: number): void {
    const { idlePowerW, powerLimitW } = this.model;
    const heat = (powerMw / 1000 - idlePowerW) / (powerLimitW - idlePowerW);
    const targetC = TEMPERATURE_RANGE_C.min + 3 + 50 * heat;
    if (this.lastTSec === undefined) {
      this.tempC = targetC;
    } else {
      const dt = Math.max(0, tSec - this.lastTSec);
      this.energyMj += Math.round(((this.lastPowerMw + powerMw) / 2) * dt);
      this.tempC += (targetC - this.tempC) * (1 - Math.exp(-dt / TEMP_TAU_S));
      this.pcieTx += Math.round(this.model.pcieBytesPerSecond * 0.004 * load * dt);
      this.pcieRx += Math.round(this.model.pcieBytesPerSecond * 0.01 * load * dt);
      this.nvlinkBytes += Math.round(this.model.nvlinkBytesPerSecond * 0.3 * load * dt);
    }
    this.lastTSec = Math.max(tSec, this.lastTSec ?? tSec);
    this.lastPowerMw = powerMw;
  }

  /** Readings of the GPU at `timestampMs` (Unix ms). */
  sampleGpu(timestampMs: number): DeviceSample {
    const tSec = timestampMs / 1000;
    const m = this.model;
    const load = this.load(tSec);
    const powerMw = this.powerMw(load);
    this.advance(tSec, powerMw, load);
    const temp = Math.min(TEMPERATURE_RANGE_C.max, Math.max(TEMPERATURE_RANGE_C.min, Math.round(this.tempC)));
    const capped = powerMw >= 0.97 * m.powerLimitW * 1000;
    const idle = load < 0.05;
    const hot = temp >= 83;
    let smClock = idle ? m.smClockIdleMhz : m.smClockIdleMhz + (m.smClockMaxMhz - m.smClockIdleMhz) * Math.min(1, 0.7 + 0.5 * load);
    if (capped || hot) smClock *= 0.9;
    const reasons =
      (idle ? CLOCK_EVENT_REASON.gpuIdle : 0) |
      (capped ? CLOCK_EVENT_REASON.swPowerCap : 0) |
      (hot ? CLOCK_EVENT_REASON.swThermalSlowdown : 0);
    const totalBytes = m.memoryMiB * MIB;
    const reservedBytes = m.reservedMiB * MIB;
    const usableBytes = totalBytes - reservedBytes;
    // Allocated by processes (or, in MIG mode, by the MIG devices), within what the driver did not reserve.
    const allocatedBytes = this.info.migEnabled
      ? Math.min(usableBytes, this.migs.reduce((s, g) => s + migUsedBytes(g, tSec), 0))
      : Math.round(usableBytes * (0.02 + 0.9 * trendAt(this.curve, tSec)) / MIB) * MIB;
    // nvml.h, nvmlMemory_v2_t: used = reserved + allocated, free = total − used.
    const usedBytes = reservedBytes + allocatedBytes;
    const base: Mutable<DeviceSample> = {
      uuid: this.info.uuid,
      memoryUsedBytes: usedBytes,
      memoryFreeBytes: totalBytes - usedBytes,
      memoryReservedBytes: reservedBytes,
      memoryTotalBytes: totalBytes,
      powerMilliwatts: powerMw,
      powerLimitMilliwatts: m.powerLimitW * 1000,
      energyMillijoules: this.energyMj,
      gpuTemperatureCelsius: temp,
      memoryTemperatureCelsius: Math.round(temp + 4 + 6 * load),
      smClockMhz: Math.round(smClock),
      memoryClockMhz: m.memoryClockMhz,
      clockEventReasons: reasons,
      eccCorrectedErrors: this.eccCorrected,
      eccUncorrectedErrors: this.eccUncorrected,
      remappedRowsCorrectable: 0,
      remappedRowsUncorrectable: 0,
      remappedRowsFailure: 0,
      pcieReplays: 0,
      pcieTxBytes: this.pcieTx,
      pcieRxBytes: this.pcieRx,
      nvlinkDataBytes: this.nvlinkBytes,
    };
    const gpm = this.gpm(this.info.uuid, gpmActivity(this.info.minor), false);
    if (gpm !== undefined) base.gpm = gpm;
    if (this.info.migEnabled) return base;
    const memBusy = load * (0.55 + 0.1 * valueNoise(this.curve.seed ^ 0x1234567, tSec / 7));
    base.gpuUtilizationPercent = Math.round(load * 100);
    base.memoryUtilizationPercent = Math.round(Math.min(1, Math.max(0, memBusy)) * 100);
    base.encoderUtilizationPercent = 0;
    base.decoderUtilizationPercent = 0;
    return base;
  }

  /** Readings of each MIG device at `timestampMs`: memory only (NVML has no utilization for MIG devices). */
  sampleMigs(timestampMs: number): DeviceSample[] {
    const tSec = timestampMs / 1000;
    return this.migs.map((g) => {
      const used = migUsedBytes(g, tSec);
      const sample: Mutable<DeviceSample> = {
        uuid: g.info.uuid,
        memoryUsedBytes: used,
        memoryFreeBytes: g.info.memoryBytes - used,
        memoryTotalBytes: g.info.memoryBytes,
      };
      const gpm = this.gpm(g.info.uuid, gpmActivity(this.info.minor, g.info.gpuInstanceId), true);
      if (gpm !== undefined) sample.gpm = gpm;
      return sample;
    });
  }

  /**
   * GPM metrics of device `uuid` (activity `a`): none before Hopper, none at its first sample (NVML needs two).
   * The activity model is constant per device (gpm.ts), so one frozen object per device serves every sample.
   */
  private gpm(uuid: string, a: number, mig: boolean): DeviceSample['gpm'] {
    if (!gpmSupported(this.info.architecture)) return undefined;
    const seen = this.gpmSeen.get(uuid);
    if (seen === undefined) {
      this.gpmSeen.set(uuid, null);
      return undefined;
    }
    if (seen !== null && seen.a === a && seen.mig === mig) return seen.metrics;
    const metrics = Object.freeze(gpmMetricsOf(a, mig));
    this.gpmSeen.set(uuid, { a, mig, metrics });
    return metrics;
  }
}

/** Memory used by a MIG device at `tSec`: 2–92 % of its GPU instance, following its trend, whole MiB. */
function migUsedBytes(g: MigSim, tSec: number): number {
  return Math.round((g.info.memoryBytes * (0.02 + 0.9 * trendAt(g.curve, tSec))) / MIB) * MIB;
}
