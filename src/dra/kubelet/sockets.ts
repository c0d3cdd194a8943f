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

/** Default kubelet plugin registry directory. */
export const DEFAULT_REGISTRY_DIR = '/var/lib/kubelet/plugins_registry';
/** Default kubelet plugins directory. */
export const DEFAULT_PLUGINS_DIR = '/var/lib/kubelet/plugins';

/** Longest path a unix socket may have on Linux (`sun_path` is 108 bytes including the NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Kubernetes object UIDs are RFC 4122 UUIDs (lowercase hex as the API server generates them). */
const POD_UID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Driver name: DNS subdomain, at most 63 characters (docs/contracts.md §4). */
const DRIVER_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Where the plugin's two sockets live. Both paths are absolute. */
export interface SocketPaths {
  /** Watched by the kubelet: it dials this to call GetInfo / NotifyRegistrationStatus. */
  readonly registration: string;
  /** Serves DRAPlugin (and DRAResourceHealth); advertised as `PluginInfo.endpoint`. */
  readonly dra: string;
}

/**
 * Check a pod UID before it becomes part of a file name.
 * @throws ConfigError unless `uid` is a UUID (8-4-4-4-12 hex digits), e.g. from the downward API `metadata.uid`.
 */
export function validatePodUid(uid: string): string {
  if (!POD_UID_RE.test(uid)) {
    throw new ConfigError(`pod UID ${JSON.stringify(uid)} is not a UUID; pass metadata.uid from the downward API`);
  }
  return uid.toLowerCase();
}

/**
 * Check a driver name before it becomes part of a file name.
 * @throws ConfigError unless it is a DNS subdomain of at most 63 characters (e.g. `gpu.gpulet.dev`).
 */
export function validateDriverName(driver: string): string {
  if (driver.length === 0 || driver.length > 63 || !DRIVER_RE.test(driver)) {
    throw new ConfigError(
      `driver name ${JSON.stringify(driver)} is not a DNS subdomain of at most 63 characters (e.g. gpu.gpulet.dev)`,
    );
  }
  return driver;
}

/**
 * Compute the socket paths.
 * @param opts.registryDir kubelet plugin registry directory (made absolute against the working directory)
 * @param opts.pluginsDir kubelet plugins directory (made absolute likewise)
 * @param opts.driverName DRA driver name (DNS subdomain)
 * @param opts.podUid pod UID for rolling-update socket names; omit for the plain names
 * @throws ConfigError on a bad driver name or pod UID, or when a path exceeds {@link MAX_SOCKET_PATH_BYTES}.
 */
export function socketPaths(opts: {
  registryDir: string;
  pluginsDir: string;
  driverName: string;
  podUid?: string | undefined;
}): SocketPaths {
  const driver = validateDriverName(opts.driverName);
  const uid = opts.podUid === undefined ? undefined : validatePodUid(opts.podUid);
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
