/**
 * The prepared-claims checkpoint: a JSON file, written atomically, that survives agent restarts.
 *
 * ```json
 * {"apiVersion": "gpulet.dev/v1", "kind": "Checkpoint", "bootId": "<uuid>", "checksum": "<sha256 hex>",
 *  "claims": {"<uid>": {"namespace", "name", "uid", "state": "PrepareStarted" | "PrepareCompleted",
 *                       "devices": [{requestNames, poolName, deviceName, uuid, cdiDeviceIds, shareId?}],
 *                       "pods": [{namespace, name, uid}]}}}
 * ```
 * `checksum` is the SHA-256 of the canonical JSON (keys sorted, no whitespace) of `claims`, as the kubelet's
 * checkpoint manager guards its files. `bootId` (`/proc/sys/kernel/random/boot_id`) tells a restart from a
 * reboot: after a reboot `/var/run/cdi` (tmpfs) is empty while the checkpoint remains.
 */
import { createHash } from 'node:crypto';
import { readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { PodRef } from '../dra/types.js';
import { CheckpointError, errorMessage } from '../errors.js';
import { ensureDir, fsyncDir, writeFileAtomic } from './atomic-file.js';
import { isJsonObject } from './opaque-config.js';

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
}

/** One claim's entry. */
export interface CheckpointClaim {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly state: ClaimState;
  readonly devices: readonly CheckpointDevice[];
  readonly pods: readonly PodRef[];
}

/** Claims by UID. */
export type CheckpointClaims = Readonly<Record<string, CheckpointClaim>>;

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

/**
 * Parse and verify a checkpoint document. Pure.
 * @throws Error whose message says why the document is unusable (not JSON, unknown apiVersion/kind,
 *   bad checksum, malformed entry).
 */
export function decodeCheckpoint(text: string): { readonly bootId: string; readonly claims: CheckpointClaims } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not valid JSON (truncated?): ${errorMessage(err)}`, { cause: err });
  }
  if (!isJsonObject(doc)) throw new Error('not a JSON object');
  if (doc['apiVersion'] !== CHECKPOINT_API_VERSION || doc['kind'] !== CHECKPOINT_KIND) {
    throw new Error(
      `unknown apiVersion/kind ${JSON.stringify(doc['apiVersion'] ?? null)}/${JSON.stringify(doc['kind'] ?? null)}, ` +
        `expected ${CHECKPOINT_API_VERSION}/${CHECKPOINT_KIND}`,
    );
  }
  const claims = doc['claims'];
  if (!isJsonObject(claims)) throw new Error('claims is not an object');
  if (typeof doc['checksum'] !== 'string' || doc['checksum'] !== checksumOf(claims as CheckpointClaims)) {
    throw new Error('checksum mismatch: the file was modified or partially written');
  }
  for (const [uid, entry] of Object.entries(claims)) {
    if (!isClaimEntry(entry) || entry.uid !== uid) throw new Error(`malformed entry for claim ${uid}`);
  }
  return { bootId: typeof doc['bootId'] === 'string' ? doc['bootId'] : '', claims: claims as CheckpointClaims };
}

const isStringArray = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');

function isClaimEntry(v: unknown): v is CheckpointClaim {
  if (!isJsonObject(v)) return false;
  const strings = ['namespace', 'name', 'uid'].every((k) => typeof v[k] === 'string');
  const state = v['state'] === 'PrepareStarted' || v['state'] === 'PrepareCompleted';
  const devices =
    Array.isArray(v['devices']) &&
    v['devices'].every(
      (d: unknown) =>
        isJsonObject(d) &&
        isStringArray(d['requestNames']) &&
        isStringArray(d['cdiDeviceIds']) &&
        ['poolName', 'deviceName', 'uuid'].every((k) => typeof d[k] === 'string') &&
        (d['shareId'] === undefined || typeof d['shareId'] === 'string'),
    );
  const pods =
    Array.isArray(v['pods']) &&
    v['pods'].every((p: unknown) => isJsonObject(p) && ['namespace', 'name', 'uid'].every((k) => typeof p[k] === 'string'));
  return strings && state && devices && pods;
}

/** Result of {@link CheckpointStore.load}. */
export interface CheckpointLoad {
  /** Claims recovered (empty when the file was missing or unusable). */
  readonly claims: CheckpointClaims;
  /** Boot ID recorded in the file ('' when none). Differs from the current one after a reboot. */
  readonly fileBootId: string;
  /** Set when the file was unusable; it was moved to `movedTo`. The caller logs it and starts empty. */
  readonly error?: CheckpointError;
  readonly movedTo?: string;
}

/** Options of {@link CheckpointStore}. */
export interface CheckpointStoreOptions {
  /** Checkpoint file path, e.g. `/var/lib/kubelet/plugins/gpu.gpulet.dev/checkpoint.json`. */
  readonly path: string;
  /** Returns the current boot ID; default reads `/proc/sys/kernel/random/boot_id` ('unknown' if unreadable). */
  readonly readBootId?: () => Promise<string>;
  /** Clock for the `.corrupt-<timestamp>` suffix (Unix ms); default `Date.now`. */
  readonly now?: () => number;
}

/** Reads the current boot ID of the Linux kernel. */
export async function readKernelBootId(path = '/proc/sys/kernel/random/boot_id'): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Loads and saves the checkpoint file (file 0600, directory 0700). */
export class CheckpointStore {
  readonly path: string;
  private readonly readBootId: () => Promise<string>;
  private readonly now: () => number;
  private bootIdCache: string | undefined;

  constructor(options: CheckpointStoreOptions) {
    this.path = options.path;
    this.readBootId = options.readBootId ?? (() => readKernelBootId());
    this.now = options.now ?? Date.now;
  }

  /** Current boot ID (read once). */
  async bootId(): Promise<string> {
    this.bootIdCache ??= await this.readBootId();
    return this.bootIdCache;
  }

  /**
   * Load the checkpoint. Missing file → empty. Corrupt, truncated, unknown apiVersion or bad checksum →
   * the file is moved aside to `<file>.corrupt-<timestamp>` and `error` is set (never throws for those).
   * @throws CheckpointError only when the file exists but cannot be read at all (e.g. EACCES).
   */
  async load(): Promise<CheckpointLoad> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { claims: {}, fileBootId: '' };
      throw new CheckpointError(this.path, `cannot read: ${errorMessage(err)}; check permissions`, { cause: err });
    }
    try {
      const { bootId, claims } = decodeCheckpoint(text);
      return { claims, fileBootId: bootId };
    } catch (err) {
      const movedTo = `${this.path}.corrupt-${this.now()}`;
      let moved = true;
      try {
        await rename(this.path, movedTo);
        await fsyncDir(dirname(this.path));
      } catch {
        moved = false;
      }
      const where = moved ? `moved aside to ${movedTo}` : 'could not be moved aside';
      const error = new CheckpointError(this.path, `${errorMessage(err)}; ${where}; starting with no prepared claims`, { cause: err });
      return { claims: {}, fileBootId: '', error, ...(moved ? { movedTo } : {}) };
    }
  }

  /**
   * Atomically replace the checkpoint with `claims`.
   * @throws CheckpointError naming the file and what to check.
   */
  async save(claims: CheckpointClaims): Promise<void> {
    const bootId = await this.bootId();
    try {
      await ensureDir(dirname(this.path), 0o700);
      await writeFileAtomic(this.path, encodeCheckpoint(claims, bootId), 0o600);
    } catch (err) {
      throw new CheckpointError(this.path, `cannot write: ${errorMessage(err)}; check that its directory is writable`, { cause: err });
    }
  }
}
