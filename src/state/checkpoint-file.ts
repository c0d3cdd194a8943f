/**
 * The checkpoint file (the document is `checkpoint.ts`): loaded at start and re-read by every session,
 * saved atomically (temp file, fsync, rename, fsync of the dir; file 0600 in a 0700 dir) with the node's boot
 * ID. The boot ID (`/proc/sys/kernel/random/boot_id`) tells a restart from a reboot.
 *
 * Reading tells damage from an I/O error (plain-file.ts):
 * - a file that does not decode (not JSON, wrong envelope or apiVersion, checksum mismatch, malformed entry),
 *   or something that cannot be a checkpoint at the path (a symlink, a FIFO, a socket, a directory, more than
 *   {@link CHECKPOINT_MAX_BYTES}), is *unusable*: it is moved aside to `<file>.corrupt-<ms>` and the prepared
 *   claims are rebuilt from the API server;
 * - an error of open, fstat or read (EMFILE, EIO, EACCES, ...) is thrown as a `StateIoError`: the file is left
 *   where it is, untouched, and the operation that read it fails (retryable).
 * A set-aside file is kept for inspection; while one lies beside the checkpoint ({@link CheckpointStore.setAside})
 * every start-up rebuilds from the API server before it removes any CDI spec (reconcile.ts).
 *
 * Re-reading an unchanged file is skipped ({@link CheckpointStore.reload}, what every session does): the store
 * keeps the file it last read or wrote *open*, with its fstat (device, inode, size, mtime and ctime in ns) and
 * what it decoded. A session `lstat`s the path (one thread-pool round trip instead of five: open, fstat, two
 * reads, close); when all five fields are those of the kept file, the path still names that very file, and
 * its content is what was decoded from it or written to it, so the kept claims are returned as a re-read would
 * return them. Why that is sound:
 * - every writer of the checkpoint (this gpulet, another instance in a rolling update, an older version)
 *   replaces it by an atomic rename of a new file: a new inode. An inode number is unique among the live inodes
 *   of a filesystem, and the kept file cannot be freed while it is open, so no other file can carry its number:
 *   a replacement always shows as another inode (never the ABA of a freed and reused inode number);
 * - a write in place by anything else (an editor, a tool) changes the size, or the mtime and the ctime;
 * - anything else — a stat error, a missing file, another inode, a moved-aside file, a failed save — falls
 *   back to the full read, with its checks and its reporting.
 * The kept file is replaced at each read or save, and closed by {@link CheckpointStore.close} (or when the
 * store is garbage collected).
 */
import type { BigIntStats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CheckpointError, errorMessage } from '../errors.js';
import { DirSyncError, ensureDir, fsyncDir, isAtomicTempName, KnownDirs, stageFileAtomic, type StagedFile } from './atomic-file.js';
import { decodeCheckpoint, encodeCheckpoint, type CheckpointClaims } from './checkpoint.js';
import { lstat, readdir, rename, rm, type FileHandle } from './fs.js';
import { errnoOf, readPlainFile, StateIoError } from './plain-file.js';

/**
 * Largest checkpoint read or written, bytes. Each entry is bounded (32 devices, its opaque-config env once and
 * at most 64 KiB: claim-env.ts), their number is not (devices shared by many claims): 64 MiB holds about 1,000
 * claims at the env cap or 100,000 plain ones (~0.4 KiB each; the start-up tests write 50,000), and is still a
 * bounded read. A save that would exceed it fails (the claim with it), so gpulet never writes a checkpoint it
 * would refuse to read.
 */
export const CHECKPOINT_MAX_BYTES = 64 * 1024 * 1024;

/** Result of {@link CheckpointStore.load}. */
export interface CheckpointLoad {
  /** Claims recovered (empty when the file was missing or unusable). */
  readonly claims: CheckpointClaims;
  /** True when there was no file (a fresh node, or a lost checkpoint: reconcile.ts tells them apart). */
  readonly missing?: true;
  /** Boot ID recorded in the file ('' when none). Differs from the current one after a reboot. */
  readonly fileBootId: string;
  /** Set when the file was unusable; it was moved to `movedTo`. The caller logs it and starts empty. */
  readonly error?: CheckpointError;
  readonly movedTo?: string;
}

/** A save whose new file is written and fsync'd but not yet in place ({@link CheckpointStore.stage}). */
export interface StagedSave {
  /** Put it in place (rename, fsync of the dir). Once. @throws CheckpointError as `save`. */
  commit(): Promise<void>;
  /** Remove it; the checkpoint stays what it was. Never rejects; a no-op after `commit`. */
  abort(): Promise<void>;
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

/** What identifies a file at a path: the fields of its (l)stat that any replacement or write changes (file doc). */
type FileIdentity = Pick<BigIntStats, 'dev' | 'ino' | 'size' | 'mtimeNs' | 'ctimeNs'>;

/** True when `a` and `b` are the same file, unchanged (all five fields equal). */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

/** The checkpoint file as this store last read or wrote it (file doc): held open, its identity, its content. */
interface KeptCheckpoint {
  readonly handle: FileHandle;
  readonly id: FileIdentity;
  readonly claims: CheckpointClaims;
  readonly fileBootId: string;
}

/** Where a store keeps its kept file; shared with the finalizer, which closes it when the store is collected. */
interface KeptBox {
  kept: KeptCheckpoint | undefined;
}

/** Closes a store's kept file when the store is garbage collected without {@link CheckpointStore.close}. */
const keptFinalizer = new FinalizationRegistry<KeptBox>((box) => {
  void box.kept?.handle.close().catch(() => undefined);
  box.kept = undefined;
});

/** Loads and saves the checkpoint file (file 0600, directory 0700). */
export class CheckpointStore {
  readonly path: string;
  private readonly readBootId: () => Promise<string>;
  private readonly now: () => number;
  private bootIdCache: string | undefined;
  /** The checkpoint's dir once created or found (no `mkdir` per save while it stays). */
  private readonly dirs = new KnownDirs();
  private readonly box: KeptBox = { kept: undefined };

  constructor(options: CheckpointStoreOptions) {
    this.path = options.path;
    this.readBootId = options.readBootId ?? (() => readKernelBootId());
    this.now = options.now ?? Date.now;
    keptFinalizer.register(this, this.box, this);
  }

  /** Close the kept file (file doc). The store stays usable: its next {@link reload} reads the file in full. Never rejects. */
  async close(): Promise<void> {
    const kept = this.box.kept;
    this.box.kept = undefined;
    await kept?.handle.close().catch(() => undefined);
  }

  /**
   * The checkpoint as {@link load} would return it, without reading it when it is the file this store last read
   * or wrote, unchanged (file doc: one `lstat`). Otherwise (or when the `lstat` fails) {@link load}.
   * @throws as {@link load}.
   */
  async reload(): Promise<CheckpointLoad> {
    const kept = this.box.kept;
    if (kept !== undefined) {
      const now = await lstat(this.path, { bigint: true }).catch(() => undefined);
      if (now !== undefined && sameFile(kept.id, now)) return { claims: kept.claims, fileBootId: kept.fileBootId };
    }
    return this.load();
  }

  /** Drop the kept file, closing its handle without waiting for the close (it writes nothing). */
  private forget(): void {
    const kept = this.box.kept;
    this.box.kept = undefined;
    void kept?.handle.close().catch(() => undefined);
  }

  /** Keep `handle` (file doc), closing the one kept before without waiting for it. */
  private keep(handle: FileHandle, stats: BigIntStats, claims: CheckpointClaims, fileBootId: string): void {
    const before = this.box.kept;
    this.box.kept = { handle, id: stats, claims, fileBootId };
    void before?.handle.close().catch(() => undefined);
  }

  /** Current boot ID (read once). */
  async bootId(): Promise<string> {
    this.bootIdCache ??= await this.readBootId();
    return this.bootIdCache;
  }

  /**
   * Load the checkpoint. Missing file → empty, `missing`. Unusable (see file doc: does not decode, or not a
   * plain file within {@link CHECKPOINT_MAX_BYTES}) → moved aside to `<file>.corrupt-<timestamp>`; `error` says
   * why and where it went; the caller logs it and rebuilds from the API server.
   * @throws StateIoError when the file cannot be opened, stat'ed or read (EMFILE, EIO, EACCES...), or when an
   *   unusable file cannot be moved aside (the rename's errno): nothing was changed, retry.
   */
  async load(): Promise<CheckpointLoad> {
    this.forget();
    const read = await readPlainFile(this.path, CHECKPOINT_MAX_BYTES, 'checkpoint', { keep: true });
    if (read.kind === 'missing') return { claims: {}, fileBootId: '', missing: true };
    if (read.kind === 'unusable') return this.unusable(`cannot be a checkpoint: ${read.reason}`, undefined);
    try {
      const { bootId, claims } = decodeCheckpoint(read.text);
      if (read.kept !== undefined) this.keep(read.kept.handle, read.kept.stats, claims, bootId);
      return { claims, fileBootId: bootId };
    } catch (err) {
      await read.kept?.handle.close().catch(() => undefined);
      return this.unusable(errorMessage(err), err);
    }
  }

  /**
   * The paths of checkpoints set aside (`<file>.corrupt-*`) beside this one, sorted.
   * @throws StateIoError when the directory cannot be listed (other than missing).
   */
  async setAside(): Promise<string[]> {
    const dir = dirname(this.path);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return [];
      throw new StateIoError('state dir', dir, 'list', err);
    }
    const prefix = `${basename(this.path)}.corrupt-`;
    return names.filter((n) => n.startsWith(prefix)).sort().map((n) => join(dir, n));
  }

  /** Move an unusable file aside and describe what happened. @throws StateIoError when the rename fails. */
  private async unusable(reason: string, cause: unknown): Promise<CheckpointLoad> {
    const movedTo = `${this.path}.corrupt-${this.now()}`;
    try {
      await rename(this.path, movedTo);
    } catch (err) {
      throw new StateIoError('checkpoint', this.path, `move the unusable file aside to ${movedTo}`, err, `it is unusable (${reason}) and was left in place, nothing was changed`);
    }
    let synced = '';
    try {
      await fsyncDir(dirname(this.path));
    } catch (err) {
      synced = ` (the directory could not be synced: ${errorMessage(err)}; a crash may bring it back, and it is set aside again)`;
    }
    const error = new CheckpointError(this.path, `${reason}; moved aside to ${movedTo}${synced}; rebuilding the prepared claims from the API server`, { cause });
    return { claims: {}, fileBootId: '', error, movedTo };
  }

  /**
   * Atomically replace the checkpoint with `claims`.
   * @throws CheckpointError naming the file and what to check: not written (the errno; or it would exceed
   *   {@link CHECKPOINT_MAX_BYTES}), or written but its directory not synced (a `DirSyncError` cause).
   */
  async save(claims: CheckpointClaims): Promise<void> {
    await (await this.stage(claims)).commit();
  }

  /**
   * The first half of {@link save}: the new checkpoint's temp file written and fsync'd, not yet in place
   * (atomic-file.ts `stageFileAtomic`: the file at the path is unchanged). `commit()` renames it into place and
   * syncs the directory; `abort()` removes it (call one of them).
   * @throws CheckpointError as {@link save}; so does the staged save's `commit()`.
   */
  async stage(claims: CheckpointClaims): Promise<StagedSave> {
    const bootId = await this.bootId();
    const text = encodeCheckpoint(claims, bootId);
    const size = Buffer.byteLength(text);
    if (size > CHECKPOINT_MAX_BYTES) {
      throw new CheckpointError(this.path, `not written: it would be ${size} bytes, more than the ${CHECKPOINT_MAX_BYTES}-byte limit`);
    }
    this.forget(); // whatever happens next, the kept file may no longer be the one at the path
    const failed = (err: unknown): CheckpointError => {
      if (err instanceof DirSyncError) {
        return new CheckpointError(this.path, `written, but its directory could not be synced: ${errorMessage(err.cause)}; the change may not survive a crash`, { cause: err });
      }
      return new CheckpointError(this.path, `cannot write: ${errorMessage(err)}; check that its directory is writable and has space`, { cause: err });
    };
    let staged: StagedFile;
    try {
      const dir = dirname(this.path);
      staged = await this.dirs.within(dir, () => ensureDir(dir, 0o700), () => stageFileAtomic(this.path, text, 0o600));
    } catch (err) {
      throw failed(err);
    }
    return {
      commit: async () => {
        try {
          const kept = await staged.commitKept();
          if (kept !== undefined) this.keep(kept.handle, kept.stats, claims, bootId);
        } catch (err) {
          throw failed(err);
        }
      },
      abort: () => staged.abort(),
    };
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
