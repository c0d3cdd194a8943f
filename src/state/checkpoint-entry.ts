/**
 * One claim's entry of the checkpoint (the document is checkpoint.ts): its types, its zod schema, the reading
 * of the older shape, and the checks that make the file untrusted input. Pure, no I/O.
 *
 * ```json
 * {"namespace", "name", "uid", "state": "PrepareMigCreating" | "PrepareStarted" | "PrepareCompleted" | "UnprepareStarted",
 *  "devices": [{"requestNames", "poolName", "deviceName", "uuid", "cdiDeviceIds", "shareId"?,
 *               "mig"?: {"gpuUuid", "giProfileId", "start", "size", "gpuInstanceId"?}, "migModeOff"?: {"gpuUuid"}}],
 *  "pods": [{"namespace", "name", "uid"}],
 *  "configs": [{"devices": ["<device name>", ...], "env": {"NAME": "value"}}],
 *  "usage"?: {"lastSampleMs", "deviceSeconds", "energyJoules"?, "activeSeconds"?, "memoryPeakBytes"?,
 *             "baselines": [{"uuid", "energyMillijoules"}]}}
 * ```
 * `usage` is the claim's per-claim accounting (issue 13 item 3, src/telemetry/accounting.ts), recorded by
 * `ClaimStore.recordUsage` so an agent restart continues it. It is optional (every older file loads; an older
 * gpulet ignores it, its schema strips unknown keys, and its next save drops it) and lenient: a `usage` that
 * fails its schema is read as none (the claim's accounting restarts from zero), never a reason to drop the claim.
 * `mig`, `migModeOff` and the states `PrepareMigCreating` and `UnprepareStarted` are dynamic MIG's (issue 12): a file
 * without them (every older one) loads unchanged; an older gpulet drops an entry that has them (its schema refuses
 * the state / keeps no `mig` or `migModeOff`), so downgrade only with no dynamic MIG claim prepared.
 * `configs` holds the claim's opaque-config env once (claim-env.ts: `devices: []` = every device of the claim).
 * The older shape (before configs were stored per claim) has no `configs` and each device may carry its merged
 * `env`; it is read as one config per distinct env (`configsFromDeviceEnv`), so a file written by an older
 * gpulet loads, and the next save writes the new shape. An older gpulet reading the new shape keeps its claims
 * (it ignores `configs`, `cdiDeviceIds` is still written) but not their opaque env (README, "Reliability").
 *
 * The checksum only detects accidents: an entry is checked as untrusted input, and one that fails is dropped
 * alone, with the reason ({@link decodeEntry}), never the whole file. It must have the shape above with
 * everything prepare could have written: the claim's reference and pods by the reference rules
 * (src/model/claim-ref.ts), its key equal to its uid (an object UID); device names DNS labels, the pool a pool
 * name, CDI IDs exactly those gpulet derives from the uid and device name (`k8s.<driver>/claim=<uid>-<device>`;
 * they are recomputed anyway, never answered from the file: claim-ops.ts); env re-checked with the
 * opaque-config rules (`gpuEnvSchema`: reserved names such as `NVIDIA_VISIBLE_DEVICES` refused); configs naming
 * only devices of the entry, within `MAX_CLAIM_ENV_BYTES`.
 */
import { z } from 'zod';
import { objectRefSchema, objectRefShape } from '../model/claim-ref.js';
import { dnsLabelSchema, driverNameProblem, poolNameSchema } from '../model/names.js';
import type { ClaimRef, ClaimUsage, PodRef } from '../model/types.js';
import { MAX_ALLOCATION_RESULTS } from './allocation.js';
import { claimEnvProblem, configsFromDeviceEnv, MAX_CLAIM_CONFIGS, type ClaimConfig } from './claim-env.js';
import { gpuEnvSchema } from './opaque-config.js';

/**
 * Prepare state of a claim: `PrepareMigCreating` (dynamic MIG: the intent to create MIG devices, or to turn MIG
 * mode off for a full GPU, is recorded before the first MIG call; the devices' `mig` and `migModeOff` say where),
 * `PrepareStarted` (devices known, spec not yet written), `PrepareCompleted`, and `UnprepareStarted` (dynamic
 * MIG: the spec is removed, the MIG devices gpulet created are being destroyed and the MIG mode it turned off
 * turned on again). Start-up recovery rolls back every state but `PrepareCompleted` (reconcile.ts): spec removed,
 * recorded MIG devices destroyed, recorded MIG mode restored, entry removed.
 */
export type ClaimState = 'PrepareMigCreating' | 'PrepareStarted' | 'PrepareCompleted' | 'UnprepareStarted';

/**
 * A MIG device gpulet creates (or created) for a device of a claim (dynamic MIG, issue 12): where, and once made,
 * its GPU-instance ID and UUID. Only instances recorded here are ever destroyed by gpulet.
 */
export interface CheckpointMig {
  /** The parent GPU's UUID (`GPU-...`). */
  readonly gpuUuid: string;
  /** GPU-instance profile ID (`nvmlGpuInstanceProfileInfo_v2_t.id`). */
  readonly giProfileId: number;
  /** Placement in memory slices (`nvmlGpuInstancePlacement_t`). */
  readonly start: number;
  readonly size: number;
  /** Set once the instance exists: its GPU-instance ID (`nvmlDeviceGetGpuInstanceId`). */
  readonly gpuInstanceId?: number;
}

/** A prepared device as recorded (the kubelet `Device` message plus the device's UUID). */
export interface CheckpointDevice {
  readonly requestNames: readonly string[];
  readonly poolName: string;
  readonly deviceName: string;
  /** `GPU-...` or `MIG-...`. */
  readonly uuid: string;
  /**
   * `[k8s.<driver>/claim=<uid>-<deviceName>]`, as prepare derived it. Written for the record (and for older
   * gpulet versions, which require it); checked on load, never answered from: the answer is recomputed.
   */
  readonly cdiDeviceIds: readonly string[];
  readonly shareId?: string;
  /** Dynamic MIG: the instance gpulet creates for this device (absent for every other device). */
  readonly mig?: CheckpointMig;
  /**
   * Dynamic MIG: this device is the full GPU `gpuUuid` of a dynamic GPU, handed out by turning its MIG mode off
   * (recorded before `nvmlDeviceSetMigMode`); unprepare and recovery turn MIG mode on again. Only a mode change
   * recorded here is ever undone by gpulet.
   */
  readonly migModeOff?: CheckpointMigModeOff;
}

/** The GPU whose MIG mode gpulet turns (or turned) off to hand out its full GPU (dynamic MIG). */
export interface CheckpointMigModeOff {
  /** The GPU's UUID (`GPU-...`). */
  readonly gpuUuid: string;
}

/**
 * One claim's entry: the claim's reference (namespace, name, uid) and its pods, checked where they entered
 * gpulet (the kubelet's request, the API server's claim) when prepare wrote them, and by the load when read.
 */
export interface CheckpointClaim extends ClaimRef {
  readonly state: ClaimState;
  readonly devices: readonly CheckpointDevice[];
  readonly pods: readonly PodRef[];
  /** The claim's opaque-config env, stored once (claim-env.ts), so its CDI spec can be rebuilt without the API server. */
  readonly configs: readonly ClaimConfig[];
  /** The claim's accumulated usage (per-claim accounting), when recorded. */
  readonly usage?: ClaimUsage;
}

/** Longest device UUID recorded: NVML's UUID buffer (`NVML_DEVICE_UUID_V2_BUFFER_SIZE`, NUL included). */
export const MAX_DEVICE_UUID_LENGTH = 96;

/**
 * One recorded device. Bounds are those of what prepare can write, whatever the API server sent: at most
 * {@link MAX_ALLOCATION_RESULTS} request names and CDI IDs; names and UUIDs of the inventory (device names are
 * DNS labels, the pool is the node's pool). Strings copied verbatim from the API server's status (request
 * names, `shareId`) are not bounded here: the API server's validation bounds them. `env` is the older shape's.
 */
const deviceSchema = z.object({
  requestNames: z.array(z.string()).max(MAX_ALLOCATION_RESULTS),
  poolName: poolNameSchema,
  deviceName: dnsLabelSchema,
  uuid: z.string().max(MAX_DEVICE_UUID_LENGTH),
  cdiDeviceIds: z.array(z.string()).max(MAX_ALLOCATION_RESULTS),
  shareId: z.string().exactOptional(),
  env: gpuEnvSchema.exactOptional(),
  mig: z
    .object({
      gpuUuid: z.string().min(1).max(MAX_DEVICE_UUID_LENGTH),
      giProfileId: z.number().int().min(0).max(1024),
      start: z.number().int().min(0).max(64),
      size: z.number().int().min(1).max(64),
      gpuInstanceId: z.number().int().min(0).max(1024).exactOptional(),
    })
    .exactOptional(),
  migModeOff: z.object({ gpuUuid: z.string().min(1).max(MAX_DEVICE_UUID_LENGTH) }).exactOptional(),
});

/** A stored config: device names of the claim (`[]`: all) and a non-empty env. */
const configSchema = z.object({
  devices: z.array(dnsLabelSchema).max(MAX_ALLOCATION_RESULTS),
  env: gpuEnvSchema.refine((env) => Object.keys(env).length > 0, 'must set at least one variable'),
});

/** A non-negative finite number (a total, a counter, a timestamp). */
const amount = z.number().finite().min(0);

/** A claim's recorded usage (see file doc); baselines bounded by the devices a claim can hold. */
const usageSchema = z.object({
  lastSampleMs: amount,
  deviceSeconds: amount,
  energyJoules: amount.exactOptional(),
  activeSeconds: amount.exactOptional(),
  memoryPeakBytes: amount.exactOptional(),
  baselines: z.array(z.object({ uuid: z.string().min(1).max(MAX_DEVICE_UUID_LENGTH), energyMillijoules: amount })).max(MAX_ALLOCATION_RESULTS),
});

/** One claim's entry (its key, its CDI IDs, its configs' devices and its env size are checked by {@link decodeEntry}). */
const entrySchema = z.object({
  ...objectRefShape,
  state: z.enum(['PrepareMigCreating', 'PrepareStarted', 'PrepareCompleted', 'UnprepareStarted']),
  devices: z.array(deviceSchema).max(MAX_ALLOCATION_RESULTS),
  pods: z.array(objectRefSchema),
  configs: z.array(configSchema).max(MAX_CLAIM_CONFIGS).exactOptional(),
  // Lenient: a bad usage reads as none (the entry stays).
  usage: usageSchema.optional().catch(undefined),
});

type ParsedEntry = z.output<typeof entrySchema>;

/** `devices.0.uuid: <what zod says>`, for the first issue of a failed entry. */
function issueText(issues: readonly z.core.$ZodIssue[]): string {
  const issue = issues[0];
  if (issue === undefined) return 'invalid';
  return issue.path.length === 0 ? issue.message : `${issue.path.map(String).join('.')}: ${issue.message}`;
}

/** A value from the file, quoted for a message and cut to 80 characters. */
function quoted(value: unknown): string {
  const s = JSON.stringify(value) ?? String(value);
  return s.length <= 80 ? s : `${s.slice(0, 80)}… (${s.length} characters)`;
}

/** True when `id` is the CDI ID prepare derives for the device: `k8s.<a driver name>/claim=<uid>-<device>`. */
function derivedCdiId(id: string, uid: string, deviceName: string): boolean {
  const suffix = `/claim=${uid}-${deviceName}`;
  if (!id.startsWith('k8s.') || !id.endsWith(suffix)) return false;
  return driverNameProblem(id.slice('k8s.'.length, id.length - suffix.length)) === undefined;
}

/** Why a well-shaped entry cannot be trusted (its key, CDI IDs, configs, env size), or undefined. */
function entryProblem(key: string, entry: ParsedEntry): string | undefined {
  if (entry.uid !== key) return `uid ${quoted(entry.uid)} differs from its key`;
  const names = new Set(entry.devices.map((d) => d.deviceName));
  for (const [i, d] of entry.devices.entries()) {
    if (d.cdiDeviceIds.length !== 1 || !derivedCdiId(d.cdiDeviceIds[0] ?? '', entry.uid, d.deviceName)) {
      return `devices.${i}.cdiDeviceIds: ${quoted(d.cdiDeviceIds)} is not the CDI ID gpulet derives (k8s.<driver>/claim=<uid>-<device>)`;
    }
    if (entry.configs !== undefined && d.env !== undefined) return `devices.${i}.env: the older shape's per-device env next to configs`;
  }
  for (const [i, c] of (entry.configs ?? []).entries()) {
    const stranger = c.devices.find((d) => !names.has(d));
    if (stranger !== undefined) return `configs.${i}.devices: ${quoted(stranger)} is not a device of the claim`;
  }
  return claimEnvProblem(entry.configs ?? configsFromDeviceEnv(entry.devices), [...names]);
}

/**
 * Check one entry of a checkpoint whose checksum matched (see file doc), and read the older shape.
 * @param key the entry's key in `claims`.
 * @returns the entry (only the fields of {@link CheckpointClaim}; `configs` from the older shape's device env
 *   when absent), or why it is dropped: `<field>: <problem>` (`devices.0.deviceName: ...`, `uid "x" differs
 *   from its key`, `configs.0.env.NVIDIA_VISIBLE_DEVICES: env name ... is reserved by gpulet`, the env cap's
 *   message). Never throws.
 */
export function decodeEntry(key: string, raw: unknown): { readonly entry: CheckpointClaim } | { readonly problem: string } {
  const parsed = entrySchema.safeParse(raw);
  if (!parsed.success) return { problem: issueText(parsed.error.issues) };
  const problem = entryProblem(key, parsed.data);
  if (problem !== undefined) return { problem };
  const { uid, namespace, name, state, pods, usage } = parsed.data;
  const devices = parsed.data.devices.map(({ env: _legacy, ...device }) => device);
  const configs = parsed.data.configs ?? configsFromDeviceEnv(parsed.data.devices);
  return { entry: { namespace, name, uid, state, devices, pods, configs, ...(usage === undefined ? {} : { usage }) } };
}
