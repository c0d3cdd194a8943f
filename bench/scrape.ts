/**
 * Benchmark 2, scrape latency and OTLP export time: the telemetry pipeline alone (`startTelemetry`) on a mock
 * machine, one sample taken, then `GET /metrics` over loopback on one keep-alive connection, timed from
 * request to the last body byte; then the OTLP export of one cycle (`forceFlush`: collect, the own series, encode,
 * gRPC Export to a local sink, answer) on the same machines; then the stages of a scrape one by one
 * (scrape-stages.ts), with the same observations through the SDK instruments and serializer for comparison.
 * Machines: `dgx-h100` (8 GPUs, 10 MIG devices) and `h100x8-mig56` (8 GPUs, 56 MIG devices: the issue's case),
 * the latter also with every device held by a claim and a pod. Goal p99 < 10 ms: Prometheus' default scrape
 * timeout is 10 s, and dcgm-exporter scrapes hitting it on MIG nodes are a known problem (test/reference/metrics.md).
 */
import { createMockBackend, type MachineSpec } from '../src/gpu/mock/index.js';
import { HealthTracker } from '../src/gpu/health.js';
import type { OwnershipSource } from '../src/model/types.js';
import type { Inventory } from '../src/gpu/types.js';
import { silentLogger } from '../src/log.js';
import { DEFAULT_DRIVER_NAME, poolNameSchema } from '../src/model/names.js';
import { VERSION } from '../src/main.js';
import { startTelemetry, type Telemetry } from '../src/telemetry/exporters.js';
import { countSeries, createScrapeClient } from './http-get.js';
import { H100X8_MIG56, ownEveryDevice } from './machines.js';
import { startOtlpSink, type OtlpSink } from './otlp-sink.js';
import { measureScrapeStages } from './scrape-stages.js';
import { fmtMs, fmtP50P99, summarize, timeAsync } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Goal: p99 of a scrape, ms. */
export const SCRAPE_P99_GOAL_MS = 10;

interface Case {
  readonly label: string;
  readonly machine: string | MachineSpec;
  readonly owned: boolean;
}

const DGX: Case = { label: 'dgx-h100 (8 GPU + 10 MIG)', machine: 'dgx-h100', owned: false };
const MIG56: Case = { label: '8 GPU + 56 MIG', machine: H100X8_MIG56, owned: false };
const MIG56_OWNED: Case = { label: '8 GPU + 56 MIG, all owned', machine: H100X8_MIG56, owned: true };

/** Start the pipeline on `c` (one sample, no further sampling), optionally exporting to `sink` on demand only. */
async function startCase(c: Case, dcgmCompat: boolean, sink?: OtlpSink): Promise<{ telemetry: Telemetry; close: () => Promise<void> }> {
  const backend = createMockBackend({ machine: c.machine, nodeName: 'bench-node' });
  await backend.init();
  const inventory: Inventory = backend.inventory();
  const health = new HealthTracker(inventory);
  const ownership: OwnershipSource = c.owned ? ownEveryDevice(inventory) : { owners: () => new Map() };
  const telemetry = await startTelemetry({
    backend,
    ownership,
    health,
    nodeName: 'bench-node',
    serviceVersion: VERSION,
    // One sample is taken by startTelemetry; long intervals keep sampling and periodic export out of the timings.
    sampleIntervalMs: 3_600_000,
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    // Every scrape renders (no shared body): the figure is the cost of one render, comparable with earlier runs;
    // with the default --metrics-cache-ttl a scrape within a second of the last one is answered from the cache.
    scrapeCacheMs: 0,
    dcgmCompat,
    driverName: DEFAULT_DRIVER_NAME,
    poolName: poolNameSchema.parse('bench-node'),
    ...(sink !== undefined ? { otlp: { endpoint: sink.endpoint, intervalMs: 3_600_000, timeoutMs: 10_000 } } : {}),
    logger: silentLogger(),
  });
  return {
    telemetry,
    close: async () => {
      await telemetry.shutdown();
      await backend.shutdown();
    },
  };
}

/**
 * Run benchmark 2.
 * @throws Error when a scrape answers other than 200 or an export does not reach the sink (broken, not slow)
 */
export async function benchScrape(opts: BenchOptions): Promise<Row[]> {
  const runs = opts.long ? 1000 : 200;
  const warmup = 20;
  opts.print(
    `[scrape] method: startTelemetry on a mock machine (one sample, no sampling during the run), ${runs} sequential ` +
      `GET /metrics on one keep-alive loopback connection after ${warmup} warm-up, request → last byte, nearest-rank p50/p99; ` +
      `dgx-h100 with dcgm-compat on (CLI default) and off; 8 × H100 with seven 1g.10gb each (56 MIG devices), unowned and all owned`,
  );
  const rows: Row[] = [];
  for (const [c, dcgm] of [[DGX, true], [DGX, false], [MIG56, true], [MIG56, false], [MIG56_OWNED, true]] as const) {
    rows.push(await scrapeOnce(c, dcgm, runs, warmup, opts));
  }
  rows.push(...(await otlpExport(opts)));
  rows.push(...(await stages(opts)));
  return rows;
}

async function scrapeOnce(c: Case, dcgmCompat: boolean, runs: number, warmup: number, opts: BenchOptions): Promise<Row> {
  const { telemetry, close } = await startCase(c, dcgmCompat);
  const client = createScrapeClient();
  try {
    const url = `${telemetry.url}/metrics`;
    let body = '';
    const scrape = async (): Promise<void> => {
      const res = await client.get(url);
      if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.body.slice(0, 200)}`);
      body = res.body;
    };
    const s = summarize(await timeAsync(scrape, { warmup, runs }));
    const series = countSeries(body);
    const kib = (Buffer.byteLength(body) / 1024).toFixed(0);
    const what = dcgmCompat ? `hw.*+DCGM_*, ${series.total} series` : `hw.* only, ${series.total} series`;
    opts.print(`[scrape] ${c.label}, ${what} (${series.dcgm} DCGM), ${kib} KiB: ${fmtP50P99(s)}, max ${fmtMs(s.max)}`);
    return { name: `scrape ${c.label}; ${what}, ${kib} KiB`, figure: fmtP50P99(s), goal: `p99 < ${SCRAPE_P99_GOAL_MS} ms`, ratio: ratioTo(s.p99, SCRAPE_P99_GOAL_MS) };
  } finally {
    client.close();
    await close();
  }
}

/** OTLP export time per cycle: `forceFlush()` = SDK collect + the own series built + protobuf encode + gRPC Export + answer. */
async function otlpExport(opts: BenchOptions): Promise<Row[]> {
  const cycles = opts.long ? 200 : 50;
  opts.print(
    `[scrape] OTLP method: same pipeline with OTLP gRPC to a local sink (bench/otlp-sink.ts, answers empty); ` +
      `${cycles} forceFlush() cycles after 5 warm-up, each checked to reach the sink; p50/p99`,
  );
  const sink = await startOtlpSink();
  const rows: Row[] = [];
  try {
    for (const c of [DGX, MIG56]) {
      const { telemetry, close } = await startCase(c, false, sink);
      try {
        const flush = async (): Promise<void> => {
          const before = sink.requests();
          await telemetry.forceFlush();
          if (sink.requests() === before) throw new Error(`OTLP export of ${c.label} did not reach the sink ${sink.endpoint}`);
        };
        const s = summarize(await timeAsync(flush, { warmup: 5, runs: cycles }));
        const kib = (sink.lastBytes() / 1024).toFixed(0);
        opts.print(`[scrape] OTLP export ${c.label}, ${kib} KiB per request: ${fmtP50P99(s)}, max ${fmtMs(s.max)}`);
        rows.push({ name: `OTLP export per cycle, ${c.label}, ${kib} KiB`, figure: fmtP50P99(s), goal: '', ratio: '' });
      } finally {
        await close();
      }
    }
  } finally {
    await sink.close();
  }
  return rows;
}

/** Stages of a scrape on the 56-MIG machine, and the SDK's collect of the same observations for comparison. */
async function stages(opts: BenchOptions): Promise<Row[]> {
  const rounds = opts.long ? 500 : 100;
  opts.print(
    `[scrape] stages method: renderMetrics' parts rebuilt from src/telemetry and timed alone, ${rounds} rounds after 10 warm-up, p50; ` +
      `"SDK" = the same observations through OTel SDK observable instruments and a collect, and its PrometheusSerializer (the path before src/telemetry/metric-data.ts and prometheus-text.ts)`,
  );
  const rows: Row[] = [];
  for (const c of [MIG56, MIG56_OWNED]) {
    const s = await measureScrapeStages(c.machine, c.owned ? ownEveryDevice : undefined, rounds);
    const now = s.observe + s.build + s.serialize + s.dcgm;
    const sdk = s.observe + s.sdkCollect + s.serializeSdk + s.dcgm;
    const line =
      `observe ${fmtMs(s.observe)} (${s.points} points), build ${fmtMs(s.build)} (SDK collect instead: ${fmtMs(s.sdkCollect)}), ` +
      `Prometheus text ${fmtMs(s.serialize)} (OTel serializer instead: ${fmtMs(s.serializeSdk)}), DCGM text ${fmtMs(s.dcgm)}`;
    opts.print(`[scrape] stages ${c.label}: ${line}; sum ${fmtMs(now)}, through the SDK ${fmtMs(sdk)}`);
    rows.push({
      name: `  scrape work without HTTP, ${c.label} (stages, p50)`,
      figure: `${fmtMs(now)}; through the SDK's instruments ${fmtMs(sdk)}`,
      goal: '',
      ratio: `${(now / sdk).toFixed(2)}× the SDK path`,
    });
    rows.push({ name: `    of which observe / build / Prometheus text / DCGM`, figure: `${fmtMs(s.observe)} / ${fmtMs(s.build)} / ${fmtMs(s.serialize)} / ${fmtMs(s.dcgm)}`, goal: '', ratio: '' });
  }
  return rows;
}
