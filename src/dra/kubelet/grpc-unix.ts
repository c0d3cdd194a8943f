/**
 * gRPC servers on unix sockets: bind after removing a stale socket, restrict permissions, shut down
 * gracefully with a deadline, and remove the socket file only if it is still the one we created.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { MAX_SOCKET_PATH_BYTES } from './sockets.js';

/**
 * A bound socket: path plus the identity of the file we created (inode and ctime in ns; inode numbers are
 * reused quickly on tmpfs), so stop never deletes a successor's socket.
 */
export interface BoundSocket {
  readonly path: string;
  readonly ino: bigint;
  readonly ctimeNs: bigint;
}

/** Mode of directories we create for sockets. */
export const SOCKET_DIR_MODE = 0o750;
/** Mode set on sockets after bind: only the owner (the kubelet runs as root) may connect. */
export const SOCKET_MODE = 0o600;

/**
 * Remove `socketPath` if it is a leftover socket. Absent is fine.
 * @throws ConfigError when something other than a socket is in the way (never deleted).
 */
export async function removeStaleSocket(socketPath: string): Promise<boolean> {
  let st;
  try {
    st = await fs.lstat(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ConfigError(`cannot inspect socket path ${socketPath}: ${errorMessage(err)}`, { cause: err });
  }
  if (!st.isSocket()) {
    throw new ConfigError(`${socketPath} exists and is not a socket; remove it or choose another directory`);
  }
  await fs.unlink(socketPath);
  return true;
}

/**
 * Create the socket's directory (0750), remove a stale socket, and serve `server` on `socketPath` (0600).
 *
 * The server binds a hidden temporary name in the same directory (dot-files are ignored by the kubelet's
 * watcher), is chmod-ed, and is then renamed into place atomically: the kubelet never sees a socket that
 * is not yet listening or not yet restricted. It also means the runtime's unlink-on-close (libuv removes
 * the path it bound) only ever touches the temporary name, never a successor's socket at `socketPath`.
 * Serving starts at bind (grpc-js ≥ 1.10).
 * @throws ConfigError when the directory cannot be created, the path is blocked or bind fails.
 */
export async function bindUnix(server: grpc.Server, socketPath: string, logger: Logger): Promise<BoundSocket> {
  const dir = path.dirname(socketPath);
  try {
    await fs.mkdir(dir, { recursive: true, mode: SOCKET_DIR_MODE });
  } catch (err) {
    throw new ConfigError(`cannot create socket directory ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  if (await removeStaleSocket(socketPath)) logger.info({ socket: socketPath }, 'removed stale socket');
  let bindPath = path.join(dir, `.gpulet-${randomBytes(4).toString('hex')}.sock`);
  if (Buffer.byteLength(bindPath) > MAX_SOCKET_PATH_BYTES) bindPath = socketPath;
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${bindPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new ConfigError(`cannot listen on ${bindPath}: ${err.message}`, { cause: err }));
      else resolve();
    });
  });
  try {
    await fs.chmod(bindPath, SOCKET_MODE);
    if (bindPath !== socketPath) await fs.rename(bindPath, socketPath);
  } catch (err) {
    throw new ConfigError(`cannot put socket in place at ${socketPath}: ${errorMessage(err)}`, { cause: err });
  }
  const st = await fs.lstat(socketPath, { bigint: true });
  return { path: socketPath, ino: st.ino, ctimeNs: st.ctimeNs };
}

/**
 * Remove a socket file we created, unless it was replaced by someone else (different inode). Idempotent;
 * never throws (logs instead).
 */
export async function removeOwnSocket(sock: BoundSocket, logger: Logger): Promise<void> {
  try {
    const st = await fs.lstat(sock.path, { bigint: true });
    if (st.isSocket() && st.ino === sock.ino && st.ctimeNs === sock.ctimeNs) await fs.unlink(sock.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      logger.warn({ socket: sock.path, err: errorMessage(err) }, 'could not remove socket');
    }
  }
}

/**
 * Stop `server`: graceful `tryShutdown` (in-flight calls finish), `forceShutdown` after `timeoutMs`.
 * Never rejects.
 */
export function shutdownServer(server: grpc.Server, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
