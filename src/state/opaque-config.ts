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
 */

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

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Variables gpulet sets itself (device identity, legacy-runtime isolation): a config may not override them. */
const RESERVED_ENV = (name: string): boolean =>
  name.startsWith('GPULET_') || name === 'NVIDIA_VISIBLE_DEVICES' || name === '__proto__';

/** True for a JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validate `parameters` of an opaque config addressed to our driver.
 * @returns the config, or a human-readable reason it is invalid (never throws).
 */
export function parseGpuConfig(parameters: unknown): GpuConfig | { readonly error: string } {
  if (!isJsonObject(parameters)) {
    return { error: `parameters must be a JSON object, got ${parameters === null ? 'null' : Array.isArray(parameters) ? 'an array' : typeof parameters}` };
  }
  let size: number;
  try {
    size = Buffer.byteLength(JSON.stringify(parameters), 'utf8');
  } catch {
    return { error: 'parameters are not serialisable JSON' };
  }
  if (size > MAX_OPAQUE_PARAMETERS_BYTES) {
    return { error: `parameters are ${size} bytes, more than the ${MAX_OPAQUE_PARAMETERS_BYTES}-byte limit` };
  }
  const unknownKeys = Object.keys(parameters).filter((k) => k !== 'apiVersion' && k !== 'kind' && k !== 'env');
  if (unknownKeys.length > 0) {
    return { error: `unknown field(s) ${unknownKeys.map((k) => JSON.stringify(k)).join(', ')}; allowed: apiVersion, kind, env` };
  }
  if (parameters['apiVersion'] !== GPU_CONFIG_API_VERSION || parameters['kind'] !== GPU_CONFIG_KIND) {
    return {
      error:
        `apiVersion/kind must be ${JSON.stringify(GPU_CONFIG_API_VERSION)}/${JSON.stringify(GPU_CONFIG_KIND)}, ` +
        `got ${JSON.stringify(parameters['apiVersion'] ?? null)}/${JSON.stringify(parameters['kind'] ?? null)}`,
    };
  }
  const rawEnv = parameters['env'];
  if (rawEnv === undefined) return { env: {} };
  if (!isJsonObject(rawEnv)) return { error: 'env must be an object of name → string value' };
  const env: [string, string][] = [];
  for (const [name, value] of Object.entries(rawEnv)) {
    if (!ENV_NAME.test(name)) return { error: `env name ${JSON.stringify(name)} is not a valid variable name` };
    if (RESERVED_ENV(name)) return { error: `env name ${JSON.stringify(name)} is reserved by gpulet` };
    if (typeof value !== 'string') return { error: `env ${name} must be a string, got ${typeof value}` };
    // A NUL cannot be passed in an environment (execve) and runtimes refuse it at container start.
    if (value.includes('\0')) return { error: `env ${name} must not contain a NUL character` };
    env.push([name, value]);
  }
  // fromEntries defines own properties, so a name like `__proto__` cannot touch the prototype.
  return { env: Object.fromEntries(env) };
}
