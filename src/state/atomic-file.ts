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
import { mkdir, open, rename, rm, unlink } from './fs.js';
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

/** fsync a directory so entries created/renamed/removed in it are durable. Filesystems that refuse
 * fsync on a directory (EINVAL/EISDIR/EPERM on some overlay or network mounts) are tolerated. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw err;
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
 * Atomically replace `path` with `data`.
 * @param mode permission bits of the new file (e.g. 0o600).
 * @throws the fs error unchanged when the file was not replaced (the temp file is removed); DirSyncError
 *   when it was, but the directory could not be synced.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`); // see isAtomicTempName
  let handle;
  try {
    handle = await open(tmp, 'wx', mode);
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    faultPoint('atomic:before-rename');
    await rename(tmp, path);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  try {
    await fsyncDir(dir);
  } catch (err) {
    throw new DirSyncError(path, 'written', err);
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
