/**
 * Lifecycle of the native addon: it loads, inits on the fake library, samples, shuts down and unloads in
 * worker threads (repeatedly, also when a thread is terminated without shutting down, with its event thread
 * running); and 100k samples through the backend do not grow RSS (measured in a child process).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addonPath } from '../../../src/gpu/nvml/index.js';
import { fakeSetup, type FakeSetup } from '../../helpers/nvml.js';
import { REPO_ROOT as REPO } from '../../helpers/repo.js';

const run = promisify(execFile);

/** Worker body (plain JS: the raw addon, as the typed loader would call it). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const addon = require(workerData.addon);
class NvmlError extends Error { constructor(m, c, n, f) { super(m); this.code = c; this.name = n; this.nvmlFunction = f; } }
addon.setErrorClass(NvmlError);
(async () => {
  const opened = addon.open(workerData.library);
  if (!opened.ok) throw new Error(opened.error);
  const s = opened.session;
  await s.init();
  const d = await s.discover();
  await s.startEvents(() => {});
  const sample = await s.sample([]);
  if (!workerData.shutdown) { parentPort.postMessage({ gpus: d.gpus.length, devices: sample.devices.length, shutdown: false }); return; }
  await s.shutdown();
  let rejected = '';
  await s.sample([]).catch((e) => { rejected = e.message; });
  parentPort.postMessage({ gpus: d.gpus.length, devices: sample.devices.length, shutdown: true, rejected });
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
`;

interface WorkerResult {
  readonly gpus?: number;
  readonly devices?: number;
  readonly rejected?: string;
  readonly error?: string;
}

function runWorker(library: string, shutdown: boolean): Promise<{ result: WorkerResult; exitCode: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { addon: addonPath(), library, shutdown } });
    let result: WorkerResult | undefined;
    w.on('message', (m: WorkerResult) => {
      result = m;
      // Terminate either way: with shutdown() done, or (shutdown=false) with NVML initialised and the
      // event thread running, which the environment teardown must stop.
      void w.terminate();
    });
    w.on('error', reject);
    w.on('exit', (exitCode) => (result ? resolve({ result, exitCode }) : reject(new Error(`worker exited (${exitCode}) without a result`))));
  });
}

describe('native addon lifecycle', () => {
  let fake: FakeSetup;
  beforeAll(async () => {
    fake = await fakeSetup();
    Object.assign(process.env, fake.files.env);
  }, 120_000);
  afterAll(async () => {
    await fake?.cleanup();
  });

  it('loads, inits, samples, shuts down and unloads in worker threads, again and again', async () => {
    const devices = fake.inventory.gpus.length + fake.inventory.gpus.flatMap((g) => g.migDevices).length;
    for (let i = 0; i < 4; i++) {
      const { result } = await runWorker(fake.library, i % 2 === 0);
      expect(result.error).toBeUndefined();
      expect(result.gpus).toBe(fake.inventory.gpus.length);
      expect(result.devices).toBe(devices);
      if (i % 2 === 0) expect(result.rejected).toMatch(/shut down/);
    }
    // And in several threads at once.
    const all = await Promise.all([0, 1, 2].map((i) => runWorker(fake.library, i !== 1)));
    for (const { result } of all) expect(result.devices).toBe(devices);
  }, 60_000);

  it('100k samples do not leak: RSS grows < 20 MiB (child process)', async () => {
    const one = await fakeSetup({ machine: 'h100-80gb' });
    try {
      const { stdout } = await run(
        path.join(REPO, 'node_modules', '.bin', 'node'),
        ['--expose-gc', '--import', 'tsx', path.join(REPO, 'test/helpers/nvml-leak-child.ts'), one.library, '100000'],
        { cwd: REPO, env: { ...process.env, ...one.files.env }, timeout: 240_000 },
      );
      const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { rssBefore: number; rssAfter: number; heapBefore: number; heapAfter: number; samples: number };
      const growthMiB = (r.rssAfter - r.rssBefore) / 2 ** 20;
      console.info(
        `nvml leak check: ${r.samples} samples, RSS ${(r.rssBefore / 2 ** 20).toFixed(1)} → ${(r.rssAfter / 2 ** 20).toFixed(1)} MiB ` +
          `(+${growthMiB.toFixed(1)} MiB), heap ${(r.heapBefore / 2 ** 20).toFixed(1)} → ${(r.heapAfter / 2 ** 20).toFixed(1)} MiB`,
      );
      expect(r.samples).toBe(100_000);
      expect(growthMiB).toBeLessThan(20);
    } finally {
      await one.cleanup();
    }
  }, 300_000);
});
