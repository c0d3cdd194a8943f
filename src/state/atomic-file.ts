/**
 * Crash-safe file primitives shared by the checkpoint and the CDI spec writer.
 *
 * `writeFileAtomic` follows the usual POSIX recipe (also what the CDI library's `Cache.WriteSpec` and the
 * kubelet checkpoint manager do): write a temp file in the same directory, fsync it, rename it over the
 * target (atomic within one filesystem), then fsync the directory so the rename itself survives a crash.
 * A reader therefore sees either the old file or the new one, never a torn write.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { faultPoint } from '../util/fault-points.js';

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
 * @throws the fs error unchanged; the temp file is removed on failure.
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
  await fsyncDir(dir);
}

/** True for the name of a temp file {@link writeFileAtomic} creates for `target` (a crash leaves it behind). */
export function isAtomicTempName(name: string, target: string): boolean {
  return name.startsWith(`.${target}.tmp-`);
}

/**
 * Remove `path` if present (idempotent) and fsync its directory.
 * @returns true when a file was removed, false when there was none.
 * @throws fs errors other than ENOENT (e.g. EACCES, EROFS).
 */
export async function removeFileDurable(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw err;
  }
  await fsyncDir(dirname(path));
  return true;
}
