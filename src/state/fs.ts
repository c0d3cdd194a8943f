/**
 * The file-system calls of the claim state, in one module: the checkpoint (checkpoint-file.ts), the CDI specs
 * (cdi-writer.ts), the atomic write and durable removal under both (atomic-file.ts, plain-file.ts) and the
 * state dir of the lock (lock.ts) take `open`, `lstat`, `mkdir`, `readdir`, `rename`, `rm` and `unlink` from
 * here, and read, write, fsync and fstat through the `FileHandle` that `open` returns.
 *
 * In production this is `node:fs/promises` as it is, re-exported: nothing is wrapped or switchable. It exists
 * so a test can replace it (`vi.mock` of this module, test/helpers/fs-faults.ts) and inject an errno (EMFILE,
 * ENOSPC, EIO, EACCES, ...) or a call that never returns at the N-th call of one operation, which is how
 * test/state/io-faults.test.ts proves that an I/O error never turns into lost or deleted state.
 * (proper-lockfile's own calls inside the lock, and the boot ID read from /proc, do not go through it.)
 */
export { lstat, mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
export { constants } from 'node:fs';
