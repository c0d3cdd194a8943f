/**
 * The prepared-claims checkpoint: a JSON file, written atomically, that survives agent restarts.
 *
 * ```json
 * {"apiVersion": "gpulet.dev/v1", "kind": "Checkpoint", "bootId": "<uuid>", "checksum": "<sha256 hex>",
 *  "claims": {"<uid>": {"namespace", "name", "uid", "state": "PrepareStarted" | "PrepareCompleted",
 *                       "devices": [{requestNames, poolName, deviceName, uuid, cdiDeviceIds, shareId?, env?}],
 *                       "pods": [{namespace, name, uid}]}}}
 * ```
 * `checksum` is the SHA-256 of the canonical JSON (keys sorted, no whitespace) of `claims`, as the kubelet's
 * checkpoint manager guards its files. `bootId` (`/proc/sys/kernel/random/boot_id`) tells a restart from a
 * reboot: after a reboot `/var/run/cdi` (tmpfs) is empty while the checkpoint remains.
 *
 * This module is the document: its types, its zod schemas and their bounds, and the codec (encode, decode
 * and verify). Pure, no I/O. Reading, writing and moving the file aside is `checkpoint-file.ts`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { objectRefSchema, objectRefShape } from '../model/claim-ref.js';
import { MAX_DNS_LABEL_LENGTH, MAX_POOL_NAME_LENGTH } from '../model/names.js';
import type { ClaimRef, PodRef } from '../model/types.js';
import { errorMessage } from '../errors.js';
import { MAX_ALLOCATION_RESULTS } from './allocation.js';
import { isJsonObject, jsonRecord, MAX_OPAQUE_PARAMETERS_BYTES } from './opaque-config.js';

export const CHECKPOINT_API_VERSION = 'gpulet.dev/v1';
export const CHECKPOINT_KIND = 'Checkpoint';

/** Two-phase prepare state of a claim. */
export type ClaimState = 'PrepareStarted' | 'PrepareCompleted';

/** A prepared device as recorded (the kubelet `Device` message plus the device's UUID). */
export interface CheckpointDevice {
  readonly requestNames: readonly string[];
  readonly poolName: string;
  readonly deviceName: string;
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
  readonly cdiDeviceIds: readonly string[];
  readonly shareId?: string;
  /**
   * Extra container environment of the device from our opaque config, as written into the CDI spec, so the
   * spec can be rebuilt from the checkpoint alone (reboot, upgrade) without the API server. Absent in entries
   * written before it existed: read as `{}`.
   */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * One claim's entry: the claim's reference (namespace, name, uid) and its pods, checked where they entered
 * gpulet (the kubelet's request, the API server's claim) when prepare wrote them, and by the load when read.
 */
export interface CheckpointClaim extends ClaimRef {
  readonly state: ClaimState;
  readonly devices: readonly CheckpointDevice[];
  readonly pods: readonly PodRef[];
}

/** Claims by UID. */
export type CheckpointClaims = Readonly<Record<string, CheckpointClaim>>;

/** Longest boot ID kept from a file (the kernel's is a 36-character UUID); a longer one reads as none (''). */
export const MAX_BOOT_ID_LENGTH = 256;
/** Longest device UUID recorded: NVML's UUID buffer (`NVML_DEVICE_UUID_V2_BUFFER_SIZE`, NUL included). */
export const MAX_DEVICE_UUID_LENGTH = 96;

/**
 * One recorded device. Bounds are those of what prepare can write, whatever the API server sent: at most
 * {@link MAX_ALLOCATION_RESULTS} devices, request names and CDI IDs (one per allocation result at most); names
 * and UUIDs of the inventory (device names are DNS labels, the pool is the node name); env names and values
 * from an opaque config (≤ 10 KiB each). Strings copied verbatim from the API server's status (request names,
 * `shareId`) are not bounded here: bounding them would let one odd claim void the whole checkpoint; they are
 * bounded by the API server's validation.
 */
const checkpointDeviceSchema = z.object({
  requestNames: z.array(z.string()).max(MAX_ALLOCATION_RESULTS),
  poolName: z.string().max(MAX_POOL_NAME_LENGTH),
  deviceName: z.string().max(MAX_DNS_LABEL_LENGTH),
  uuid: z.string().max(MAX_DEVICE_UUID_LENGTH),
  cdiDeviceIds: z.array(z.string()).max(MAX_ALLOCATION_RESULTS),
  shareId: z.string().exactOptional(),
  env: jsonRecord(z.string().max(MAX_OPAQUE_PARAMETERS_BYTES), z.string().max(MAX_OPAQUE_PARAMETERS_BYTES)).exactOptional(),
});

/**
 * One claim's entry (its key is checked against `uid` by {@link decodeCheckpoint}). The claim's reference and
 * its pods follow the rules of every reference (src/model/claim-ref.ts: namespace a DNS label, name a DNS
 * subdomain, uid a lower-case UUID), the rules they passed where they entered gpulet, so a valid file never
 * fails them; an entry that does makes the file unusable like any other malformed entry (moved aside, the
 * state rebuilt from the API server: checkpoint-file.ts, reconcile.ts).
 */
const checkpointClaimSchema = z.object({
  ...objectRefShape,
  state: z.enum(['PrepareStarted', 'PrepareCompleted']),
  devices: z.array(checkpointDeviceSchema).max(MAX_ALLOCATION_RESULTS),
  pods: z.array(objectRefSchema),
});

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

/** Serialise a checkpoint document. Pure. */
export function encodeCheckpoint(claims: CheckpointClaims, bootId: string): string {
  const doc = { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_KIND, bootId, checksum: checksumOf(claims), claims };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** A value from the file, quoted for an error message and cut to 80 characters. */
function quoted(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length <= 80 ? s : `${s.slice(0, 80)}… (${s.length} characters)`;
}

/** `devices.0.uuid: <what zod says>`, for the first issue of a failed entry. */
function issueText(issues: readonly z.core.$ZodIssue[]): string {
  const issue = issues[0];
  if (issue === undefined) return 'invalid';
  return issue.path.length === 0 ? issue.message : `${issue.path.map(String).join('.')}: ${issue.message}`;
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

/**
 * Parse and verify a checkpoint document (schemas above), in this order: JSON, an object, apiVersion/kind,
 * `claims` an object, the checksum (of the claims as found in the file), then each entry (its shape, and
 * its key equal to its `uid`). A `bootId` that is not a string of at most {@link MAX_BOOT_ID_LENGTH}
 * characters reads as '' (none recorded). Pure.
 * @returns the boot ID and the claims (entries carry only the fields of {@link CheckpointClaim}).
 * @throws Error whose message says why the document is unusable: "not valid JSON (truncated?): ...",
 *   "not a JSON object", "unknown apiVersion/kind X/Y, expected ...", "claims is not an object",
 *   "checksum mismatch: ...", "malformed entry for claim <uid>: <field>: <problem>".
 */
export function decodeCheckpoint(text: string): { readonly bootId: string; readonly claims: CheckpointClaims } {
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
  const claims: [string, CheckpointClaim][] = [];
  for (const [key, raw] of Object.entries(found)) {
    const entry = checkpointClaimSchema.safeParse(raw);
    if (!entry.success) throw new Error(`malformed entry for claim ${quoted(key)}: ${issueText(entry.error.issues)}`);
    if (entry.data.uid !== key) throw new Error(`malformed entry for claim ${quoted(key)}: uid ${quoted(entry.data.uid)} differs from its key`);
    claims.push([key, entry.data]);
  }
  // fromEntries defines own properties; every key is a UUID (checked above).
  return { bootId: envelope.data.bootId, claims: Object.fromEntries(claims) };
}
