/**
 * Reading a state file (the checkpoint, a CDI spec) as a plain file, and telling damage from an I/O error.
 *
 * {@link readPlainFile} opens with `O_RDONLY | O_NOFOLLOW | O_NONBLOCK`, `fstat`s the handle, requires a
 * regular file no larger than a cap, and reads from that handle only:
 * - a symlink at the path is not followed (`ELOOP`), so a link to /etc/passwd is never read as state;
 * - a FIFO opens at once (`O_NONBLOCK`: no waiting for a writer) and is refused by the `fstat`, a socket
 *   fails the open (`ENXIO`), a directory or a device node is refused by the `fstat`: no read can block;
 * - a file larger than the cap is refused before it is read, and the read stops one byte past the cap.
 * Those are {@link PlainRead} `unusable`: the content cannot be state (the caller sets it aside or rewrites it).
 *
 * Any other error of `open`, `fstat` or `read` (EMFILE, ENFILE, EIO, EACCES, ENOMEM, ENOTDIR, ...) says
 * nothing about the content: it is thrown as a {@link StateIoError}, and the operation in progress fails
 * without changing anything, so a retry can succeed. Only a decode failure of what was read (JSON, envelope,
 * checksum, schema), or `unusable`, ever means "corrupt".
 */
import type { BigIntStats } from 'node:fs';
import { GpuletError } from '../errors.js';
import { constants, open, type FileHandle } from './fs.js';

/** Flags of {@link readPlainFile}'s open: read only, never through a symlink, never waiting on a FIFO. */
export const PLAIN_READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The errno code (`'EMFILE'`, ...) of a Node.js system error, or of the first one in its `cause` chain; else undefined. */
export function errnoOf(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) return code;
    e = (e as Error).cause;
  }
  return undefined;
}

/**
 * A state file could not be read, listed or stat'ed because of an I/O error (not because of its content):
 * transient or environmental (EMFILE, EIO, EACCES...). Nothing was changed; the operation may be retried.
 * Message: "checkpoint /x/checkpoint.json: cannot open: EMFILE: too many open files, open '...'; an I/O
 * error, not damage to the file: nothing was changed; retryable".
 */
export class StateIoError extends GpuletError {
  /** The errno code, e.g. 'EMFILE' ('EUNKNOWN' when the cause had none). */
  readonly errno: string;
  constructor(
    /** What the file is: 'checkpoint', 'CDI spec', 'CDI dir', 'state dir'. */
    readonly what: string,
    readonly path: string,
    /** The operation that failed: 'open', 'fstat', 'read', 'list'. */
    readonly op: string,
    cause: unknown,
    /** What it means and left behind, when not "an I/O error, not damage to the file: nothing was changed". */
    consequence = 'an I/O error, not damage to the file: nothing was changed',
  ) {
    const errno = errnoOf(cause) ?? 'EUNKNOWN';
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('STATE_IO', `${what} ${path}: cannot ${op}: ${detail.includes(errno) ? detail : `${errno}: ${detail}`}; ${consequence}; retryable`, { cause });
    this.errno = errno;
  }
}

/** What {@link readPlainFile} found. */
export type PlainRead =
  | { readonly kind: 'missing' }
  | {
      readonly kind: 'file';
      readonly text: string;
      /** With `keep`: the handle it was read through, left open (the caller closes it), and its fstat. */
      readonly kept?: { readonly handle: FileHandle; readonly stats: BigIntStats };
    }
  /** Something that cannot be a state file: `reason` says what ("a symlink", "a FIFO", "17000000 bytes, more than ..."). */
  | { readonly kind: 'unusable'; readonly reason: string };

/** Errnos of the open that say what is at the path, not that the read failed. */
const NOT_A_FILE: Readonly<Record<string, string>> = {
  ELOOP: 'a symbolic link (not followed)',
  ENXIO: 'a socket or a device without a reader',
  EISDIR: 'a directory',
};

/** What an fstat'ed non-regular file is, in words. */
function kindOf(stats: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSymbolicLink(): boolean }): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device node';
  return 'not a regular file';
}

/**
 * Read `path` as a plain file of at most `maxBytes` (see file doc), as UTF-8.
 * @param what what the file is, for errors ('checkpoint', 'CDI spec').
 * @param options `keep`: leave the handle of a file read open and return it with its fstat (`kept`), so the
 *   caller can recognise the file later (checkpoint-file.ts); otherwise (and for every other outcome) it is closed.
 * @returns missing (ENOENT, or ENOTDIR: a directory of the path is a file), the text, or unusable with the reason.
 * @throws StateIoError for any other error of open, fstat or read (nothing was changed; nothing is kept open).
 */
export async function readPlainFile(path: string, maxBytes: number, what: string, options: { readonly keep?: boolean } = {}): Promise<PlainRead> {
  let handle: FileHandle;
  try {
    handle = await open(path, PLAIN_READ_FLAGS);
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return { kind: 'missing' }; // ENOTDIR: a component is a file
    const not = errno === undefined ? undefined : NOT_A_FILE[errno];
    if (not !== undefined) return { kind: 'unusable', reason: `${not} is at the path` };
    throw new StateIoError(what, path, 'open', err);
  }
  let kept = false;
  try {
    let size: number;
    let stats: BigIntStats;
    try {
      stats = await handle.stat({ bigint: true });
      if (!stats.isFile()) return { kind: 'unusable', reason: `${kindOf(stats)} is at the path` };
      size = Number(stats.size);
    } catch (err) {
      throw new StateIoError(what, path, 'fstat', err);
    }
    if (size > maxBytes) return { kind: 'unusable', reason: `it is ${size} bytes, more than the ${maxBytes}-byte limit` };
    const buffer = Buffer.alloc(Math.min(size, maxBytes) + 1);
    let filled = 0;
    try {
      for (;;) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
        if (filled === buffer.length) break;
      }
    } catch (err) {
      throw new StateIoError(what, path, 'read', err);
    }
    // gpulet replaces its files by rename and never writes one in place: a file growing while read is not ours.
    if (filled === buffer.length) return { kind: 'unusable', reason: `it grew while read (past its ${size} bytes)` };
    const text = buffer.subarray(0, filled).toString('utf8');
    if (options.keep !== true) return { kind: 'file', text };
    kept = true;
    return { kind: 'file', text, kept: { handle, stats } };
  } finally {
    if (!kept) await handle.close().catch(() => undefined);
  }
}
