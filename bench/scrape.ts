/**
 * Benchmark 2, scrape latency: the telemetry pipeline alone (`startTelemetry`) on the mock dgx-h100 with no
 * claim owners, one sample taken, then `GET /metrics` over loopback on one keep-alive connection, timed from
 * request to the last body byte. Goal p99 < 10 ms: Prometheus' default scrape timeout is 10 s, and
 * dcgm-exporter scrapes hitting it on MIG nodes are a known problem (reference/metrics.md).
 */
import { createMockBackend } from '../src/gpu/mock/index.js';
import { HealthTracker } from '../src/gpu/health.js';
import type { OwnershipSource } from '../src/dra/types.js';
import { silentLogger } from '../src/log.js';
import { VERSION } from '../src/main.js';
import { startTelemetry } from '../src/telemetry/exporters.js';
import { countSeries, createScrapeClient } from './http-get.js';
import { fmtMs, fmtP50P99, summarize, timeAsync } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Goal: p99 of a scrape, ms. */
export const SCRAPE_P99_GOAL_MS = 10;

/**
 * Run benchmark 2, with the dcgm-exporter-compatible series on (the CLI default) and off.
 * @throws Error when a scrape answers other than 200 (the pipeline is broken, not slow)
 */
export async function benchScrape(opts: BenchOptions): Promise<Row[]> {
  const runs = opts.long ? 1000 : 200;
  const warmup = 20;
  opts.print(
    `[scrape] method: startTelemetry on mock dgx-h100 (no owners, one sample, no sampling during the run), ${runs} sequential ` +
      `GET /metrics on one keep-alive loopback connection after ${warmup} warm-up, request → last byte, nearest-rank p50/p99; ` +
      `with dcgm-compat on (CLI default) and off`,
  );
  const rows: Row[] = [];
  for (const dcgmCompat of [true, false]) rows.push(await scrapeOnce(dcgmCompat, runs, warmup, opts));
  return rows;
}

async function scrapeOnce(dcgmCompat: boolean, runs: number, warmup: number, opts: BenchOptions): Promise<Row> {
  const backend = createMockBackend({ machine: 'dgx-h100', nodeName: 'bench-node' });
  await backend.init();
  const health = new HealthTracker(backend.inventory());
  const ownership: OwnershipSource = { owners: () => new Map() };
  const telemetry = await startTelemetry({
    backend,
    ownership,
    health,
    nodeName: 'bench-node',
    serviceVersion: VERSION,
    // One sample is taken by startTelemetry; a long interval keeps sampling out of the timed scrapes.
    sampleIntervalMs: 3_600_000,
    metricsHost: '127.0.0.1',
    metricsPort: 0,
    dcgmCompat,
    logger: silentLogger(),
  });
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
    const kib = (Buffer.byteLength(body) / 1024).toFixed(1);
    const label = dcgmCompat ? `hw.* + DCGM_*, ${series.total} series (${series.dcgm} DCGM), ${kib} KiB` : `hw.* only, ${series.total} series, ${kib} KiB`;
    opts.print(`[scrape] ${label}: ${fmtP50P99(s)}, max ${fmtMs(s.max)}`);
    return { name: `scrape /metrics (${label})`, figure: fmtP50P99(s), goal: `p99 < ${SCRAPE_P99_GOAL_MS} ms`, ratio: ratioTo(s.p99, SCRAPE_P99_GOAL_MS) };
  } finally {
    client.close();
    await telemetry.shutdown();
    await backend.shutdown();
  }
}
