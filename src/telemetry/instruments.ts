/**
 * The metric catalogue, as data (test/reference/metrics.md). One generic loop (observe.ts, own-metrics.ts) turns
 * it into OpenTelemetry metric data (metric-data.ts); nothing else names a metric.
 *
 * Sources of fact:
 * - names, instruments, units: OpenTelemetry semantic conventions `model/hardware/{gpu,common}-metrics.yaml`
 *   (status Development) as shipped by @opentelemetry/semantic-conventions 1.45 (`METRIC_HW_*`);
 * - `hw.gpu.utilization` and `hw.gpu.memory.utilization` are fractions (unit `1`): percent / 100.
 *   Semconv defines `hw.gpu.memory.utilization` as "Fraction of GPU memory used", i.e. used / total bytes,
 *   not the memory-controller busy time that NVML calls "memory utilization" (test/reference/metrics.md maps it
 *   to `GetUtilizationRates.memory`; upstream wins). The controller busy time is the non-standard
 *   `gpulet.gpu.memory_controller.utilization`.
 * - Metrics with no semconv name are prefixed `gpulet.` and flagged `standard: false`.
 */
import type { DeviceSample, GpmMetrics } from '../gpu/types.js';

/** Observable instrument kind (all instruments are asynchronous, fed from the latest sample). */
export type InstrumentKind = 'gauge' | 'updowncounter' | 'counter';

/** UCUM units as OTel writes them. */
export type Unit = '1' | 'By' | 'By/s' | 'W' | 'J' | 'Cel' | 'MHz' | '{error}' | '{replay}' | '{row}' | '{failure}';

/** Numeric reading fields of a {@link DeviceSample} (`gpm` is an object: {@link GpmField}). */
export type SampleField = Exclude<keyof DeviceSample, 'uuid' | 'gpm'>;

/** Fields of a sample's GPM profiling metrics ({@link GpmMetrics}). */
export type GpmField = keyof GpmMetrics;

/**
 * How a raw reading becomes the exported value:
 * `identity`; `percentToRatio` (÷100); `milliToUnit` (mW → W, mJ → J: ÷1000); `bytesToMiB` (÷2^20).
 */
export type Conversion = 'identity' | 'percentToRatio' | 'milliToUnit' | 'bytesToMiB';

/** Where the value of a series comes from. */
export type SeriesSource =
  /** One sample field, optionally divided by another (`per`) for a fraction. */
  | { readonly from: 'sample'; readonly field: SampleField; readonly per?: SampleField }
  /** One GPM profiling metric of the sample (`DeviceSample.gpm`): absent where GPM is unsupported. */
  | { readonly from: 'gpm'; readonly field: GpmField }
  /** `hw.status`: one point per `hw.state`, 1 for the device's current state, 0 for the others. */
  | { readonly from: 'health-state' }
  /**
   * One point per XID seen on the device: `error.type` = `xid` (a low-cardinality identifier, semconv `error.type`
   * note [2] of `hw.errors`), the XID number in `gpulet.gpu.xid`.
   */
  | { readonly from: 'xid-counts' };

/** A dcgm-exporter series derived from the same reading. */
export interface DcgmSeries {
  /** dcgm-exporter field name (etc/default-counters.csv), e.g. `DCGM_FI_DEV_GPU_UTIL`. */
  readonly name: string;
  readonly type: 'gauge' | 'counter';
  readonly help: string;
  /** Conversion from the raw DeviceSample reading to dcgm-exporter's unit. */
  readonly convert: Conversion;
  /**
   * A reading subtracted from the raw one first, when present. DCGM's `FB_USED` excludes the reserved
   * framebuffer (FB_USED + FB_FREE + FB_RESERVED = total), while NVML's `nvmlMemory_v2_t.used` includes it.
   */
  readonly minus?: SampleField;
}

/** One series (a fixed attribute set) of an instrument. */
export interface SeriesSpec {
  readonly source: SeriesSource;
  /** Conversion from the raw reading (DeviceSample units) to the instrument's unit. */
  readonly convert: Conversion;
  /** Attributes that tell this series apart, e.g. `{ 'hw.gpu.task': 'encoder' }`. */
  readonly attributes: Readonly<Record<string, string>>;
  /** dcgm-exporter equivalent, when there is one. */
  readonly dcgm?: DcgmSeries;
}

/**
 * Which component a series describes, hence its identifying attributes (semconv 1.45 `docs/hardware/`):
 * `gpu-metric` — a `hw.gpu.*` metric or one of gpulet's own: the device attributes, no `hw.type`
 * (`metric_attributes.hw.gpu` has none); `common` — a common `hw.*` metric of the device: `hw.type=gpu` too
 * (Required by `metric_attributes.hw.attributes`); `temperature` — the device's temperature sensor as its own
 * component (`hw.type=temperature`, `hw.parent` the device).
 */
export type Component = 'gpu-metric' | 'common' | 'temperature';

/** One instrument of the catalogue. */
export interface InstrumentSpec {
  /** OTel metric name. */
  readonly name: string;
  /** The component whose attributes its series carry (default `gpu-metric`). */
  readonly component?: Component;
  readonly kind: InstrumentKind;
  readonly unit: Unit;
  readonly description: string;
  /** True for an OTel semantic-conventions name; false for a `gpulet.` extension. */
  readonly standard: boolean;
  /** NVML source of the reading (documentation). */
  readonly nvml: string;
  readonly series: readonly SeriesSpec[];
}

const s = (field: SampleField, convert: Conversion, attributes: Record<string, string> = {}, dcgm?: DcgmSeries): SeriesSpec =>
  dcgm === undefined ? { source: { from: 'sample', field }, convert, attributes } : { source: { from: 'sample', field }, convert, attributes, dcgm };

const p = (field: GpmField, attributes: Record<string, string>, dcgm: DcgmSeries): SeriesSpec => ({
  source: { from: 'gpm', field },
  convert: 'identity',
  attributes,
  dcgm,
});

const g = (name: string, help: string, convert: Conversion = 'identity'): DcgmSeries => ({ name, type: 'gauge', help, convert });
const c = (name: string, help: string, convert: Conversion = 'identity'): DcgmSeries => ({ name, type: 'counter', help, convert });

/** The catalogue. Order is the order of `/metrics`. */
export const INSTRUMENTS: readonly InstrumentSpec[] = [
  {
    name: 'hw.gpu.utilization', kind: 'gauge', unit: '1', standard: true,
    description: 'Fraction of time spent in a specific task',
    nvml: 'nvmlDeviceGetUtilizationRates.gpu, nvmlDeviceGetEncoderUtilization, nvmlDeviceGetDecoderUtilization (percent)',
    series: [
      s('gpuUtilizationPercent', 'percentToRatio', { 'hw.gpu.task': 'general' }, g('DCGM_FI_DEV_GPU_UTIL', 'GPU utilization (in %).')),
      s('encoderUtilizationPercent', 'percentToRatio', { 'hw.gpu.task': 'encoder' }, g('DCGM_FI_DEV_ENC_UTIL', 'Encoder utilization (in %).')),
      s('decoderUtilizationPercent', 'percentToRatio', { 'hw.gpu.task': 'decoder' }, g('DCGM_FI_DEV_DEC_UTIL', 'Decoder utilization (in %).')),
    ],
  },
  {
    name: 'hw.gpu.memory.utilization', kind: 'gauge', unit: '1', standard: true,
    description: 'Fraction of GPU memory used',
    nvml: 'nvmlDeviceGetMemoryInfo_v2 used / total',
    series: [{ source: { from: 'sample', field: 'memoryUsedBytes', per: 'memoryTotalBytes' }, convert: 'identity', attributes: {} }],
  },
  {
    name: 'hw.gpu.memory.usage', kind: 'updowncounter', unit: 'By', standard: true,
    description: 'GPU memory used',
    nvml: 'nvmlDeviceGetMemoryInfo_v2.used (bytes)',
    series: [s('memoryUsedBytes', 'identity', {}, { ...g('DCGM_FI_DEV_FB_USED', 'Framebuffer memory used (in MiB).', 'bytesToMiB'), minus: 'memoryReservedBytes' })],
  },
  {
    name: 'hw.gpu.memory.limit', kind: 'updowncounter', unit: 'By', standard: true,
    description: 'Size of the GPU memory',
    nvml: 'nvmlDeviceGetMemoryInfo_v2.total (bytes)',
    series: [s('memoryTotalBytes', 'identity')],
  },
  {
    name: 'hw.gpu.io', kind: 'counter', unit: 'By', standard: true,
    description: 'Received and transmitted bytes by the GPU',
    nvml: 'PCIe bytes integrated from nvmlDeviceGetPcieThroughput (KB/s) or fields PCIE_COUNT_TX/RX',
    series: [
      s('pcieTxBytes', 'identity', { 'network.io.direction': 'transmit' }),
      s('pcieRxBytes', 'identity', { 'network.io.direction': 'receive' }),
    ],
  },
  {
    name: 'hw.power', kind: 'gauge', unit: 'W', standard: true, component: 'common',
    description: 'Instantaneous power consumed by the component',
    nvml: 'nvmlDeviceGetPowerUsage (milliwatts)',
    series: [s('powerMilliwatts', 'milliToUnit', {}, g('DCGM_FI_DEV_POWER_USAGE', 'Power draw (in W).', 'milliToUnit'))],
  },
  {
    name: 'hw.energy', kind: 'counter', unit: 'J', standard: true, component: 'common',
    description: 'Energy consumed by the component',
    nvml: 'nvmlDeviceGetTotalEnergyConsumption (millijoules)',
    series: [s('energyMillijoules', 'milliToUnit', {}, c('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', 'Total energy consumption since boot (in mJ).'))],
  },
  {
    name: 'hw.temperature', kind: 'gauge', unit: 'Cel', standard: true, component: 'temperature',
    description: 'Temperature in degrees Celsius',
    nvml: 'nvmlDeviceGetTemperatureV, field NVML_FI_DEV_MEMORY_TEMP (82)',
    series: [
      s('gpuTemperatureCelsius', 'identity', { 'hw.sensor_location': 'gpu' }, g('DCGM_FI_DEV_GPU_TEMP', 'GPU temperature (in C).')),
      s('memoryTemperatureCelsius', 'identity', { 'hw.sensor_location': 'memory' }, g('DCGM_FI_DEV_MEMORY_TEMP', 'Memory temperature (in C).')),
    ],
  },
  {
    name: 'hw.errors', kind: 'counter', unit: '{error}', standard: true, component: 'common',
    description: 'Number of errors encountered by the component',
    nvml: 'nvmlDeviceGetTotalEccErrors (volatile), XID events (nvmlEventTypeXidCriticalError)',
    series: [
      s('eccCorrectedErrors', 'identity', { 'error.type': 'corrected' }, c('DCGM_FI_DEV_ECC_SBE_VOL_TOTAL', 'Total number of single-bit volatile ECC errors.')),
      s('eccUncorrectedErrors', 'identity', { 'error.type': 'uncorrected' }, c('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL', 'Total number of double-bit volatile ECC errors.')),
      { source: { from: 'xid-counts' }, convert: 'identity', attributes: { 'error.type': 'xid' } },
    ],
  },
  {
    name: 'hw.status', kind: 'updowncounter', unit: '1', standard: true, component: 'common',
    description: 'Operational status: 1 (true) or 0 (false) for each of the possible states',
    nvml: 'health policy over NVML events (src/gpu/health.ts)',
    series: [{ source: { from: 'health-state' }, convert: 'identity', attributes: {} }],
  },
  {
    name: 'gpulet.gpu.memory_controller.utilization', kind: 'gauge', unit: '1', standard: false,
    description: 'Fraction of time the memory controller was busy (NVML "memory utilization"); not an OTel semantic convention',
    nvml: 'nvmlDeviceGetUtilizationRates.memory (percent)',
    series: [s('memoryUtilizationPercent', 'percentToRatio', {}, g('DCGM_FI_DEV_MEM_COPY_UTIL', 'Memory utilization (in %).'))],
  },
  {
    name: 'gpulet.gpu.clock.frequency', kind: 'gauge', unit: 'MHz', standard: false,
    description: 'Current clock frequency; not an OTel semantic convention',
    nvml: 'nvmlDeviceGetClockInfo(NVML_CLOCK_SM / NVML_CLOCK_MEM) (MHz)',
    series: [
      s('smClockMhz', 'identity', { 'gpulet.clock.type': 'sm' }, g('DCGM_FI_DEV_SM_CLOCK', 'SM clock frequency (in MHz).')),
      s('memoryClockMhz', 'identity', { 'gpulet.clock.type': 'memory' }, g('DCGM_FI_DEV_MEM_CLOCK', 'Memory clock frequency (in MHz).')),
    ],
  },
  {
    name: 'gpulet.gpu.clock.event_reasons', kind: 'gauge', unit: '1', standard: false,
    description: 'Bitmask of current clock event (throttle) reasons, nvmlClocksEventReason*; not an OTel semantic convention',
    nvml: 'nvmlDeviceGetCurrentClocksEventReasons (bitmask)',
    series: [s('clockEventReasons', 'identity', {}, g('DCGM_FI_DEV_CLOCKS_EVENT_REASONS', 'Current clock event reasons (bitmask of DCGM_CLOCKS_EVENT_REASON_*).'))],
  },
  {
    name: 'gpulet.gpu.pcie.replays', kind: 'counter', unit: '{replay}', standard: false,
    description: 'PCIe replay count since driver load; not an OTel semantic convention',
    nvml: 'nvmlDeviceGetPcieReplayCounter',
    series: [s('pcieReplays', 'identity', {}, c('DCGM_FI_DEV_PCIE_REPLAY_COUNTER', 'Total number of PCIe retries.'))],
  },
  {
    name: 'gpulet.gpu.memory.remapped_rows', kind: 'updowncounter', unit: '{row}', standard: false,
    description: 'Memory rows remapped (reset with the GPU); not an OTel semantic convention',
    nvml: 'nvmlDeviceGetRemappedRows',
    series: [
      // dcgm-exporter declares both counters (etc/default-counters.csv), though NVML resets them with the GPU.
      s('remappedRowsCorrectable', 'identity', { 'gpulet.remap.type': 'correctable' }, c('DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS', 'Number of remapped rows for correctable errors')),
      s('remappedRowsUncorrectable', 'identity', { 'gpulet.remap.type': 'uncorrectable' }, c('DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS', 'Number of remapped rows for uncorrectable errors')),
    ],
  },
  {
    name: 'gpulet.gpu.power.limit', kind: 'gauge', unit: 'W', standard: false,
    description: 'Enforced power limit; not an OTel semantic convention',
    nvml: 'nvmlDeviceGetEnforcedPowerLimit (milliwatts)',
    series: [s('powerLimitMilliwatts', 'milliToUnit', {}, g('DCGM_FI_DEV_POWER_MGMT_LIMIT', 'Power management limit (in W).', 'milliToUnit'))],
  },
  // Profiling metrics (NVML GPM, Hopper and newer; semconv 1.45 has no profiling metrics, hence gpulet.*). The
  // DCGM_FI_PROF_* names, types and help texts are dcgm-exporter's (etc/dcp-metrics-included.csv, commit
  // 99a774bb: GR_ENGINE, SM_*, PIPE_*, DRAM, PCIE_*; the NVLink pair is dcgm's DCP field list, worded alike).
  {
    name: 'gpulet.gpu.graphics_engine.utilization', kind: 'gauge', unit: '1', standard: false,
    description: 'Fraction of time a graphics or compute engine was active (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_GRAPHICS_UTIL (percent)',
    series: [p('graphicsActive', {}, g('DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'Ratio of time the graphics engine is active.'))],
  },
  {
    name: 'gpulet.gpu.sm.utilization', kind: 'gauge', unit: '1', standard: false,
    description: 'Fraction of cycles an SM has at least one warp assigned, averaged over all SMs (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_SM_UTIL (percent)',
    series: [p('smActive', {}, g('DCGM_FI_PROF_SM_ACTIVE', 'The ratio of cycles an SM has at least 1 warp assigned.'))],
  },
  {
    name: 'gpulet.gpu.sm.occupancy', kind: 'gauge', unit: '1', standard: false,
    description: 'Warps resident on an SM over the theoretical maximum (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_SM_OCCUPANCY (percent)',
    series: [p('smOccupancy', {}, g('DCGM_FI_PROF_SM_OCCUPANCY', 'The ratio of number of warps resident on an SM.'))],
  },
  {
    name: 'gpulet.gpu.pipe.utilization', kind: 'gauge', unit: '1', standard: false,
    description: 'Fraction of cycles a pipe (tensor, FP64, FP32, FP16) was active (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_ANY_TENSOR_UTIL, _FP64_UTIL, _FP32_UTIL, _FP16_UTIL (percent)',
    series: [
      p('tensorActive', { 'gpulet.gpu.pipe': 'tensor' }, g('DCGM_FI_PROF_PIPE_TENSOR_ACTIVE', 'Ratio of cycles the tensor (HMMA) pipe is active.')),
      p('fp64Active', { 'gpulet.gpu.pipe': 'fp64' }, g('DCGM_FI_PROF_PIPE_FP64_ACTIVE', 'Ratio of cycles the fp64 pipes are active.')),
      p('fp32Active', { 'gpulet.gpu.pipe': 'fp32' }, g('DCGM_FI_PROF_PIPE_FP32_ACTIVE', 'Ratio of cycles the fp32 pipes are active.')),
      p('fp16Active', { 'gpulet.gpu.pipe': 'fp16' }, g('DCGM_FI_PROF_PIPE_FP16_ACTIVE', 'Ratio of cycles the fp16 pipes are active.')),
    ],
  },
  {
    name: 'gpulet.gpu.dram.utilization', kind: 'gauge', unit: '1', standard: false,
    description: 'Fraction of cycles the device memory interface was sending or receiving data (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_DRAM_BW_UTIL (percent)',
    series: [p('dramActive', {}, g('DCGM_FI_PROF_DRAM_ACTIVE', 'Ratio of cycles the device memory interface is active sending or receiving data.'))],
  },
  {
    name: 'gpulet.gpu.pcie.bandwidth', kind: 'gauge', unit: 'By/s', standard: false,
    description: 'PCIe bytes per second, headers and payload, over the last sample interval (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_PCIE_TX_PER_SEC / _RX_PER_SEC (MiB/s)',
    series: [
      p('pcieTxBytesPerSecond', { 'network.io.direction': 'transmit' }, g('DCGM_FI_PROF_PCIE_TX_BYTES', 'The rate of data transmitted over the PCIe bus - including both protocol headers and data payloads - in bytes per second.')),
      p('pcieRxBytesPerSecond', { 'network.io.direction': 'receive' }, g('DCGM_FI_PROF_PCIE_RX_BYTES', 'The rate of data received over the PCIe bus - including both protocol headers and data payloads - in bytes per second.')),
    ],
  },
  {
    name: 'gpulet.gpu.nvlink.bandwidth', kind: 'gauge', unit: 'By/s', standard: false,
    description: 'NVLink bytes per second, all links, over the last sample interval (GPM); not an OTel semantic convention',
    nvml: 'nvmlGpmMetricsGet NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC / _RX_PER_SEC (MiB/s)',
    series: [
      p('nvlinkTxBytesPerSecond', { 'network.io.direction': 'transmit' }, g('DCGM_FI_PROF_NVLINK_TX_BYTES', 'The rate of data transmitted over NVLink - including both protocol headers and data payloads - in bytes per second.')),
      p('nvlinkRxBytesPerSecond', { 'network.io.direction': 'receive' }, g('DCGM_FI_PROF_NVLINK_RX_BYTES', 'The rate of data received over NVLink - including both protocol headers and data payloads - in bytes per second.')),
    ],
  },
];

/**
 * dcgm-exporter series with no OTel instrument of their own: framebuffer free/reserved, the row-remap failure
 * flag, the NVLink byte counter, and the clock event reasons under their pre-DCGM-3.3 name. Types and help as
 * dcgm-exporter's `etc/dcp-metrics-included.csv` (test/reference/dcgm-exporter/); `DCGM_FI_DEV_XID_ERRORS` is
 * fed from the health tracker, not from a sample field (dcgm.ts).
 */
export const DCGM_ONLY_SERIES: readonly (DcgmSeries & { readonly field: SampleField })[] = [
  { ...g('DCGM_FI_DEV_FB_FREE', 'Framebuffer memory free (in MiB).', 'bytesToMiB'), field: 'memoryFreeBytes' },
  { ...g('DCGM_FI_DEV_FB_RESERVED', 'Framebuffer memory reserved (in MiB).', 'bytesToMiB'), field: 'memoryReservedBytes' },
  { ...g('DCGM_FI_DEV_ROW_REMAP_FAILURE', 'Whether remapping of rows has failed'), field: 'remappedRowsFailure' },
  // Bytes of NVLink data, both directions, every link (dcgm-exporter's DCGM_FI_DEV_NVLINK_BANDWIDTH_L0 help:
  // "The number of bytes of active NVLink rx or tx data"); absent without NVLink and on MIG devices.
  { ...c('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL', 'Total number of NVLink bandwidth counters for all lanes.'), field: 'nvlinkDataBytes' },
  // DCGM 3.3 renamed field 112 DCGM_FI_DEV_CLOCK_THROTTLE_REASONS to DCGM_FI_DEV_CLOCKS_EVENT_REASONS (go-dcgm
  // const.go); the old name stays for dashboards written against it.
  { ...g('DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', 'Current clock throttle reasons (bitmask); the former name of DCGM_FI_DEV_CLOCKS_EVENT_REASONS.'), field: 'clockEventReasons' },
];

/** Apply a {@link Conversion}. */
export function convert(value: number, conversion: Conversion): number {
  switch (conversion) {
    case 'identity':
      return value;
    case 'percentToRatio':
      return value / 100;
    case 'milliToUnit':
      return value / 1000;
    case 'bytesToMiB':
      return value / 1048576;
  }
}

/** The value of a `gpm` series for one device, or undefined when the device has no such GPM metric (never 0). */
export function readGpm(sample: DeviceSample, field: GpmField): number | undefined {
  const v = sample.gpm?.[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * The value of a `sample` series for one device, or undefined when the device does not support a reading
 * it needs (never 0 for "unsupported"), or the reading is not a finite number, or the divisor is 0.
 */
export function readSeries(sample: DeviceSample, source: Extract<SeriesSource, { from: 'sample' }>, conversion: Conversion): number | undefined {
  const raw = sample[source.field];
  if (typeof raw !== 'number' || !Number.isFinite(raw)) return undefined;
  if (source.per === undefined) return convert(raw, conversion);
  const divisor = sample[source.per];
  if (typeof divisor !== 'number' || !Number.isFinite(divisor) || divisor <= 0) return undefined;
  return convert(raw / divisor, conversion);
}
