/**
 * MIG GPU-instance profile tables, as data, copied from `test/reference/mig-profiles.md` (NVIDIA MIG user guide,
 * "Supported MIG profiles", and `nvidia-smi mig -lgip` output quoted in NVIDIA/mig-parted issue 120,
 * NVIDIA/gpu-operator issue 900 and NVIDIA/DCGM issue 138).
 *
 * Memory is split into 8 slices, compute into 7. A placement is `start:size` in memory slices
 * (`nvmlGpuInstancePlacement_t`). `id` is the GPU-instance profile ID `nvidia-smi mig -lgip` shows
 * (`nvmlGpuInstanceProfileInfo_v2_t.id`). Encoders are 0 on every profile: NVIDIA reports 0 NVENC on MIG.
 */
import type { MigProfileSpec } from '../types.js';

/** One GPU-instance profile of one GPU model (in the mock's tables, `encoders` is always 0: NVIDIA reports none on MIG devices). */
export type MigProfile = MigProfileSpec;

type Row = [
  name: string,
  id: number,
  max: number,
  sms: number,
  memoryMiB: number,
  ce: number,
  dec: number,
  jpg: number,
  ofa: number,
  starts: readonly number[],
  size: number,
];

const ALL_SEVEN = [0, 1, 2, 3, 4, 5, 6] as const;

function table(rows: readonly Row[]): readonly MigProfile[] {
  return rows.map(([name, id, maxCount, multiprocessors, memoryMiB, ce, dec, jpg, ofa, starts, size]) => ({
    name,
    id,
    maxCount,
    computeSlices: Number(/^(\d+)g\./.exec(name)?.[1] ?? '0'),
    multiprocessors,
    memoryMiB,
    copyEngines: ce,
    decoders: dec,
    encoders: 0,
    jpegEngines: jpg,
    ofaEngines: ofa,
    placementStarts: starts,
    placementSize: size,
  }));
}

/** A100-SXM4-40GB (108 SMs); profile info from go-nvml's A100 mock and the MIG guide. */
export const A100_40GB_PROFILES: readonly MigProfile[] = table([
  ['1g.5gb', 19, 7, 14, 4864, 1, 0, 0, 0, ALL_SEVEN, 1],
  ['1g.5gb+me', 20, 1, 14, 4864, 1, 1, 1, 1, ALL_SEVEN, 1],
  ['1g.10gb', 15, 4, 14, 9856, 1, 1, 0, 0, [0, 2, 4, 6], 2],
  ['2g.10gb', 14, 3, 28, 9856, 2, 1, 0, 0, [0, 2, 4], 2],
  ['3g.20gb', 9, 2, 42, 19968, 3, 2, 0, 0, [0, 4], 4],
  ['4g.20gb', 5, 1, 56, 19968, 4, 2, 0, 0, [0], 4],
  ['7g.40gb', 0, 1, 98, 40192, 7, 5, 1, 1, [0], 8],
]);

/**
 * A100-SXM4-80GB (108 SMs): the guide's A100 table with the 80 GB board's names and sizes ("For A100-SXM4-80GB,
 * the profile names will change according to the memory proportion"); ids, counts, SMs, engines and placements
 * as A100-40GB (test/reference/mig-profiles.md, "A100-SXM4-80GB").
 */
export const A100_80GB_PROFILES: readonly MigProfile[] = table([
  ['1g.10gb', 19, 7, 14, 9856, 1, 0, 0, 0, ALL_SEVEN, 1],
  ['1g.10gb+me', 20, 1, 14, 9856, 1, 1, 1, 1, ALL_SEVEN, 1],
  ['1g.20gb', 15, 4, 14, 19968, 1, 1, 0, 0, [0, 2, 4, 6], 2],
  ['2g.20gb', 14, 3, 28, 19968, 2, 1, 0, 0, [0, 2, 4], 2],
  ['3g.40gb', 9, 2, 42, 40192, 3, 2, 0, 0, [0, 4], 4],
  ['4g.40gb', 5, 1, 56, 40192, 4, 2, 0, 0, [0], 4],
  ['7g.80gb', 0, 1, 98, 80384, 7, 5, 1, 1, [0], 8],
]);

/**
 * H100-SXM5-80GB (132 SMs). Memory sizes are marked `~` in the reference (derived from the guide's fractions,
 * not read off hardware); they equal the A100-80GB sizes.
 */
export const H100_80GB_PROFILES: readonly MigProfile[] = table([
  ['1g.10gb', 19, 7, 16, 9856, 1, 1, 1, 0, ALL_SEVEN, 1],
  ['1g.10gb+me', 20, 1, 16, 9856, 1, 1, 1, 1, ALL_SEVEN, 1],
  ['1g.20gb', 15, 4, 26, 19968, 1, 1, 1, 0, [0, 2, 4, 6], 2],
  ['2g.20gb', 14, 3, 32, 19968, 2, 2, 2, 0, [0, 2, 4], 2],
  ['3g.40gb', 9, 2, 60, 40192, 3, 3, 3, 0, [0, 4], 4],
  ['4g.40gb', 5, 1, 64, 40192, 4, 4, 4, 0, [0], 4],
  ['7g.80gb', 0, 1, 132, 80384, 8, 7, 7, 1, [0], 8],
]);

/**
 * H200-141GB (132 SMs): memory per `nvidia-smi mig -lgip` in NVIDIA/mig-parted issue 120 (16.00 / 16.00 /
 * 32.25 / 32.25 / 69.50 / 69.50 GiB); ids, counts, SMs, engines and placements as H100. The 7g.141gb size is
 * not in the reference: 2 × 69.50 GiB = 139 GiB (142336 MiB) is used, by analogy with H100 (7g = 2 × 4g).
 */
export const H200_141GB_PROFILES: readonly MigProfile[] = table([
  ['1g.18gb', 19, 7, 16, 16384, 1, 1, 1, 0, ALL_SEVEN, 1],
  ['1g.18gb+me', 20, 1, 16, 16384, 1, 1, 1, 1, ALL_SEVEN, 1],
  ['1g.35gb', 15, 4, 26, 33024, 1, 1, 1, 0, [0, 2, 4, 6], 2],
  ['2g.35gb', 14, 3, 32, 33024, 2, 2, 2, 0, [0, 2, 4], 2],
  ['3g.71gb', 9, 2, 60, 71168, 3, 3, 3, 0, [0, 4], 4],
  ['4g.71gb', 5, 1, 64, 71168, 4, 4, 4, 0, [0], 4],
  ['7g.141gb', 0, 1, 132, 142336, 8, 7, 7, 1, [0], 8],
]);

/**
 * GPU-instance ID NVIDIA's driver gives an instance at a placement: the slots form a binary tree over the 8
 * memory slices numbered breadth-first from 0 (full GPU = 0; halves 1–2; quarters 3–6; eighths 7–14), which
 * matches the IDs `nvidia-smi` shows (e.g. seven 1g instances get GI IDs 7–13, two 3g instances 1 and 2).
 */
export function gpuInstanceId(placement: { readonly start: number; readonly size: number }): number {
  const perLevel = 8 / placement.size;
  return perLevel - 1 + Math.floor(placement.start / placement.size);
}
