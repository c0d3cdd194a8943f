/**
 * Benchmark 3b, prepare of a dynamic MIG device (issue 12 item 6) over the real unix socket, beside the prepare of
 * a static MIG device of the same profile. Two in-process agents in turn, each with a KubeletSimulator:
 * - dynamic: mock `h100-80gb`, `--mig-mode dynamic --mig-enable`; each round prepares `gpu-0-mig-1g10gb-19-0` (the
 *   prepare creates the instance) and unprepares it (destroys it), on a distinct allocated claim;
 * - static: mock `dgx-h100` (`--mig-mode static`); each round prepares the existing `gpu-7-mig-1g10gb-19-0`.
 * The mock's creation is instant (a state-file write, no hardware), so the difference is gpulet's own overhead:
 * the intent in the checkpoint (`PrepareMigCreating`), the list of the GPU's instances and the fit check, the
 * MIG manager's call, the record of the new instance, then the static path's writes (src/state/claim-ops.ts).
 * Floor: the 4 atomic writes a dynamic prepare does (intent, PrepareStarted, CDI spec, PrepareCompleted). The
 * mock MIG manager's own create + destroy is timed alone too. On real hardware creation dominates: NVIDIA
 * publishes no figure for `nvmlDeviceCreateGpuInstanceWithPlacement` / `nvidia-smi mig -cgi` (see BENCHMARKS.md).
 */
import type { ClaimRef } from '../src/model/types.js';
import { startBenchAgent, type BenchAgent } from './agent.js';
import { clientKubeConfig } from '../dev/embedded.js';
import { createAllocatedClaims } from './claims.js';
import { measureWriteFloor } from './floor.js';
import { fmtMs, fmtP50P99, summarize, type Summary } from './stats.js';
import type { BenchOptions, Row } from './types.js';

const WARMUP = 5;
const DYNAMIC_DEVICE = 'gpu-0-mig-1g10gb-19-0';
const STATIC_DEVICE = 'gpu-7-mig-1g10gb-19-0';

/** Prepare then unprepare each claim of `device`; the prepare and unprepare times after the warm-up rounds, ms. */
async function rounds(env: BenchAgent, device: string, count: number): Promise<{ prepare: Summary; unprepare: Summary }> {
  const plans = Array.from({ length: count + WARMUP }, (_, i) => ({ namespace: 'default', name: `bench-mig-${i}`, devices: [device] }));
  const refs: ClaimRef[] = await createAllocatedClaims(clientKubeConfig(env.agent), env.config.driverName, env.config.nodeName, plans);
  const prepare: number[] = [];
  const unprepare: number[] = [];
  for (const [i, ref] of refs.entries()) {
    const t0 = performance.now();
    const res = await env.kubelet.prepare([ref]);
    const t1 = performance.now();
    const un = await env.kubelet.unprepare([ref]);
    const t2 = performance.now();
    const result = res.claims[ref.uid];
    if (result === undefined || result.error !== '' || result.devices.length !== 1) {
      throw new Error(`prepare of ${device} for ${ref.name} answered ${JSON.stringify(result)}; expected 1 device and no error`);
    }
    const unError = un.claims[ref.uid]?.error;
    if (unError !== '') throw new Error(`unprepare of ${device} for ${ref.name} answered error ${JSON.stringify(unError)}`);
    if (i >= WARMUP) {
      prepare.push(t1 - t0);
      unprepare.push(t2 - t1);
    }
  }
  return { prepare: summarize(prepare), unprepare: summarize(unprepare) };
}

/** The mock MIG manager alone: create 1g.10gb at memory slice 1 and destroy it, ms per pair. */
async function mockCreateDestroy(env: BenchAgent, count: number): Promise<Summary> {
  const mig = env.agent.backend.mig;
  const gpu = env.agent.backend.inventory().gpus[0];
  if (mig === undefined || gpu === undefined) throw new Error('the dynamic bench agent has no MIG manager or no GPU');
  const times: number[] = [];
  for (let i = 0; i < count + WARMUP; i++) {
    const t0 = performance.now();
    const made = await mig.createMigDevice(gpu.uuid, { giProfileId: 19, start: 1, size: 1 });
    await mig.destroyMigDevice(gpu.uuid, made.gpuInstanceId);
    if (i >= WARMUP) times.push(performance.now() - t0);
  }
  return summarize(times);
}

/**
 * Run benchmark 3b (starts and stops its own two agents).
 * @throws Error when a prepare or unprepare answers an error (a bug, not a slow path)
 */
export async function benchDynamicMig(opts: BenchOptions): Promise<Row[]> {
  const count = opts.long ? 200 : 50;
  opts.print(
    `[dynamic-mig] method: in-process agent + KubeletSimulator over the DRA unix socket; ${count} rounds (+${WARMUP} warm-up) of ` +
      `NodePrepareResources then NodeUnprepareResources on distinct allocated claims: dynamic ${DYNAMIC_DEVICE} (mock h100-80gb, ` +
      `--mig-mode dynamic: prepare creates, unprepare destroys) vs static ${STATIC_DEVICE} (mock dgx-h100); floor = 4 writeFileAtomic ` +
      `(intent, PrepareStarted, CDI spec, PrepareCompleted) in the agent's temp dir`,
  );
  const dynamicEnv = await startBenchAgent(1000, ['--mock-machine', 'h100-80gb', '--mig-mode', 'dynamic', '--mig-enable', 'true']);
  let dynamic: { prepare: Summary; unprepare: Summary };
  let mock: Summary;
  let floor: Summary;
  try {
    dynamic = await rounds(dynamicEnv, DYNAMIC_DEVICE, count);
    mock = await mockCreateDestroy(dynamicEnv, count);
    floor = summarize(await measureWriteFloor(dynamicEnv.dir, count, 4));
  } finally {
    await dynamicEnv.close();
  }
  const staticEnv = await startBenchAgent(1000);
  let stat: { prepare: Summary; unprepare: Summary };
  try {
    stat = await rounds(staticEnv, STATIC_DEVICE, count);
  } finally {
    await staticEnv.close();
  }
  const overhead = dynamic.prepare.p50 - stat.prepare.p50;
  opts.print(
    `[dynamic-mig] dynamic prepare ${fmtP50P99(dynamic.prepare)}, unprepare ${fmtP50P99(dynamic.unprepare)}; static prepare ` +
      `${fmtP50P99(stat.prepare)}, unprepare ${fmtP50P99(stat.unprepare)}; mock create+destroy ${fmtP50P99(mock)}; floor ${fmtP50P99(floor)}`,
  );
  return [
    { name: 'floor: 4 × atomic write (a dynamic prepare\'s)', figure: fmtP50P99(floor), goal: '', ratio: '' },
    { name: '  part: mock MIG manager create + destroy (no hardware)', figure: fmtP50P99(mock), goal: '', ratio: '' },
    {
      name: 'NodePrepareResources, dynamic MIG (creates 1g.10gb)',
      figure: fmtP50P99(dynamic.prepare),
      goal: `static MIG prepare p50 ${fmtMs(stat.prepare.p50)}`,
      ratio: `${(dynamic.prepare.p50 / stat.prepare.p50).toFixed(2)}× static (+${fmtMs(overhead)}), ${(dynamic.prepare.p50 / floor.p50).toFixed(2)}× floor`,
    },
    { name: 'NodePrepareResources, static MIG (exists)', figure: fmtP50P99(stat.prepare), goal: '', ratio: '' },
    {
      name: 'NodeUnprepareResources, dynamic MIG (destroys)',
      figure: fmtP50P99(dynamic.unprepare),
      goal: `static MIG unprepare p50 ${fmtMs(stat.unprepare.p50)}`,
      ratio: `${(dynamic.unprepare.p50 / stat.unprepare.p50).toFixed(2)}× static`,
    },
    { name: 'NVML GPU instance creation on hardware', figure: 'not published by NVIDIA', goal: '', ratio: '' },
  ];
}
