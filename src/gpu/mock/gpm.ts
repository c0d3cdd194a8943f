/**
 * The GPM activity model shared by the mock backend and the fake libnvidia-ml (test/fixtures/fake-nvml/gpm.c,
 * documented in its README): each device has one constant activity level `a`, and every profiling metric is a
 * fixed multiple of it. Constant rates make the figures independent of when the two GPM samples were taken, so
 * a test can compute them exactly. GPM exists from Hopper on (nvml.h: nvmlGpmMetricsGet "For Hopper or newer
 * fully supported devices"); older GPUs (A100: Ampere) have none.
 *
 * - a GPU with minor number m: `a = 0.40 + 0.05 × (m mod 8)`;
 * - a MIG device (GPU instance g on the GPU with minor m): `a = 0.20 + 0.05 × (g mod 8) + 0.01 × (m mod 8)`;
 * - graphics active a, SM active 0.9a, SM occupancy 0.5a, tensor active 0.6a, FP64 0.1a, FP32 0.3a, FP16 0.2a,
 *   DRAM active 0.7a (fractions);
 * - GPUs only (a MIG device's GPU-instance sample has no PCIe or NVLink figures): PCIe TX 2048a MiB/s, PCIe RX
 *   4096a MiB/s, NVLink TX 65536a MiB/s, NVLink RX 32768a MiB/s (as bytes per second: × 2^20).
 */
import type { GpmMetrics } from '../types.js';

const MIB = 1024 * 1024;

/** Architectures with GPM (`nvmlGpmQueryDeviceSupport` says supported). */
export function gpmSupported(architecture: string): boolean {
  return architecture === 'Hopper' || architecture === 'Blackwell';
}

/** Activity level of a GPU (minor `minor`) or, with `gpuInstanceId`, of one of its MIG devices. */
export function gpmActivity(minor: number, gpuInstanceId?: number): number {
  if (gpuInstanceId === undefined) return 0.4 + 0.05 * (minor % 8);
  return 0.2 + 0.05 * (gpuInstanceId % 8) + 0.01 * (minor % 8);
}

/** The metrics of a device with activity `a` (`mig`: a MIG device, no PCIe / NVLink figures). */
export function gpmMetricsOf(a: number, mig: boolean): GpmMetrics {
  const activity = {
    graphicsActive: a,
    smActive: 0.9 * a,
    smOccupancy: 0.5 * a,
    tensorActive: 0.6 * a,
    fp64Active: 0.1 * a,
    fp32Active: 0.3 * a,
    fp16Active: 0.2 * a,
    dramActive: 0.7 * a,
  };
  if (mig) return activity;
  return {
    ...activity,
    pcieTxBytesPerSecond: 2048 * a * MIB,
    pcieRxBytesPerSecond: 4096 * a * MIB,
    nvlinkTxBytesPerSecond: 65536 * a * MIB,
    nvlinkRxBytesPerSecond: 32768 * a * MIB,
  };
}
