/**
 * Benchmark 8: `/metrics` under abuse (issue 9 item 1). Spawns the agent (compiled when `dist/` exists, else
 * tsx; `--kube-api=kubeconfig` against an API server in the bench process), reads its idle RSS, then for each attack measures the agent's peak RSS (`/proc/<pid>/status` every
 * 100 ms) and the latency of `/healthz` probed every 100 ms on fresh connections:
 * (a) one connection sends 2,000 pipelined `GET /metrics` (68 KB) and never reads;
 * (b) 20 such connections at once;
 * (c) 500 concurrent scrapes (500 connections, each one `GET /metrics`, read to the end), once a second;
 * (d) the same 500 back to back, as fast as the bench process can send them (harsher than the goal).
 * Each attack runs against a fresh agent, so one attack's garbage does not count against the next.
 * Goal: RSS within 50 MiB of idle, `/healthz` within 100 ms.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedApi } from '../dev/embedded.js';
import { silentLogger } from '../src/log.js';
import { dnsSubdomainSchema } from '../src/model/names.js';
import { compiledVariant, spawnAgent, tsxVariant } from './agent-process.js';
import { readProc } from './procfs.js';
import { fmtMs } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

const MiB = 1024 * 1024;
const GET_METRICS = 'GET /metrics HTTP/1.1\r\nHost: gpulet\r\n\r\n';

function healthz(port: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthz', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      })
      .on('error', () => resolve(Number.POSITIVE_INFINITY));
  });
}

/** During `run()`, sample the agent's RSS and /healthz latency every 100 ms; returns the peaks. */
async function observe(pid: number, port: number, run: () => Promise<void>): Promise<{ peakRss: number; peakHealthz: number }> {
  let peakRss = 0;
  let peakHealthz = 0;
  let done = false;
  const probe = (async () => {
    while (!done) {
      peakRss = Math.max(peakRss, readProc(pid)?.rssBytes ?? 0);
      peakHealthz = Math.max(peakHealthz, await healthz(port));
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await run();
  done = true;
  await probe;
  return { peakRss, peakHealthz };
}

function pipelineAttack(port: number, connections: number, holdMs: number): Promise<void> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < connections; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.pause();
    s.write(GET_METRICS.repeat(2_000));
    sockets.push(s);
  }
  return new Promise((resolve) =>
    setTimeout(() => {
      for (const s of sockets) s.destroy();
      resolve();
    }, holdMs),
  );
}

async function concurrentScrapes(port: number, concurrency: number, forMs: number, pauseMs: number): Promise<void> {
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      }).on('error', () => resolve());
    });
  const end = performance.now() + forMs;
  while (performance.now() < end) {
    const round = performance.now();
    await Promise.all(Array.from({ length: concurrency }, one));
    const rest = pauseMs - (performance.now() - round);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  }
}

/** Run benchmark 8. */
export async function benchScrapeAbuse(opts: BenchOptions): Promise<Row[]> {
  const variant = compiledVariant() ?? tsxVariant();
  opts.print(`8. /metrics abuse: ${variant.label}, dgx-h100; idle RSS, then per attack the peak RSS and /healthz latency (probed every 100 ms)`);
  const rows: Row[] = [];
  const holdMs = opts.long ? 20_000 : 5_000;
  const attacks: Array<[string, (port: number) => Promise<void>]> = [
    ['1 connection, 2,000 pipelined scrapes, never reads', (port) => pipelineAttack(port, 1, holdMs)],
    ['20 connections, 2,000 pipelined scrapes each', (port) => pipelineAttack(port, 20, holdMs)],
    ['500 concurrent scrapes, once a second', (port) => concurrentScrapes(port, 500, holdMs, 1_000)],
    ['500 concurrent scrapes, back to back', (port) => concurrentScrapes(port, 500, holdMs, 0)],
  ];
  for (const [name, run] of attacks) {
    // A fresh API server per agent: a second agent on the same node would find its slices already published.
    const apiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-api-'));
    const api = await startEmbeddedApi({ stateDir: apiDir, nodeName: dnsSubdomainSchema.parse('bench-node'), embeddedApiPort: 0 }, silentLogger());
    const agent = await spawnAgent(variant, ['--kube-api', 'kubeconfig', '--kubeconfig', api.kubeconfigPath]).catch(async (err: unknown) => {
      await api.close();
      throw err;
    });
    try {
      const pid = agent.pid;
      if (pid === undefined) throw new Error('cannot find the agent process');
      const port = Number(new URL(agent.metricsUrl).port);
      await new Promise((r) => setTimeout(r, 2_000)); // settle after start-up
      const idle = readProc(pid)?.rssBytes ?? 0;
      const { peakRss, peakHealthz } = await observe(pid, port, () => run(port));
      const over = (peakRss - idle) / MiB;
      opts.print(`  ${name}: idle ${(idle / MiB).toFixed(1)} MiB, peak ${(peakRss / MiB).toFixed(1)} MiB (+${over.toFixed(1)}), /healthz max ${fmtMs(peakHealthz)}`);
      rows.push({ name: `${name}: RSS over idle`, figure: `+${over.toFixed(1)} MiB`, goal: '< 50 MiB', ratio: ratioTo(over, 50) });
      rows.push({ name: `${name}: /healthz max`, figure: fmtMs(peakHealthz), goal: '< 100 ms', ratio: ratioTo(peakHealthz, 100) });
    } finally {
      await agent.stop();
      await api.close();
      fs.rmSync(apiDir, { recursive: true, force: true });
    }
  }
  return rows;
}
