/**
 * The one check of a claim or pod reference (namespace, name, uid), wherever one enters gpulet:
 * - the claims of the kubelet's NodePrepareResources / NodeUnprepareResources (src/dra/kubelet/grpc-dra-mapping.ts);
 * - a ResourceClaim's `metadata` read from the API server (src/state/claim-source.ts), and the pods of its
 *   `status.reservedFor` (src/state/allocation.ts);
 * - the checkpoint's entries and their pods (src/state/checkpoint.ts, through {@link objectRefShape} and
 *   {@link objectRefSchema}: the same field schemas).
 * What passes is a {@link ClaimRef} or {@link PodRef} (src/model/types.ts), whose branded fields no code further
 * in checks again.
 *
 * Rules (src/model/names.ts): the namespace is a DNS label (apimachinery `ValidateNamespaceName`, i.e.
 * `IsDNS1123Label`), the name a DNS subdomain (`NameIsDNSSubdomain`, the name rule of ResourceClaims and of
 * pods, `ValidatePodName`), the uid an object UID as the API server issues it, a lower-case UUID
 * (`uuid.NewUUID`): claim UIDs become parts of CDI spec file names and CDI device names.
 *
 * Pure, no I/O.
 */
import { z } from 'zod';
import { dnsLabelSchema, dnsSubdomainSchema, objectUidSchema } from './names.js';
import type { ClaimRef, PodRef } from './types.js';

/**
 * The fields of a reference and the schema of each, in the order {@link parseClaimRef} checks them (the UID
 * first: it keys every per-claim answer).
 */
export const objectRefShape = { uid: objectUidSchema, namespace: dnsLabelSchema, name: dnsSubdomainSchema } as const;

/** zod schema of a claim or pod reference, for structured input (the checkpoint). Output: a {@link ClaimRef} / {@link PodRef}. */
export const objectRefSchema = z.object(objectRefShape);

/** A field of a reference. */
export type RefField = keyof typeof objectRefShape;

/** Why a reference is refused: its first field (uid, namespace, name) that breaks its rule. */
export interface RefProblem {
  readonly field: RefField;
  /**
   * The broken rule, worded to follow the field's name: `must be a non-empty string` (absent, not a string,
   * or empty), `is not a claim UID: must be a lower-case UUID ...` (`pod UID` for a pod),
   * `is not a DNS label: must be at most 63 characters (is 64)`, `is not a DNS subdomain: ...`.
   */
  readonly rule: string;
  /** The value found, as it came (any value; undefined when absent). */
  readonly value: unknown;
}

/** A reference as it arrives (a wire message, JSON from the API server) — whatever value, its fields unknown. */
export type RawRef = { readonly namespace?: unknown; readonly name?: unknown; readonly uid?: unknown } | null | undefined;

/** Outcome of a check: the reference, or why it is refused. */
export type RefCheck<T> = { readonly ref: T; readonly problem?: undefined } | { readonly ref?: undefined; readonly problem: RefProblem };

/** What each field must be, as said in a refusal (the UID's noun depends on the object). */
const NOUNS = { namespace: 'a DNS label', name: 'a DNS subdomain' } as const;

function fieldProblem(raw: RawRef, field: RefField, uidNoun: string): RefProblem | undefined {
  const value: unknown = typeof raw === 'object' && raw !== null ? raw[field] : undefined;
  if (typeof value !== 'string' || value.length === 0) return { field, rule: 'must be a non-empty string', value };
  const parsed = objectRefShape[field].safeParse(value);
  if (parsed.success) return undefined;
  const noun = field === 'uid' ? uidNoun : NOUNS[field];
  return { field, rule: `is not ${noun}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, value };
}

function checkRef(raw: RawRef, uidNoun: string): RefCheck<ClaimRef> {
  for (const field of Object.keys(objectRefShape) as RefField[]) {
    const problem = fieldProblem(raw, field, uidNoun);
    if (problem !== undefined) return { problem };
  }
  // Every field passed its schema above: parse again for the branded values (no other fields are kept).
  return { ref: objectRefSchema.parse({ uid: raw?.uid, namespace: raw?.namespace, name: raw?.name }) };
}

/**
 * Check a claim reference (a kubelet `Claim` message, a ResourceClaim's `metadata`). Never throws.
 * @returns the {@link ClaimRef}, or the first field (uid, namespace, name) that breaks its rule.
 */
export function parseClaimRef(raw: RawRef): RefCheck<ClaimRef> {
  return checkRef(raw, 'a claim UID');
}

/**
 * Check a pod reference (an entry of a claim's `status.reservedFor`, with the claim's namespace). Never throws.
 * @returns the {@link PodRef}, or the first field (uid, namespace, name) that breaks its rule.
 */
export function parsePodRef(raw: RawRef): RefCheck<PodRef> {
  return checkRef(raw, 'a pod UID');
}
