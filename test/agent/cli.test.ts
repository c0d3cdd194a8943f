/**
 * The real CLI as a process (`node_modules/.bin/tsx src/cli.ts`, what `npm start` runs), cwd = repo root,
 * every path in a temp dir and the metrics port 0: exit codes (src/cli.ts doc: 1 cannot start, 2 bad
 * configuration, 0 after SIGTERM), one-line error messages without stack traces, sockets removed on
 * shutdown, and `--help` documenting every option with its environment variable — including every variable
 * the DaemonSet (daemonset/07-daemonset.yaml) sets.
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

const TSX = join(REPO, 'node_modules/.bin/tsx');
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
 * Run the CLI with a clean environment: only PATH (node_modules/.bin first, so `tsx` runs on the project's
 * Node 24) and HOME; nothing of the host's GPULET_* / KUBECONFIG can leak in.
 */
function runCli(args: readonly string[]): Run {
  const child = spawn(TSX, ['src/cli.ts', ...args], {
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

/** Exit code, bounded: kills the process and fails after `ms`. */
async function exitWithin(run: Run, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => {
      killGroup(run.child);
      rej(new Error(`gpulet did not exit within ${ms} ms\nstderr:\n${run.stderr.slice(-2000)}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
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
    const run = runCli(['--backend', 'nvml', '--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node']);
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
    const run = runCli([...args, '--state-dir', dir]);
    expect(await exitWithin(run, 30_000)).toBe(2);
    const lines = humanLines(run.stderr);
    expect(lines[0], run.stderr).toContain(option);
    expect(run.stderr).not.toMatch(STACK_FRAME);
  });

  it('starts on temp dirs, serves, and exits 0 on SIGTERM with its sockets removed', async () => {
    const dir = await stateDir();
    const run = runCli(['--state-dir', dir, '--metrics-address', '127.0.0.1:0', '--node-name', 'cli-node', '--log-level', 'info']);
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

    run.child.kill('SIGTERM');
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
    const first = runCli(args);
    await running(first);
    killGroup(first.child); // tsx and the agent process die at once: no shutdown code runs
    await exitWithin(first, 30_000);
    expect(lstatSync(regSocket).isSocket()).toBe(true); // left behind, nobody listening

    const second = runCli(args);
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
    second.child.kill('SIGTERM');
    expect(await exitWithin(second, 30_000)).toBe(0);
    expect(existsSync(regSocket)).toBe(false);
    expect(second.stderr).not.toMatch(STACK_FRAME);
  });

  it('--help lists every option with its environment variable, including all the DaemonSet sets', async () => {
    const run = runCli(['--help']);
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
