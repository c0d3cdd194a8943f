/**
 * The opaque device configuration gpulet accepts (`status.allocation.devices.config[].opaque.parameters`
 * where `opaque.driver` is ours; resource.k8s.io/v1 `OpaqueDeviceConfiguration`). Pure.
 *
 * Shape (like NVIDIA's `GpuConfig`, an object carrying apiVersion and kind):
 * ```json
 * {"apiVersion": "gpulet.dev/v1", "kind": "GpuConfig", "env": {"MY_VAR": "value"}}
 * ```
 * `env` (optional) adds environment variables to containers using the configured devices (through the
 * claim's CDI spec). Any other key is rejected with an error naming it, so a typo never passes silently.
 * Checked with a zod schema (below); the errors name the field and the problem.
 */
import { z } from 'zod';
import { cIdentifierProblem } from '../model/names.js';

/** Required `apiVersion` of gpulet's opaque config. */
export const GPU_CONFIG_API_VERSION = 'gpulet.dev/v1';
/** Required `kind` of gpulet's opaque config. */
export const GPU_CONFIG_KIND = 'GpuConfig';
/** Upper bound of `parameters` (resource.k8s.io/v1 validation: OpaqueParametersMaxLength = 10 Ki). */
export const MAX_OPAQUE_PARAMETERS_BYTES = 10 * 1024;

/** A validated gpulet config. */
export interface GpuConfig {
  /** Environment variables to add, name → value. */
  readonly env: Readonly<Record<string, string>>;
}

/** True for a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `null`, `an array`, or the `typeof` of a value that should have been an object. */
function kindOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * zod schema of a JSON object read as a record: every own key is checked by `key` and its value by `value`,
 * in key order, a `__proto__` key included (JSON.parse makes it an own key; `z.record` would skip it
 * silently). Anything but an object fails with "expected an object, received ...". The output is a plain
 * object built with `Object.fromEntries` (own properties only: no key can reach the prototype).
 */
export function jsonRecord<V extends z.ZodType>(key: z.ZodType<string>, value: V) {
  return z
    .preprocess(
      (raw) => (isJsonObject(raw) ? new Map(Object.entries(raw)) : raw),
      z.map(key, value, { error: (issue) => `expected an object, received ${kindOf(issue.input)}` }),
    )
    .transform((entries) => Object.fromEntries(entries) as Record<string, z.output<V>>);
}

/** Variables gpulet sets itself (device identity, legacy-runtime isolation): a config may not override them. */
const RESERVED_ENV = (name: string): boolean =>
  name.startsWith('GPULET_') || name === 'NVIDIA_VISIBLE_DEVICES' || name === '__proto__';

/** Marks the issues of an env name, whose messages are complete errors. */
const NAME_ISSUE = { envName: true } as const;

/** An env name: a C identifier, not one of gpulet's own. The messages are the final per-name errors. */
const envNameSchema = z.string().superRefine((name, ctx) => {
  if (cIdentifierProblem(name, MAX_OPAQUE_PARAMETERS_BYTES) !== undefined) {
    ctx.addIssue({ code: 'custom', message: `env name ${JSON.stringify(name)} is not a valid variable name`, params: NAME_ISSUE });
  } else if (RESERVED_ENV(name)) {
    ctx.addIssue({ code: 'custom', message: `env name ${JSON.stringify(name)} is reserved by gpulet`, params: NAME_ISSUE });
  }
});

/** An env value: whatever string a process environment can hold. Messages are completed with `env <NAME> `. */
const envValueSchema = z
  .string({ error: (issue) => `must be a string, got ${typeof issue.input}` })
  // A NUL cannot be passed in an environment (execve) and runtimes refuse it at container start.
  .refine((value) => !value.includes('\0'), 'must not contain a NUL character');

/**
 * zod schema of a config's `env` (name → value), with the rules above: names C identifiers and not gpulet's own
 * (`GPULET_*`, `NVIDIA_VISIBLE_DEVICES`, `__proto__`), values strings without NUL. Also what the checkpoint
 * re-checks on load (checkpoint-entry.ts), since a file is not trusted for what prepare checked.
 */
export const gpuEnvSchema = jsonRecord(envNameSchema, envValueSchema);

/** The config: exactly these keys (an unknown one is reported before anything else). */
const gpuConfigSchema = z.strictObject({
  apiVersion: z.literal(GPU_CONFIG_API_VERSION),
  kind: z.literal(GPU_CONFIG_KIND),
  env: gpuEnvSchema.optional(),
});

/** The error of a failed config, from the schema's issues: unknown keys first, then in field order. */
function configProblem(issues: readonly z.core.$ZodIssue[], parameters: Record<string, unknown>): string {
  const unknownKeys = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknownKeys !== undefined) {
    return `unknown field(s) ${unknownKeys.keys.map((k) => JSON.stringify(k)).join(', ')}; allowed: apiVersion, kind, env`;
  }
  const issue = issues[0];
  const [field, name] = issue?.path ?? [];
  if (field === 'env' && name === undefined) return 'env must be an object of name → string value';
  if (field === 'env' && issue?.code === 'custom' && issue.params?.['envName'] === true) return issue.message;
  if (field === 'env') return `env ${String(name)} ${issue?.message ?? 'is invalid'}`;
  return (
    `apiVersion/kind must be ${JSON.stringify(GPU_CONFIG_API_VERSION)}/${JSON.stringify(GPU_CONFIG_KIND)}, ` +
    `got ${JSON.stringify(parameters['apiVersion'] ?? null)}/${JSON.stringify(parameters['kind'] ?? null)}`
  );
}

/**
 * Validate `parameters` of an opaque config addressed to our driver: a JSON object of at most
 * {@link MAX_OPAQUE_PARAMETERS_BYTES} bytes (serialised), then the schema above.
 * @returns the config, or a human-readable reason it is invalid (never throws): "parameters must be a JSON
 *   object, got ...", "parameters are N bytes, more than the 10240-byte limit", "unknown field(s) ...",
 *   "apiVersion/kind must be ...", "env must be an object ...", "env name X is not a valid variable name",
 *   "env name X is reserved by gpulet", "env X must be a string, got ...", "env X must not contain a NUL
 *   character" (the first problem found, entries in key order).
 */
export function parseGpuConfig(parameters: unknown): GpuConfig | { readonly error: string } {
  if (!isJsonObject(parameters)) return { error: `parameters must be a JSON object, got ${kindOf(parameters)}` };
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(parameters), 'utf8');
  } catch {
    return { error: 'parameters are not serialisable JSON' };
  }
  if (size > MAX_OPAQUE_PARAMETERS_BYTES) {
    return { error: `parameters are ${size} bytes, more than the ${MAX_OPAQUE_PARAMETERS_BYTES}-byte limit` };
  }
  const parsed = gpuConfigSchema.safeParse(parameters);
  if (!parsed.success) return { error: configProblem(parsed.error.issues, parameters) };
  return { env: parsed.data.env ?? {} };
}
