/**
 * The GPM figures the fake libnvidia-ml's counters imply, transcribed from its documented counter model
 * (test/fixtures/fake-nvml/README.md, "GPM"; gpm.c), independently of gpulet's code: a device with activity a has
 * cumulative counters growing at fixed rates, so nvmlGpmMetricsGet over any two samples gives the rates. NVML
 * reports percent and MiB/s; gpulet's GpmMetrics are fractions and bytes per second, so the expectations here are
 * in gpulet's units (percent / 100, MiB × 2^20).
 */
import type { MachineSpec } from '../../src/gpu/mock/index.js';

/** Activity level of a GPU with minor number `minor` (no `gpuInstanceId`), or of GPU instance `gpuInstanceId` on it. */
export function fakeGpmActivity(minor: number, gpuInstanceId?: number): number {
  return gpuInstanceId === undefined ? 0.4 + 0.05 * (minor % 8) : 0.2 + 0.05 * (gpuInstanceId % 8) + 0.01 * (minor % 8);
}

/** Expected GpmMetrics of a device with activity `a`; a GPU instance (`mig`) has no PCIe / NVLink figures. */
export function expectedGpm(a: number, mig: boolean): Record<string, number> {
  const MiB = 2 ** 20;
  const activity = {
    graphicsActive: a, smActive: 0.9 * a, smOccupancy: 0.5 * a, tensorActive: 0.6 * a,
    fp64Active: 0.1 * a, fp32Active: 0.3 * a, fp16Active: 0.2 * a, dramActive: 0.7 * a,
  };
  return mig
    ? activity
    : { ...activity, pcieTxBytesPerSecond: 2048 * a * MiB, pcieRxBytesPerSecond: 4096 * a * MiB, nvlinkTxBytesPerSecond: 65536 * a * MiB, nvlinkRxBytesPerSecond: 32768 * a * MiB };
}

/** Expect `actual` (a DeviceSample's `gpm`) to equal `expected` key for key, to 9 significant decimals of a ratio. */
export function closeTo(actual: object | undefined, expected: Readonly<Record<string, number>>): string[] {
  const problems: string[] = [];
  if (actual === undefined) return ['no gpm'];
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  for (const k of keys) {
    const a = (actual as Record<string, number | undefined>)[k];
    const e = expected[k];
    if (a === undefined || e === undefined || Math.abs(a - e) > 1e-9 * Math.max(1, Math.abs(e))) problems.push(`${k}: ${String(a)} != ${String(e)}`);
  }
  return problems;
}

/**
 * A machine with one GPU of each GPM case: an A100 (Ampere: no GPM), a whole H100, and an H100 in MIG mode with
 * two GPU instances (3g.40gb at 0, 1g.10gb at 6).
 */
export const GPM_MACHINE: MachineSpec = {
  name: 'gpm-mixed',
  gpus: [
    { model: 'a100-40gb' },
    { model: 'h100-80gb' },
    { model: 'h100-80gb', mig: [{ profile: '3g.40gb', placementStart: 0 }, { profile: '1g.10gb', placementStart: 6 }] },
  ],
};
