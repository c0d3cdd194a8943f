/**
 * Fault points: armed only by `GPULET_FAULT_POINT`, and then the process dies by SIGKILL at that point (no
 * exit handlers, no further output); unset or naming another point, nothing happens. Checked on real child
 * processes (node_modules/.bin/tsx, the project's Node) because the point kills the process it runs in.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAULT_POINTS, faultPoint } from '../../src/util/fault-points.js';
import { REPO_ROOT as REPO } from '../helpers/repo.js';

const SCRIPT = [
  "import { faultPoint } from './src/util/fault-points.ts';",
  "process.on('exit', () => process.stdout.write('exit-handler\\n'));",
  "process.stdout.write('before\\n');",
  "faultPoint('prepare:after-cdi');",
  "process.stdout.write('after\\n');",
].join('\n');

function run(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> {
  const child = spawn(join(REPO, 'node_modules/.bin/tsx'), ['--input-type=module', '-e', SCRIPT], {
    cwd: REPO,
    env: { PATH: `${join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/root', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  return new Promise((res) => child.on('exit', (code, signal) => res({ code, signal, stdout })));
}

describe('faultPoint', () => {
  it('kills the process with SIGKILL at the armed point: nothing after it runs, not even exit handlers', async () => {
    const r = await run({ GPULET_FAULT_POINT: 'prepare:after-cdi' });
    // tsx re-raises its child's signal, so the signal reaches us either as such or as 128 + 9.
    expect(r.signal === 'SIGKILL' || r.code === 137, JSON.stringify(r)).toBe(true);
    expect(r.stdout).toBe('before\n');
  });

  it('does nothing when unset or when another point is armed', async () => {
    for (const env of [{}, { GPULET_FAULT_POINT: 'prepare:after-get' }]) {
      const r = await run(env);
      expect(r).toEqual({ code: 0, signal: null, stdout: 'before\nafter\nexit-handler\n' });
    }
  });

  it('names every step of Prepare and Unprepare, and is inert in this (unarmed) process', () => {
    expect(FAULT_POINTS).toEqual(expect.arrayContaining([
      'prepare:after-get', 'prepare:after-started', 'prepare:after-cdi', 'prepare:after-completed',
      'unprepare:after-cdi-removed', 'unprepare:after-checkpoint',
    ]));
    for (const p of FAULT_POINTS) faultPoint(p); // still alive
  });
});
