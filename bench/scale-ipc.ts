/**
 * Request/reply over the Node IPC channel of a forked child (`child_process.fork`), for the scale simulation's
 * child processes (scale-server-child.ts: the API server; scale-publishers-child.ts: a share of the publishers).
 * The parent calls `child.call(op, arg)`; the child answers each call with the handler's result or its error
 * message. Children are forked with the parent's `execArgv` (tsx's loader when the bench runs under tsx), so
 * they run the TypeScript sources as the parent does. Messages are JSON (the `'json'` serialisation of `fork`).
 */
import { fork, type ChildProcess } from 'node:child_process';

/** A call from the parent: `id` pairs it with its reply. */
interface CallMessage {
  readonly id: number;
  readonly op: string;
  readonly arg: unknown;
}

/** A child's reply to call `id`: `result` when `ok`, else `error` (the handler's error message). */
interface ReplyMessage {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

const READY = 'scale-child-ready';

/**
 * Young-generation semi-space limit of every child, MiB (`--max-semi-space-size`): V8's default for a large
 * heap lets short-lived garbage (request and answer objects) take several times the live heap in RSS before a
 * scavenge; 16 MiB keeps that bounded at the cost of more frequent (cheap) scavenges.
 */
const SEMI_SPACE_MIB = 16;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isReply(v: unknown): v is ReplyMessage {
  return isRecord(v) && typeof v.id === 'number' && typeof v.ok === 'boolean';
}

function isCall(v: unknown): v is CallMessage {
  return isRecord(v) && typeof v.id === 'number' && typeof v.op === 'string';
}

/** A forked child that answers calls. */
export interface ChildHandle {
  /** The child's pid (its memory is read by the child itself: `memory` op). */
  readonly pid: number;
  /**
   * Call `op` in the child with `arg` (JSON) and wait for its reply. The result is the child's JSON value: the
   * caller states its shape (both sides are this benchmark's code).
   * @throws Error with the child's message when its handler failed, or when the child exited first
   */
  call<T>(op: string, arg?: unknown): Promise<T>;
  /** Ask the child to exit (`exit` op), wait for it; SIGKILL (this child, by pid) after `graceMs`. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Fork `file` with `args` and wait until it says it is ready (its handlers are installed). `heapMiB` bounds the
 * child's V8 old space (`--max-old-space-size`, added to the parent's `execArgv` with the semi-space limit): the
 * child fails with a heap out-of-memory error rather than growing past it.
 * @throws Error when the child exits or fails to start within `readyTimeoutMs`
 */
export async function forkChild(file: URL, args: readonly string[], label: string, heapMiB: number, readyTimeoutMs = 120_000): Promise<ChildHandle> {
  const execArgv = [
    ...process.execArgv.filter((a) => !a.startsWith('--max-old-space-size') && !a.startsWith('--max-semi-space-size')),
    `--max-old-space-size=${Math.ceil(heapMiB)}`,
    `--max-semi-space-size=${SEMI_SPACE_MIB}`,
  ];
  const child: ChildProcess = fork(file, [...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json', execArgv });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${label}: fork failed`);
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let exited: Error | undefined;
  const exitedP = new Promise<void>((resolve) => {
    child.on('exit', (code, signal) => {
      exited = new Error(`${label} (pid ${pid}) exited (code ${String(code)}, signal ${String(signal)})`);
      for (const p of pending.values()) p.reject(exited);
      pending.clear();
      resolve();
    });
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label}: not ready within ${readyTimeoutMs} ms`)), readyTimeoutMs);
    child.on('message', (m: unknown) => {
      if (m === READY) {
        clearTimeout(timer);
        resolve();
        return;
      }
      if (!isReply(m)) return;
      const p = pending.get(m.id);
      if (p === undefined) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${label}: ${m.error ?? 'failed'}`));
    });
    void exitedP.then(() => {
      clearTimeout(timer);
      reject(exited ?? new Error(`${label} exited`));
    });
  });
  let next = 0;
  return {
    pid,
    call<T>(op: string, arg?: unknown): Promise<T> {
      if (exited !== undefined) return Promise.reject(exited);
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: (v) => resolve(v as T), reject });
        const msg: CallMessage = { id, op, arg: arg ?? null };
        child.send(msg);
      });
    },
    async close(graceMs = 30_000): Promise<void> {
      if (exited !== undefined) return;
      const exit = new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, graceMs);
        void exitedP.then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      const msg: CallMessage = { id: next++, op: 'exit', arg: null };
      if (child.connected) child.send(msg);
      await exit;
    },
  };
}

/** A child's handlers, by op; `exit` is built in (runs `onExit`, then exits 0). */
export type Handlers = Readonly<Record<string, (arg: unknown) => unknown>>;

/**
 * In the child: answer the parent's calls with `handlers`, then tell the parent it is ready.
 * @throws Error when the process was not forked with an IPC channel
 */
export function serveParent(handlers: Handlers, onExit: () => Promise<void>): void {
  const send = process.send?.bind(process);
  if (send === undefined) throw new Error('run this file as a forked child (it needs the IPC channel)');
  process.on('message', (m: unknown) => {
    if (!isCall(m)) return;
    if (m.op === 'exit') {
      void onExit().finally(() => process.exit(0));
      return;
    }
    const h = handlers[m.op];
    const reply = (r: ReplyMessage): void => void send(r);
    if (h === undefined) {
      reply({ id: m.id, ok: false, error: `unknown op ${m.op}` });
      return;
    }
    Promise.resolve()
      .then(() => h(m.arg))
      .then(
        (result) => reply({ id: m.id, ok: true, result: result ?? null }),
        (err: unknown) => reply({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  // The parent going away ends the child (no orphaned simulation).
  process.on('disconnect', () => process.exit(0));
  send(READY);
}
