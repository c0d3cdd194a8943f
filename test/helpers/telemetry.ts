/**
 * A tiny fake GpuBackend for telemetry unit tests: 2 H100s, GPU 0 whole, GPU 1 in MIG mode with two
 * 1g.10gb devices; readings are whatever the test sets.
 */
import type { DeviceOwner, OwnershipSource } from '../../src/model/types.js';
import type { DeviceSample, GpuBackend, GpuInfo, HealthEvent, Inventory, MigDeviceInfo, Sample } from '../../src/gpu/types.js';

export const GPU0 = 'GPU-00000000-1111-2222-3333-000000000000';
export const GPU1 = 'GPU-00000000-1111-2222-3333-000000000001';
export const MIG_A = 'MIG-aaaaaaaa-1111-2222-3333-000000000001';
export const MIG_B = 'MIG-bbbbbbbb-1111-2222-3333-000000000001';

function mig(uuid: string, start: number, gi: number): MigDeviceInfo {
  return {
    uuid, parentUuid: GPU1, parentMinor: 1, index: start, profile: '1g.10gb', giProfileId: 19,
    placement: { start, size: 1 }, gpuInstanceId: gi, computeInstanceId: 0, multiprocessors: 16,
    copyEngines: 1, decoders: 1, encoders: 0, jpegEngines: 1, ofaEngines: 0, memoryBytes: 10 * 1024 ** 3,
  };
}

function gpu(index: number, uuid: string, migs: MigDeviceInfo[]): GpuInfo {
  return {
    index, minor: index, uuid, serial: `16523220${index}`, productName: 'NVIDIA H100 80GB HBM3', brand: 'Nvidia',
    architecture: 'Hopper', cudaComputeCapability: { major: 9, minor: 0 },
    pci: { busId: `0000:${index === 0 ? '18' : '2a'}:00.0`, pcieRoot: 'pci0000:00', pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memoryBytes: 80 * 1024 ** 3, multiprocessors: 132, powerLimitMilliwatts: 700_000,
    migEnabled: migs.length > 0, migDevices: migs,
  };
}

export const INVENTORY: Inventory = {
  system: { driverVersion: '580.95.05', nvmlVersion: '13.580.95.05', cudaDriverVersion: 13000 },
  gpus: [gpu(0, GPU0, []), gpu(1, GPU1, [mig(MIG_A, 9, 9), mig(MIG_B, 10, 10)])],
};

/** A fake backend whose next sample is `next` (or a rejection when `fail` is set). */
export class FakeBackend implements GpuBackend {
  readonly kind = 'mock' as const;
  next: Sample = { timestampMs: 0, devices: [] };
  fail: Error | undefined;
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** How long a sample takes, ms: a `setTimeout`, so tests using it drive it with fake timers (never a real wait). */
  delayMs = 0;
  private listeners = new Set<(e: HealthEvent) => void>();
  init(): Promise<void> {
    return Promise.resolve();
  }
  inventory(): Inventory {
    return INVENTORY;
  }
  async sample(): Promise<Sample> {
    this.calls++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.fail) throw this.fail;
      return this.next;
    } finally {
      this.inFlight--;
    }
  }
  onHealthEvent(listener: (e: HealthEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(e: HealthEvent): void {
    for (const l of this.listeners) l(e);
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Full readings of a device (units of DeviceSample); `undefined` in `over` makes a reading unsupported. */
export function fullReadings(uuid: string, over: { [K in keyof DeviceSample]?: DeviceSample[K] | undefined } = {}): DeviceSample {
  const out: Record<string, unknown> = {
    uuid,
    gpuUtilizationPercent: 42, memoryUtilizationPercent: 10, encoderUtilizationPercent: 5, decoderUtilizationPercent: 0,
    // nvml.h (nvmlMemory_v2_t): used (20 GiB) includes reserved (1 GiB); used + free = total.
    memoryUsedBytes: 20 * 1024 ** 3, memoryFreeBytes: 60 * 1024 ** 3, memoryReservedBytes: 1024 ** 3, memoryTotalBytes: 80 * 1024 ** 3,
    powerMilliwatts: 345_678, powerLimitMilliwatts: 700_000, energyMillijoules: 123_456_789,
    gpuTemperatureCelsius: 51, memoryTemperatureCelsius: 60, smClockMhz: 1980, memoryClockMhz: 2619,
    clockEventReasons: 0, eccCorrectedErrors: 3, eccUncorrectedErrors: 0, remappedRowsCorrectable: 0,
    remappedRowsUncorrectable: 0, pcieReplays: 0, pcieTxBytes: 1_000_000, pcieRxBytes: 2_000_000,
    ...over,
  };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out as unknown as DeviceSample;
}

/** An OwnershipSource over a mutable map. */
export class FakeOwnership implements OwnershipSource {
  map = new Map<string, DeviceOwner[]>();
  owners(): ReadonlyMap<string, readonly DeviceOwner[]> {
    return this.map;
  }
}
