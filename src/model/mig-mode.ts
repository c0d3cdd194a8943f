/**
 * `--mig-mode` (env `GPULET_MIG_MODE`): how each GPU's MIG devices are published. Pure, no I/O.
 *
 * - `static` (default): the MIG devices that exist when gpulet starts, one device each (NVIDIA's static MIG).
 * - `dynamic`: every possible MIG placement of the GPU and the full GPU, with one shared counter set per GPU
 *   (KEP-4815 partitionable devices, what NVIDIA's driver publishes with its DynamicMIG feature gate); the
 *   instance is created when a claim is prepared.
 *
 * Syntax: a comma-separated list of entries; an entry is a mode (the default of every GPU, at most one) or
 * `<gpu>=<mode>` for one GPU, where `<gpu>` is its UUID (`GPU-…`, as `nvidia-smi -L` prints it; compared
 * case-insensitively) or its NVML index (a decimal number, `nvidia-smi -i`). Examples: `dynamic`,
 * `dynamic,GPU-8a2f…=static,3=static` (every GPU dynamic except one by UUID and the one with index 3),
 * `0=dynamic` (only GPU 0 dynamic). An override naming a GPU the node does not have is reported at start-up.
 */

export const MIG_MODES = ['static', 'dynamic'] as const;
export type MigMode = (typeof MIG_MODES)[number];

/** Which GPU an override names. */
export type GpuSelector = { readonly uuid: string } | { readonly index: number };

/** The parsed option. */
export interface MigModeConfig {
  readonly default: MigMode;
  readonly overrides: readonly { readonly gpu: GpuSelector; readonly mode: MigMode }[];
}

/** The default configuration: every GPU static. */
export const STATIC_MIG_MODE: MigModeConfig = { default: 'static', overrides: [] };

/** Longest option value accepted (a 16-GPU node with a UUID override each fits well within it). */
export const MAX_MIG_MODE_LENGTH = 4096;

const UUID_RE = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isMode(s: string): s is MigMode {
  return (MIG_MODES as readonly string[]).includes(s);
}

/**
 * Parse `--mig-mode`. @returns the configuration, or a message saying what is wrong and what to write instead,
 * e.g. `entry "GPU-1=dynamic": "GPU-1" is neither a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor an NVML index`.
 */
export function parseMigMode(value: string): { ok: true; config: MigModeConfig } | { ok: false; problem: string } {
  if (value.length > MAX_MIG_MODE_LENGTH) return { ok: false, problem: `is ${value.length} characters, at most ${MAX_MIG_MODE_LENGTH} allowed` };
  const entries = value.split(',').map((e) => e.trim());
  let def: MigMode | undefined;
  const overrides: { gpu: GpuSelector; mode: MigMode }[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const q = JSON.stringify(entry);
    if (entry === '') return { ok: false, problem: `has an empty entry; write e.g. "dynamic,3=static"` };
    const eq = entry.indexOf('=');
    if (eq < 0) {
      if (!isMode(entry)) return { ok: false, problem: `entry ${q} is not a mode (static, dynamic) nor <gpu>=<mode>` };
      if (def !== undefined) return { ok: false, problem: `names the default mode twice (${def}, ${entry})` };
      def = entry;
      continue;
    }
    const sel = entry.slice(0, eq).trim();
    const mode = entry.slice(eq + 1).trim();
    if (!isMode(mode)) return { ok: false, problem: `entry ${q}: mode ${JSON.stringify(mode)} is not static or dynamic` };
    let gpu: GpuSelector;
    if (/^\d{1,4}$/.test(sel)) gpu = { index: Number(sel) };
    else if (UUID_RE.test(sel)) gpu = { uuid: sel.toLowerCase() };
    else {
      return {
        ok: false,
        problem: `entry ${q}: ${JSON.stringify(sel)} is neither a GPU UUID (GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx) nor an NVML index`,
      };
    }
    const key = 'uuid' in gpu ? gpu.uuid : `#${gpu.index}`;
    if (seen.has(key)) return { ok: false, problem: `names GPU ${sel} twice` };
    seen.add(key);
    overrides.push({ gpu, mode });
  }
  return { ok: true, config: { default: def ?? 'static', overrides } };
}

/** The mode of `gpu`: a UUID override wins over an index override, which wins over the default. */
export function migModeOf(config: MigModeConfig, gpu: { readonly uuid: string; readonly index: number }): MigMode {
  const uuid = gpu.uuid.toLowerCase();
  const byUuid = config.overrides.find((o) => 'uuid' in o.gpu && o.gpu.uuid === uuid);
  if (byUuid !== undefined) return byUuid.mode;
  const byIndex = config.overrides.find((o) => 'index' in o.gpu && o.gpu.index === gpu.index);
  return byIndex?.mode ?? config.default;
}

/** Overrides that name no GPU of `gpus` (for a start-up warning: a typo, or a GPU that fell off the bus). */
export function unmatchedOverrides(config: MigModeConfig, gpus: readonly { readonly uuid: string; readonly index: number }[]): string[] {
  return config.overrides
    .filter((o) => !gpus.some((g) => ('uuid' in o.gpu ? g.uuid.toLowerCase() === o.gpu.uuid : g.index === o.gpu.index)))
    .map((o) => ('uuid' in o.gpu ? o.gpu.uuid : String(o.gpu.index)));
}

/** The option as one string again (for logs): `dynamic,gpu-…=static,3=static`. */
export function formatMigMode(config: MigModeConfig): string {
  return [config.default, ...config.overrides.map((o) => `${'uuid' in o.gpu ? o.gpu.uuid : o.gpu.index}=${o.mode}`)].join(',');
}
