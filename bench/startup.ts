/**
 * Benchmark 4, start-up: spawn `gpulet` (tsx src/cli.ts; and the image's entry, node dist/agent/cli.js, when dist/ exists) with a
 * temp state dir and free ports, against an API server in the bench process (`--kube-api=kubeconfig`, a fresh
 * one per spawn so the slices are published anew; the production command has no embedded API server); time
 * from spawn to (a) the registration socket existing (polled every 5 ms) and (b) the first ResourceSlices
 * written (the publisher's "ResourceSlices published" log line on stderr). Ready = the later of the two; goal
 * < 500 ms for the compiled agent (issue 14), < 1 s under tsx (issue 5). tsx transpiles every module on first load (cached afterwards under the OS temp dir), so its figure
 * includes transpile time. Then SIGTERM and time to exit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedApi } from '../dev/embedded.js';
import { silentLogger } from '../src/log.js';
import { dnsSubdomainSchema } from '../src/model/names.js';
import { compiledVariant, spawnAgent, tsxVariant, type AgentVariant } from './agent-process.js';
import { fmtMs, summarize } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Goal: spawn → registered and slices published, ms: the compiled agent (issue 14), and under tsx (issue 5). */
export const STARTUP_GOAL_MS = { compiled: 500, tsx: 1000 } as const;

interface Run {
  /** Spawn → first log line: Node boot, tsx transpile, and every module import. */
  readonly firstLogMs: number;
  readonly socketMs: number;
  readonly slicesMs: number;
  readonly stopMs: number;
}

async function runOnce(v: AgentVariant): Promise<Run> {
  const apiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-api-'));
  try {
    const api = await startEmbeddedApi({ stateDir: apiDir, nodeName: dnsSubdomainSchema.parse('bench-node'), embeddedApiPort: 0 }, silentLogger());
    try {
      const agent = await spawnAgent(v, ['--kube-api', 'kubeconfig', '--kubeconfig', api.kubeconfigPath]);
      const stopMs = await agent.stop();
      return { firstLogMs: agent.firstLogMs, socketMs: agent.socketMs, slicesMs: agent.slicesMs, stopMs };
    } finally {
      await api.close();
    }
  } finally {
    fs.rmSync(apiDir, { recursive: true, force: true });
  }
}

/**
 * Run benchmark 4.
 * @throws Error when the agent exits or is not ready within 30 s
 */
export async function benchStartup(opts: BenchOptions): Promise<Row[]> {
  const runs = opts.long ? 5 : 3;
  opts.print(
    `[startup] method: ${runs} spawns per variant (temp state dir, a fresh API server in the bench process, mock dgx-h100, port 0); ` +
      `spawn → first log line (Node boot + imports), → registration socket exists (5 ms poll), → "ResourceSlices published" ` +
      `on stderr; ready = later of the last two; ` +
      `then SIGTERM → exit. tsx transpiles on load (first run may be slower: cache cold)`,
  );
  const startup: Row[] = [];
  const compiled = compiledVariant();
  if (compiled === undefined) opts.print('[startup] dist/ not found: run `npm run build` first to include the compiled agent');
  for (const v of compiled === undefined ? [tsxVariant()] : [tsxVariant(), compiled]) {
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) {
      const run = await runOnce(v);
      results.push(run);
      opts.print(`[startup] ${v.label} run ${i + 1}: first log ${fmtMs(run.firstLogMs)}, socket ${fmtMs(run.socketMs)}, slices ${fmtMs(run.slicesMs)}, stop ${fmtMs(run.stopMs)}`);
    }
    const ready = summarize(results.map((r) => Math.max(r.socketMs, r.slicesMs)));
    const goalMs = v === compiled ? STARTUP_GOAL_MS.compiled : STARTUP_GOAL_MS.tsx;
    const firstLog = summarize(results.map((r) => r.firstLogMs));
    const socket = summarize(results.map((r) => r.socketMs));
    const slices = summarize(results.map((r) => r.slicesMs));
    const stop = summarize(results.map((r) => r.stopMs));
    startup.push({
      name: `start-up, ${v.label} (median of ${runs})`,
      figure: `ready ${fmtMs(ready.p50)} (boot+imports ${fmtMs(firstLog.p50)}; socket ${fmtMs(socket.p50)}, slices ${fmtMs(slices.p50)})`,
      goal: `< ${fmtMs(goalMs)}`,
      ratio: ratioTo(ready.p50, goalMs),
    });
    startup.push({ name: `shutdown on SIGTERM, ${v.label}`, figure: fmtMs(stop.p50), goal: '', ratio: '' });
  }
  return startup;
}
