/**
 * Benchmark 1, pure costs: `buildResourceSlices()` for the mock dgx-h100 inventory, `buildCdiSpec()` for
 * 1-, 2- and 8-device claims, one mock `sample()`, in µs per call (median and p99 after a warm-up); and the
 * validation of a NodePrepareResources claim list at the bound of claims per request and 10× it, whose ratio
 * shows it is linear (it was quadratic: 85,000 claims blocked the event loop for 12 s); and fat claims
 * (bench/fat-claims.ts: a claim's opaque-config env, thin vs at the cap, alone and 100 in the checkpoint).
 * These run on every inventory/health change, every prepare, every sample tick and every kubelet call.
 */
import { randomUUID } from 'node:crypto';
import { allocatableDevices } from '../src/model/devices.js';
import { buildResourceSlices } from '../src/dra/slices/build.js';
import { createMockBackend } from '../src/gpu/mock/index.js';
import { dnsSubdomainSchema, driverNameSchema, poolNameOf } from '../src/model/names.js';
import { buildCdiSpec, MOCK_DEVICE_MAJORS } from '../src/state/cdi.js';
import { MAX_CLAIMS_PER_REQUEST, validateClaims } from '../src/dra/kubelet/grpc-dra-mapping.js';
import { benchFatClaims } from './fat-claims.js';
import { fmtMs, summarize, timeAsync, timeSync, type Repeat, type Summary } from './stats.js';
import type { BenchOptions, Row } from './types.js';

const DRIVER = driverNameSchema.parse('gpu.gpulet.dev');
const NODE = dnsSubdomainSchema.parse('bench-node');
const POOL = poolNameOf(NODE);

function row(name: string, s: Summary): Row {
  return { name, figure: `p50 ${fmtMs(s.p50)} / p99 ${fmtMs(s.p99)}`, goal: '', ratio: '' };
}

/**
 * Run benchmark 1.
 * @returns one row per measured function
 * @throws whatever the measured code throws (a bug: the inputs are the built-in mock machine)
 */
export async function benchPure(opts: BenchOptions): Promise<Row[]> {
  const repeat: Repeat = opts.long ? { warmup: 2000, runs: 20_000 } : { warmup: 500, runs: 3000 };
  const backend = createMockBackend({ machine: 'dgx-h100', nodeName: NODE });
  await backend.init();
  try {
    const inventory = backend.inventory();
    const devices = allocatableDevices(inventory);
    const slices = buildResourceSlices({ driverName: DRIVER, nodeName: NODE, poolName: POOL, inventory, generation: 1 });
    const deviceCount = slices.reduce((n, s) => n + s.spec.devices.length, 0);
    opts.print(
      `[pure] method: ${repeat.runs} timed calls after ${repeat.warmup} warm-up, one call per performance.now() pair, ` +
        `nearest-rank p50/p99; mock dgx-h100 = ${inventory.gpus.length} GPUs, ${deviceCount} devices in ${slices.length} slice(s); ` +
        `CDI specs without devRoot (production shape)`,
    );
    const rows: Row[] = [];
    rows.push(row(`buildResourceSlices (${deviceCount} devices)`, summarize(timeSync(
      () => buildResourceSlices({ driverName: DRIVER, nodeName: NODE, poolName: POOL, inventory, generation: 1 }),
      repeat,
    ))));
    for (const k of [1, 2, 8]) {
      const picked = devices.slice(0, k).map((device) => ({ device }));
      if (picked.length < k) throw new Error(`mock dgx-h100 has only ${devices.length} allocatable devices; need ${k}`);
      const claimUid = randomUUID();
      rows.push(row(`buildCdiSpec (${k} device${k === 1 ? '' : 's'})`, summarize(timeSync(
        () => buildCdiSpec({ driverName: DRIVER, claimUid, devices: picked, majors: MOCK_DEVICE_MAJORS }),
        repeat,
      ))));
    }
    const claimList = (n: number) => Array.from({ length: n }, (_, i) => ({ namespace: 'ml', name: `c-${i}`, uid: randomUUID() }));
    const listRepeat: Repeat = { warmup: Math.ceil(repeat.warmup / 20), runs: Math.ceil(repeat.runs / 20) };
    const bound = claimList(MAX_CLAIMS_PER_REQUEST);
    const ten = claimList(MAX_CLAIMS_PER_REQUEST * 10);
    const atBound = summarize(timeSync(() => validateClaims(bound), listRepeat));
    const tenfold = summarize(timeSync(() => validateClaims(ten), listRepeat));
    rows.push(row(`validateClaims (${MAX_CLAIMS_PER_REQUEST} claims, the bound per request)`, atBound));
    rows.push({
      ...row(`validateClaims (${MAX_CLAIMS_PER_REQUEST * 10} claims)`, tenfold),
      goal: 'linear: 10× claims ≈ 10× time',
      ratio: `${(tenfold.p50 / atBound.p50).toFixed(1)}× the ${MAX_CLAIMS_PER_REQUEST}-claim time`,
    });
    const sampleRepeat: Repeat = { warmup: Math.ceil(repeat.warmup / 5), runs: Math.ceil(repeat.runs / 5) };
    rows.push(row('mock sample() (8 GPUs + MIG)', summarize(await timeAsync(() => backend.sample(), sampleRepeat))));
    rows.push(...(await benchFatClaims(opts, inventory, POOL)));
    return rows;
  } finally {
    await backend.shutdown();
  }
}
