/**
 * Property-based tests (fast-check) of prepare against random ResourceClaim statuses (issue #4, part 5):
 * other drivers, other pools, unknown devices, more than 32 results, opaque config that is not an object,
 * nested junk, unknown fields, up to and over 10 KiB, weird request names (`a/b/c`, empty), huge
 * `reservedFor` lists, unallocated and mismatched claims. Each status is written into the API server the
 * agent reads (a directly started embedded server, `--kube-api kubeconfig`), then prepared over the real
 * DRA socket, several claims per request.
 *
 * For every case: one entry per claim; a claim is prepared iff its verdict (fuzz-status-arb.ts, from the
 * resource.k8s.io/v1 rules) says so, with exactly the expected devices, request names (subrequest
 * stripped), shareIDs (v1), CDI IDs, a CDI spec valid against the official CDI schema, and a checkpoint
 * entry with the pods of `reservedFor`; a rejected claim's error names the claim and one of its wrong parts,
 * and it leaves no CDI spec and no checkpoint entry; no file changes outside the CDI and state dirs; the
 * checkpoint verifies; unprepare removes everything; /healthz is 200 and a fresh valid claim prepares.
 *
 * CI: 30 cases with a fixed seed; `npm run fuzz` runs 1000 (FUZZ_RUNS, FUZZ_SEED).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DraApiVersion } from '../../src/dra/kubelet/grpc-protos.js';
import { cdiDeviceId, cdiVendor } from '../../src/state/cdi.js';
import { cdiValidator, DRIVER, NODE } from '../helpers/agent.js';
import {
  cdiSpecs, changesOutside, deleteClaim, expectAlive, putClaim, resetAgent, snapshot, startSandbox, verifiedCheckpoint, type Sandbox,
} from '../helpers/fuzz/agent.js';
import { fuzzParams, fuzzTimeout } from '../helpers/fuzz/env.js';
import { expectDevicesXorError, short } from '../helpers/fuzz/expect.js';
import { printable, statusClaimArb, type StatusClaim } from '../helpers/fuzz/status-arb.js';
import { encodeClaimsRequest } from '../helpers/fuzz/wire.js';

const RUNS = 30;
let sb: Sandbox;
const validateCdi = cdiValidator();

beforeAll(async () => {
  sb = await startSandbox();
});
afterAll(async () => {
  await sb?.stop();
});

interface StatusCase {
  readonly version: DraApiVersion;
  readonly namespace: string;
  readonly claims: readonly StatusClaim[];
}

/** A UID no object has (deterministic, so shrinking replays the same case). */
function fakeUid(kind: number, i: number): string {
  return `0000000${kind}-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

async function runCase(c: StatusCase): Promise<void> {
  const refs = c.claims.map((claim, i) => {
    const name = `s${i}`;
    const realUid = claim.missing ? undefined : putClaim(sb.server, c.namespace, name, claim.status);
    const uid = realUid === undefined ? fakeUid(1, i) : claim.wrongUid ? fakeUid(2, i) : realUid;
    return { namespace: c.namespace, name, uid, realUid };
  });
  try {
    const before = await snapshot(sb.root);
    const outcome = await sb.client.prepare(c.version, encodeClaimsRequest(refs));
    if (!outcome.ok) throw new Error(`NodePrepareResources failed: ${outcome.error.message.slice(0, 300)}`);
    const res = outcome.response;
    expect(Object.keys(res.claims).sort()).toEqual(refs.map((r) => r.uid).sort());
    expectDevicesXorError(res);

    const checkpoint = await verifiedCheckpoint(sb);
    const specs = await cdiSpecs(sb);
    const okUids: string[] = [];
    c.claims.forEach((claim, i) => {
      const ref = refs[i];
      if (ref === undefined) return;
      const entry = res.claims[ref.uid];
      const who = `claim ${ref.namespace}/${ref.name} (uid ${ref.uid})`;
      if (claim.verdict.ok) {
        okUids.push(ref.uid);
        expect(entry?.error, `${who} must prepare`).toBe('');
        const got = (entry?.devices ?? []).map((d) => ({
          device: d.device_name,
          ...(c.version === 'v1' && d.share_id !== undefined && d.share_id !== '' ? { shareId: d.share_id } : {}),
          requestNames: d.request_names,
          pool: d.pool_name,
          cdi: d.cdi_device_ids,
        }));
        const want = claim.devices.map((d) => ({
          device: d.device,
          ...(c.version === 'v1' && d.shareId !== undefined ? { shareId: d.shareId } : {}),
          requestNames: d.requestNames,
          pool: sb.harness.config.nodeName,
          cdi: [cdiDeviceId(cdiVendor(DRIVER), 'claim', ref.uid, d.device)],
        }));
        const key = (x: { device: string; shareId?: string }): string => `${x.device}/${x.shareId ?? ''}`;
        expect([...got].sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...want].sort((a, b) => key(a).localeCompare(key(b))));
        expect(checkpoint[ref.uid]?.state).toBe('PrepareCompleted');
        expect(checkpoint[ref.uid]?.pods.length, `pods of ${who}`).toBe(claim.pods);
        const spec = specs.find((f) => f.includes(ref.uid));
        expect(spec, `CDI spec of ${who}`).toBeDefined();
        const doc = JSON.parse(readFileSync(join(sb.cdiDir, spec ?? ''), 'utf8')) as unknown;
        expect(validateCdi(doc), JSON.stringify(validateCdi.errors)).toBe(true);
      } else {
        const error = entry?.error ?? '';
        expect(error.startsWith(`${who}: `), `error ${short(error)} names the claim`).toBe(true);
        expect(error.length - who.length, `reason in ${short(error)}`).toBeGreaterThan(12);
        if (claim.verdict.hints.length > 0) {
          expect(claim.verdict.hints.some((h) => error.includes(h)), `error ${short(error)} names one of ${claim.verdict.hints.join(' | ')}`).toBe(true);
        }
      }
    });
    // Rejected claims leave nothing: the checkpoint and the CDI dir hold exactly the prepared claims.
    expect(Object.keys(checkpoint).sort()).toEqual([...new Set(okUids)].sort());
    expect(specs.length, `CDI specs ${specs.join(', ')}`).toBe(new Set(okUids).size);
    expect(changesOutside(sb, before, await snapshot(sb.root))).toEqual([]);

    const un = await sb.client.unprepare(c.version, encodeClaimsRequest(refs));
    if (!un.ok) throw new Error(`NodeUnprepareResources failed: ${un.error.message.slice(0, 300)}`);
    expect(un.response.claims).toEqual(Object.fromEntries(refs.map((r) => [r.uid, { error: '' }])));
    expect(await verifiedCheckpoint(sb)).toEqual({});
    expect(await cdiSpecs(sb)).toEqual([]);
    expect(changesOutside(sb, before, await snapshot(sb.root))).toEqual([]);
    await expectAlive(sb, c.version);
  } finally {
    await resetAgent(sb);
    for (const r of refs) deleteClaim(sb.server, r.namespace, r.name);
  }
}

/** A rejected claim with one result of our driver in `pool` on `device`. */
function rejected(pool: string, device: string): StatusClaim {
  return printable({
    status: { allocation: { devices: { results: [{ request: 'gpus', driver: DRIVER, pool, device }] } } },
    verdict: { ok: false, hints: ['status.allocation.devices.results[0]'] },
    devices: [],
    pods: 0,
    wrongUid: false,
    missing: false,
  });
}

/** Counterexamples the fuzzer found (see the report of issue #4), replayed first in every run. */
const REGRESSIONS: [StatusCase][] = [
  // A 700 KB pool name of NULs: the error quoted it as 4.2 MB of "\u0000", the answer exceeded gRPC's 4 MiB
  // limit and the kubelet got RESOURCE_EXHAUSTED instead of the claim's error.
  [{ version: 'v1', namespace: 'default', claims: [rejected('\0'.repeat(700_000), 'gpu-0')] }],
  [{ version: 'v1beta1', namespace: 'default', claims: [rejected(NODE, '"'.repeat(1_200_000)), rejected('é'.repeat(1_200_000), 'gpu-0')] }],
];

describe('NodePrepareResources with random ResourceClaim statuses from the API', () => {
  const timeout = fuzzTimeout(50_000, RUNS);
  it('prepares exactly the valid allocations and rejects the rest with the field and the reason', { timeout }, async () => {
    const caseArb: fc.Arbitrary<StatusCase> = fc.record({
      version: fc.constantFrom<DraApiVersion>('v1', 'v1beta1'),
      namespace: fc.constantFrom('default', 'team-b', 'n'.repeat(63)),
      claims: fc.array(statusClaimArb(sb.devices), { minLength: 1, maxLength: 4 }),
    });
    await fc.assert(fc.asyncProperty(caseArb, runCase), fuzzParams(RUNS, timeout, REGRESSIONS));
  });
});
