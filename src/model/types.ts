/**
 * Types of the DRA half shared by the kubelet plugin (gRPC), the claim state machine and telemetry.
 * Field meanings follow the kubelet DRA plugin API (kubernetes/kubelet pkg/apis/dra/v1/api.proto).
 *
 * Claim and pod references carry branded fields (src/model/names.ts): a value of these types was checked
 * where it entered gpulet, by `parseClaimRef` / `parsePodRef` (src/model/claim-ref.ts) or the checkpoint's
 * schema, so code further in never checks one again and cannot be handed an unchecked string.
 */
import type { DnsLabel, DnsSubdomain, ObjectUid } from './names.js';

/**
 * A claim as the kubelet names it in NodePrepareResources / NodeUnprepareResources (`Claim` message), and as
 * a ResourceClaim's `metadata` names it: namespace a DNS label, name a DNS subdomain, uid a lower-case UUID.
 */
export interface ClaimRef {
  readonly namespace: DnsLabel;
  readonly name: DnsSubdomain;
  /** ResourceClaim `metadata.uid`. */
  readonly uid: ObjectUid;
}

/** One prepared device, as returned to the kubelet (`Device` message). */
export interface PreparedDevice {
  /** Requests (subrequest suffix stripped: `req/sub` → `req`) this device was allocated for. */
  readonly requestNames: readonly string[];
  readonly poolName: string;
  readonly deviceName: string;
  /** Fully-qualified CDI device IDs, e.g. `k8s.gpu.gpulet.dev/claim=<uid>-gpu-0`. */
  readonly cdiDeviceIds: readonly string[];
  /** `shareID` of the allocation result, when the device is shared (v1 only). */
  readonly shareId?: string;
}

/** Result of preparing one claim: devices on success, a non-empty error (the kubelet retries) on failure. */
export type PrepareResult =
  | { readonly devices: readonly PreparedDevice[]; readonly error?: undefined }
  | { readonly error: string; readonly devices?: undefined };

/** Result of unpreparing one claim: `error` set when it failed. */
export interface UnprepareResult {
  readonly error?: string;
}

/**
 * What the kubelet plugin calls. Implementations serialize calls, are idempotent, and never reject:
 * every claim in the request gets an entry in the returned map (keyed by claim UID).
 */
export interface ClaimPreparer {
  prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>>;
  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>>;
}

/**
 * A pod that holds a claim (`status.reservedFor[]` with resource "pods"; the namespace is the claim's): name
 * a DNS subdomain (apimachinery `ValidatePodName`), uid a lower-case UUID.
 */
export interface PodRef {
  readonly namespace: DnsLabel;
  readonly name: DnsSubdomain;
  readonly uid: ObjectUid;
}

/** Who holds a device right now: used to attribute metrics to pods and claims. */
export interface DeviceOwner {
  readonly claim: ClaimRef;
  readonly pods: readonly PodRef[];
  /** Device name in the pool, e.g. `gpu-3`. */
  readonly deviceName: string;
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
}

/** Source of current device ownership (the prepared-claims state). */
export interface OwnershipSource {
  /** Owners keyed by device UUID. A device may be held by several claims (shared). */
  owners(): ReadonlyMap<string, readonly DeviceOwner[]>;
}

/**
 * A prepared claim's accumulated usage (issue 13 item 3), as integrated by src/telemetry/accounting.ts and
 * carried in the claim's checkpoint entry (src/state/checkpoint-entry.ts `usage`) so an agent restart loses none
 * of it. Totals are the claim's, over every device it holds; a total is absent until a reading of its kind was
 * integrated (never 0 for "unknown").
 */
export interface ClaimUsage {
  /** Unix ms of the sample the totals and baselines were integrated up to. */
  readonly lastSampleMs: number;
  /** Device-seconds held: the sum over the claim's devices of the time held, s. */
  readonly deviceSeconds: number;
  /** Energy attributed to the claim, J. */
  readonly energyJoules?: number;
  /** Active-seconds: utilization-seconds (the device's active fraction integrated over time), s. */
  readonly activeSeconds?: number;
  /** Peak of the claim's memory used (the sum over its devices at one sample), bytes. */
  readonly memoryPeakBytes?: number;
  /**
   * Per held device (`GPU-…` / `MIG-…`), the cumulative energy counter of its energy source at `lastSampleMs`
   * (`nvmlDeviceGetTotalEnergyConsumption` of the GPU; for a MIG device, of its parent GPU), mJ: the baseline
   * from which the next sample — after a restart too — integrates.
   */
  readonly baselines: readonly { readonly uuid: string; readonly energyMillijoules: number }[];
}

/** Where per-claim usage is kept across agent restarts (the claim state's checkpoint; src/main.ts wires it). */
export interface ClaimUsageStore {
  /** The usage recorded for each prepared claim (PrepareCompleted), by claim UID; claims without a record are absent. */
  usages(): ReadonlyMap<string, ClaimUsage>;
  /**
   * Record `usages` (by claim UID) in the entries of the claims still prepared (others are ignored), in one write.
   * @throws what the write throws (the claim state's session and checkpoint errors); the caller logs and retries later.
   */
  record(usages: ReadonlyMap<string, ClaimUsage>): Promise<void>;
}
