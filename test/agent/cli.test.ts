/**
 * The real CLI as a process (`node_modules/.bin/tsx <entry>`), cwd = repo root, every path in a temp dir and the
 * metrics port 0, through its two entry points: the production command (src/cli.ts, what the image runs) and
 * `npm start`'s (dev/start.ts, the same command with the embedded API server injected). Exit codes
 * (src/command.ts doc: 1 cannot start, 2 bad configuration, 0 after SIGTERM), one-line error messages without
 * stack traces, sockets removed on shutdown, the production command refusing the development-only embedded API
 * server, and `--help` documenting every option with its environment variable — including every variable the
 * DaemonSet (daemonset/07-daemonset.yaml) sets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import { buildCommand } from '../../src/config.js';
import { DRIVER, removeDir, tempDir } from '../helpers/agent.js';
import { GiveUp, WAIT_TIMEOUT_MS, waitFor } from '../helpers/wait.js';
import { REPO_ROOT as REPO } from '../helpers/repo.js';
import { withTimeout } from '../../src/util/timeout.js';

const TSX = join(REPO, 'node_modules/.bin/tsx');
/** The production command (bin/gpulet.js and the image run its compiled form). */
const PRODUCTION = 'src/cli.ts';
/** `npm start`'s entry point (package.json "start"). */
const NPM_START = 'dev/start.ts';
/** A stack frame as node prints it. */
const STACK_FRAME = /^\s+at .+[(:]/m;

interface Run {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (-1 when killed by a signal). */
  readonly exited: Promise<number>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
/**
 * SIGKILL a CLI run's whole process group: tsx runs the agent in a child node process, which a SIGKILL of
 * tsx alone would orphan. Each run is its own group (`detached`). ESRCH (group gone) is fine.
 */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

afterEach(async () => {
  for (const c of children.splice(0)) killGroup(c);
  for (const d of dirs.splice(0)) await removeDir(d);
});

/**
 * Run `entry` with a clean environment: only PATH (node_modules/.bin first, so `tsx` runs on the project's
 * Node 24) and HOME; nothing of the host's GPULET_* / KUBECONFIG can leak in.
 */
function runCli(entry: typeof PRODUCTION | typeof NPM_START, args: readonly string[]): Run {
  const child = spawn(TSX, [entry, ...args], {
    cwd: REPO,
    env: { PATH: `${join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/root' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so a crash can be simulated and nothing outlives the test
  });
  children.push(child);
  const run: Run = {
    child, stdout: '', stderr: '',
    exited: new Promise((res) => child.on('exit', (code) => res(code ?? -1))),
  };
  child.stdout?.on('data', (b: Buffer) => (run.stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (run.stderr += b.toString()));
  return run;
}

/**
 * SIGTERM to the agent itself: the node process tsx started (the child of `run.child`, found in /proc). Signalling
 * the tsx wrapper instead would test tsx: its relay (tsx dist/cli.mjs `relaySignalToChild`) waits 30 ms for the
 * child to report the signal, forwards it, and when the child does not report within another 30 ms (a loaded
 * machine) exits 143 and SIGKILLs it. The wrapper still exits with the agent's code, which is what is asserted.
 */
function terminateAgent(run: Run): void {
  const wrapper = run.child.pid;
  if (wrapper === undefined) throw new Error('the CLI did not start');
  const agent = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .find((d) => {
      try {
        // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === wrapper;
      } catch {
        return false; // the process ended while we looked
      }
    });
  if (agent === undefined) throw new Error(`no agent process under the tsx wrapper ${wrapper}`);
  process.kill(Number(agent), 'SIGTERM');
}

/** Exit code, bounded: kills the process and fails after `ms`. */
function exitWithin(run: Run, ms: number): Promise<number> {
  return withTimeout(run.exited, ms, () => {
    killGroup(run.child);
    throw new Error(`gpulet did not exit within ${ms} ms\nstderr:\n${run.stderr.slice(-2000)}`);
  });
}

async function stateDir(): Promise<string> {
  const d = await tempDir('gpulet-cli-');
  dirs.push(d);
  return d;
}

/** Lines gpulet wrote for people (pino's JSON log lines excluded). */
function humanLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

describe('gpulet CLI as a process', () => {
  it('--backend nvml: exits 1 with one line naming the backend and library and what to do; no stack, no socket', async () => {
    const dir = await stateDir();
    // As in the container: in-cluster API (the GPU backend starts, and fails here, before the API is used).
    const run = runCli(PRODUCTION, ['--backend', 'nvml', '--kube-api', 'in-cluster', '--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node']);
    expect(await exitWithin(run, 30_000)).toBe(1);
    const lines = humanLines(run.stderr);
    expect(lines, run.stderr).toHaveLength(1);
    const line = lines[0]!;
    expect(line).toMatch(/^gpulet: /);
    expect(line).toContain('nvml');
    expect(line).toContain('libnvidia-ml.so.1');
    expect(line).toContain('--backend=mock'); // what to do
    expect(run.stderr + run.stdout).not.toMatch(STACK_FRAME);
    const registry = join(dir, 'plugins_registry');
    expect(existsSync(registry) ? readdirSync(registry) : []).toEqual([]);
  });

  it.each([
    [['--sample-interval', '5'], '--sample-interval'],
    [['--backend', 'cuda'], '--backend'],
    [['--metrics-address', 'nowhere:port'], '--metrics-address'],
  ])('invalid flag value %j exits 2 naming the option', async (args, option) => {
    const dir = await stateDir();
    const run = runCli(PRODUCTION, [...args, '--state-dir', dir]);
    expect(await exitWithin(run, 30_000)).toBe(2);
    const lines = humanLines(run.stderr);
    expect(lines[0], run.stderr).toContain(option);
    expect(run.stderr).not.toMatch(STACK_FRAME);
  });

  it.each([
    ['the default', []],
    ['--kube-api embedded', ['--kube-api', 'embedded']],
  ])('production command, %s kube-api (embedded): exits 2 at once, one line saying it is a development tool and what to use; nothing started', async (_, args) => {
    const dir = await stateDir();
    const run = runCli(PRODUCTION, [...args, '--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node']);
    expect(await exitWithin(run, 30_000)).toBe(2);
    const lines = humanLines(run.stderr);
    expect(lines, run.stderr).toEqual([expect.stringMatching(/^gpulet: configuration error: --kube-api=embedded: /)]);
    expect(lines[0]).toContain('development tool');
    expect(lines[0]).toContain('npm start');
    expect(lines[0]).toContain('--kube-api=in-cluster');
    expect(lines[0]).toContain('--kube-api=kubeconfig');
    expect(run.stderr).not.toContain('{'); // refused before the logger exists: nothing was started
    expect(run.stderr).not.toMatch(STACK_FRAME);
    expect(readdirSync(dir)).toEqual([]); // no kubeconfig, no socket, no checkpoint
  });

  it('npm start (dev/start.ts): starts on temp dirs against the embedded API server, serves, and exits 0 on SIGTERM with its sockets removed', async () => {
    const dir = await stateDir();
    const run = runCli(NPM_START, ['--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node', '--log-level', 'info']);
    const regSocket = join(dir, 'plugins_registry', `${DRIVER}-reg.sock`);
    const draSocket = join(dir, 'plugins', DRIVER, 'dra.sock');
    await waitFor(() => {
      if (run.child.exitCode !== null) throw new GiveUp(`exited early:\n${run.stderr}`);
      return existsSync(regSocket);
    }, { what: 'the registration socket', timeoutMs: 30_000 });
    expect(existsSync(draSocket)).toBe(true);
    // The "running" log line gives the metrics URL (port 0 was chosen by the kernel): it serves.
    const running = await waitFor(() => {
      const line = run.stderr.split('\n').find((l) => l.includes('"gpulet is running"'));
      return line === undefined ? undefined : (JSON.parse(line) as { metrics: string });
    }, { what: 'the "gpulet is running" log line' });
    expect(running.metrics).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${running.metrics}/readyz`)).status).toBe(200);
    expect((await fetch(`${running.metrics}/metrics`)).status).toBe(200);

    terminateAgent(run);
    expect(await exitWithin(run, 30_000)).toBe(0);
    expect(existsSync(regSocket)).toBe(false);
    expect(existsSync(draSocket)).toBe(false);
    expect(run.stderr).not.toMatch(STACK_FRAME);
  });

  it('restarts after a crash (SIGKILL left stale sockets behind) and serves again', async () => {
    const dir = await stateDir();
    const args = ['--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node', '--log-level', 'info'];
    const regSocket = join(dir, 'plugins_registry', `${DRIVER}-reg.sock`);
    const running = (run: Run) =>
      waitFor(() => {
        if (run.child.exitCode !== null) throw new GiveUp(`exited early:\n${run.stderr}`);
        return run.stderr.includes('"gpulet is running"');
      }, { what: 'the "gpulet is running" log line', timeoutMs: 30_000 });
    const first = runCli(NPM_START, args);
    await running(first);
    killGroup(first.child); // tsx and the agent process die at once: no shutdown code runs
    await exitWithin(first, 30_000);
    expect(lstatSync(regSocket).isSocket()).toBe(true); // left behind, nobody listening

    const second = runCli(NPM_START, args);
    await running(second);
    // A kubelet registers the restarted plugin over the (re-created) registration socket.
    const kubelet = new KubeletSimulator({ registryDir: join(dir, 'plugins_registry'), rescanIntervalMs: 200 });
    try {
      await kubelet.start();
      const plugin = await kubelet.waitForPlugin(DRIVER, WAIT_TIMEOUT_MS);
      expect(plugin.endpoint).toBe(join(dir, 'plugins', DRIVER, 'dra.sock'));
      expect(await kubelet.prepare([])).toEqual({ claims: {} });
    } finally {
      await kubelet.stop();
    }
    terminateAgent(second);
    expect(await exitWithin(second, 30_000)).toBe(0);
    expect(existsSync(regSocket)).toBe(false);
    expect(second.stderr).not.toMatch(STACK_FRAME);
  });

  it('--help lists every option with its environment variable, including all the DaemonSet sets', async () => {
    const run = runCli(PRODUCTION, ['--help']);
    expect(await exitWithin(run, 30_000)).toBe(0);
    const help = run.stdout.replace(/\s+/g, ' ');
    const options = buildCommand().options.filter((o) => o.long !== '--help');
    expect(options.length).toBeGreaterThan(15);
    for (const o of options) {
      expect(help).toContain(o.long);
      expect(o.envVar, `${o.long} has an env var`).toBeTruthy();
      expect(help).toContain(`env: ${o.envVar}`);
    }
    // Independent consumer: every env var of the gpulet container in the DaemonSet is a documented option.
    const docs = YAML.parseAllDocuments(readFileSync(join(REPO, 'daemonset/07-daemonset.yaml'), 'utf8')).map((d) => d.toJS() as unknown);
    const ds = docs.find((d) => (d as { kind?: string }).kind === 'DaemonSet') as {
      spec: { template: { spec: { containers: { name: string; env?: { name: string }[] }[] } } };
    };
    // NVIDIA_* are read by the NVIDIA Container Toolkit (device injection), not by gpulet.
    const forRuntime = new Set(['NVIDIA_VISIBLE_DEVICES', 'NVIDIA_DRIVER_CAPABILITIES', 'NVIDIA_MIG_MONITOR_DEVICES']);
    const envNames = ds.spec.template.spec.containers.flatMap((c) => (c.env ?? []).map((e) => e.name)).filter((n) => !forRuntime.has(n));
    expect(envNames.length).toBeGreaterThan(0);
    for (const name of envNames) expect(help).toContain(`env: ${name}`);
  });
});
