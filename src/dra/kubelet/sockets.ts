/**
 * Socket paths of the kubelet plugin (pure: no I/O).
 *
 * Facts (docs/contracts.md §2, upstream k8s.io/dynamic-resource-allocation kubeletplugin helper):
 * registration socket `<registryDir>/<driver>-reg.sock` (registryDir usually
 * `/var/lib/kubelet/plugins_registry`), DRA socket `<pluginsDir>/<driver>/dra.sock` (pluginsDir usually
 * `/var/lib/kubelet/plugins`). For seamless rolling updates both names carry the pod UID:
 * `<driver>-<podUID>-reg.sock` and `dra-<podUID>.sock`.
 */
import path from 'node:path';
import { ConfigError } from '../../errors.js';
import type { DriverName, ObjectUid } from '../../model/names.js';

/** Default kubelet plugin registry directory. */
export const DEFAULT_REGISTRY_DIR = '/var/lib/kubelet/plugins_registry';
/** Default kubelet plugins directory. */
export const DEFAULT_PLUGINS_DIR = '/var/lib/kubelet/plugins';

/** Longest path a unix socket may have on Linux (`sun_path` is 108 bytes including the NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Where the plugin's two sockets live. Both paths are absolute. */
export interface SocketPaths {
  /** Watched by the kubelet: it dials this to call GetInfo / NotifyRegistrationStatus. */
  readonly registration: string;
  /** Serves DRAPlugin (and DRAResourceHealth); advertised as `PluginInfo.endpoint`. */
  readonly dra: string;
}

/**
 * Compute the socket paths. The driver name and pod UID become parts of file names; they are safe there because
 * their types say they passed the rules of src/model/names.ts where they entered (src/config.ts): a DNS
 * subdomain of ≤ 63 characters has no `/`, and a lower-case UUID only hex digits and `-`.
 * @param opts.registryDir kubelet plugin registry directory (made absolute against the working directory)
 * @param opts.pluginsDir kubelet plugins directory (made absolute likewise)
 * @param opts.driverName DRA driver name (DNS subdomain ≤ 63 characters)
 * @param opts.podUid pod UID (lower-case UUID) for rolling-update socket names; omit for the plain names
 * @throws ConfigError when a path exceeds {@link MAX_SOCKET_PATH_BYTES}.
 */
export function socketPaths(opts: {
  registryDir: string;
  pluginsDir: string;
  driverName: DriverName;
  podUid?: ObjectUid | undefined;
}): SocketPaths {
  const driver = opts.driverName;
  const uid = opts.podUid;
  const registration = path.resolve(opts.registryDir, uid ? `${driver}-${uid}-reg.sock` : `${driver}-reg.sock`);
  const dra = path.resolve(opts.pluginsDir, driver, uid ? `dra-${uid}.sock` : 'dra.sock');
  for (const p of [registration, dra]) {
    if (Buffer.byteLength(p) > MAX_SOCKET_PATH_BYTES) {
      throw new ConfigError(
        `socket path ${p} is ${Buffer.byteLength(p)} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a unix socket allows; use a shorter directory`,
      );
    }
  }
  return { registration, dra };
}
