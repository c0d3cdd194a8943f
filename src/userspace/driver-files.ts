/**
 * What of the NVIDIA driver's userspace a CUDA container gets, as NVIDIA's tools choose it for the
 * `compute,utility` driver capabilities (the default of CUDA images: `NVIDIA_DRIVER_CAPABILITIES=compute,utility`).
 * Pure data, no I/O.
 *
 * Sources (NVIDIA/libnvidia-container `src/nvc_info.c`; NVIDIA/nvidia-container-toolkit `pkg/nvcdi/driver-nvml.go`,
 * `internal/discover/ipc.go`, `internal/discover/mounts.go`, `internal/discover/ldconfig.go`):
 * - libraries: `utility_libs` and `compute_libs` of nvc_info.c. The toolkit's CDI generator mounts every
 *   `*.so.<driver version>` in libcuda's directory (`getVersionLibs`); gpulet mounts the named ones, each only
 *   in the running driver's version (`<name>.so.<version>`), so a leftover library of another version never
 *   reaches a container.
 * - binaries: `utility_bins` and `compute_bins` of nvc_info.c, the first five of the toolkit's
 *   `newDriverBinariesDiscoverer` (the IMEX daemon is for multi-node NVLink, not a CUDA program).
 * - GSP firmware: `nvidia/<version>/gsp*.bin` under the kernel's firmware search path
 *   (`newDriverFirmwareDiscoverer`; the kernel's `/lib/firmware/updates/` first, then `/lib/firmware/`).
 * - IPC: the persistence daemon's and fabric manager's sockets and the MPS pipe directory (`NewIPCDiscoverer`).
 * - mount options `ro, nosuid, nodev, rbind, rprivate` (`mounts.Mounts`).
 */

/** Utility libraries (nvc_info.c `utility_libs`): NVML and the GPU configuration library. */
export const UTILITY_LIBRARIES = ['libnvidia-ml.so', 'libnvidia-cfg.so'] as const;

/** Compute libraries (nvc_info.c `compute_libs`), without the `.so` suffix's version. */
export const COMPUTE_LIBRARIES = [
  'libcuda.so', // CUDA driver library
  'libcudadebugger.so', // CUDA debugger library
  'libnvidia-opencl.so', // OpenCL ICD
  'libnvidia-gpucomp.so', // shared compiler library
  'libnvidia-ptxjitcompiler.so', // PTX-SASS JIT compiler (used by libcuda)
  'libnvidia-fatbinaryloader.so', // fatbin loader (used by libcuda; older drivers)
  'libnvidia-allocator.so', // allocator runtime library
  'libnvidia-compiler.so', // NVVM-PTX compiler for OpenCL (older drivers)
  'libnvidia-pkcs11.so', // encrypt/decrypt library (confidential computing)
  'libnvidia-pkcs11-openssl3.so', // the same, against OpenSSL 3
  'libnvidia-nvvm.so', // NVVM compiler library
] as const;

/** Every library looked for, utility first. */
export const DRIVER_LIBRARIES: readonly string[] = [...UTILITY_LIBRARIES, ...COMPUTE_LIBRARIES];

/** Binaries (nvc_info.c `utility_bins` + `compute_bins`). */
export const DRIVER_BINARIES = [
  'nvidia-smi', // system management interface
  'nvidia-debugdump', // GPU core-dump utility
  'nvidia-persistenced', // persistence daemon
  'nvidia-cuda-mps-control', // MPS control
  'nvidia-cuda-mps-server', // MPS server
] as const;

/** Directories searched for binaries, in order (the toolkit's executable locator: `PATH`, then these defaults). */
export const BINARY_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'] as const;

/** Firmware roots searched for `nvidia/<version>/gsp*.bin`, in the kernel's order. */
export const FIRMWARE_DIRS = ['/lib/firmware/updates', '/lib/firmware'] as const;

/** IPC sockets and directories mounted when present (`NewIPCDiscoverer`). */
export const IPC_PATHS = ['/var/run/nvidia-persistenced/socket', '/var/run/nvidia-fabricmanager/socket', '/tmp/nvidia-mps'] as const;

/** Options of every mount (`mounts.Mounts` of the toolkit): read-only, no set-uid, no device files. */
export const MOUNT_OPTIONS = ['ro', 'nosuid', 'nodev', 'rbind', 'rprivate'] as const;

/** Where the toolkit installs `nvidia-cdi-hook` (its packages; the GPU Operator's toolkit container). */
export const CDI_HOOK_PATHS = ['/usr/bin/nvidia-cdi-hook', '/usr/local/bin/nvidia-cdi-hook', '/usr/local/nvidia/toolkit/nvidia-cdi-hook'] as const;

/**
 * Multiarch triplet of a Node.js `process.arch` (Debian's `DEB_HOST_MULTIARCH`), or undefined.
 * x64 → `x86_64-linux-gnu`, arm64 → `aarch64-linux-gnu`.
 */
export function multiarchTriplet(arch: string): string | undefined {
  if (arch === 'x64') return 'x86_64-linux-gnu';
  if (arch === 'arm64') return 'aarch64-linux-gnu';
  return undefined;
}

/**
 * Library directories searched besides the ld cache's, in order: the multiarch dirs (Debian, Ubuntu), Debian's
 * `nvidia/current` alternative dir (where Debian's `libcuda1`, `libnvidia-ml1` put the real files), the
 * RHEL-family `lib64` dirs, and the plain `lib` dirs.
 */
export function libraryDirs(arch: string): string[] {
  const t = multiarchTriplet(arch);
  const multiarch = t === undefined ? [] : [`/usr/lib/${t}`, `/usr/lib/${t}/nvidia/current`, `/lib/${t}`];
  return [...multiarch, '/usr/lib64', '/lib64', '/usr/lib', '/lib'];
}

/** True when `name` is a library of the list in the driver's version: `<lib>.so.<version>` exactly. */
export function versionedLibrary(name: string, version: string): string | undefined {
  return DRIVER_LIBRARIES.find((lib) => name === `${lib}.${version}`);
}

/**
 * True when `name` is a soname of library `lib` (e.g. `libcuda.so` → `libcuda.so.1`, `libnvidia-nvvm.so` →
 * `libnvidia-nvvm.so.4`): `<lib>.<digits>`, not the version-suffixed file itself.
 */
export function isSonameOf(name: string, lib: string): boolean {
  return name.startsWith(`${lib}.`) && /^\d+$/.test(name.slice(lib.length + 1));
}
