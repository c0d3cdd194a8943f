/**
 * The NVIDIA Container Toolkit's generated CDI spec (`nvidia-ctk cdi generate`, or the toolkit's
 * `nvidia-cdi-refresh` service / the GPU Operator): `nvidia.yaml` in `/var/run/cdi` or `/etc/cdi` (the CDI
 * spec dirs runtimes read, container-device-interface `pkg/cdi` `DefaultSpecDirs`), kind `nvidia.com/gpu`,
 * one device per GPU and MIG device. With `--device-name-strategy=uuid` its devices are named by UUID
 * (`GPU-…`, `MIG-…`), the names gpulet needs to reference a claim's device: `nvidia.com/gpu=<uuid>`.
 *
 * Read once per driver version (`provider.ts`), bounded ({@link TOOLKIT_SPEC_MAX_BYTES}); YAML or JSON (YAML is
 * a superset). Only what gpulet uses is validated: `kind` and each device's `name`.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CdiError, errorMessage } from '../errors.js';

/** CDI kind of the toolkit's devices. */
export const TOOLKIT_CDI_KIND = 'nvidia.com/gpu';
/** File names of the toolkit's spec, in the order looked for in each dir. */
export const TOOLKIT_SPEC_FILES = ['nvidia.yaml', 'nvidia.json'] as const;
/** Dirs looked in, after gpulet's own `--cdi-dir` (runtimes' default CDI spec dirs; `/etc/cdi` is static, `/var/run/cdi` dynamic). */
export const TOOLKIT_SPEC_DIRS = ['/var/run/cdi', '/etc/cdi'] as const;
/** Largest spec read, bytes (a spec of 8 GPUs with every MIG device is some hundred KiB). */
export const TOOLKIT_SPEC_MAX_BYTES = 8 * 1024 * 1024;
/** Most devices taken from one spec. */
const MAX_DEVICES = 4096;

const specSchema = z.object({
  cdiVersion: z.string().max(32),
  kind: z.string().max(256),
  devices: z.array(z.object({ name: z.string().min(1).max(256) }).passthrough()).max(MAX_DEVICES),
}).passthrough();

/** The parts of the toolkit's spec gpulet uses. */
export interface ToolkitSpec {
  /** The file it was read from, as the agent sees it. */
  readonly path: string;
  /** Device names, e.g. `GPU-…`, `MIG-…`, `0`, `all`. */
  readonly deviceNames: ReadonlySet<string>;
}

/** Read a file of at most `max` bytes. @returns undefined when there is none (ENOENT, ENOTDIR). @throws CdiError */
async function readBounded(path: string, max: number): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CdiError(`cannot open the NVIDIA Container Toolkit's CDI spec ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new CdiError(`${path} is not a regular file; expected the NVIDIA Container Toolkit's CDI spec`);
    if (st.size > max) throw new CdiError(`the NVIDIA Container Toolkit's CDI spec ${path} is ${st.size} bytes, more than the ${max} read`);
    const buf = Buffer.alloc(st.size);
    const { bytesRead } = await handle.read(buf, 0, st.size, 0);
    return buf.toString('utf8', 0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Parse a toolkit spec's text. Pure.
 * @throws CdiError naming `path` when it is not YAML/JSON, not a CDI spec, or of another kind.
 */
export function parseToolkitSpec(path: string, text: string): ToolkitSpec {
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new CdiError(`the NVIDIA Container Toolkit's CDI spec ${path} is not YAML or JSON: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = specSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CdiError(`${path} is not a CDI spec: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  if (parsed.data.kind !== TOOLKIT_CDI_KIND) {
    throw new CdiError(`${path} is of kind ${JSON.stringify(parsed.data.kind)}, not the NVIDIA Container Toolkit's ${TOOLKIT_CDI_KIND}`);
  }
  return { path, deviceNames: new Set(parsed.data.devices.map((d) => d.name)) };
}

/**
 * Find and read the toolkit's spec: the first of {@link TOOLKIT_SPEC_FILES} in `dirs` (in order).
 * @returns the spec, or undefined when no dir has one.
 * @throws CdiError when a file is there but cannot be read or is not the toolkit's spec (naming the file).
 */
export async function findToolkitSpec(dirs: readonly string[]): Promise<ToolkitSpec | undefined> {
  for (const dir of dirs) {
    for (const name of TOOLKIT_SPEC_FILES) {
      const path = join(dir, name);
      const text = await readBounded(path, TOOLKIT_SPEC_MAX_BYTES);
      if (text !== undefined) return parseToolkitSpec(path, text);
    }
  }
  return undefined;
}

/** The toolkit's qualified device ID of a device UUID, e.g. `nvidia.com/gpu=GPU-…`. */
export function toolkitDeviceId(uuid: string): string {
  return `${TOOLKIT_CDI_KIND}=${uuid}`;
}
