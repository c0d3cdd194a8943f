/**
 * The driver userspace's container edits: what every claim's CDI spec gets at spec level (src/state/cdi.ts),
 * and the pure step that builds them from what was found on the host ({@link planUserspaceEdits}). No I/O.
 *
 * CDI fields (cdi-schema `Mount`, `Hook`; container-device-interface `specs-go/config.go`): a mount is
 * `{hostPath, containerPath, options}`, a hook `{hookName, path, args}` run by the runtime on the host.
 *
 * Two ways to give a container the `.so.1` sonames and a usable ld cache:
 * - with NVIDIA's `nvidia-cdi-hook` on the host (the toolkit's `createContainer` hooks, as its generated
 *   `nvidia.yaml` carries them): the real files are mounted at their own paths, `create-symlinks --link
 *   <file>::<dir>/<soname>` makes the sonames, `update-ldcache --folder <dir>` adds the dirs to the container's
 *   ld cache (toolkit `internal/discover/ldconfig.go` `CreateLDCacheUpdateHook`, `CreateNvidiaCTKHook`);
 * - without it, no hook is needed: the real file is mounted also at each soname's path (the dir of the host's ld
 *   cache entry, e.g. `/lib/x86_64-linux-gnu/libcuda.so.1`, and of the soname link beside the file), which the
 *   dynamic linker finds in its default dirs of a Debian/Ubuntu-family image even with no ld cache entry.
 */
import { MOUNT_OPTIONS } from './driver-files.js';

/** A CDI `Mount`. */
export interface CdiMount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly options?: readonly string[];
}

/** A CDI `Hook`. */
export interface CdiHook {
  readonly hookName: 'createContainer';
  readonly path: string;
  readonly args: readonly string[];
}

/** Edits of the driver userspace, added to every claim spec's spec-level `containerEdits`. */
export interface UserspaceEdits {
  readonly mounts: readonly CdiMount[];
  readonly hooks: readonly CdiHook[];
}

/** A soname of a library: its name and the directory it is found in (paths inside the driver root). */
export interface FoundSoname {
  readonly name: string;
  readonly dir: string;
}

/** A driver library found for the running version (paths inside the driver root, absolute). */
export interface FoundLibrary {
  /** The list's name, e.g. `libcuda.so`. */
  readonly library: string;
  /** Directory of the real file, symlinks resolved, e.g. `/usr/lib/x86_64-linux-gnu/nvidia/current`. */
  readonly dir: string;
  /** The real file's name, `<library>.<version>`, e.g. `libcuda.so.535.261.03`. */
  readonly file: string;
  /** Its sonames (ld cache entries and soname links that resolve to the file), e.g. `libcuda.so.1`. */
  readonly sonames: readonly FoundSoname[];
}

/** A binary: the path it was found at (e.g. `/usr/bin/nvidia-smi`) and the real file it resolves to. */
export interface FoundBinary {
  readonly path: string;
  readonly target: string;
}

/** What the scan of the driver root found (paths inside the driver root). */
export interface DriverFiles {
  /** The driver version the files are of (NVML `nvmlSystemGetDriverVersion`), e.g. `535.261.03`. */
  readonly version: string;
  readonly libraries: readonly FoundLibrary[];
  readonly binaries: readonly FoundBinary[];
  /** GSP firmware files, e.g. `/lib/firmware/nvidia/535.261.03/gsp_ga10x.bin`. */
  readonly firmware: readonly string[];
  /** IPC sockets and dirs present, e.g. `/var/run/nvidia-persistenced/socket`. */
  readonly ipc: readonly string[];
  /** Host path of `nvidia-cdi-hook` when the host has it; no hooks otherwise. */
  readonly cdiHook?: string;
}

/** `root` + `path` for absolute `path` inside the root (`/` → `path` itself). */
export function underRoot(root: string, path: string): string {
  const r = root.replace(/\/+$/, '');
  return r === '' ? path : `${r}${path}`;
}

/**
 * The container edits of the found files.
 * @param files what the scan found, paths inside the driver root.
 * @param hostDriverRoot the driver root as the runtime sees it (`--nvidia-driver-root`, e.g. `/` or
 *   `/run/nvidia/driver`): every `hostPath` is under it; `containerPath`s are the paths inside the root.
 * @returns mounts sorted by container path (deterministic), at most one per container path; the hooks (in
 *   hook mode: one `create-symlinks` with every soname link, one `update-ldcache` with every library dir).
 */
export function planUserspaceEdits(files: DriverFiles, hostDriverRoot: string): UserspaceEdits {
  const byContainerPath = new Map<string, CdiMount>();
  const mount = (source: string, containerPath: string): void => {
    if (!byContainerPath.has(containerPath)) {
      byContainerPath.set(containerPath, { hostPath: underRoot(hostDriverRoot, source), containerPath, options: [...MOUNT_OPTIONS] });
    }
  };
  const links: string[] = [];
  const libDirs: string[] = [];
  for (const lib of files.libraries) {
    const real = `${lib.dir}/${lib.file}`;
    mount(real, real);
    if (!libDirs.includes(lib.dir)) libDirs.push(lib.dir);
    for (const s of lib.sonames) {
      if (files.cdiHook !== undefined) {
        const link = `${lib.dir}/${s.name}`;
        const arg = `${lib.file}::${link}`;
        if (!links.includes(arg)) links.push(arg);
      } else {
        mount(real, `${s.dir}/${s.name}`);
      }
    }
  }
  for (const b of files.binaries) mount(b.target, b.path);
  for (const f of files.firmware) mount(f, f);
  for (const p of files.ipc) mount(p, p);
  const hooks: CdiHook[] = [];
  if (files.cdiHook !== undefined) {
    if (links.length > 0) {
      hooks.push({ hookName: 'createContainer', path: files.cdiHook, args: ['nvidia-cdi-hook', 'create-symlinks', ...links.flatMap((l) => ['--link', l])] });
    }
    if (libDirs.length > 0) {
      hooks.push({ hookName: 'createContainer', path: files.cdiHook, args: ['nvidia-cdi-hook', 'update-ldcache', ...libDirs.flatMap((d) => ['--folder', d])] });
    }
  }
  const mounts = [...byContainerPath.values()].sort((a, b) => (a.containerPath < b.containerPath ? -1 : a.containerPath > b.containerPath ? 1 : 0));
  return { mounts, hooks };
}
