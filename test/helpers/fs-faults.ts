/**
 * Fault injection into the claim state's file I/O: a stand-in for src/state/fs.ts that counts every call of
 * each operation and, when armed, fails the N-th call of one operation with an errno, or never answers it.
 *
 * Use it in a test file (the module is replaced for that file only; production never sees it):
 *
 *   vi.mock('../../src/state/fs.js', async (original) =>
 *     (await import('../helpers/fs-faults.js')).faultyFs(await original()));
 *   ...
 *   faults.arm({ op: 'fsync', nth: 2, errno: 'EIO' });   // or { op: 'read', nth: 1, hang: true }
 *   await preparer.prepare([ref]);
 *   faults.disarm();                                      // faults.release() lets a hung call go on
 *
 * Operations: `open`, `read` (FileHandle read/readFile), `write` (write/writeFile), `fsync` (sync/datasync,
 * of files and directories), `stat` (lstat, FileHandle stat), `rename`, `unlink` (unlink, rm), `readdir`,
 * `mkdir`. The errors look like Node's (`code`, `errno`, `syscall`, `path`).
 */
import { constants } from 'node:os';
import type * as StateFs from '../../src/state/fs.js';

/** An operation the claim state performs on files. */
export type FsOp = 'open' | 'read' | 'write' | 'fsync' | 'stat' | 'rename' | 'unlink' | 'readdir' | 'mkdir';
export const FS_OPS: readonly FsOp[] = ['open', 'read', 'write', 'fsync', 'stat', 'rename', 'unlink', 'readdir', 'mkdir'];

/** The errnos the table tests inject: a full fd table, a full disk, a failing disk, a permission change. */
export const ERRNOS = ['EMFILE', 'ENOSPC', 'EIO', 'EACCES'] as const;
export type Errno = (typeof ERRNOS)[number];

/**
 * What to inject: the `nth` (1-based) call of `op` fails with `errno`, or waits until `release()` (`hang`). With
 * `path`, the `nth` call of `op` on that path, or on a path the RegExp matches (for a step whose calls run beside
 * another's, in no fixed order).
 */
export type FaultPlan = { readonly op: FsOp; readonly nth: number; readonly path?: string | RegExp } & ({ readonly errno: Errno } | { readonly hang: true });

/** A Node-like system error. */
export function errnoError(errno: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${errno}: injected by the test, ${syscall} '${path}'`);
  err.code = errno;
  err.errno = -((constants.errno as Record<string, number>)[errno] ?? 0);
  err.syscall = syscall;
  err.path = path;
  return err;
}

/** The switchboard: counts calls per operation; fails or hangs the planned one. */
class FsFaults {
  private readonly calls = new Map<FsOp, number>();
  /** Calls of the plan's op on the plan's path (when it names one). */
  private onPath = 0;
  private plan: FaultPlan | undefined;
  private readonly hung: (() => void)[] = [];
  /** The call that failed or hung since `arm`, if any. */
  fired: { readonly op: FsOp; readonly path: string } | undefined;

  /** Let every hung call go on (to the real call). */
  release(): void {
    for (const go of this.hung.splice(0)) go();
  }

  /** Start counting from zero, failing the planned call (none: count only). */
  arm(plan?: FaultPlan): void {
    this.calls.clear();
    this.onPath = 0;
    this.plan = plan;
    this.fired = undefined;
  }

  /** Stop failing (counting goes on until the next `arm`). */
  disarm(): void {
    this.plan = undefined;
  }

  /** Calls of each operation since `arm`. */
  counts(): ReadonlyMap<FsOp, number> {
    return new Map(this.calls);
  }

  /** Called before every real call: counts it, and throws or waits for `release()` when it is the planned one. */
  async hit(op: FsOp, path: string): Promise<void> {
    const n = (this.calls.get(op) ?? 0) + 1;
    this.calls.set(op, n);
    const plan = this.plan;
    if (plan === undefined || plan.op !== op) return;
    if (plan.path === undefined ? plan.nth !== n : !pathMatches(plan.path, path) || ++this.onPath !== plan.nth) return;
    this.fired = { op, path };
    if ('hang' in plan) return new Promise<void>((go) => void this.hung.push(go));
    throw errnoError(plan.errno, op, path);
  }
}

/** True when `path` is `want`, or matches it. */
function pathMatches(want: string | RegExp, path: string): boolean {
  return typeof want === 'string' ? want === path : want.test(path);
}

export const faults = new FsFaults();

type AsyncFn = (...args: never[]) => Promise<unknown>;

/** `fn` with a {@link faults} hit before each call (its first argument is the path). */
function counted<F extends AsyncFn>(op: FsOp, fn: F): F {
  const wrapped = async (...args: Parameters<F>): Promise<unknown> => {
    await faults.hit(op, String(args[0]));
    return Reflect.apply(fn, undefined, args);
  };
  return wrapped as unknown as F;
}

const HANDLE_OPS: Readonly<Record<string, FsOp>> = { read: 'read', readFile: 'read', write: 'write', writeFile: 'write', sync: 'fsync', datasync: 'fsync', stat: 'stat' };

/** A FileHandle whose read, write, sync and stat go through {@link faults}. */
function faultyHandle(handle: StateFs.FileHandle, path: string): StateFs.FileHandle {
  return new Proxy(handle, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const op = typeof prop === 'string' ? HANDLE_OPS[prop] : undefined;
      const method = value as (...args: unknown[]) => unknown;
      if (op === undefined) return method.bind(target);
      return async (...args: unknown[]) => {
        await faults.hit(op, path);
        return method.apply(target, args);
      };
    },
  });
}

/** The stand-in for src/state/fs.ts: `real` with every call going through {@link faults}. */
export function faultyFs(real: typeof StateFs): typeof StateFs {
  const open = async (...args: Parameters<typeof real.open>): Promise<StateFs.FileHandle> => {
    await faults.hit('open', String(args[0]));
    return faultyHandle(await real.open(...args), String(args[0]));
  };
  return {
    ...real,
    open,
    lstat: counted('stat', real.lstat),
    mkdir: counted('mkdir', real.mkdir),
    readdir: counted('readdir', real.readdir),
    rename: counted('rename', real.rename),
    rm: counted('unlink', real.rm),
    unlink: counted('unlink', real.unlink),
  };
}
