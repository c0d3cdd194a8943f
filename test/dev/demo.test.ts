/**
 * `npm run demo` (dev/demo.ts), the default flow: it runs to the end (exit 0) and prints what it claims to show,
 * checked against independent facts: the mock dgx-h100's allocatable devices (its inventory: whole GPUs not in
 * MIG mode and every MIG device), the CDI device IDs of the claim it prepares (`k8s.gpu.gpulet.dev/claim=<claim
 * uid>-<device>`, docs/contracts.md §6), and the spec gone after the unprepare. Also the flag handling of
 * `--cluster` without a cluster: a clear error naming `npm run cluster`, exit 1 (the cluster flow itself is
 * test/upstream/demo-cluster.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { DEMO_TIMEOUT_MS, runDemo } from '../helpers/demo.js';

describe('npm run demo', () => {
  it('plays the simulated flow to the end: slices of every device, a claim of two GPUs prepared, attributed metrics, unprepared', async () => {
    const run = await runDemo([]);
    expect(run.code, run.stderr).toBe(0);
    const inventory = buildMockInventory(machineSpecByName('dgx-h100'), 'demo-node');
    const whole = inventory.gpus.filter((g) => !g.migEnabled).length;
    const migs = inventory.gpus.reduce((n, g) => n + g.migDevices.length, 0);
    expect(run.stdout).toMatch(new RegExp(`pool demo-node generation \\d+, ${whole + migs} devices`));
    const uid = /claim default\/train uid ([0-9a-f-]{36}): gpu-0, gpu-1/.exec(run.stdout)?.[1];
    expect(uid).toBeDefined();
    for (const d of ['gpu-0', 'gpu-1']) expect(run.stdout).toContain(`k8s.gpu.gpulet.dev/claim=${uid!}-${d}`);
    expect(run.stdout).toMatch(/hw_power +gpu-0 +pod=trainer claim=default\/train/);
    expect(run.stdout).toContain('CDI spec present after unprepare: false');
  }, DEMO_TIMEOUT_MS);

  it('--cluster without a cluster: says how to start one, exit 1', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'gpulet-nocluster-'));
    try {
      const run = await runDemo(['--cluster', dir]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`no cluster at ${dir}`);
      expect(run.stderr).toContain('npm run cluster');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, DEMO_TIMEOUT_MS);
});
