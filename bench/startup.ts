/**
 * Benchmark 4, start-up: spawn `gpulet` (tsx src/cli.ts; and node dist/src/cli.js when dist/ exists) with a
 * temp state dir and free ports; time from spawn to (a) the registration socket existing (polled every 5 ms)
 * and (b) the first ResourceSlices written (the publisher's "ResourceSlices published" log line on stderr).
 * Ready = the later of the two; goal < 1 s. tsx transpiles every module on first load (cached afterwards
 * under the OS temp dir), so its figure includes transpile time. Then SIGTERM and time to exit.
 * The last run of the last variant (compiled when dist/ exists) stays up for the standalone footprint (benchmark 5).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { footprintOfProcess } from './footprint.js';
import { agentPid } from './procfs.js';
import { fmtMs, summarize } from './stats.js';
import { ratioTo, type BenchOptions, type Row } from './types.js';

/** Goal: spawn → registered and slices published, ms. */
export const STARTUP_GOAL_MS = 1000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Children still running: killed (their process group, by id) if the bench exits early. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

interface Variant {
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  /** The command re-spawns node (tsx): the agent is its child. */
  readonly launcher: boolean;
}

interface Run {
  /** Spawn → first log line: Node boot, tsx transpile, and every module import. */
  readonly firstLogMs: number;
  readonly socketMs: number;
  readonly slicesMs: number;
  readonly stopMs: number;
}

/** Environment without gpulet/OTel/Kubernetes settings (flags decide), with this Node first on PATH so tsx
 * re-spawns the same Node (the system node may be too old for @kubernetes/client-node). */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(GPULET_|OTEL_|KUBECONFIG$|NODE_NAME$|POD_UID$)/.test(k)) env[k] = v;
  }
  env['PATH'] = `${path.dirname(process.execPath)}${path.delimiter}${process.env['PATH'] ?? ''}`;
  return env;
}

function variants(): Variant[] {
  const out: Variant[] = [{ label: 'tsx src/cli.ts', command: path.join(repoRoot, 'node_modules', '.bin', 'tsx'), args: ['src/cli.ts'], launcher: true }];
  const dist = path.join(repoRoot, 'dist', 'src', 'cli.js');
  if (fs.existsSync(dist)) out.push({ label: 'node dist/src/cli.js', command: process.execPath, args: [dist], launcher: false });
  return out;
}

/** Wait for exit; SIGKILL the process group after `ms`. Resolves with the time to exit. */
function stopChild(child: ChildProcess, ms: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(0);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
    child.kill('SIGTERM');
  });
}

async function runOnce(v: Variant, footprintMs: number, opts: BenchOptions): Promise<{ run: Run; rows: Row[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-start-'));
  const regSocket = path.join(dir, 'plugins_registry', 'gpu.gpulet.dev-reg.sock');
  const args = [...v.args, '--state-dir', dir, '--node-name', 'bench-node', '--metrics-address', '127.0.0.1:0', '--sample-interval', '1000', '--log-level', 'info'];
  const t0 = performance.now();
  const child = spawn(v.command, args, { cwd: repoRoot, env: childEnv(), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const tail: string[] = [];
  let poll: NodeJS.Timeout | undefined;
  try {
    const ready = await new Promise<{ firstLogMs: number; socketMs: number; slicesMs: number; metricsUrl: string }>((resolve, reject) => {
      let firstLogMs: number | undefined;
      let socketMs: number | undefined;
      let slicesMs: number | undefined;
      let metricsUrl: string | undefined;
      const check = (): void => {
        if (firstLogMs !== undefined && socketMs !== undefined && slicesMs !== undefined && metricsUrl !== undefined) {
          resolve({ firstLogMs, socketMs, slicesMs, metricsUrl });
        }
      };
      poll = setInterval(() => {
        if (socketMs === undefined && fs.existsSync(regSocket)) socketMs = performance.now() - t0;
        check();
        if (performance.now() - t0 > READY_TIMEOUT_MS) reject(new Error(`${v.label} not ready within ${READY_TIMEOUT_MS} ms:\n${tail.join('\n')}`));
      }, 5);
      readline.createInterface({ input: child.stderr ?? process.stdin }).on('line', (line) => {
        firstLogMs ??= performance.now() - t0;
        tail.push(line.slice(0, 300));
        if (tail.length > 20) tail.shift();
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          return;
        }
        const rec = msg as { msg?: unknown; metrics?: unknown };
        if (rec.msg === 'ResourceSlices published' && slicesMs === undefined) slicesMs = performance.now() - t0;
        if (rec.msg === 'gpulet is running' && typeof rec.metrics === 'string') metricsUrl = rec.metrics;
        check();
      });
      child.once('exit', (code, signal) => reject(new Error(`${v.label} exited (${code ?? signal}) before it was ready:\n${tail.join('\n')}`)));
      child.once('error', reject);
    });
    clearInterval(poll);
    const rows: Row[] = [];
    if (footprintMs > 0 && child.pid !== undefined) {
      const pid = agentPid(child.pid, v.launcher);
      if (pid === undefined) opts.print(`[startup] cannot find the agent process under pid ${child.pid}: no standalone footprint`);
      else rows.push(...(await footprintOfProcess(pid, ready.metricsUrl, footprintMs, v.label, opts.print)));
    }
    const stopMs = await stopChild(child, STOP_TIMEOUT_MS);
    return { run: { firstLogMs: ready.firstLogMs, socketMs: ready.socketMs, slicesMs: ready.slicesMs, stopMs }, rows };
  } finally {
    clearInterval(poll);
    await stopChild(child, 2000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Run benchmark 4 (and the standalone half of benchmark 5 on the last run of the last variant).
 * @param footprintMs footprint window of the last run, ms (0 = none)
 * @throws Error when the agent exits or is not ready within 30 s
 */
export async function benchStartup(opts: BenchOptions, footprintMs: number): Promise<{ startup: Row[]; footprint: Row[] }> {
  const runs = opts.long ? 5 : 3;
  opts.print(
    `[startup] method: ${runs} spawns per variant (temp state dir, embedded API server, mock dgx-h100, port 0); ` +
      `spawn → first log line (Node boot + imports), → registration socket exists (5 ms poll), → "ResourceSlices published" ` +
      `on stderr; ready = later of the last two; ` +
      `then SIGTERM → exit. tsx transpiles on load (first run may be slower: cache cold)`,
  );
  const startup: Row[] = [];
  const footprint: Row[] = [];
  const all = variants();
  for (const [vi, v] of all.entries()) {
    const results: Run[] = [];
    for (let i = 0; i < runs; i++) {
      // Footprint once, on the last variant (the compiled one when dist/ exists): closest to production.
      const last = vi === all.length - 1 && i === runs - 1;
      const { run, rows } = await runOnce(v, last ? footprintMs : 0, opts);
      results.push(run);
      footprint.push(...rows);
      opts.print(`[startup] ${v.label} run ${i + 1}: first log ${fmtMs(run.firstLogMs)}, socket ${fmtMs(run.socketMs)}, slices ${fmtMs(run.slicesMs)}, stop ${fmtMs(run.stopMs)}`);
    }
    const ready = summarize(results.map((r) => Math.max(r.socketMs, r.slicesMs)));
    const firstLog = summarize(results.map((r) => r.firstLogMs));
    const socket = summarize(results.map((r) => r.socketMs));
    const slices = summarize(results.map((r) => r.slicesMs));
    const stop = summarize(results.map((r) => r.stopMs));
    startup.push({
      name: `start-up, ${v.label} (median of ${runs})`,
      figure: `ready ${fmtMs(ready.p50)} (boot+imports ${fmtMs(firstLog.p50)}; socket ${fmtMs(socket.p50)}, slices ${fmtMs(slices.p50)})`,
      goal: `< ${fmtMs(STARTUP_GOAL_MS)}`,
      ratio: ratioTo(ready.p50, STARTUP_GOAL_MS),
    });
    startup.push({ name: `shutdown on SIGTERM, ${v.label}`, figure: fmtMs(stop.p50), goal: '', ratio: '' });
  }
  return { startup, footprint };
}
