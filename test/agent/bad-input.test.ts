/**
 * Bad input to the whole agent over the real DRA gRPC socket (issue #2): each bad claim gets a per-claim
 * error naming the claim (namespace/name and uid) and the cause; a good claim in the same batch and a good
 * prepare afterwards still succeed; nothing is left behind (no CDI spec, no checkpoint entry).
 *
 * The agent runs with `--kube-api kubeconfig` against its own embedded API server, so the API server's
 * faults (`injectFault`) and recorded requests are at hand. Upstream facts: the kubelet sends each claim
 * as {namespace, name, uid} and expects one map entry per claim UID (kubernetes/kubelet pkg/apis/dra/v1
 * api.proto: "claims: The ResourceClaims for which preparation was done (or attempted). Keyed by UID.");
 * NodeUnprepareResources of a claim that was never prepared succeeds (upstream example driver).
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import type { ClaimRef } from '../../src/model/types.js';
import type { WirePrepareResponse } from '../../src/dra/kubelet/grpc-protos.js';
import {
  allocatedClaim, checkpointClaims, claimGets, createClaim, NODE, refOf, removeDir, startHarness, tempDir, type Harness,
} from '../helpers/agent.js';
import { claimRef, objectUid } from '../helpers/names.js';

let server: EmbeddedApiServer;
let dir: string;
let h: Harness | undefined;
let goodCount = 0;

beforeEach(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await tempDir('gpulet-bad-');
  goodCount = 0;
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  await server.close();
  await removeDir(dir);
});

async function start(extraArgs: string[] = []): Promise<Harness> {
  h = await startHarness({ dir, server, extraArgs });
  return h;
}

/** A fresh, correctly allocated claim on a whole GPU (a different one each call). */
async function goodClaim(harness: Harness): Promise<ClaimRef> {
  goodCount += 1;
  return allocatedClaim(harness.api, `good-${goodCount}`, [{ device: `gpu-${goodCount % 6}` }], { pod: { name: `pod-${goodCount}`, uid: randomUUID() } });
}

/** Assert a per-claim error naming the claim and matching `cause`, and that nothing of it was left behind. */
async function expectClaimError(harness: Harness, res: WirePrepareResponse, ref: ClaimRef, cause: RegExp): Promise<string> {
  const entry = res.claims[ref.uid];
  expect(entry, `an answer for ${ref.uid}`).toBeDefined();
  const error = entry?.error ?? '';
  expect(entry?.devices ?? []).toEqual([]);
  expect(error).toContain(`${ref.namespace}/${ref.name}`);
  expect(error).toContain(ref.uid);
  expect(error).toMatch(cause);
  expect(cdiFiles(harness, ref)).toEqual([]);
  expect(await checkpointClaims(harness.config)).not.toHaveProperty(ref.uid);
  return error;
}

/** The claim's spec files in the CDI dir (none when the dir was never created). */
function cdiFiles(harness: Harness, ref: ClaimRef): string[] {
  if (!existsSync(harness.config.cdiDir)) return [];
  return readdirSync(harness.config.cdiDir).filter((n) => n.includes(ref.uid));
}

/** Assert the claim prepared fine. */
function expectPrepared(res: WirePrepareResponse, ref: ClaimRef): void {
  const entry = res.claims[ref.uid];
  expect(entry?.error).toBe('');
  expect(entry?.devices.length).toBeGreaterThan(0);
}

/** Prepare [bad, good] in one batch, check both answers, then a good prepare afterwards. */
async function badThenGood(harness: Harness, bad: ClaimRef, cause: RegExp): Promise<string> {
  const good = await goodClaim(harness);
  const res = await harness.kubelet.prepare([bad, good]);
  expect(Object.keys(res.claims).sort()).toEqual([bad.uid, good.uid].sort());
  const error = await expectClaimError(harness, res, bad, cause);
  expectPrepared(res, good);
  const after = await goodClaim(harness);
  expectPrepared(await harness.kubelet.prepare([after]), after);
  return error;
}

describe('bad claims over the real DRA socket', () => {
  it('claim not allocated', async () => {
    const a = await start();
    const bad = refOf(await createClaim(a.api, 'pending'));
    await badThenGood(a, bad, /not allocated/);
  });

  it('UID changed: the kubelet asks for a uid the API object no longer has', async () => {
    const a = await start();
    const real = await allocatedClaim(a.api, 'recreated', [{ device: 'gpu-3' }]);
    const bad = { ...real, uid: objectUid() };
    const error = await badThenGood(a, bad, /UID mismatch/);
    expect(error).toContain(real.uid);
  });

  it('allocation names an unknown device', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'ghost', [{ device: 'gpu-99' }]);
    const error = await badThenGood(a, bad, /unknown device/);
    expect(error).toContain('gpu-99');
  });

  it('allocation names a device of another pool', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'elsewhere', [{ device: 'gpu-0', pool: 'other-node' }]);
    const error = await badThenGood(a, bad, /is in pool "other-node", not this node's pool "e2e-node"/);
    expect(error).toContain('other-node');
  });

  it('allocation holds only another driver\'s results', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'foreign', [{ device: 'nic-0', driver: 'net.example.com' }]);
    await badThenGood(a, bad, /no allocation results for driver "gpu\.gpulet\.dev"/);
  });

  it('invalid opaque config of our driver (a reserved env name)', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'misconfigured', [{ device: 'gpu-2' }], {
      config: [{ source: 'FromClaim', opaque: { driver: 'gpu.gpulet.dev', parameters: { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig', env: { NVIDIA_VISIBLE_DEVICES: 'all' } } } }],
    });
    const error = await badThenGood(a, bad, /invalid opaque config/);
    expect(error).toContain('NVIDIA_VISIBLE_DEVICES');
  });

  it('malformed claim references (empty uid, upper-case namespace): per-claim errors, the good claim succeeds', async () => {
    const a = await start();
    const good = await goodClaim(a);
    const upper = { namespace: 'Default', name: 'x', uid: randomUUID() };
    const res = await a.kubelet.prepare([{ namespace: 'default', name: 'no-uid', uid: '' }, upper, good]);
    expect(Object.keys(res.claims).sort()).toEqual(['', upper.uid, good.uid].sort());
    expect(res.claims['']?.error).toMatch(/uid/);
    expect(res.claims[upper.uid]?.error).toMatch(/namespace/);
    expect(res.claims[upper.uid]?.error).toContain('Default');
    expectPrepared(res, good);
    expect(Object.keys(await checkpointClaims(a.config))).toEqual([good.uid]);
  });

  it('corrupt checkpoint at start: the agent starts empty, keeps the bad file aside, and serves', async () => {
    writeFileSync(join(dir, 'checkpoint.json'), '{"apiVersion": "gpulet.dev/v1", "claims": {"trunc');
    const a = await start();
    expect(a.agent.claims.prepared()).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.startsWith('checkpoint.json.corrupt-'))).toHaveLength(1);
    const good = await goodClaim(a);
    expectPrepared(await a.kubelet.prepare([good]), good);
    expect((await checkpointClaims(a.config))[good.uid]?.state).toBe('PrepareCompleted');
  });

  it('claim does not exist (HTTP 404)', async () => {
    const a = await start();
    const bad = claimRef({ namespace: 'default', name: 'never-created' });
    await badThenGood(a, bad, /not found \(HTTP 404\)/);
  });

  it('empty claim list: an empty map', async () => {
    const a = await start();
    expect(await a.kubelet.prepare([])).toEqual({ claims: {} });
    expect(await a.kubelet.unprepare([])).toEqual({ claims: {} });
    const good = await goodClaim(a);
    expectPrepared(await a.kubelet.prepare([good]), good);
  });

  it('duplicated claim in one list: one entry, prepared once', async () => {
    const a = await start();
    const good = await goodClaim(a);
    server.clearRequests();
    const res = await a.kubelet.prepare([good, good]);
    expect(Object.keys(res.claims)).toEqual([good.uid]);
    expectPrepared(res, good);
    expect(res.claims[good.uid]?.devices).toHaveLength(1);
    expect(claimGets(server.requests, good)).toHaveLength(1);
    expect(Object.keys(await checkpointClaims(a.config))).toEqual([good.uid]);
  });

  it('unknown claim on unprepare succeeds', async () => {
    const a = await start();
    const unknown = { namespace: 'default', name: 'nobody', uid: randomUUID() };
    const good = await goodClaim(a);
    expectPrepared(await a.kubelet.prepare([good]), good);
    const res = await a.kubelet.unprepare([unknown, good]);
    expect(res.claims).toEqual({ [unknown.uid]: { error: '' }, [good.uid]: { error: '' } });
    expect(await checkpointClaims(a.config)).toEqual({});
  });

  it('API server drops the connection: the error says it is unreachable', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'dropped', [{ device: 'gpu-4' }]);
    const remove = server.injectFault({ pathIncludes: `/resourceclaims/${bad.name}`, drop: true });
    await badThenGood(a, bad, /unreachable/);
    remove();
    expectPrepared(await a.kubelet.prepare([bad]), bad); // the kubelet's retry succeeds once the API is back
  });

  it('API server stopped: the error says it is unreachable, and the agent keeps serving', async () => {
    const a = await start();
    const bad = await allocatedClaim(a.api, 'lonely', [{ device: 'gpu-4' }]);
    await server.close();
    const res = await a.kubelet.prepare([bad]);
    await expectClaimError(a, res, bad, /API server unreachable/);
    // Still serving: unprepare needs no API, and the health endpoint answers.
    expect((await a.kubelet.unprepare([bad])).claims[bad.uid]?.error).toBe('');
    expect((await fetch(`${a.agent.telemetry.url}/healthz`)).status).toBe(200);
  });

  for (const status of [500, 409]) {
    it(`API server answers HTTP ${status}: per-claim error with the status`, async () => {
      const a = await start();
      const bad = await allocatedClaim(a.api, `status-${status}`, [{ device: 'gpu-5' }]);
      const remove = server.injectFault({ method: 'GET', pathIncludes: `/resourceclaims/${bad.name}`, status });
      await badThenGood(a, bad, new RegExp(`HTTP ${status}`));
      remove();
      expectPrepared(await a.kubelet.prepare([bad]), bad);
    });
  }

  it('CDI dir not writable (a regular file in the way): error names the dir, no checkpoint entry left', async () => {
    const blocker = join(dir, 'blocker');
    const cdiDir = join(blocker, 'cdi');
    writeFileSync(blocker, 'not a directory\n');
    const a = await start(['--cdi-dir', cdiDir]);
    const ref = await goodClaim(a);
    const res = await a.kubelet.prepare([ref]);
    const entry = res.claims[ref.uid];
    expect(entry?.devices).toEqual([]);
    expect(entry?.error).toContain(`${ref.namespace}/${ref.name}`);
    expect(entry?.error).toContain(cdiDir);
    expect(await checkpointClaims(a.config)).not.toHaveProperty(ref.uid);
    expect(a.agent.claims.prepared()).toEqual([]);
    // The operator fixes the dir: the kubelet's retry prepares the claim.
    rmSync(blocker);
    mkdirSync(cdiDir, { recursive: true });
    expectPrepared(await a.kubelet.prepare([ref]), ref);
    expect(readdirSync(cdiDir).filter((f) => f.includes(ref.uid))).toHaveLength(1);
  });
});
