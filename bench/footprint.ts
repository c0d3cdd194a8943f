/**
 * Benchmark 5, process footprint while sampling at 1 Hz and being scraped once a second: RSS and heap
 * before/after the window and CPU in millicores over it, next to dcgm-exporter's published footprint
 * (test/reference/metrics.md: 3–9 millicores at a 30 s interval; 135–155 MiB, and 400–500 MiB reported).
 * This file: the in-process agent of benchmark 3 (process.memoryUsage / process.cpuUsage: includes the
 * harness — tsx, the kubelet simulator, the scrape client). The standalone compiled agent, with both
 * exporters on, is footprint-process.ts.
 */
import type { BenchAgent } from './agent.js';
import { createScrapeClient } from './http-get.js';
import { mib } from './stats.js';
import type { Row } from './types.js';

/** dcgm-exporter's published footprint (test/reference/metrics.md). */
export const DCGM_FOOTPRINT = { millicores: [3, 9], mib: [135, 500] } as const;

/** `figure` against a [low, high] reference: `0.36–1.33× ref`. */
export function rangeRatio(figure: number, [low, high]: readonly [number, number]): string {
  return `${(figure / high).toFixed(2)}–${(figure / low).toFixed(2)}× ref`;
}

/** Scrape `url` once per `intervalMs` for `windowMs`; returns the numbers of good and failed scrapes. */
export async function scrapeFor(url: string, windowMs: number, intervalMs: number): Promise<{ ok: number; failed: number }> {
  const client = createScrapeClient();
  let ok = 0;
  let failed = 0;
  const end = performance.now() + windowMs;
  try {
    while (performance.now() < end) {
      const next = performance.now() + intervalMs;
      try {
        const res = await client.get(url);
        if (res.status === 200) ok += 1;
        else failed += 1;
      } catch {
        failed += 1;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(next, end) - performance.now())));
    }
  } finally {
    client.close();
  }
  return { ok, failed };
}

export function cpuRow(name: string, millicores: number, scrapes: { ok: number; failed: number }): Row {
  const failed = scrapes.failed > 0 ? `, ${scrapes.failed} failed scrapes` : '';
  return {
    name,
    figure: `${millicores.toFixed(1)} millicores (${scrapes.ok} scrapes${failed})`,
    goal: `dcgm-exporter ${DCGM_FOOTPRINT.millicores.join('–')} m @30 s`,
    ratio: rangeRatio(millicores, DCGM_FOOTPRINT.millicores),
  };
}

/** Footprint of the agent running in this process (benchmark 3's), over `windowMs`. */
export async function footprintInProcess(env: BenchAgent, windowMs: number, print: (l: string) => void): Promise<Row[]> {
  print(
    `[footprint] method: in-process agent (sampling 1 Hz), GET /metrics every 1 s for ${windowMs / 1000} s; ` +
      `process.memoryUsage() before/after, process.cpuUsage() delta / wall time; includes the bench harness`,
  );
  const memBefore = process.memoryUsage();
  const cpuBefore = process.cpuUsage();
  const t0 = performance.now();
  const scrapes = await scrapeFor(`${env.agent.telemetry.url}/metrics`, windowMs, 1000);
  const cpu = process.cpuUsage(cpuBefore);
  const wallMs = performance.now() - t0;
  const memAfter = process.memoryUsage();
  const millicores = (cpu.user + cpu.system) / wallMs; // µs of CPU per ms of wall time = millicores
  return [
    {
      name: 'RSS, in-process agent + harness',
      figure: `${mib(memBefore.rss)} → ${mib(memAfter.rss)} MiB`,
      goal: `dcgm-exporter ${DCGM_FOOTPRINT.mib.join('–')} MiB`,
      ratio: rangeRatio(mib(memAfter.rss), DCGM_FOOTPRINT.mib),
    },
    { name: 'heap used, in-process agent + harness', figure: `${mib(memBefore.heapUsed)} → ${mib(memAfter.heapUsed)} MiB`, goal: '', ratio: '' },
    cpuRow('CPU, in-process agent + harness', millicores, scrapes),
  ];
}
