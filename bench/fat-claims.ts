/**
 * Benchmark 1b, fat claims (issue 9 item 5): what a claim's opaque-config env costs a prepare, and every later
 * prepare. A *thin* claim is one device without config; a *fat* claim is the probe's shape brought to the
 * per-claim cap: 16 devices (the mock dgx-h100's allocatable devices) and configs of ~10 KiB up to
 * MAX_CLAIM_ENV_BYTES — six for every device, one small one for each half of the devices.
 *
 * Figures: (a) the pure work of one prepare, `resolveAllocation` + `claimCdiSpec` + the spec's JSON, thin vs
 * fat; (b) the checkpoint codec a prepare pays for the whole file, one decode (the session's re-read) and two
 * encodes (PrepareStarted, PrepareCompleted), with 100 thin vs 100 fat claims prepared; (c) a whole prepare +
 * unprepare of a thin claim through the claim state on real files (temp dir, fsync'd writes, an in-memory
 * claim source), with no other claim, one fat claim (the probe's case) and 100 fat claims in the checkpoint
 * (a 6.5 MiB file each session re-reads and each save rewrites and fsyncs: bounded, not free); (d) sizes: the checkpoint with 100
 * fat claims, and a fat claim's spec, next to what the older layout (env per device) made of the same claims.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Inventory } from '../src/gpu/types.js';
import { silentLogger } from '../src/log.js';
import { objectRefSchema } from '../src/model/claim-ref.js';
import { devicesByName } from '../src/model/devices.js';
import type { ClaimRef } from '../src/model/types.js';
import { resolveAllocation } from '../src/state/allocation.js';
import { buildCdiSpec } from '../src/state/cdi.js';
import { deviceEnv, MAX_CLAIM_ENV_BYTES } from '../src/state/claim-env.js';
import { ClaimOps } from '../src/state/claim-ops.js';
import { claimFromApi, type ApiClaim, type ClaimSource } from '../src/state/claim-source.js';
import { claimCdiSpec } from '../src/state/claim-spec.js';
import { ClaimStore } from '../src/state/claim-store.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointClaim, type CheckpointClaims } from '../src/state/checkpoint.js';
import { Preparer } from '../src/state/preparer.js';
import { fmtMs, fmtP50P99, summarize, timeAsync, timeSync, type Repeat, type Summary } from './stats.js';
import type { BenchOptions, Row } from './types.js';

const DRIVER = 'gpu.gpulet.dev';
const CLAIMS = 100;

/** A claim's uid from a counter (lower-case UUID). */
const uidOf = (i: number): string => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const refOf = (name: string, i: number): ClaimRef => objectRefSchema.parse({ namespace: 'bench', name, uid: uidOf(i) });

/** A ResourceClaim as the API server answers it: `devices` allocated for requests r0/r1 alternately, with `config`. */
function apiClaim(ref: ClaimRef, pool: string, devices: readonly string[], config: readonly unknown[]): ApiClaim {
  const results = devices.map((device, i) => ({ request: `r${i % 2}`, driver: DRIVER, pool, device }));
  return claimFromApi({ metadata: ref, status: { allocation: { devices: { results, config } }, reservedFor: [{ resource: 'pods', name: 'p', uid: uidOf(999_999) }] } });
}

/** The fat claim's configs: six of ~10 KiB for every device (≈ the cap), one small one per request. */
function fatConfig(): unknown[] {
  const config = (env: Record<string, string>, requests?: string[]) =>
    ({ opaque: { driver: DRIVER, parameters: { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig', env } }, ...(requests ? { requests } : {}) });
  const big = 10 * 1024 - 100; // the opaque parameters limit (10 KiB) less the JSON around the value
  return [...Array.from({ length: 6 }, (_, i) => config({ [`BIG_${i}`]: 'x'.repeat(big) })), config({ ROLE: 'even' }, ['r0']), config({ ROLE: 'odd' }, ['r1'])];
}

function row(name: string, s: Summary, ratio = ''): Row {
  return { name, figure: fmtP50P99(s), goal: '', ratio };
}

const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

/**
 * Run benchmark 1b on the mock inventory of `pool`.
 * @returns rows (times and sizes)
 * @throws whatever the measured code throws (a bug: the inputs are built here)
 */
export async function benchFatClaims(opts: BenchOptions, inventory: Inventory, pool: string): Promise<Row[]> {
  const repeat: Repeat = opts.long ? { warmup: 100, runs: 1000 } : { warmup: 20, runs: 200 };
  const codecRepeat: Repeat = opts.long ? { warmup: 3, runs: 30 } : { warmup: 2, runs: 10 };
  const byName = devicesByName(inventory);
  const names = [...byName.keys()].slice(0, 16);
  opts.print(
    `[pure] fat claims: thin = 1 device, no config; fat = ${names.length} devices, 6 configs of ~10 KiB for all + 1 small per request ` +
      `(the ${kib(MAX_CLAIM_ENV_BYTES)} cap per claim); codec = 1 decode + 2 encodes of the whole checkpoint (what a prepare pays) with ${CLAIMS} claims; ` +
      `prepare+unprepare of a thin claim on real files (temp dir, fsync) with 0 vs ${CLAIMS} fat claims prepared`,
  );
  const resolveAndBuild = (claim: ApiClaim) => () => {
    const a = resolveAllocation({ claim, ref: claim.metadata, driverName: DRIVER, poolName: pool, devices: byName });
    const spec = claimCdiSpec({ driverName: DRIVER, claimUid: claim.metadata.uid, devices: a.devices, configs: a.configs, byName });
    return JSON.stringify(spec);
  };
  const thinClaim = apiClaim(refOf('thin', 0), pool, names.slice(0, 1), []);
  const fatClaim = apiClaim(refOf('fat', 1), pool, names, fatConfig());
  const thinPure = summarize(timeSync(resolveAndBuild(thinClaim), repeat));
  const fatPure = summarize(timeSync(resolveAndBuild(fatClaim), repeat));

  // Checkpoints of CLAIMS prepared claims, thin and fat, as prepare records them.
  const entry = (claim: ApiClaim): CheckpointClaim => {
    const a = resolveAllocation({ claim, ref: claim.metadata, driverName: DRIVER, poolName: pool, devices: byName });
    const devices = a.devices.map((d) => ({ requestNames: d.requestNames, poolName: pool, deviceName: d.deviceName, uuid: d.device.uuid, cdiDeviceIds: [`k8s.${DRIVER}/claim=${claim.metadata.uid}-${d.deviceName}`] }));
    return { ...claim.metadata, state: 'PrepareCompleted', devices, pods: [], configs: a.configs };
  };
  const checkpointOf = (fat: boolean): CheckpointClaims => Object.fromEntries(Array.from({ length: CLAIMS }, (_, i) => {
    const ref = refOf(`c-${i}`, 10 + i);
    return [ref.uid, entry(fat ? apiClaim(ref, pool, names, fatConfig()) : apiClaim(ref, pool, names.slice(0, 1), []))];
  }));
  const codec = (claims: CheckpointClaims) => () => {
    decodeCheckpoint(encodeCheckpoint(claims, 'b'));
    encodeCheckpoint(claims, 'b');
  };
  const thinCheckpoint = checkpointOf(false);
  const fatCheckpoint = checkpointOf(true);
  const thinCodec = summarize(timeSync(codec(thinCheckpoint), codecRepeat));
  const fatCodec = summarize(timeSync(codec(fatCheckpoint), codecRepeat));

  // Sizes, and what the older layout (each device carrying its merged env) made of the same claims.
  const fatBytes = Buffer.byteLength(encodeCheckpoint(fatCheckpoint, 'b'));
  const thinBytes = Buffer.byteLength(encodeCheckpoint(thinCheckpoint, 'b'));
  const olderShape = Object.fromEntries(Object.entries(fatCheckpoint).map(([uid, e]) => {
    const { configs, ...rest } = e;
    return [uid, { ...rest, devices: e.devices.map((d) => ({ ...d, env: deviceEnv(configs, d.deviceName) })) }];
  }));
  const olderBytes = Buffer.byteLength(JSON.stringify({ claims: olderShape }, null, 2));
  const fatSpec = Buffer.byteLength(resolveAndBuild(fatClaim)());
  const fatEntry = entry(fatClaim);
  const olderSpec = Buffer.byteLength(JSON.stringify(buildCdiSpec({
    driverName: DRIVER, claimUid: fatClaim.metadata.uid, devices: fatEntry.devices.map((d) => ({ device: byName.get(d.deviceName)!, env: deviceEnv(fatEntry.configs, d.deviceName) })),
  })));

  const idle = await prepareRounds(inventory, pool, names, {}, codecRepeat);
  const [oneUid, oneFat] = Object.entries(fatCheckpoint)[0] ?? [];
  const beside = await prepareRounds(inventory, pool, names, oneUid === undefined || oneFat === undefined ? {} : { [oneUid]: oneFat }, codecRepeat);
  const loaded = await prepareRounds(inventory, pool, names, fatCheckpoint, codecRepeat);
  opts.print(
    `[pure] fat claims: checkpoint with ${CLAIMS} fat claims ${kib(fatBytes)} (older layout: ${kib(olderBytes)}), ${CLAIMS} thin ${kib(thinBytes)}; ` +
      `fat spec ${kib(fatSpec)} (older layout: ${kib(olderSpec)}); thin prepare+unprepare p50 ${fmtMs(idle.p50)} alone, ${fmtMs(beside.p50)} beside 1 fat claim, ` +
      `${fmtMs(loaded.p50)} beside ${CLAIMS} fat claims`,
  );
  return [
    row('prepare pure work (resolve + spec + JSON), thin claim', thinPure),
    row(`prepare pure work, fat claim (${names.length} devices, env at the cap)`, fatPure, `${(fatPure.p50 / thinPure.p50).toFixed(1)}× thin`),
    row(`checkpoint codec per prepare (1 decode + 2 encodes), ${CLAIMS} thin claims`, thinCodec),
    row(`checkpoint codec per prepare, ${CLAIMS} fat claims`, fatCodec, `${(fatCodec.p50 / thinCodec.p50).toFixed(1)}× thin`),
    row('thin prepare+unprepare on files (fsync), no other claim', idle),
    row('thin prepare+unprepare on files (fsync), 1 fat claim prepared', beside, `${(beside.p50 / idle.p50).toFixed(1)}× alone`),
    row(`thin prepare+unprepare on files (fsync), ${CLAIMS} fat claims prepared`, loaded, `${(loaded.p50 / idle.p50).toFixed(1)}× alone`),
    { name: `checkpoint bytes, ${CLAIMS} fat claims (older layout: env per device)`, figure: `${kib(fatBytes)} (older: ${kib(olderBytes)})`, goal: `≤ ${CLAIMS} × cap + records`, ratio: `${(fatBytes / (CLAIMS * MAX_CLAIM_ENV_BYTES)).toFixed(2)}× ${CLAIMS} × cap` },
    { name: 'CDI spec bytes, one fat claim (older layout)', figure: `${kib(fatSpec)} (older: ${kib(olderSpec)})`, goal: '≤ cap + device edits', ratio: `${(fatSpec / MAX_CLAIM_ENV_BYTES).toFixed(2)}× cap` },
  ];
}

/**
 * Prepare and unprepare a thin claim through the claim state on real files, with `present` already in the
 * checkpoint. @returns ms per prepare+unprepare pair.
 */
async function prepareRounds(inventory: Inventory, pool: string, names: readonly string[], present: CheckpointClaims, repeat: Repeat): Promise<Summary> {
  const dir = await mkdtemp(join(tmpdir(), 'gpulet-bench-fat-'));
  try {
    const claims = new Map<string, ApiClaim>();
    const source: ClaimSource = {
      get: (namespace, name) => {
        const c = claims.get(`${namespace}/${name}`);
        return c === undefined ? Promise.reject(new Error(`no claim ${namespace}/${name}`)) : Promise.resolve(c);
      },
    };
    const checkpointPath = join(dir, 'checkpoint.json');
    const store = new ClaimStore({ checkpointPath, logger: silentLogger(), readBootId: () => Promise.resolve('bench') });
    const ops = new ClaimOps({ store, driverName: DRIVER, poolName: pool, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'), logger: silentLogger() });
    const preparer = new Preparer({ store, ops });
    await store.init();
    await store.locked(async () => {
      for (const e of Object.values(present)) await store.commit(e.uid, e);
    });
    let i = 0;
    return summarize(await timeAsync(async () => {
      const ref = refOf(`thin-${i}`, 500_000 + i++);
      claims.set(`${ref.namespace}/${ref.name}`, apiClaim(ref, pool, names.slice(0, 1), []));
      const prepared = (await preparer.prepare([ref])).get(ref.uid);
      if (prepared?.error !== undefined) throw new Error(`prepare failed: ${prepared.error}`);
      await preparer.unprepare([ref]);
    }, repeat));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
