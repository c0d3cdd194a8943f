/**
 * The checkpoint file (the document is `checkpoint.ts`): loaded at start and re-read by every session,
 * saved atomically (temp file, fsync, rename, fsync of the dir; file 0600 in a 0700 dir) with the node's boot
 * ID, and moved aside to `<file>.corrupt-<ms>` when unusable so the prepared claims are rebuilt from the API
 * server. The boot ID (`/proc/sys/kernel/random/boot_id`) tells a restart from a reboot.
 */
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, errorMessage } from '../errors.js';
import { ensureDir, fsyncDir, isAtomicTempName, writeFileAtomic } from './atomic-file.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointClaims } from './checkpoint.js';

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
