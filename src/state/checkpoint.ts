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
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { PodRef } from '../model/types.js';
import { CheckpointError, errorMessage } from '../errors.js';
import { ensureDir, fsyncDir, isAtomicTempName, writeFileAtomic } from './atomic-file.js';
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
  /**
   * Extra container environment of the device from our opaque config, as written into the CDI spec, so the
   * spec can be rebuilt from the checkpoint alone (reboot, upgrade) without the API server. Absent in entries
   * written before it existed: read as `{}`.
   */
  readonly env?: Readonly<Record<string, string>>;
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
        (d['shareId'] === undefined || typeof d['shareId'] === 'string') &&
        (d['env'] === undefined || (isJsonObject(d['env']) && Object.values(d['env']).every((x) => typeof x === 'string'))),
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
  /** Returns the current boot ID; default {@link readKernelBootId} ('unknown' if unreadable). */
  readonly readBootId?: () => Promise<string>;
  /** Clock for the `.corrupt-<timestamp>` suffix (Unix ms); default `Date.now`. */
  readonly now?: () => number;
}

/** The kernel's boot ID file (Linux `drivers/char/random.c`: a random UUID generated once per boot). */
export const KERNEL_BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';
/**
 * Environment variable naming another boot ID file. For tests only (the reboot simulation changes the
 * boot ID by rewriting the file); never set it on a node.
 */
export const BOOT_ID_FILE_ENV = 'GPULET_BOOT_ID_FILE';

/**
 * Reads the current boot ID: `path`, else the file named by `GPULET_BOOT_ID_FILE`, else the kernel's.
 * @returns the trimmed content, or 'unknown' when the file is unreadable or empty (never throws).
 */
export async function readKernelBootId(path = process.env[BOOT_ID_FILE_ENV] || KERNEL_BOOT_ID_FILE): Promise<string> {
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
   * Load the checkpoint. Missing file → empty. Unreadable (EACCES, EISDIR, EIO...), corrupt, truncated,
   * unknown apiVersion or bad checksum → the file is moved aside to `<file>.corrupt-<timestamp>` (when it can
   * be) and `error` says why; the caller logs it and rebuilds from the API server. Never throws.
   */
  async load(): Promise<CheckpointLoad> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { claims: {}, fileBootId: '' };
      return this.unusable(`cannot read: ${errorMessage(err)} (check its permissions)`, err);
    }
    try {
      const { bootId, claims } = decodeCheckpoint(text);
      return { claims, fileBootId: bootId };
    } catch (err) {
      return this.unusable(errorMessage(err), err);
    }
  }

  /** Move an unusable file aside and describe what happened. */
  private async unusable(reason: string, cause: unknown): Promise<CheckpointLoad> {
    const movedTo = `${this.path}.corrupt-${this.now()}`;
    let moved = true;
    try {
      await rename(this.path, movedTo);
      await fsyncDir(dirname(this.path));
    } catch {
      moved = false;
    }
    const where = moved ? `moved aside to ${movedTo}` : 'could not be moved aside (the next save replaces it)';
    const error = new CheckpointError(this.path, `${reason}; ${where}; rebuilding the prepared claims from the API server`, { cause });
    return { claims: {}, fileBootId: '', error, ...(moved ? { movedTo } : {}) };
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

  /**
   * Remove temp files of checkpoint writes that a crash left behind (`.checkpoint.json.tmp-*`).
   * @returns how many were removed. Never throws.
   */
  async removeTempFiles(): Promise<number> {
    const dir = dirname(this.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const n of names.filter((x) => isAtomicTempName(x, basename(this.path)))) {
      removed += await rm(join(dir, n), { force: true }).then(() => 1, () => 0);
    }
    return removed;
  }
}
