/**
 * Preloaded into a standalone agent by the footprint benchmark (`node --expose-gc --import
 * bench/heap-probe.ts dist/agent/cli.js`; Node ≥ 23.6 strips the types): on SIGUSR2 it runs a full GC
 * (`--expose-gc`) and appends one JSON line `{ rss, heapUsed, heapTotal, external, arrayBuffers }` (bytes,
 * `process.memoryUsage()`) and `spaces` (committed bytes per V8 heap space, `v8.getHeapSpaceStatistics()`) to the file named by `BENCH_HEAP_PROBE`. Nothing runs between signals, so it adds
 * no CPU to the measured window; the bench signals it just before and just after the window. The V8 heap is
 * not visible in /proc, hence the probe. Erasable TypeScript only (no enums, no parameter properties).
 */
import fs from 'node:fs';
import v8 from 'node:v8';

const file = process.env['BENCH_HEAP_PROBE'];
if (file !== undefined && file !== '') {
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc !== undefined) gc();
    const m = process.memoryUsage();
    // Committed memory per V8 space (new_space = the young generation's semi-spaces), bytes: where RSS goes.
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.physical_space_size]));
    const line = { gc: gc !== undefined, rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, spaces };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
  });
}
