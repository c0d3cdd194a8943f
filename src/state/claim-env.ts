/**
 * The opaque-config environment of one claim: stored once per claim, bounded per claim, and split for its CDI
 * spec into what every device shares and what differs. Pure: no I/O, deterministic.
 *
 * A claim's configs of our driver (`status.allocation.devices.config[]` whose `opaque.driver` is ours, each
 * validated by opaque-config.ts) are kept once per claim, in allocation order, each with the devices of the
 * claim it applies to:
 * ```json
 * [{"devices": [], "env": {"MODEL": "llama"}}, {"devices": ["gpu-1"], "env": {"ROLE": "leader"}}]
 * ```
 * `devices: []` means every device of the claim, as `requests: []` means every request upstream
 * (resource.k8s.io/v1 `DeviceClaimConfiguration.requests` / `DeviceAllocationConfiguration.requests`: "If empty,
 * it applies to all requests"; a listed `req` also covers its subrequests `req/<sub>`, a listed `req/sub` only
 * that one). A config applies to a device when it applies to the request of an allocation result naming the
 * device (allocation.ts resolves that once, at prepare). A device's env is the merge of the configs that apply
 * to it, in config order: a later config wins a name (the allocation lists the class's configs before the
 * claim's, so a claim overrides its class).
 *
 * Bound ({@link MAX_CLAIM_ENV_BYTES}): a claim's env is counted in bytes of `NAME=value` (UTF-8), twice — as
 * stored (each config once: the checkpoint) and as written into the CDI spec ({@link splitClaimEnv}: what every
 * device shares once, the rest once per device) — and neither may exceed the cap. So a claim adds at most the
 * cap to the checkpoint and to its spec, whatever its number of devices and configs.
 */

/** Upper bound of a claim's opaque-config env, bytes of `NAME=value` (UTF-8), as stored and as written in its CDI spec. */
export const MAX_CLAIM_ENV_BYTES = 64 * 1024;

/**
 * Most configs a claim can store: each stored config sets at least one variable, of at least 2 bytes (`A=`),
 * so a claim within {@link MAX_CLAIM_ENV_BYTES} never stores more.
 */
export const MAX_CLAIM_CONFIGS = MAX_CLAIM_ENV_BYTES / 2;

/** One config of our driver as a claim stores it (see file doc). */
export interface ClaimConfig {
  /** Names of the claim's devices it applies to; empty: every device of the claim. */
  readonly devices: readonly string[];
  /** Variables it sets, name → value (validated by opaque-config.ts). */
  readonly env: Readonly<Record<string, string>>;
}

/** A claim's env split for its CDI spec ({@link splitClaimEnv}). */
export interface SplitEnv {
  /** Variables every device of the claim has, with the same value: written once, at spec level. */
  readonly shared: Readonly<Record<string, string>>;
  /** The rest of each device's env, by device name (a device with nothing else has an empty record). */
  readonly perDevice: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

/** True when `config` applies to the device named `deviceName`. */
export function appliesTo(config: ClaimConfig, deviceName: string): boolean {
  return config.devices.length === 0 || config.devices.includes(deviceName);
}

/** Own entries of a record built from a Map (no key, `__proto__` included, can reach a prototype). */
const record = (entries: Iterable<readonly [string, string]>): Record<string, string> => Object.fromEntries(entries);

/** The env of one device: the configs that apply to it, merged in config order (later wins). */
export function deviceEnv(configs: readonly ClaimConfig[], deviceName: string): Record<string, string> {
  const merged = new Map<string, string>();
  for (const config of configs) {
    if (!appliesTo(config, deviceName)) continue;
    for (const [name, value] of Object.entries(config.env)) merged.set(name, value);
  }
  return record(merged);
}

/**
 * Split the env of a claim's devices: a variable every device has with the same value is shared (spec-level
 * `containerEdits`, written once), everything else stays with its device. Shared variables keep the order
 * of the first device's env. Injecting any subset of the claim's devices gives a container exactly the env those
 * devices had each: a shared variable is one every device would have set to the same value.
 * @param deviceNames the claim's distinct device names, in spec order.
 */
export function splitClaimEnv(configs: readonly ClaimConfig[], deviceNames: readonly string[]): SplitEnv {
  const envs = deviceNames.map((name) => [name, deviceEnv(configs, name)] as const);
  const first = envs[0]?.[1] ?? {};
  const sharedNames = Object.keys(first).filter((name) => envs.every(([, env]) => Object.hasOwn(env, name) && env[name] === first[name]));
  const shared = new Set(sharedNames);
  return {
    shared: record(sharedNames.map((name) => [name, first[name] ?? ''])),
    perDevice: new Map(envs.map(([device, env]) => [device, record(Object.entries(env).filter(([name]) => !shared.has(name)))])),
  };
}

/** Bytes of an env as `NAME=value` strings (UTF-8). */
export function envBytes(env: Readonly<Record<string, string>>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(env)) bytes += Buffer.byteLength(name, 'utf8') + 1 + Buffer.byteLength(value, 'utf8');
  return bytes;
}

/** A claim's env size: as stored (each config once) and as written into its CDI spec (shared once, the rest per device). */
export function claimEnvSize(configs: readonly ClaimConfig[], deviceNames: readonly string[]): { readonly stored: number; readonly written: number } {
  const stored = configs.reduce((n, c) => n + envBytes(c.env), 0);
  const split = splitClaimEnv(configs, deviceNames);
  let written = envBytes(split.shared);
  for (const env of split.perDevice.values()) written += envBytes(env);
  return { stored, written };
}

/**
 * Why a claim's env is over the cap, or undefined when it is within it.
 * @returns e.g. "opaque config env is 70000 bytes (as stored: 70000; as written into the CDI spec: 70000), more
 *   than the 65536-byte limit per claim; ...", saying what to do.
 */
export function claimEnvProblem(configs: readonly ClaimConfig[], deviceNames: readonly string[]): string | undefined {
  const { stored, written } = claimEnvSize(configs, deviceNames);
  const size = Math.max(stored, written);
  if (size <= MAX_CLAIM_ENV_BYTES) return undefined;
  return (
    `opaque config env is ${size} bytes (as stored: ${stored}; as written into the CDI spec: ${written}), more than the ` +
    `${MAX_CLAIM_ENV_BYTES}-byte limit per claim; set what every device needs once, in a config without requests, ` +
    `and keep the claim's variables under ${MAX_CLAIM_ENV_BYTES} bytes`
  );
}

/**
 * The configs of a claim recorded before configs were stored per claim (each device carried its merged env):
 * one config per distinct env, applying to the devices that had it (`devices: []` when every device had it).
 * A device listed twice (several shareIDs) counts once, with its last env, as its CDI spec had it. Devices'
 * env in the result equals what each device carried.
 */
export function configsFromDeviceEnv(devices: readonly { readonly deviceName: string; readonly env?: Readonly<Record<string, string>> | undefined }[]): ClaimConfig[] {
  const byDevice = new Map<string, Readonly<Record<string, string>>>();
  for (const d of devices) byDevice.set(d.deviceName, d.env ?? {});
  const groups = new Map<string, { devices: string[]; env: Readonly<Record<string, string>> }>();
  for (const [device, env] of byDevice) {
    if (Object.keys(env).length === 0) continue;
    const key = JSON.stringify(Object.entries(env));
    const group = groups.get(key) ?? { devices: [], env };
    group.devices.push(device);
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => ({ devices: g.devices.length === byDevice.size ? [] : g.devices, env: g.env }));
}
