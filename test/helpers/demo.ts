/**
 * Run `npm run demo` (package.json: `tsx dev/demo.ts`) as a child process, with the project's Node first on
 * PATH (node_modules/.bin, as npm scripts get it), and collect its output.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './repo.js';
import { within } from './wait.js';

/** What a demo run printed and how it ended. */
export interface DemoRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A bound on one run, to end a hung demo (not a claim about speed). */
export const DEMO_TIMEOUT_MS = 240_000;

/** Run the demo with `args` (what follows `npm run demo --`); `onStdout` sees the output as it grows. */
export async function runDemo(args: readonly string[], onStdout?: (soFar: string) => void): Promise<DemoRun> {
  const child = spawn(join(REPO_ROOT, 'node_modules/.bin/tsx'), ['dev/demo.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: `${join(REPO_ROOT, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, GPULET_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: tsx and the Node it starts end together on a timeout
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    onStdout?.(stdout);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const code = await within(exited, `npm run demo ${args.join(' ')} to finish`, DEMO_TIMEOUT_MS, () => `stdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`);
    return { code, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }
}
