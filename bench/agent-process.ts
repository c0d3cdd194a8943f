/**
 * Spawn `gpulet` (the production command) as its own process, as a DaemonSet would run it (temp state dir, mock
 * dgx-h100, metrics on 127.0.0.1:0; the caller passes `--kube-api=kubeconfig` and an API server of its own, the
 * command having no embedded one), and follow it until it is ready: the registration socket exists (polled
 * every 5 ms) and the publisher logged "ResourceSlices published". Used by the start-up (4) and standalone
 * footprint (5) benchmarks. Children are stopped with SIGTERM, then SIGKILL to their own process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { agentPid } from './procfs.js';

const READY_TIMEOUT_MS = 30_000;
/** SIGTERM → SIGKILL grace, ms. */
export const STOP_TIMEOUT_MS = 15_000;

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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

/** How to start the agent. */
export interface AgentVariant {
  readonly label: string;
  readonly command: string;
  /** Node flags (compiled variant only), e.g. `--expose-gc`. */
  readonly nodeArgs: readonly string[];
  readonly args: readonly string[];
  /** The command re-spawns node (tsx): the agent is its child. */
  readonly launcher: boolean;
  /** Environment of the agent beyond the bench's own (the image's, for the compiled variant). */
  readonly env?: Readonly<Record<string, string>>;
}

/** `tsx src/cli.ts`. */
export function tsxVariant(): AgentVariant {
  return { label: 'tsx src/cli.ts', command: path.join(repoRoot, 'node_modules', '.bin', 'tsx'), nodeArgs: [], args: ['src/cli.ts'], launcher: true };
}

/**
 * The container image's command, from the Dockerfile's (last) exec-form ENTRYPOINT `["node", <flags>..., <script>]`:
 * the node flags and the script, relative to the image's WORKDIR /app, which is the repository root's layout
 * (`dist/agent/cli.js`, the bundle; test/deploy/dockerfile.test.ts checks it is what `npm run build` makes).
 * @throws Error when the Dockerfile has no exec-form ENTRYPOINT with a script
 */
export function imageEntrypoint(): { readonly flags: string[]; readonly script: string } {
  const text = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
  const entry = [...text.matchAll(/^ENTRYPOINT\s+(\[.*\])\s*$/gm)].pop()?.[1];
  const argv = entry === undefined ? [] : (JSON.parse(entry) as string[]);
  const at = argv.findIndex((a, i) => i > 0 && !a.startsWith('--'));
  if (at < 0) throw new Error('Dockerfile: no exec-form ENTRYPOINT ["node", ...flags, "<script>"]');
  return { flags: argv.slice(1, at), script: argv[at]! };
}

/**
 * The glibc malloc settings of the container image's runtime stage (`ENV MALLOC_ARENA_MAX=<n>` in the
 * Dockerfile), so the compiled agent is measured with the memory settings it ships with; a value already in the
 * bench's environment wins (to compare settings: `MALLOC_ARENA_MAX=8 npm run bench ...`).
 */
export function imageEnv(): Record<string, string> {
  const text = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
  const arenas = /\bMALLOC_ARENA_MAX=(\d+)/.exec(text)?.[1];
  return arenas === undefined || process.env['MALLOC_ARENA_MAX'] !== undefined ? {} : { MALLOC_ARENA_MAX: arenas };
}

/**
 * `node <the image's node flags> <the image's script>` (this Node; the script is the bundle, `dist/agent/cli.js`,
 * {@link imageEntrypoint}), as the container runs it (with the image's {@link imageEnv}), or undefined when
 * `npm run build` has not been run. For comparing builds and V8 flags (BENCHMARKS.md's levers):
 * `BENCH_AGENT_CLI=<path of another entry>` (`dist/src/cli.js`: tsc's unbundled output; another build's bundle),
 * and `BENCH_NODE_FLAGS="--max-semi-space-size=1 ..."` instead of the image's flags (`BENCH_NODE_FLAGS=` for
 * none); added before the caller's node flags.
 */
export function compiledVariant(nodeArgs: readonly string[] = []): AgentVariant | undefined {
  const dist = path.resolve(process.env['BENCH_AGENT_CLI'] || path.join(repoRoot, imageEntrypoint().script));
  if (!fs.existsSync(dist)) return undefined;
  const given = process.env['BENCH_NODE_FLAGS'];
  const flags = given === undefined ? imageEntrypoint().flags : given.split(/\s+/).filter(Boolean);
  const label = `node ${flags.length > 0 ? `${flags.join(' ')} ` : ''}${path.relative(repoRoot, dist)}`;
  const env = imageEnv();
  const envLabel = Object.entries(env).map(([k, v]) => `${k}=${v} `).join('');
  return { label: `${envLabel}${label}`, command: process.execPath, nodeArgs: [...flags, ...nodeArgs], args: [dist], launcher: false, env };
}

/** Environment without gpulet/OTel/Kubernetes settings (flags decide), with this Node first on PATH so tsx
 * re-spawns the same Node (the system node may be too old for @kubernetes/client-node). */
function childEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(GPULET_|OTEL_|KUBECONFIG$|NODE_NAME$|POD_UID$|NODE_OPTIONS$)/.test(k)) env[k] = v;
  }
  env['PATH'] = `${path.dirname(process.execPath)}${path.delimiter}${process.env['PATH'] ?? ''}`;
  return { ...env, ...extra };
}

/** A started, ready agent. */
export interface SpawnedAgent {
  readonly child: ChildProcess;
  /** pid of the process running the agent (tsx's child for the tsx variant); undefined when ambiguous. */
  readonly pid: number | undefined;
  /** Its temp dir (state, sockets, CDI, kubeconfig). */
  readonly dir: string;
  /** Spawn → first log line: Node boot, (tsx transpile,) and every module import. */
  readonly firstLogMs: number;
  /** Spawn → registration socket exists. */
  readonly socketMs: number;
  /** Spawn → "ResourceSlices published". */
  readonly slicesMs: number;
  /** `http://127.0.0.1:<port>` of /metrics. */
  readonly metricsUrl: string;
  /** SIGTERM, wait for exit (SIGKILL the group after 15 s), remove the dir; resolves with ms to exit. Idempotent. */
  stop(): Promise<number>;
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

/**
 * Spawn the agent with `extraArgs` (after the defaults: sampling 1 Hz, log level info) and wait until ready.
 * `setup` runs on the fresh state dir before the spawn (e.g. to write the mock's MIG state file).
 * @throws Error with the last 20 log lines when it exits or is not ready within 30 s (it is then stopped)
 */
export async function spawnAgent(
  v: AgentVariant,
  extraArgs: readonly string[] = [],
  extraEnv: Readonly<Record<string, string>> = {},
  setup?: (stateDir: string) => void,
): Promise<SpawnedAgent> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpulet-bench-start-'));
  try {
    setup?.(dir);
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const regSocket = path.join(dir, 'plugins_registry', 'gpu.gpulet.dev-reg.sock');
  const args = [...v.nodeArgs, ...v.args, '--state-dir', dir, '--node-name', 'bench-node', '--metrics-address', '127.0.0.1:0', '--sample-interval', '1000', '--log-level', 'info', ...extraArgs];
  const t0 = performance.now();
  const child = spawn(v.command, args, { cwd: repoRoot, env: childEnv({ ...v.env, ...extraEnv }), stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const tail: string[] = [];
  let stopping: Promise<number> | undefined;
  const stop = (): Promise<number> => {
    stopping ??= stopChild(child, STOP_TIMEOUT_MS).finally(() => fs.rmSync(dir, { recursive: true, force: true }));
    return stopping;
  };
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
    const pid = child.pid === undefined ? undefined : agentPid(child.pid, v.launcher);
    return { child, pid, dir, ...ready, stop };
  } catch (err) {
    clearInterval(poll);
    await stop();
    throw err;
  }
}
