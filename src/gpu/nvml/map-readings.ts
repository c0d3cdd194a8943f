/**
 * Pure mapping of native readings and events to gpulet's {@link DeviceSample} and {@link HealthEvent}.
 * Units are NVML's (percent, bytes, mW, mJ, °C, MHz); PCIe throughput (KB/s, 1 KB = 1024 bytes, from
 * `nvmlDeviceGetPcieThroughput`) is integrated over time into cumulative byte counters by {@link PcieIntegrator}.
 */
import type { DeviceSample, GpmMetrics, HealthEvent, Inventory } from '../types.js';
import type { NvmlGpmReading, NvmlRawEvent, NvmlReading } from './native-types.js';

/** `nvmlEventType*` bits gpulet registers (nvml.h; GpuUnavailable from NVML 12.9, native/nvml_abi.h). */
export const NVML_EVENT = {
  singleBitEcc: 0x1,
  doubleBitEcc: 0x2,
  xidCritical: 0x8,
  gpuUnavailable: 0x4000,
} as const;

/** `gpuInstanceId` of an event that does not concern a MIG device. */
const NO_INSTANCE = 0xffffffff;

/** Integrates PCIe throughput (KB/s) into cumulative bytes per device, trapezoid rule. State per UUID. */
export class PcieIntegrator {
  private readonly state = new Map<string, { tMs: number; tx: number; rx: number; txRate: number; rxRate: number }>();

  /** Cumulative {tx, rx} bytes of `uuid` after a reading at `tMs` of rates in KB/s (0 bytes at first). */
  add(uuid: string, tMs: number, txKBs: number, rxKBs: number): { tx: number; rx: number } {
    const txRate = txKBs * 1024;
    const rxRate = rxKBs * 1024;
    const prev = this.state.get(uuid);
    if (!prev) {
      this.state.set(uuid, { tMs, tx: 0, rx: 0, txRate, rxRate });
      return { tx: 0, rx: 0 };
    }
    const dt = Math.max(0, tMs - prev.tMs) / 1000;
    const next = {
      tMs: Math.max(tMs, prev.tMs),
      tx: prev.tx + Math.round(((prev.txRate + txRate) / 2) * dt),
      rx: prev.rx + Math.round(((prev.rxRate + rxRate) / 2) * dt),
      txRate,
      rxRate,
    };
    this.state.set(uuid, next);
    return { tx: next.tx, rx: next.rx };
  }
}

/**
 * A native reading as a {@link DeviceSample} of `uuid` at `timestampMs`. Absent readings stay absent.
 * PCIe counters appear only when both directions were read.
 */
export function toDeviceSample(uuid: string, r: NvmlReading, timestampMs: number, pcie: PcieIntegrator): DeviceSample {
  const out: { -readonly [K in keyof DeviceSample]: DeviceSample[K] } = { uuid };
  if (r.gpuUtil !== undefined) out.gpuUtilizationPercent = r.gpuUtil;
  if (r.memUtil !== undefined) out.memoryUtilizationPercent = r.memUtil;
  if (r.encUtil !== undefined) out.encoderUtilizationPercent = r.encUtil;
  if (r.decUtil !== undefined) out.decoderUtilizationPercent = r.decUtil;
  if (r.memUsed !== undefined) out.memoryUsedBytes = r.memUsed;
  if (r.memFree !== undefined) out.memoryFreeBytes = r.memFree;
  if (r.memReserved !== undefined) out.memoryReservedBytes = r.memReserved;
  if (r.memTotal !== undefined) out.memoryTotalBytes = r.memTotal;
  if (r.power !== undefined) out.powerMilliwatts = r.power;
  if (r.powerLimit !== undefined) out.powerLimitMilliwatts = r.powerLimit;
  if (r.energy !== undefined) out.energyMillijoules = r.energy;
  if (r.gpuTemp !== undefined) out.gpuTemperatureCelsius = r.gpuTemp;
  if (r.memTemp !== undefined) out.memoryTemperatureCelsius = r.memTemp;
  if (r.smClock !== undefined) out.smClockMhz = r.smClock;
  if (r.memClock !== undefined) out.memoryClockMhz = r.memClock;
  if (r.clockReasons !== undefined) out.clockEventReasons = r.clockReasons;
  if (r.eccCorrected !== undefined) out.eccCorrectedErrors = r.eccCorrected;
  if (r.eccUncorrected !== undefined) out.eccUncorrectedErrors = r.eccUncorrected;
  if (r.remappedCorrectable !== undefined) out.remappedRowsCorrectable = r.remappedCorrectable;
  if (r.remappedUncorrectable !== undefined) out.remappedRowsUncorrectable = r.remappedUncorrectable;
  if (r.remappedFailure !== undefined) out.remappedRowsFailure = r.remappedFailure === 0 ? 0 : 1;
  if (r.nvlinkTxKiB !== undefined && r.nvlinkRxKiB !== undefined) out.nvlinkDataBytes = (r.nvlinkTxKiB + r.nvlinkRxKiB) * 1024;
  if (r.pcieReplays !== undefined) out.pcieReplays = r.pcieReplays;
  if (r.pcieTxKBs !== undefined && r.pcieRxKBs !== undefined) {
    const { tx, rx } = pcie.add(uuid, timestampMs, r.pcieTxKBs, r.pcieRxKBs);
    out.pcieTxBytes = tx;
    out.pcieRxBytes = rx;
  }
  if (r.gpm !== undefined) {
    const gpm = toGpmMetrics(r.gpm);
    if (Object.keys(gpm).length > 0) out.gpm = gpm;
  }
  return out;
}

/** MiB (NVML's GPM bandwidth unit, MiB/s) in bytes. */
const MIB = 1024 * 1024;

/**
 * NVML's GPM figures (percent, MiB/s: nvml.h `nvmlGpmMetricId_t`) as {@link GpmMetrics} (fractions, bytes per
 * second). An absent NVML metric stays absent.
 */
export function toGpmMetrics(g: NvmlGpmReading): GpmMetrics {
  const out: { -readonly [K in keyof GpmMetrics]: GpmMetrics[K] } = {};
  const ratio = (v: number | undefined): number | undefined => (v === undefined ? undefined : v / 100);
  const bytes = (v: number | undefined): number | undefined => (v === undefined ? undefined : v * MIB);
  const set = <K extends keyof GpmMetrics>(key: K, v: number | undefined): void => {
    if (v !== undefined) out[key] = v;
  };
  set('graphicsActive', ratio(g.graphicsUtil));
  set('smActive', ratio(g.smUtil));
  set('smOccupancy', ratio(g.smOccupancy));
  set('tensorActive', ratio(g.anyTensorUtil));
  set('fp64Active', ratio(g.fp64Util));
  set('fp32Active', ratio(g.fp32Util));
  set('fp16Active', ratio(g.fp16Util));
  set('dramActive', ratio(g.dramBwUtil));
  set('pcieTxBytesPerSecond', bytes(g.pcieTxPerSec));
  set('pcieRxBytesPerSecond', bytes(g.pcieRxPerSec));
  set('nvlinkTxBytesPerSecond', bytes(g.nvlinkTotalTxPerSec));
  set('nvlinkRxBytesPerSecond', bytes(g.nvlinkTotalRxPerSec));
  return out;
}

/**
 * The {@link HealthEvent} of a native event, or `undefined` when it concerns no known device or is of a type
 * gpulet does not map. `uuids[gpu]` is the UUID of discovery GPU `gpu` (undefined when left out). A MIG event
 * (gpuInstanceId set) is attributed to the MIG device with that GPU- and compute-instance ID when known.
 * A failed wait with NVML_ERROR_GPU_IS_LOST becomes `gpu-lost`.
 */
export function toHealthEvent(e: NvmlRawEvent, uuids: readonly (string | undefined)[], inventory: Inventory): HealthEvent | undefined {
  const gpuUuid = e.gpu >= 0 ? uuids[e.gpu] : undefined;
  if (gpuUuid === undefined) return undefined;
  const timestampMs = e.timestampMs;
  if (e.error) {
    if (e.error.code !== 15) return undefined;
    return { kind: 'gpu-lost', uuid: gpuUuid, timestampMs, message: `GPU ${gpuUuid} is lost (${e.error.name} from ${e.error.nvmlFunction})` };
  }
  let uuid = gpuUuid;
  if (e.gpuInstanceId !== NO_INSTANCE) {
    const gpu = inventory.gpus.find((g) => g.uuid === gpuUuid);
    const mig = gpu?.migDevices.find(
      (m) => m.gpuInstanceId === e.gpuInstanceId && (e.computeInstanceId === NO_INSTANCE || m.computeInstanceId === e.computeInstanceId),
    );
    if (mig) uuid = mig.uuid;
  }
  switch (e.eventType) {
    case NVML_EVENT.xidCritical:
      return { kind: 'xid', uuid, xid: e.eventData, timestampMs, message: `XID ${e.eventData} on ${uuid} (nvmlEventTypeXidCriticalError)` };
    case NVML_EVENT.doubleBitEcc:
      return { kind: 'ecc-double-bit', uuid, timestampMs, message: `double-bit ECC error on ${uuid} (nvmlEventTypeDoubleBitEccError)` };
    case NVML_EVENT.singleBitEcc:
      return { kind: 'ecc-single-bit', uuid, timestampMs, message: `single-bit ECC error on ${uuid} (nvmlEventTypeSingleBitEccError)` };
    case NVML_EVENT.gpuUnavailable:
      return { kind: 'gpu-unavailable', uuid, timestampMs, message: `GPU ${uuid} is unavailable (nvmlEventTypeGpuUnavailableError)` };
    default:
      return undefined;
  }
}
