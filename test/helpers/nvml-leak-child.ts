/**
 * Child process of nvml-threads.test.ts: takes N samples through the NVML backend on the fake library
 * (FAKE_NVML_MACHINE set by the parent) and prints one JSON line with RSS before and after, in bytes:
 * {"samples":N,"warmup":W,"rssBefore":B,"rssAfter":A,"heapBefore":HB,"heapAfter":HA}.
 * Usage: node --expose-gc --import tsx nvml-leak-child.ts LIBRARY N
 */
import { createNvmlBackend } from '../../src/gpu/nvml/index.js';

const [library, nArg] = process.argv.slice(2);
const n = Number(nArg ?? '100000');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const backend = createNvmlBackend({ library: library ?? '', pcieRoot: () => 'pci0000:00' });
await backend.init();
const warmup = Math.min(10_000, Math.floor(n / 10));
for (let i = 0; i < warmup; i++) await backend.sample();
gc();
const before = process.memoryUsage();
for (let i = 0; i < n; i++) await backend.sample();
gc();
const after = process.memoryUsage();
await backend.shutdown();
process.stdout.write(
  `${JSON.stringify({ samples: n, warmup, rssBefore: before.rss, rssAfter: after.rss, heapBefore: before.heapUsed, heapAfter: after.heapUsed })}\n`,
);
