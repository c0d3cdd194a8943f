/**
 * The prepared-claims checkpoint: a JSON file, written atomically, that survives agent restarts.
 *
 * ```json
 * {"apiVersion": "gpulet.dev/v1", "kind": "Checkpoint", "bootId": "<uuid>", "checksum": "<sha256 hex>",
 *  "claims": {"<uid>": {"namespace", "name", "uid", "state": "PrepareStarted" | "PrepareCompleted",
 *                       "devices": [{requestNames, poolName, deviceName, uuid, cdiDeviceIds, shareId?}],
 *                       "pods": [{namespace, name, uid}],
 *                       "configs": [{devices: [<device name>], env: {NAME: value}}]}}}
 * ```
 * `checksum` is the SHA-256 of the canonical JSON (keys sorted, no whitespace) of `claims`, as the kubelet's
 * checkpoint manager guards its files. `bootId` (`/proc/sys/kernel/random/boot_id`) tells a restart from a
 * reboot: after a reboot `/var/run/cdi` (tmpfs) is empty while the checkpoint remains.
 *
 * The checksum detects accidents (a torn or hand-edited file), not forgery: a file whose JSON, envelope or
 * checksum fails is unusable as a whole (moved aside, the state rebuilt from the API server), while each entry
 * of a file that passed is checked as untrusted input and one that fails is dropped alone
 * (checkpoint-entry.ts, {@link droppedEntries}). `configs` (a claim's opaque-config env, once per claim) is
 * absent in files of older versions, whose devices carried their env: they load (checkpoint-entry.ts).
 *
 * This module is the document: the envelope's schema and the codec (encode, decode and verify); one entry is
 * checkpoint-entry.ts. Pure, no I/O. Reading, writing and moving the file aside is `checkpoint-file.ts`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { errorMessage } from '../errors.js';
import { decodeEntry, type CheckpointClaim } from './checkpoint-entry.js';
import { isJsonObject } from './opaque-config.js';

export { MAX_DEVICE_UUID_LENGTH, type CheckpointClaim, type CheckpointDevice, type ClaimState } from './checkpoint-entry.js';

export const CHECKPOINT_API_VERSION = 'gpulet.dev/v1';
export const CHECKPOINT_KIND = 'Checkpoint';

/** Claims by UID. */
export type CheckpointClaims = Readonly<Record<string, CheckpointClaim>>;

/** An entry {@link decodeCheckpoint} left out, and why. */
export interface DroppedEntry {
  /** Its key in the file's `claims` (any string: `__proto__`, `not-a-uuid`, ...). */
  readonly key: string;
  /** `<field>: <problem>`, e.g. `devices.0.deviceName: must be a DNS label ...`. */
  readonly reason: string;
}

/** Longest boot ID kept from a file (the kernel's is a 36-character UUID); a longer one reads as none (''). */
export const MAX_BOOT_ID_LENGTH = 256;

/**
 * The document around the claims, checked before the checksum (issues come in this field order). `claims`
 * is only required to be an object here; its entries are checked once the checksum matched.
 */
const checkpointEnvelopeSchema = z.object({
  apiVersion: z.literal(CHECKPOINT_API_VERSION),
  kind: z.literal(CHECKPOINT_KIND),
  claims: z.record(z.string(), z.unknown()),
  checksum: z.string(),
  bootId: z.string().max(MAX_BOOT_ID_LENGTH).catch(''),
});

/** JSON with object keys sorted at every level and no whitespace. Pure. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isJsonObject(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  );
}

/** SHA-256 (hex) of the canonical JSON of `claims`. */
export function checksumOf(claims: CheckpointClaims): string {
  return createHash('sha256').update(canonicalJson(claims)).digest('hex');
}

/**
 * Each entry's canonical and indented JSON, by entry object. An entry is never changed in place (the claim
 * store replaces it: claim-store.ts), and a commit changes one entry of the image, so a save serialises only
 * what changed: the cost of a prepare stays that of its own claim plus joining and hashing the file, not of
 * re-serialising every claim (bench/fat-claims.ts).
 */
const serialised = new WeakMap<CheckpointClaim, { readonly canonical: string; readonly indented: string }>();

function serialisedEntry(entry: CheckpointClaim): { readonly canonical: string; readonly indented: string } {
  let s = serialised.get(entry);
  if (s === undefined) {
    // Indented as `JSON.stringify(document, null, 2)` indents an entry: two levels deep.
    s = { canonical: canonicalJson(entry), indented: JSON.stringify(entry, null, 2).replaceAll('\n', '\n    ') };
    serialised.set(entry, s);
  }
  return s;
}

/** The last document this process encoded (or decoded), and its claims: its own write read back is not decoded again. */
let last: { readonly text: string; readonly decoded: { readonly bootId: string; readonly claims: CheckpointClaims } } | undefined;

/**
 * Serialise a checkpoint document: byte for byte `JSON.stringify(document, null, 2)` and a newline, with
 * `checksum` the {@link checksumOf} of `claims`, from the serialisations of each entry (cached by entry
 * object). Pure (deterministic; the caches only save work).
 */
export function encodeCheckpoint(claims: CheckpointClaims, bootId: string): string {
  const keys = Object.keys(claims);
  const entries = keys.map((k) => [k, serialisedEntry(claims[k] as CheckpointClaim)] as const);
  // canonicalJson(claims): keys sorted, each entry's canonical JSON (keys sorted at every level).
  const sorted = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = `{${sorted.map(([k, e]) => `${JSON.stringify(k)}:${e.canonical}`).join(',')}}`;
  const checksum = createHash('sha256').update(canonical).digest('hex');
  const body = entries.length === 0 ? '{}' : `{\n${entries.map(([k, e]) => `    ${JSON.stringify(k)}: ${e.indented}`).join(',\n')}\n  }`;
  const head = { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_KIND, bootId, checksum };
  const text = `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "claims": ${body}\n}\n`;
  last = { text, decoded: { bootId, claims } };
  return text;
}

/** Why the envelope of `doc` is unusable, from the first issue (issues come in the schema's field order). */
function envelopeProblem(issues: readonly z.core.$ZodIssue[], doc: unknown): string {
  const field = issues[0]?.path[0];
  if (field === undefined || !isJsonObject(doc)) return 'not a JSON object';
  if (field === 'apiVersion' || field === 'kind') {
    return (
      `unknown apiVersion/kind ${JSON.stringify(doc['apiVersion'] ?? null)}/${JSON.stringify(doc['kind'] ?? null)}, ` +
      `expected ${CHECKPOINT_API_VERSION}/${CHECKPOINT_KIND}`
    );
  }
  if (field === 'claims') return 'claims is not an object';
  return 'checksum mismatch: the file was modified or partially written'; // no string checksum
}

/** What each decode dropped, by the claims object it returned (see {@link droppedEntries}). */
const droppedBy = new WeakMap<CheckpointClaims, readonly DroppedEntry[]>();

/**
 * The entries {@link decodeCheckpoint} dropped when it returned `claims` ([] for any other object). The file
 * layer (checkpoint-file.ts) hands the decoded claims on as they are; the claim store asks with that object.
 */
export function droppedEntries(claims: CheckpointClaims): readonly DroppedEntry[] {
  return droppedBy.get(claims) ?? [];
}

/**
 * Parse and verify a checkpoint document, in this order: JSON, an object, apiVersion/kind, `claims` an
 * object, the checksum (of the claims as found in the file) — any failure so far makes the whole document
 * unusable — then each entry alone (checkpoint-entry.ts `decodeEntry`: shape, key, derived CDI IDs, env
 * rules and cap; the older shape is read too): an entry that fails is left out, in {@link droppedEntries}.
 * A `bootId` that is not a string of at most {@link MAX_BOOT_ID_LENGTH} characters reads as '' (none
 * recorded). A text equal, byte for byte, to the last one this process encoded or decoded is answered with
 * that document's claims without parsing it again (a session re-reads the checkpoint it just saved). Pure
 * (deterministic; the cache only saves work).
 * @returns the boot ID and the claims that passed (entries carry only the fields of {@link CheckpointClaim}).
 * @throws Error whose message says why the document is unusable: "not valid JSON (truncated?): ...",
 *   "not a JSON object", "unknown apiVersion/kind X/Y, expected ...", "claims is not an object",
 *   "checksum mismatch: ...".
 */
export function decodeCheckpoint(text: string): { readonly bootId: string; readonly claims: CheckpointClaims } {
  if (last?.text === text) return last.decoded; // what this process wrote (or read) last, byte for byte
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON (truncated?): ${errorMessage(err)}`, { cause: err });
  }
  const envelope = checkpointEnvelopeSchema.safeParse(doc);
  if (!envelope.success) throw new Error(envelopeProblem(envelope.error.issues, doc));
  // The claims as found in the file (the parsed record leaves out a `__proto__` key, which the checksum covers).
  const found = (doc as Record<string, unknown>)['claims'] as Record<string, unknown>;
  if (envelope.data.checksum !== checksumOf(found as CheckpointClaims)) {
    throw new Error('checksum mismatch: the file was modified or partially written');
  }
  const kept: [string, CheckpointClaim][] = [];
  const dropped: DroppedEntry[] = [];
  for (const [key, raw] of Object.entries(found)) {
    const decoded = decodeEntry(key, raw);
    if ('entry' in decoded) kept.push([key, decoded.entry]);
    else dropped.push({ key, reason: decoded.problem });
  }
  // fromEntries defines own properties; every kept key is an object UID (its entry's uid, checked).
  const claims: CheckpointClaims = Object.fromEntries(kept);
  if (dropped.length > 0) droppedBy.set(claims, dropped);
  const decoded = { bootId: envelope.data.bootId, claims };
  last = { text, decoded };
  return decoded;
}
