/**
 * Benchmark 6, NVML sampling cost (issue 3; issue 5 items 2 and 7): one full sample of the `dgx-h100` machine
 * (8 × H100, 10 MIG devices) through the real addon on the fake libnvidia-ml
 * (`createNvmlBackend({ library }).sample()` after init), next to the same NVML calls made by a plain C loop
 * (`sample-loop`, test/fixtures/fake-nvml/sample-loop.c) on the same fake library and machine, in one run.
 * Goal: addon ≤ 2 × the C loop. Both pay the fake's own cost per call (a lock, a stat() of its fault file and
 * fault look-ups on every call), so that floor is measured too (`nvml-floor.c`: the cheapest NVML call in a C
 * loop) and the ratio is also printed with it taken out. Then the scale table (nvml-scale.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { machineSpecByName } from '../src/gpu/mock/index.js';
import { buildFloorProgram, openNvmlOnFake, runFloor, runSampleLoop, writeFakeMachineFor, type FakeMachine } from './nvml-fake.js';
import { benchNvmlScale } from './nvml-scale.js';
import { fmtMs, fmtP50P99, summarize, timeAsync, type Summary } from './stats.js';
import type { BenchOptions, Row } from './types.js';

/** Goal of issue 3: addon cost per sample ≤ this × the plain C loop's. */
export const ADDON_VS_C_GOAL = 2;

const NODE = 'bench-node';
const us = (ms: number): string => fmtMs(ms);

/** Raw figures of the dgx-h100 comparison, gathered in interleaved rounds (C run, addon batch, floor run). */
interface Rounds {
  /** ms per addon `sample()`, every timed call. */
  readonly addon: number[];
  /** Mean ms per addon sample of each round's batch. */
  readonly addonBatchMeans: number[];
  /** ms per sample of each C run (the run's mean). */
  readonly c: number[];
  /** ns per call of each floor run. */
  readonly floorNs: number[];
  readonly callsPerSample: number;
  readonly devices: string;
}

interface RoundPlan {
  readonly rounds: number;
  readonly warmup: number;
  readonly addonPerRound: number;
  readonly cSamples: number;
  readonly floorCalls: number;
}

/**
 * Interleave the three measurements round by round, so that load from other processes on a shared machine
 * falls on all of them alike; medians of per-round means then drop the rounds it hit hardest.
 */
async function measureRounds(m: FakeMachine, plan: RoundPlan, floorProgram: string | undefined): Promise<Rounds> {
  const out: Rounds = { addon: [], addonBatchMeans: [], c: [], floorNs: [], callsPerSample: 0, devices: '' };
  let calls = 0;
  let devices = '';
  const backend = await openNvmlOnFake(m);
  try {
    await timeAsync(() => backend.sample(), { warmup: plan.warmup, runs: 0 });
    for (let r = 0; r < plan.rounds; r++) {
      const c = await runSampleLoop(m, plan.cSamples);
      out.c.push(c.usPerSample / 1000);
      calls = c.callsPerSample;
      devices = `${c.gpus} GPUs + ${c.migDevices} MIG devices`;
      const batch = await timeAsync(() => backend.sample(), { warmup: 0, runs: plan.addonPerRound });
      out.addon.push(...batch);
      out.addonBatchMeans.push(batch.reduce((a, b) => a + b, 0) / batch.length);
      if (floorProgram !== undefined) out.floorNs.push(await runFloor(floorProgram, m, plan.floorCalls));
    }
  } finally {
    await backend.shutdown();
  }
  return { ...out, callsPerSample: calls, devices };
}

const median = (xs: readonly number[]): number => summarize(xs).p50;

/**
 * Run benchmark 6 (addon vs C on dgx-h100, the fake's floor, then the scale table).
 * @returns rows for the final table
 * @throws Error when the fake cannot be built (needs cc and Debian's libcjson-dev) or the addon is not built
 *   (`npm run build:native`)
 */
export async function benchNvml(opts: BenchOptions): Promise<Row[]> {
  const t0 = performance.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-bench-nvml-'));
  try {
    const plan: RoundPlan = opts.long
      ? { rounds: 30, warmup: 1000, addonPerRound: 500, cSamples: 1000, floorCalls: 200_000 }
      : { rounds: 10, warmup: 300, addonPerRound: 150, cSamples: 200, floorCalls: 30_000 };
    const dgx = await writeFakeMachineFor(path.join(dir, 'dgx-h100'), 'dgx-h100', machineSpecByName('dgx-h100'), NODE);
    const floorProgram = await buildFloorProgram(dir);
    opts.print(
      `[nvml] method: fake libnvidia-ml (test/fixtures/fake-nvml) serving the mock dgx-h100, ${plan.rounds} interleaved rounds of: ` +
        `C = one sample-loop run (the addon's NVML calls in a plain C loop, handles fetched once) of ${plan.cSamples} samples → its mean; ` +
        `addon = ${plan.addonPerRound} timed createNvmlBackend().sample() (one native call on a libuv worker + mapping to DeviceSample; ` +
        `the backend's event thread polls the fake every 5 ms) after ${plan.warmup} warm-up in total; floor = one nvml-floor run ` +
        `(${plan.floorCalls} nvmlDeviceGetCount_v2 in C: the fake's own cost per call, a lock + stat() of its fault file). ` +
        `Ratio = median of the addon's per-round means / median of the C runs' means (same estimator); p50/p99 nearest-rank`,
    );
    const r = await measureRounds(dgx, plan, floorProgram.path);
    const a: Summary = summarize(r.addon);
    const addonMs = median(r.addonBatchMeans);
    const cMs = median(r.c);
    const floorNs = r.floorNs.length > 0 ? median(r.floorNs) : undefined;
    const floorMs = floorNs !== undefined ? (floorNs * r.callsPerSample) / 1e6 : undefined;
    const ratio = addonMs / cMs;
    const cs = summarize(r.c);

    opts.print(`[nvml] dgx-h100: ${r.devices}, ${r.callsPerSample} NVML calls per sample`);
    opts.print(`[nvml] addon sample(): ${fmtP50P99(a)}; median of round means ${us(addonMs)} (rounds ${us(summarize(r.addonBatchMeans).min)}–${us(summarize(r.addonBatchMeans).max)})`);
    opts.print(`[nvml] plain C loop: median ${us(cMs)} per sample (rounds ${us(cs.min)}–${us(cs.max)})`);
    if (floorNs !== undefined && floorMs !== undefined) {
      opts.print(
        `[nvml] fake's floor: ${floorNs.toFixed(0)} ns per call (median of ${r.floorNs.length} runs) × ${r.callsPerSample} calls = ` +
          `${us(floorMs)} per sample (${((floorMs / cMs) * 100).toFixed(0)} % of the C loop)`,
      );
    } else {
      opts.print(`[nvml] fake's floor: not measured (${floorProgram.error ?? 'no cc'})`);
    }
    const overMs = addonMs - cMs;
    // Only meaningful when the C loop is clearly above the floor (else it divides noise by noise).
    const netRatio = floorMs !== undefined && cMs - floorMs > 0.2 * cMs ? (addonMs - floorMs) / (cMs - floorMs) : undefined;
    opts.print(
      `[nvml] addon / C = ${ratio.toFixed(2)}× (goal ≤ ${ADDON_VS_C_GOAL}×); addon p50 / C = ${(a.p50 / cMs).toFixed(2)}×; ` +
        `addon overhead ${us(overMs)} per sample (${((overMs / r.callsPerSample) * 1e6).toFixed(0)} ns per NVML call); ` +
        (netRatio !== undefined
          ? `without the fake's floor: ${netRatio.toFixed(2)}×`
          : `without the fake's floor: n/a (the C loop is within 20 % of the floor: the fake's per-call prologue is nearly all of it)`),
    );

    const rows: Row[] = [
      { name: 'addon sample() on the fake, dgx-h100', figure: `${fmtP50P99(a)}, median mean ${us(addonMs)}`, goal: '', ratio: '' },
      { name: 'plain C loop, same calls (sample-loop)', figure: `${us(cMs)} per sample (${r.callsPerSample} calls)`, goal: '', ratio: '' },
      {
        name: 'addon vs C loop, per sample',
        figure: `${ratio.toFixed(2)}× (${us(addonMs)} / ${us(cMs)})`,
        goal: `≤ ${ADDON_VS_C_GOAL}× C loop`,
        ratio: `${(ratio / ADDON_VS_C_GOAL).toFixed(2)}× goal`,
      },
    ];
    if (floorNs !== undefined && floorMs !== undefined) {
      rows.push({
        name: "fake's floor (nvmlDeviceGetCount_v2)",
        figure: `${floorNs.toFixed(0)} ns/call = ${us(floorMs)}/sample`,
        goal: '',
        ratio: `${(floorMs / cMs).toFixed(2)}× C loop`,
      });
      if (netRatio !== undefined) {
        rows.push({ name: 'addon vs C loop, without the floor', figure: `${netRatio.toFixed(2)}×`, goal: `≤ ${ADDON_VS_C_GOAL}× C loop`, ratio: `${(netRatio / ADDON_VS_C_GOAL).toFixed(2)}× goal` });
      }
    }
    opts.print(`[nvml] addon vs C done in ${fmtMs(performance.now() - t0)}`);
    const t1 = performance.now();
    rows.push(...(await benchNvmlScale(opts, dir, NODE)));
    opts.print(`[nvml-scale] done in ${fmtMs(performance.now() - t1)}`);
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
