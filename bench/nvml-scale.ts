/**
 * Ratios that scale (issue 5, item 7): the cost of one sample (mock backend; the addon on the fake library) and
 * of one `buildResourceSlices()` as the machine grows: 1, 8 and 16 × H100 80GB, MIG off and on (on = every GPU
 * with seven 1g.10gb, so 7 MIG devices per GPU). Growth is linear when the
 * marginal cost per added GPU is the same from 8 to 16 GPUs as from 1 to 8 (their ratio ≈ 1); the cost per GPU
 * itself falls with size because each call has a fixed part (a promise, the libuv hop, the slice envelope).
 */
import path from 'node:path';
import { buildResourceSlices } from '../src/dra/slices/build.js';
import { createMockBackend, type GpuSpec, type MachineSpec, type MigInstanceSpec } from '../src/gpu/mock/index.js';
import { dnsSubdomainSchema, driverNameSchema, poolNameOf } from '../src/model/names.js';
import { openNvmlOnFake, writeFakeMachineFor } from './nvml-fake.js';
import { fmtMs, summarize } from './stats.js';
import type { BenchOptions, Row } from './types.js';

/** GPU counts of the scale table. */
export const SCALE_GPU_COUNTS = [1, 8, 16] as const;

const DRIVER = driverNameSchema.parse('gpu.gpulet.dev');
const MEASURES = ['mock sample()', 'addon sample()', 'buildResourceSlices'] as const;
type Measure = (typeof MEASURES)[number];

/** One machine of the table: `gpus` × h100-80gb, MIG off, or on with seven 1g.10gb per GPU. */
export function scaleMachine(gpus: number, mig: boolean): MachineSpec {
  const seven = Array.from({ length: 7 }, (_, i): MigInstanceSpec => ({ profile: '1g.10gb', placementStart: i }));
  return {
    name: `${gpus}x-h100-mig-${mig ? 'on' : 'off'}`,
    gpus: Array.from({ length: gpus }, (): GpuSpec => (mig ? { model: 'h100-80gb', mig: seven } : { model: 'h100-80gb' })),
  };
}

interface Point {
  readonly gpus: number;
  readonly mig: boolean;
  /** Devices in one sample (GPUs + MIG devices). */
  readonly sampled: number;
  /** Allocatable devices in the slices. */
  readonly allocatable: number;
  /** p50 ms per call. */
  readonly ms: Readonly<Record<Measure, number>>;
}

/** Timed runs that fit `budgetMs` at the cost `estimateMs` per call, within [min, max]. */
function runsFor(budgetMs: number, estimateMs: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.round(budgetMs / Math.max(estimateMs, 1e-4))));
}

/** One machine under test: its three measured calls, and the raw ms per call gathered over the rounds. */
interface Subject {
  readonly gpus: number;
  readonly mig: boolean;
  readonly sampled: number;
  readonly allocatable: number;
  readonly calls: Readonly<Record<Measure, () => unknown>>;
  readonly samples: Record<Measure, number[]>;
  /** Cost estimate per call from the warm-up, ms. */
  readonly estimate: Record<Measure, number>;
  close(): Promise<void>;
}

/** ms per call of `runs` calls of `fn`, one at a time; a returned promise is awaited inside the timing. */
async function timeCall(fn: () => unknown, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = fn();
    if (r instanceof Promise) await r;
    out.push(performance.now() - t0);
  }
  return out;
}

async function openSubject(dir: string, node: string, gpus: number, mig: boolean): Promise<Subject> {
  const spec = scaleMachine(gpus, mig);
  const m = await writeFakeMachineFor(path.join(dir, spec.name ?? 'machine'), spec.name ?? '', spec, node);
  const mock = createMockBackend({ machine: spec, nodeName: node });
  await mock.init();
  const nvml = await openNvmlOnFake(m).catch(async (err: unknown) => {
    await mock.shutdown();
    throw err;
  });
  const nodeName = dnsSubdomainSchema.parse(node);
  const input = { driverName: DRIVER, nodeName, poolName: poolNameOf(nodeName), inventory: m.inventory, generation: 1 };
  const calls: Record<Measure, () => unknown> = {
    'mock sample()': () => mock.sample(),
    'addon sample()': () => nvml.sample(),
    buildResourceSlices: () => buildResourceSlices(input),
  };
  const estimate = {} as Record<Measure, number>;
  for (const what of MEASURES) estimate[what] = summarize(await timeCall(calls[what], 20)).p50;
  return {
    gpus,
    mig,
    sampled: (await mock.sample()).devices.length,
    allocatable: buildResourceSlices(input).reduce((n, s) => n + s.spec.devices.length, 0),
    calls,
    samples: { 'mock sample()': [], 'addon sample()': [], buildResourceSlices: [] },
    estimate,
    close: async () => {
      await mock.shutdown();
      await nvml.shutdown();
    },
  };
}

/**
 * Measure every machine in `rounds` interleaved rounds (each round visits every machine and measure), so
 * that load from other processes on a shared machine falls on all sizes alike; p50 over the pooled calls.
 */
async function measureAll(dir: string, node: string, budgetMs: number, rounds: number): Promise<Point[]> {
  const subjects: Subject[] = [];
  try {
    for (const mig of [false, true]) {
      for (const gpus of SCALE_GPU_COUNTS) subjects.push(await openSubject(dir, node, gpus, mig));
    }
    for (let r = 0; r < rounds; r++) {
      for (const s of subjects) {
        for (const what of MEASURES) {
          s.samples[what].push(...(await timeCall(s.calls[what], runsFor(budgetMs / rounds, s.estimate[what], 20, 20_000))));
        }
      }
    }
    return subjects.map((s) => ({
      gpus: s.gpus,
      mig: s.mig,
      sampled: s.sampled,
      allocatable: s.allocatable,
      ms: {
        'mock sample()': summarize(s.samples['mock sample()']).p50,
        'addon sample()': summarize(s.samples['addon sample()']).p50,
        buildResourceSlices: summarize(s.samples.buildResourceSlices).p50,
      },
    }));
  } finally {
    for (const s of subjects) await s.close();
  }
}

/** `(cost at b − cost at a) / (b − a)`: marginal ms per added GPU. */
function marginal(pts: readonly Point[], what: Measure, a: number, b: number): number {
  const pa = pts.find((p) => p.gpus === a);
  const pb = pts.find((p) => p.gpus === b);
  if (!pa || !pb) return Number.NaN;
  return (pb.ms[what] - pa.ms[what]) / (b - a);
}

function renderTable(points: readonly Point[]): string[] {
  const head = ['machine', 'devices', ...MEASURES.map((m) => `${m}: total / per GPU`)];
  const body = points.map((p) => [
    `${p.gpus} × H100, MIG ${p.mig ? 'on' : 'off'}`,
    `${p.sampled} sampled, ${p.allocatable} alloc.`,
    ...MEASURES.map((m) => `${fmtMs(p.ms[m])} / ${fmtMs(p.ms[m] / p.gpus)}`),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => c.padEnd(width[i] ?? 0)).join(' | ').trimEnd();
  return [line(head), width.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)];
}

/**
 * Run the scale table in `dir` (a temp dir the caller removes).
 * @returns one row per measure and MIG mode: the costs at 1/8/16 GPUs and the linearity ratio
 * @throws Error when the fake or the addon is unavailable
 */
export async function benchNvmlScale(opts: BenchOptions, dir: string, node: string): Promise<Row[]> {
  const budgetMs = opts.long ? 2000 : 150;
  const rounds = opts.long ? 20 : 5;
  opts.print(
    `[nvml-scale] method: per machine (${SCALE_GPU_COUNTS.join(', ')} × h100-80gb; MIG off, or on = seven 1g.10gb per GPU) and per ` +
      `measure, 20 warm-up calls, then ${rounds} interleaved rounds over all machines of as many timed calls as fit ` +
      `${budgetMs} ms / ${rounds} (at least 20), nearest-rank p50 of the pooled calls; ` +
      `linear growth ⇔ marginal cost per added GPU from 8→16 ≈ from 1→8 (ratio ≈ 1)`,
  );
  const points = await measureAll(dir, node, budgetMs, rounds);
  for (const l of renderTable(points)) opts.print(`[nvml-scale] ${l}`);
  const rows: Row[] = [];
  for (const mig of [false, true]) {
    const pts = points.filter((p) => p.mig === mig);
    for (const what of MEASURES) {
      const m1 = marginal(pts, what, 1, 8);
      const m2 = marginal(pts, what, 8, 16);
      opts.print(
        `[nvml-scale] ${what}, MIG ${mig ? 'on' : 'off'}: marginal per GPU 1→8 ${fmtMs(m1)}, 8→16 ${fmtMs(m2)} (${(m2 / m1).toFixed(2)}×)`,
      );
      rows.push({
        name: `scale: ${what}, MIG ${mig ? 'on' : 'off'}`,
        figure: `${pts.map((p) => fmtMs(p.ms[what])).join(' / ')} @ ${SCALE_GPU_COUNTS.join('/')} GPUs`,
        goal: 'linear (marginal 8→16 ≈ 1→8)',
        ratio: Number.isFinite(m2 / m1) && m1 > 0 ? `${(m2 / m1).toFixed(2)}× 1→8` : '',
      });
    }
  }
  return rows;
}
