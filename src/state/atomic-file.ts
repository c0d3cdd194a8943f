/**
 * Crash-safe file primitives shared by the checkpoint and the CDI spec writer.
 *
 * `writeFileAtomic` follows the usual POSIX recipe (also what the CDI library's `Cache.WriteSpec` and the
 * kubelet checkpoint manager do): write a temp file in the same directory, fsync it, rename it over the
 * target (atomic within one filesystem), then fsync the directory so the rename itself survives a crash.
 * A reader therefore sees either the old file or the new one, never a torn write. The temp file is created
 * with `wx` (`O_CREAT | O_EXCL`), which fails on anything already at its (random) name, a planted symlink
 * included, and never follows one; the rename replaces whatever is at the target (a FIFO, a symlink) without
 * opening it.
 *
 * A failed fsync of the directory after a successful rename or unlink is a {@link DirSyncError}: the new file
 * IS in place (or the old one gone), but the change may not survive a crash. Callers report it as such, not
 * as a failed write; the claim state fails the claim's call so the kubelet retries it (prepare and unprepare
 * are idempotent), because it answers success only for files that are durably there.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { errorMessage, GpuletError } from '../errors.js';
import { faultPoint } from '../util/fault-points.js';
import type { BigIntStats } from 'node:fs';
import { mkdir, open, rename, rm, unlink, type FileHandle } from './fs.js';
import { errnoOf } from './plain-file.js';

/**
 * The rename (or unlink) of `path` succeeded but the fsync of its directory failed: the change is visible but
 * may not survive a crash. `errno` is the fsync's (EIO, ENOSPC, ...). Message: "<path> written but the directory
 * <dir> could not be synced: EIO: ...; the change may not survive a crash".
 */
export class DirSyncError extends GpuletError {
  readonly errno: string;
  constructor(
    readonly path: string,
    /** 'written' or 'removed'. */
    readonly change: 'written' | 'removed',
    cause: unknown,
  ) {
    super('STATE_DIR_SYNC', `${path} ${change} but the directory ${dirname(path)} could not be synced: ${errorMessage(cause)}; the change may not survive a crash`, { cause });
    this.errno = errnoOf(cause) ?? 'EUNKNOWN';
  }
}

/** fsync errors of a directory that are tolerated: filesystems that refuse fsync on a directory (some overlay or
 * network mounts) answer EINVAL, EISDIR, EPERM or EBADF. */
function dirSyncRefused(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EINVAL' || code === 'EISDIR' || code === 'EPERM' || code === 'EBADF';
}

/** fsync a directory so entries created/renamed/removed in it are durable. Filesystems that refuse
 * fsync on a directory (EINVAL/EISDIR/EPERM on some overlay or network mounts) are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    if (!dirSyncRefused(err)) throw err;
  } finally {
    await handle?.close();
  }
}

/**
 * Create `dir` (and parents) with `mode` if missing. An existing directory keeps its mode.
 * @throws the fs error (ENOTDIR, EACCES, EROFS, ...) unchanged; callers wrap it in a typed error.
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
}

/**
 * Directories known to exist, so that a write does not `mkdir -p` its directory every time (a `mkdir` that
 * answers EEXIST and a `stat`: two thread-pool round trips per write). A directory is remembered once the
 * caller's `ensure` created or found it; when an operation in a remembered directory fails with ENOENT or
 * ENOTDIR (the directory was removed, or replaced by a file, since), it is forgotten, ensured again (whose
 * error then names the real problem) and the operation retried once. So the first write in a directory, and
 * the first after it went, cost what they cost before; the others skip the `mkdir`. One instance per owner
 * of the directories (the checkpoint store, the CDI writer, the state lock).
 */
export class KnownDirs {
  private readonly dirs = new Set<string>();

  /** True when `dir` is remembered as existing. */
  has(dir: string): boolean {
    return this.dirs.has(dir);
  }

  /**
   * Run `op` in `dir`: `ensure()` first unless `dir` is remembered; when `op` fails with ENOENT or ENOTDIR
   * (not a {@link DirSyncError}: the change was made) in a remembered directory, `ensure()` and `op` once more.
   * `op` must be idempotent (an atomic write, a lock attempt).
   * @throws what `ensure` throws; what `op` throws (from the retry, when there was one).
   */
  async within<T>(dir: string, ensure: () => Promise<void>, op: () => Promise<T>): Promise<T> {
    const known = this.dirs.has(dir);
    if (!known) {
      await ensure();
      this.dirs.add(dir);
    }
    try {
      return await op();
    } catch (err) {
      const errno = err instanceof DirSyncError ? undefined : errnoOf(err);
      if (!known || (errno !== 'ENOENT' && errno !== 'ENOTDIR')) throw err;
      this.dirs.delete(dir);
      await ensure();
      this.dirs.add(dir);
      return op();
    }
  }
}

/** The new file of {@link StagedFile.commitKept}: still open, and its fstat after the rename. */
export interface KeptFile {
  /** Read-write handle of the file now at the path (the caller closes it). */
  readonly handle: FileHandle;
  /** fstat of that handle after the rename (bigint: nanosecond times). */
  readonly stats: BigIntStats;
}

/**
 * Atomically replace `path` with `data`.
 *
 * Thread-pool round trips, in order (each `await` below is one; `‖` are concurrent): open the temp file ‖ open
 * the directory, write, fsync, rename, fsync the directory ‖ close the temp file, close the directory. The
 * directory is opened before the rename, but only synced after it, as the recipe wants; a failure to open it
 * is reported after the rename, as before (a {@link DirSyncError}). The temp file's data is fsync'd before the
 * rename; its close (which writes nothing) goes beside the directory's fsync.
 * @param mode permission bits of the new file (e.g. 0o600).
 * @throws the fs error unchanged when the file was not replaced (the temp file is removed); DirSyncError
 *   when it was, but the directory could not be synced.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  await (await stageFileAtomic(path, data, mode)).commit();
}

/** The directory opened for its fsync: a handle, `undefined` for a refusal the recipe tolerates, or the error. */
type DirOpen = FileHandle | undefined | { readonly error: unknown };

/** Opens `dir` for its fsync (see {@link DirOpen}). Never rejects: an error is returned. */
async function openDir(dir: string): Promise<DirOpen> {
  try {
    return await open(dir, 'r');
  } catch (err) {
    return dirSyncRefused(err) ? undefined : { error: err };
  }
}

function isHandle(x: DirOpen): x is FileHandle {
  return x !== undefined && !('error' in x);
}

/** Remove a temp file that will not be renamed, and close what is open for it. Never rejects. */
async function discard(tmp: string, file: FileHandle | undefined, dirOpen: Promise<DirOpen>): Promise<void> {
  await file?.close().catch(() => undefined);
  await rm(tmp, { force: true }).catch(() => undefined);
  const d = await dirOpen;
  if (isHandle(d)) await d.close().catch(() => undefined);
}

/**
 * The first half of {@link writeFileAtomic}, for a caller that has something else to do before the new file may
 * appear (claim-ops.ts: a CDI spec must not appear before the checkpoint says PrepareStarted): the temp file is
 * written and fsync'd (and the directory opened), but not renamed. {@link StagedFile.commit} does the rest —
 * rename, fsync of the directory — exactly as `writeFileAtomic` would have; {@link StagedFile.abort} removes the
 * temp file. Until then nothing is at `path` that was not there before: the temp file's name (`.<name>.tmp-*`,
 * {@link isAtomicTempName}) is no file a reader of `path` or of the directory's `*.json` looks at, and start-up
 * removes any a crash left behind.
 * @throws the fs error unchanged when the temp file cannot be written (it is removed).
 */
export async function stageFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<StagedFile> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`); // see isAtomicTempName
  const dirOpen = openDir(dir);
  let handle;
  try {
    handle = await open(tmp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await discard(tmp, handle, dirOpen);
    throw err;
  }
  return new Staged(path, tmp, handle, dirOpen);
}

/** A temp file written and fsync'd by {@link stageFileAtomic}, not yet renamed to its path. */
export interface StagedFile {
  readonly path: string;
  /**
   * Rename the temp file to the path and fsync the directory. Once only (and not after `abort`).
   * @throws the rename's error unchanged (the temp file is removed; nothing at the path changed); DirSyncError
   *   when it was renamed but the directory could not be synced.
   */
  commit(): Promise<void>;
  /**
   * {@link commit}, keeping the new file open: its handle and its fstat after the rename (taken beside the
   * directory's fsync, in place of the close), to recognise the file later (checkpoint-file.ts).
   * @returns the kept file; undefined when the file was durably put in place but its fstat failed (nothing kept open).
   * @throws as `commit` (nothing is kept open).
   */
  commitKept(): Promise<KeptFile | undefined>;
  /** Remove the temp file (and close what is open). Idempotent, a no-op after `commit`. Never rejects. */
  abort(): Promise<void>;
}

/** The second half of an atomic write (see {@link stageFileAtomic}). */
class Staged implements StagedFile {
  private done = false;

  constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly file: FileHandle,
    private readonly dirOpen: Promise<DirOpen>,
  ) {}

  async commit(): Promise<void> {
    await this.put(false);
  }

  commitKept(): Promise<KeptFile | undefined> {
    return this.put(true);
  }

  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await discard(this.tmp, this.file, this.dirOpen);
  }

  private async put(keep: boolean): Promise<KeptFile | undefined> {
    if (this.done) throw new Error(`internal: the staged write of ${this.path} was already committed or aborted`);
    this.done = true;
    const { path, file } = this;
    try {
      faultPoint('atomic:before-rename');
      await rename(this.tmp, path);
    } catch (err) {
      await discard(this.tmp, file, this.dirOpen);
      throw err;
    }
    const d = await this.dirOpen;
    const syncDir = async (): Promise<void> => {
      if (d === undefined) return;
      if (!isHandle(d)) throw d.error;
      try {
        await d.sync();
      } catch (err) {
        if (!dirSyncRefused(err)) throw err;
      } finally {
        await d.close().catch(() => undefined);
      }
    };
    // The close of the fsync'd temp file writes nothing: its error cannot undo the rename, so it is not one.
    const other = keep ? file.stat({ bigint: true }) : file.close().catch(() => undefined);
    const [synced, after] = await Promise.allSettled([syncDir(), other]);
    if (synced.status === 'rejected') {
      if (keep) await file.close().catch(() => undefined);
      throw new DirSyncError(path, 'written', synced.reason);
    }
    if (!keep) return undefined;
    if (after.status === 'rejected') {
      // The file is in place and durable; only its fstat failed: nothing to recognise it by, nothing kept.
      await file.close().catch(() => undefined);
      return undefined;
    }
    return { handle: file, stats: after.value as BigIntStats };
  }
}

/** True for the name of a temp file {@link writeFileAtomic} creates for `target` (a crash leaves it behind). */
export function isAtomicTempName(name: string, target: string): boolean {
  return name.startsWith(`.${target}.tmp-`);
}

/**
 * Remove `path` if present (idempotent) and fsync its directory.
 * @returns true when a file was removed, false when there was none.
 * @throws fs errors other than ENOENT of the unlink (e.g. EACCES, EROFS, EIO: nothing was removed);
 *   DirSyncError when the file was removed but the directory could not be synced.
 */
export async function removeFileDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
  try {
    await fsyncDir(dirname(path));
  } catch (err) {
    throw new DirSyncError(path, 'removed', err);
  }
  return true;
}
