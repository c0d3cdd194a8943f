/**
 * The NVML backend against Debian's real libnvidia-ml.so.1 (package libnvidia-ml1) on a machine without
 * the NVIDIA kernel driver: nvmlInit_v2 answers 9 NVML_ERROR_DRIVER_NOT_LOADED, which must surface as a
 * BackendError naming the library, and as one clear CLI line (no stack trace, nothing registered).
 * A missing library surfaces as "library not found" the same way.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/errors.js';
import { createNvmlBackend } from '../../../src/gpu/nvml/index.js';
import { REPO_ROOT as REPO } from '../../helpers/repo.js';

const DEBIAN_NVML = '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1';
const hasDebianNvml = existsSync(DEBIAN_NVML);
if (!hasDebianNvml) console.warn(`SKIP: ${DEBIAN_NVML} is absent (apt-get install libnvidia-ml1 to run these checks)`);

interface CliRun {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

/**
 * Run the production CLI with tsx from node_modules/.bin first on PATH (so it runs on the project's Node 24),
 * with `--kube-api in-cluster` as in the container (the GPU backend starts, and fails, before the API is used).
 */
function runCli(args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const bin = path.join(REPO, 'node_modules', '.bin');
    const child = spawn(path.join(bin, 'tsx'), ['src/cli.ts', '--kube-api', 'in-cluster', ...args], {
      cwd: REPO,
      env: { PATH: `${bin}:${process.env['PATH'] ?? ''}`, HOME: os.tmpdir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function expectOneCleanLine(run: CliRun): string {
  expect(run.code).not.toBe(0);
  // The structured log (pino JSON lines, also on stderr) aside, exactly one line for people.
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^gpulet: cannot start: /);
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  return lines[0] ?? '';
}

function socketsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isSocket())
    .map((e) => e.name);
}

describe('NVML backend with the real Debian libnvidia-ml (no driver)', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it.skipIf(!hasDebianNvml)('init rejects with BackendError code 9 NVML_ERROR_DRIVER_NOT_LOADED naming the library', async () => {
    const backend = createNvmlBackend({ library: DEBIAN_NVML });
    const err: unknown = await backend.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackendError);
    const be = err as BackendError;
    expect(be.nvmlCode).toBe(9);
    expect(be.nvmlName).toBe('NVML_ERROR_DRIVER_NOT_LOADED');
    expect(be.library).toContain('libnvidia-ml.so');
    expect(be.message).toContain('Driver Not Loaded');
    expect(be.message).toContain('code 9');
    expect(be.message).toContain('lsmod');
    await backend.shutdown();
    await backend.shutdown(); // idempotent
  });

  it.skipIf(!hasDebianNvml)('the CLI prints one line naming the library, Driver Not Loaded, code 9 and what to check; no socket', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-nvml-cli-'));
    dirs.push(dir);
    const run = await runCli(['--backend', 'nvml', '--nvml-library', DEBIAN_NVML, '--state-dir', dir, '--metrics-address', '127.0.0.1:0']);
    const line = expectOneCleanLine(run);
    expect(line).toContain(DEBIAN_NVML);
    expect(line).toContain('Driver Not Loaded');
    expect(line).toContain('code 9');
    expect(line).toMatch(/nvidia-smi/);
    expect(socketsUnder(dir)).toEqual([]);
  }, 90_000);

  it('a nonexistent library: BackendError and one CLI line saying the library was not found, no socket', async () => {
    const missing = '/nonexistent/libnvidia-ml.so.1';
    const backend = createNvmlBackend({ library: missing });
    await expect(backend.init()).rejects.toThrow(/NVML library not found: dlopen\("\/nonexistent\/libnvidia-ml\.so\.1"\) failed: .*No such file/);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-nvml-cli-'));
    dirs.push(dir);
    const run = await runCli(['--backend', 'nvml', '--nvml-library', missing, '--state-dir', dir, '--metrics-address', '127.0.0.1:0']);
    const line = expectOneCleanLine(run);
    expect(line).toContain('library not found');
    expect(line).toContain(missing);
    expect(line).toMatch(/--nvml-library/);
    expect(line).toMatch(/driver root/);
    expect(socketsUnder(dir)).toEqual([]);
  }, 90_000);
});
