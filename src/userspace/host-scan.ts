/**
 * Finds the running driver version's userspace in the driver root, as the agent sees it (I/O half of
 * `edits.ts`; the lists and their sources are `driver-files.ts`).
 *
 * Libraries: the driver root's ld cache (`<root>/etc/ld.so.cache`, `ld-cache.ts`; at most
 * {@link LD_CACHE_MAX_BYTES}) names the directories of the listed libraries' sonames; those dirs, the dirs their
 * entries resolve to, and `libraryDirs()` (incl. Debian's `nvidia/current`) are searched, in that order, for
 * `<library>.so.<version>` — the toolkit's `getVersionLibs` (pkg/nvcdi/driver-nvml.go) likewise locates
 * `*.so.<version>` through the ld cache and libcuda's dir. Symlinks are followed inside the root (an absolute
 * link target is taken relative to the driver root, as under the GPU Operator's `/run/nvidia/driver`), never
 * out of it. Nothing here throws for a missing or unreadable file: what is not found is not mounted, and is
 * listed in {@link ScanResult.missing}.
 */
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { posix } from 'node:path';
import { errorMessage } from '../errors.js';
import {
  BINARY_DIRS, CDI_HOOK_PATHS, DRIVER_BINARIES, DRIVER_LIBRARIES, FIRMWARE_DIRS, IPC_PATHS, isSonameOf, libraryDirs,
} from './driver-files.js';
import { underRoot, type DriverFiles, type FoundBinary, type FoundLibrary, type FoundSoname } from './edits.js';
import { archFlag, isLibc6Of, LD_CACHE_MAX_BYTES, parseLdCache, type LdCacheEntry } from './ld-cache.js';

/** Options of {@link scanDriverRoot}. */
export interface ScanOptions {
  /** The driver root where the agent reads it (`--container-driver-root`), e.g. `/` or `/driver-root`. */
  readonly containerDriverRoot: string;
  /** The driver root as the host (the runtime) sees it (`--nvidia-driver-root`): the hook's host path is under it. */
  readonly hostDriverRoot: string;
  /** The running driver's version (NVML `nvmlSystemGetDriverVersion`), e.g. `535.261.03`. */
  readonly version: string;
  /** `process.arch` of the node (its libraries' architecture). */
  readonly arch?: string;
  /** Host path of `nvidia-cdi-hook` to use (`--nvidia-cdi-hook-path`); else found under the driver root, if there. */
  readonly cdiHookPath?: string;
}

/** The files found, and what was looked for and not found (for the log). */
export interface ScanResult {
  readonly files: DriverFiles;
  /** Libraries and binaries of the lists not found for this version, e.g. `libcuda.so.535.261.03`. */
  readonly missing: readonly string[];
  /** Why the ld cache was not used, when it was not (missing, too large, unreadable format). */
  readonly ldCacheProblem?: string;
}

/** Largest number of symlinks followed to resolve one path (Linux's `MAXSYMLINKS` is 40). */
const MAX_SYMLINKS = 40;

/**
 * Resolve `path` (absolute, inside the root) following every symlink inside `root`.
 * @returns the resolved path inside the root, or undefined when a component is missing or there are too many links.
 */
export async function resolveInRoot(root: string, path: string): Promise<string | undefined> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let resolved = '/';
  let budget = MAX_SYMLINKS;
  while (parts.length > 0) {
    const part = parts.shift() as string;
    if (part === '..') {
      resolved = posix.dirname(resolved);
      continue;
    }
    const next = posix.join(resolved, part);
    try {
      const st = await lstat(underRoot(root, next));
      if (!st.isSymbolicLink()) {
        resolved = next;
        continue;
      }
      if (--budget < 0) return undefined;
      const target = await readlink(underRoot(root, next));
      if (target.startsWith('/')) resolved = '/';
      parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
    } catch {
      return undefined;
    }
  }
  return resolved;
}

/** A regular file inside the root (lstat of the resolved path), with its mode; undefined otherwise. */
async function regularFile(root: string, path: string): Promise<{ mode: number } | undefined> {
  try {
    const st = await lstat(underRoot(root, path));
    return st.isFile() ? { mode: st.mode } : undefined;
  } catch {
    return undefined;
  }
}

async function list(root: string, dir: string): Promise<string[]> {
  try {
    return await readdir(underRoot(root, dir));
  } catch {
    return [];
  }
}

/** Read the root's ld cache, bounded. @returns entries, or the problem. */
async function readLdCache(root: string): Promise<{ entries: LdCacheEntry[]; problem?: string }> {
  const path = underRoot(root, '/etc/ld.so.cache');
  try {
    const handle = await open(path, 'r');
    try {
      const st = await handle.stat();
      if (!st.isFile()) return { entries: [], problem: `${path} is not a regular file` };
      if (st.size > LD_CACHE_MAX_BYTES) return { entries: [], problem: `${path} is ${st.size} bytes, more than the ${LD_CACHE_MAX_BYTES} read` };
      const buf = Buffer.alloc(st.size);
      const { bytesRead } = await handle.read(buf, 0, st.size, 0);
      return { entries: parseLdCache(buf.subarray(0, bytesRead)) };
    } finally {
      await handle.close();
    }
  } catch (err) {
    return { entries: [], problem: `${path}: ${errorMessage(err)}` };
  }
}

/**
 * Scan the driver root for the userspace of `options.version`.
 * @returns what was found (paths inside the root) and what was not. Never throws.
 */
export async function scanDriverRoot(options: ScanOptions): Promise<ScanResult> {
  const root = options.containerDriverRoot;
  const arch = options.arch ?? process.arch;
  const version = options.version;
  const missing: string[] = [];
  const cache = await readLdCache(root);
  const flag = archFlag(arch);
  const ours = cache.entries.filter((e) => (flag === undefined || isLibc6Of(e, flag)) && DRIVER_LIBRARIES.some((lib) => e.soname.startsWith(`${lib}.`)));

  // Candidate dirs: the ld cache's, the dirs its entries resolve to, then the fixed ones; each resolved in the root.
  const candidates: string[] = [];
  const resolvedEntries = new Map<LdCacheEntry, string | undefined>();
  for (const e of ours) {
    const target = await resolveInRoot(root, e.path);
    resolvedEntries.set(e, target);
    candidates.push(posix.dirname(e.path));
    if (target !== undefined) candidates.push(posix.dirname(target));
  }
  candidates.push(...libraryDirs(arch));
  const dirs: string[] = [];
  for (const d of candidates) {
    const r = await resolveInRoot(root, d);
    if (r !== undefined && !dirs.includes(r)) dirs.push(r);
  }
  const listings = new Map<string, string[]>();
  for (const d of dirs) listings.set(d, await list(root, d));

  const libraries: FoundLibrary[] = [];
  for (const lib of DRIVER_LIBRARIES) {
    const file = `${lib}.${version}`;
    const dir = dirs.find((d) => listings.get(d)?.includes(file));
    if (dir === undefined || (await regularFile(root, `${dir}/${file}`)) === undefined) {
      missing.push(file);
      continue;
    }
    const real = `${dir}/${file}`;
    const sonames: FoundSoname[] = [];
    const add = (s: FoundSoname): void => {
      if (!sonames.some((x) => x.name === s.name && x.dir === s.dir)) sonames.push(s);
    };
    for (const e of ours) if (isSonameOf(e.soname, lib) && resolvedEntries.get(e) === real) add({ name: e.soname, dir: posix.dirname(e.path) });
    for (const name of listings.get(dir) ?? []) {
      if (isSonameOf(name, lib) && (await resolveInRoot(root, `${dir}/${name}`)) === real) add({ name, dir });
    }
    libraries.push({ library: lib, dir, file, sonames });
  }

  const binaries: FoundBinary[] = [];
  for (const name of DRIVER_BINARIES) {
    let found: FoundBinary | undefined;
    for (const d of BINARY_DIRS) {
      const path = `${d}/${name}`;
      const target = await resolveInRoot(root, path);
      const file = target === undefined ? undefined : await regularFile(root, target);
      if (target !== undefined && file !== undefined && (file.mode & 0o111) !== 0) {
        found = { path, target };
        break;
      }
    }
    if (found === undefined) missing.push(name);
    else binaries.push(found);
  }

  const firmware: string[] = [];
  for (const d of FIRMWARE_DIRS) {
    const dir = `${d}/nvidia/${version}`;
    for (const name of (await list(root, dir)).sort()) {
      if (!/^gsp.*\.bin$/.test(name) || firmware.some((f) => posix.basename(f) === name)) continue;
      if ((await regularFile(root, `${dir}/${name}`)) !== undefined) firmware.push(`${dir}/${name}`);
    }
  }

  const ipc: string[] = [];
  for (const p of IPC_PATHS) {
    try {
      const st = await lstat(underRoot(root, p));
      if (st.isSocket() || st.isDirectory()) ipc.push(p);
    } catch {
      // absent: nothing to mount
    }
  }

  let cdiHook = options.cdiHookPath;
  if (cdiHook === undefined) {
    for (const p of CDI_HOOK_PATHS) {
      const target = await resolveInRoot(root, p);
      const file = target === undefined ? undefined : await regularFile(root, target);
      if (file !== undefined && (file.mode & 0o111) !== 0) {
        cdiHook = underRoot(options.hostDriverRoot, p);
        break;
      }
    }
  }

  const files: DriverFiles = { version, libraries, binaries, firmware, ipc, ...(cdiHook === undefined ? {} : { cdiHook }) };
  return { files, missing, ...(cache.problem === undefined ? {} : { ldCacheProblem: cache.problem }) };
}
