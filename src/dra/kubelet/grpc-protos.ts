/**
 * Loads the kubelet protos in `proto/` with @grpc/proto-loader and exposes typed service definitions and
 * wire message types. One loading convention for the whole project, used by the servers (src/dra) and by
 * the kubelet simulator (dev/kubelet):
 * `keepCase: true` (objects use the proto field names, e.g. `pool_name`), `longs: Number` (int64 Unix
 * seconds fit), `enums: String` (`'HEALTHY'`), `defaults: true`, `oneofs: true` (a proto3 `optional`
 * field that is set also carries the virtual `_<name>` property on decode).
 *
 * Facts: kubernetes/kubelet pkg/apis/{pluginregistration/v1, dra/v1, dra/v1beta1, dra-health/v1, dra-health/v1alpha1}.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { ConfigError } from '../../errors.js';

/** Options every loader call in the project uses (see module docs). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Proto files, relative to the proto root. */
export const PROTO_FILES = {
  registration: 'pluginregistration/v1/api.proto',
  draV1: 'dra/v1/api.proto',
  draV1beta1: 'dra/v1beta1/api.proto',
  healthV1: 'dra-health/v1/api.proto',
  healthV1alpha1: 'dra-health/v1alpha1/api.proto',
} as const;

/** Fully-qualified proto package names (upstream's, byte for byte). */
export const PROTO_PACKAGES = {
  registration: 'pluginregistration',
  draV1: 'k8s.io.kubelet.pkg.apis.dra.v1',
  draV1beta1: 'k8s.io.kubelet.pkg.apis.dra.v1beta1',
  healthV1: 'v1',
  healthV1alpha1: 'v1alpha1',
} as const;

/** `supported_versions` entries (`<last package segment>.<service>`), docs/contracts.md §2. */
export const SERVICE_VERSIONS = {
  draV1: 'v1.DRAPlugin',
  draV1beta1: 'v1beta1.DRAPlugin',
  healthV1: 'v1.DRAResourceHealth',
  healthV1alpha1: 'v1alpha1.DRAResourceHealth',
} as const;

/** A DRAPlugin API version gpulet serves. */
export type DraApiVersion = 'v1' | 'v1beta1';
/**
 * A DRAResourceHealth API version gpulet serves: same messages, proto packages `v1` and `v1alpha1`
 * (k8s.io/kubelet v0.37.2 pkg/apis/dra-health/v1, its conversion.go `V1Alpha1ClientWrapper`).
 */
export type HealthApiVersion = 'v1' | 'v1alpha1';

// ---- wire types (keepCase: field names as in the .proto files) ----

/** `Claim` (both DRA versions). */
export interface WireClaim {
  namespace: string;
  uid: string;
  name: string;
}
/** `NodePrepareResourcesRequest` / `NodeUnprepareResourcesRequest`. */
export interface WireClaimsRequest {
  claims: WireClaim[];
}
/** `Device`; `share_id` exists only in v1 (field 5, proto3 optional). */
export interface WireDevice {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
  share_id?: string;
}
/** `NodePrepareResourceResponse`. */
export interface WirePrepareResult {
  devices: WireDevice[];
  error: string;
}
/** `NodePrepareResourcesResponse`: keyed by claim UID. */
export interface WirePrepareResponse {
  claims: Record<string, WirePrepareResult>;
}
/** `NodeUnprepareResourcesResponse`: keyed by claim UID. */
export interface WireUnprepareResponse {
  claims: Record<string, { error: string }>;
}
/** `PluginInfo`. */
export interface WirePluginInfo {
  type: string;
  name: string;
  endpoint: string;
  supported_versions: string[];
}
/** `RegistrationStatus`. */
export interface WireRegistrationStatus {
  plugin_registered: boolean;
  error: string;
}
/** `HealthStatus` enum values (enums: String). */
export type WireHealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY';
/** `DeviceHealth`; int64 fields as numbers (Unix seconds, seconds). */
export interface WireDeviceHealth {
  device: { pool_name: string; device_name: string };
  health: WireHealthStatus;
  last_updated_time: number;
  health_check_timeout_seconds: number;
  message: string;
}
/** `NodeWatchResourcesResponse`. */
export interface WireWatchResponse {
  devices: WireDeviceHealth[];
}
/** Empty messages (`InfoRequest`, `RegistrationStatusResponse`, `NodeWatchResourcesRequest`). */
export type WireEmpty = Record<string, never>;

/** Typed method definitions of the DRAPlugin service (same shape in v1 and v1beta1). */
export interface DraPluginService extends ServiceDefinition {
  NodePrepareResources: MethodDefinition<WireClaimsRequest, WirePrepareResponse>;
  NodeUnprepareResources: MethodDefinition<WireClaimsRequest, WireUnprepareResponse>;
}
/** Typed method definitions of pluginregistration.Registration. */
export interface RegistrationService extends ServiceDefinition {
  GetInfo: MethodDefinition<WireEmpty, WirePluginInfo>;
  NotifyRegistrationStatus: MethodDefinition<WireRegistrationStatus, WireEmpty>;
}
/** Typed method definitions of DRAResourceHealth (v1 and v1alpha1). */
export interface HealthService extends ServiceDefinition {
  NodeWatchResources: MethodDefinition<WireEmpty, WireWatchResponse>;
}

/** All service definitions gpulet uses. */
export interface KubeletServices {
  registration: RegistrationService;
  dra: Record<DraApiVersion, DraPluginService>;
  /** DRAResourceHealth by version (the same messages in both). */
  health: Record<HealthApiVersion, HealthService>;
  /** The raw package definition (message descriptors included), keyed by fully-qualified name. */
  packageDefinition: protoLoader.PackageDefinition;
}

/**
 * Find the `proto/` directory: `GPULET_PROTO_DIR` if set, else `proto/` in the nearest directory above this
 * module that has one: the repository root seen from the source tree (`src/dra/kubelet/`), the image root
 * seen from the build output (`/app/dist/agent/` for the image's bundle, `dist/src/dra/kubelet/` for tsc's output
 * → `<root>/proto`), whatever the depth.
 * @throws ConfigError when no candidate exists.
 */
export function protoRoot(): string {
  const fromEnv = process.env['GPULET_PROTO_DIR'];
  const candidates = fromEnv ? [fromEnv] : [];
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'proto'));
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of candidates) {
    if (existsSync(path.join(dir, PROTO_FILES.draV1))) return dir;
  }
  throw new ConfigError(
    `kubelet protos not found (looked in ${candidates.join(', ')}); set GPULET_PROTO_DIR to the proto/ directory`,
  );
}

function service<T extends ServiceDefinition>(def: protoLoader.PackageDefinition, name: string, methods: string[]): T {
  const svc = def[name];
  if (svc === undefined || !methods.every((m) => m in svc)) {
    throw new ConfigError(`proto service ${name} with methods ${methods.join(', ')} missing from ${protoRoot()}`);
  }
  // Checked above: proto-loader's ServiceDefinition carries exactly these method definitions.
  return svc as unknown as T;
}

let cached: KubeletServices | undefined;

/**
 * Load (once, synchronously) every kubelet proto and return the typed service definitions.
 * @throws ConfigError when the protos are missing or lack an expected service.
 */
export function loadKubeletServices(): KubeletServices {
  if (cached) return cached;
  const def = protoLoader.loadSync(Object.values(PROTO_FILES), {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [protoRoot()],
  });
  const dra = ['NodePrepareResources', 'NodeUnprepareResources'];
  cached = {
    registration: service(def, `${PROTO_PACKAGES.registration}.Registration`, ['GetInfo', 'NotifyRegistrationStatus']),
    dra: {
      v1: service(def, `${PROTO_PACKAGES.draV1}.DRAPlugin`, dra),
      v1beta1: service(def, `${PROTO_PACKAGES.draV1beta1}.DRAPlugin`, dra),
    },
    health: {
      v1: service(def, `${PROTO_PACKAGES.healthV1}.DRAResourceHealth`, ['NodeWatchResources']),
      v1alpha1: service(def, `${PROTO_PACKAGES.healthV1alpha1}.DRAResourceHealth`, ['NodeWatchResources']),
    },
    packageDefinition: def,
  };
  return cached;
}
