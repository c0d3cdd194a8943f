/**
 * Assertions shared by the fuzz suites: the shape of every answer of NodePrepareResources /
 * NodeUnprepareResources, and what a rejection message must say.
 *
 * Upstream facts: the response map is keyed by claim UID and holds "the ResourceClaims for which preparation
 * was done (or attempted)" (kubernetes/kubelet pkg/apis/dra/v1 api.proto), so each UID of the request gets
 * exactly one entry; an entry either carries devices or a non-empty `error` (the kubelet retries it).
 */
import { expect } from 'vitest';
import type { WirePrepareResponse, WireUnprepareResponse } from '../../../src/dra/kubelet/grpc-protos.js';

/** A request claim as the server decoded it. */
export interface SentClaim {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** Request claims grouped by UID (first-seen order), with their positions in the request. */
export function groupByUid(sent: readonly SentClaim[]): Map<string, { readonly index: number; readonly claim: SentClaim }[]> {
  const groups = new Map<string, { index: number; claim: SentClaim }[]>();
  sent.forEach((claim, index) => {
    const g = groups.get(claim.uid) ?? [];
    g.push({ index, claim });
    groups.set(claim.uid, g);
  });
  return groups;
}

const FIELD_ERROR = /^invalid claim in request \(claims\[(\d+)\]\): field "(uid|namespace|name)" (\S.*)$/s;

/** Short form of a possibly huge string for assertion messages. */
export function short(s: string): string {
  return s.length <= 120 ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, 100))}… (${s.length} chars)`;
}

/**
 * Assert that `error` (the answer for UID `uid`) names the field or the claim and a reason:
 * - a validation error names the request position `claims[i]` of a claim with that UID, the field
 *   (`uid`, `namespace` or `name`) and the rule it breaks;
 * - any other error is `claim <namespace>/<name> (uid <uid>): <reason>` for a claim of the group.
 * A batch-wide error that names no claim fails this check.
 */
export function expectNamesFieldOrClaim(error: string, uid: string, group: readonly { index: number; claim: SentClaim }[]): void {
  expect(error.length, `error for uid ${short(uid)}`).toBeGreaterThan(0);
  const field = FIELD_ERROR.exec(error);
  if (field !== null) {
    const index = Number(field[1]);
    expect(group.map((g) => g.index), `claims[${index}] of the message is a claim with uid ${short(uid)}`).toContain(index);
    expect((field[3] ?? '').length, `rule of ${short(error)}`).toBeGreaterThan(10);
    return;
  }
  const prefixes = group.map(({ claim }) => `claim ${claim.namespace}/${claim.name} (uid ${claim.uid}): `);
  const prefix = prefixes.find((p) => error.startsWith(p));
  expect(prefix, `error ${short(error)} names the claim (${prefixes.map(short).join(' or ')})`).toBeDefined();
  expect(error.length - (prefix ?? '').length, `reason in ${short(error)}`).toBeGreaterThan(10);
}

/** Assert the answer has exactly one entry per distinct UID of the request and nothing else. */
export function expectOneEntryPerUid(
  res: WirePrepareResponse | WireUnprepareResponse,
  groups: ReadonlyMap<string, unknown>,
): void {
  const keys = Object.keys(res.claims).sort();
  const want = [...groups.keys()].sort();
  expect(keys.length, 'number of entries').toBe(want.length);
  expect(keys).toEqual(want);
}

/** Assert every prepare entry is either devices and no error, or an error and no devices. */
export function expectDevicesXorError(res: WirePrepareResponse): void {
  for (const [uid, r] of Object.entries(res.claims)) {
    if (r.error === '') expect(r.devices.length, `devices of ${short(uid)}`).toBeGreaterThan(0);
    else expect(r.devices, `devices of rejected ${short(uid)}`).toEqual([]);
  }
}
