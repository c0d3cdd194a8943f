/**
 * Keeps the kubelet plugin's sockets in place. The kubelet's plugin watcher finds plugins by their socket in
 * the registry dir; when that socket is deleted (a kubelet restart that cleans the dir, an operator, a node
 * cleanup job) the plugin silently stops being registered and, 30 s later, the kubelet deletes the node's
 * ResourceSlices. The guard notices a missing socket (fs.watch on the socket's directory, plus a periodic
 * check for watchers that miss events) and re-creates it; the kubelet then re-registers the plugin, and the
 * registration callback republishes the slices.
 *
 * A socket that was *replaced* (same path, another inode: a successor instance during a rolling update without
 * pod-UID names) is left alone: we never fight a successor.
 */
import { watch, type FSWatcher, promises as fs } from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { BoundSocket } from './grpc-unix.js';

/** One guarded socket: how to read its current identity and how to re-create it. */
export interface GuardedSocket {
  /** Identity of the socket we bound last. */
  current(): BoundSocket;
  /** Bind a fresh server on the same path; resolves with the new identity. */
  recreate(): Promise<BoundSocket>;
}

/** A running guard. */
export interface SocketGuard {
  /** Check every socket now (tests; also called by the watcher and the timer). */
  check(): Promise<void>;
  /** Stop watching. Idempotent. */
  stop(): void;
}

/** Default period of the fallback check, ms. */
export const SOCKET_CHECK_INTERVAL_MS = 2_000;

async function exists(p: string): Promise<boolean> {
  try {
    await fs.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Watch `sockets` and re-create any that disappears. Never throws: failures are logged and retried on the
 * next check.
 */
export function guardSockets(sockets: readonly GuardedSocket[], logger: Logger, intervalMs = SOCKET_CHECK_INTERVAL_MS): SocketGuard {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  const checkOnce = async (): Promise<void> => {
    for (const s of sockets) {
      if (stopped) return;
      const socketPath = s.current().path;
      try {
        if (await exists(socketPath)) continue;
        logger.warn({ socket: socketPath }, 'plugin socket was removed (kubelet restart or cleanup?): re-creating it');
        const sock = await s.recreate();
        logger.info({ socket: sock.path }, 'plugin socket re-created; the kubelet will register the plugin again');
      } catch (err) {
        logger.error({ socket: socketPath, err: errorMessage(err) }, 'cannot re-create plugin socket; retrying');
      }
    }
  };
  const check = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await checkOnce();
      } while (again && !stopped);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  const watchers: FSWatcher[] = [];
  for (const dir of new Set(sockets.map((s) => path.dirname(s.current().path)))) {
    try {
      const w = watch(dir, { persistent: false }, () => void check());
      w.on('error', () => undefined); // the dir itself may vanish; the timer keeps checking
      watchers.push(w);
    } catch (err) {
      logger.warn({ dir, err: errorMessage(err) }, 'cannot watch socket directory; relying on the periodic check');
    }
  }
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
      for (const w of watchers) w.close();
    },
  };
}
