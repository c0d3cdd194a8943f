/**
 * Build the CDI spec of one prepared claim. Pure: no I/O, deterministic (the writer is `cdi-writer.ts`).
 *
 * Layout follows NVIDIA's k8s-dra-driver-gpu (cmd/gpu-kubelet-plugin/cdi.go): vendor `k8s.<driver>`,
 * class `claim`, one transient spec per claim named `<vendor>-<class>_<claimUID>.json`, device names
 * `<claimUID>-<deviceName>`, qualified IDs `<vendor>/<class>=<claimUID>-<deviceName>` (docs/contracts.md §6).
 *
 * Container edits:
 * - spec level (applied once whenever any device of the claim is injected): `/dev/nvidiactl` (c 195:255),
 *   `/dev/nvidia-uvm` (c <nvidia-uvm>:0), `/dev/nvidia-uvm-tools` (c <nvidia-uvm>:1), and
 *   `NVIDIA_VISIBLE_DEVICES=void`, as NVIDIA's driver sets in its base spec so that a legacy-mode
 *   nvidia-container-runtime does not inject GPUs beyond the CDI-listed nodes (CUDA images set
 *   `NVIDIA_VISIBLE_DEVICES=all`).
 * - per device: `/dev/nvidia<minor>` (c 195:<minor>) of the GPU (for MIG devices the parent's), and for MIG
 *   the GPU-instance and compute-instance access nodes `/dev/nvidia-caps/nvidia-cap<N>` (c <nvidia-caps>:N);
 *   env `GPULET_DEVICE_<NAME>=<uuid>` plus the env of our opaque config that is the device's own. Each device
 *   uses its own variable: CDI applies edits with OCI `AddProcessEnv` semantics (same name: last wins), so a
 *   per-device `NVIDIA_VISIBLE_DEVICES=<uuid>` would leave only one UUID for a multi-device claim.
 * - opaque-config env that every device of the claim has with the same value is written once, at spec level
 *   (`env` of {@link BuildCdiSpecInput}, split by claim-env.ts), after `NVIDIA_VISIBLE_DEVICES=void`; the rest
 *   stays per device. Same container env as repeating it per device: the CDI library applies a spec's edits
 *   before the first of its devices a container gets (pkg/cdi cache `InjectDevices`), and last wins only
 *   between different values — a shared variable has one value, and no device of the claim sets it again (a
 *   variable whose value differs between devices stays with each device, last wins as before).
 *
 * - spec level too, with `--driver-userspace=discover`: the driver userspace's read-only bind mounts (libraries,
 *   binaries, GSP firmware, IPC sockets) and, when the host has `nvidia-cdi-hook`, its hooks
 *   (src/userspace/edits.ts). `NVIDIA_VISIBLE_DEVICES=void` stays with them, as in the toolkit's own spec.
 *
 * Majors: 195 is the fixed NVIDIA character major; `nvidia-uvm` and `nvidia-caps` majors are dynamic
 * (`/proc/devices`, see `proc-devices.ts`). MIG capability minors follow the kernel module's fixed layout of
 * `/proc/driver/nvidia-caps/mig-minors` (`gpu<minor>/gi<G>/access` = 3 + 135·minor + 9·G and
 * `gpu<minor>/gi<G>/ci<C>/access` = that + 1 + C; e.g. gpu3/gi3/ci3 → 439, as quoted in NVIDIA's DRA
 * driver), which NVIDIA's toolkit reads to build `/dev/nvidia-caps/nvidia-cap<N>` nodes.
 */
import type { AllocatableDevice } from '../model/devices.js';
import type { CdiHook, CdiMount, UserspaceEdits } from '../userspace/edits.js';
import { isObjectUid } from '../model/names.js';
import { CdiError } from '../errors.js';

/** CDI class of per-claim specs. */
export const CDI_CLAIM_CLASS = 'claim';
/** Character-device major of `/dev/nvidia<minor>` and `/dev/nvidiactl`. */
export const NVIDIA_MAJOR = 195;
/** Minor of `/dev/nvidiactl`. */
export const NVIDIACTL_MINOR = 255;

/** Dynamic majors, from `/proc/devices`. An absent major makes the node path-only (the runtime stats it). */
export interface DeviceMajors {
  readonly nvidiaUvm?: number;
  readonly nvidiaCaps?: number;
}

/** Plausible majors for mock mode (dynamic majors are allocated from 511 downwards on real hosts). */
export const MOCK_DEVICE_MAJORS: Required<DeviceMajors> = { nvidiaUvm: 510, nvidiaCaps: 511 };

/** CDI vendor of a driver: `k8s.<driverName>`, e.g. `k8s.gpu.gpulet.dev`. */
export function cdiVendor(driverName: string): string {
  return `k8s.${driverName}`;
}

/** CDI device name of a claim's device: `<claimUID>-<deviceName>`. */
export function cdiDeviceName(claimUid: string, deviceName: string): string {
  return `${claimUid}-${deviceName}`;
}

/** Fully-qualified CDI device ID, what `cdi_device_ids` carries: `<vendor>/<class>=<claimUID>-<device>`. */
export function cdiDeviceId(vendor: string, cdiClass: string, claimUid: string, deviceName: string): string {
  return `${vendor}/${cdiClass}=${cdiDeviceName(claimUid, deviceName)}`;
}

/**
 * File name of a claim's spec, as the CDI library's `GenerateTransientSpecName` + `.json`:
 * `<vendor>-<class>_<claimUID>.json`.
 * Only an object UID (a lower-case UUID, `isObjectUid` of src/model/names.ts) may become part of a file name.
 * @throws CdiError when the UID is not one (it must never carry `/` or `..`).
 */
export function cdiSpecFileName(vendor: string, cdiClass: string, claimUid: string): string {
  if (!isObjectUid(claimUid)) {
    throw new CdiError(`claim uid ${JSON.stringify(claimUid)} is not a lower-case UUID; refusing to use it in a CDI spec file name`);
  }
  return `${vendor}-${cdiClass}_${claimUid}.json`;
}

/** Minors of the MIG capability nodes of GPU instance `gi` / compute instance `ci` on the GPU of `gpuMinor`. */
export function migCapMinors(gpuMinor: number, gi: number, ci: number): { readonly gi: number; readonly ci: number } {
  const giMinor = 3 + 135 * gpuMinor + 9 * gi;
  return { gi: giMinor, ci: giMinor + 1 + ci };
}

/** A CDI `DeviceNode` (only the fields gpulet sets). */
export interface CdiDeviceNode {
  readonly path: string;
  readonly hostPath?: string;
  readonly type?: 'c';
  readonly major?: number;
  readonly minor?: number;
}

/** CDI `ContainerEdits` (only the fields gpulet sets). */
export interface CdiContainerEdits {
  readonly env?: readonly string[];
  readonly deviceNodes?: readonly CdiDeviceNode[];
  /** The driver userspace's bind mounts (spec level only; src/userspace/edits.ts). */
  readonly mounts?: readonly CdiMount[];
  /** The driver userspace's `nvidia-cdi-hook` hooks (spec level only; src/userspace/edits.ts). */
  readonly hooks?: readonly CdiHook[];
}

/** A CDI spec document (cdi-schema/schema.json). */
export interface CdiSpec {
  readonly cdiVersion: string;
  readonly kind: string;
  readonly devices: readonly { readonly name: string; readonly containerEdits: CdiContainerEdits }[];
  readonly containerEdits?: CdiContainerEdits;
}

/** One device of the claim to put in the spec. */
export interface CdiClaimDevice {
  readonly device: AllocatableDevice;
  /** Extra env of this device from the opaque config (what it does not share with every device of the claim). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Input of {@link buildCdiSpec}. */
export interface BuildCdiSpecInput {
  readonly driverName: string;
  readonly claimUid: string;
  readonly devices: readonly CdiClaimDevice[];
  /** Extra env every device of the claim shares (opaque config): written once, in the spec-level edits. */
  readonly env?: Readonly<Record<string, string>>;
  /** Dynamic majors; in `devRoot` mode missing ones default to {@link MOCK_DEVICE_MAJORS}. */
  readonly majors?: DeviceMajors;
  /**
   * Mock mode: every node gets `hostPath: <devRoot>/<basename of path>` (a harmless regular file the writer
   * creates) and explicit type/major/minor, so no consumer stats a real device.
   */
  readonly devRoot?: string;
  /**
   * The driver userspace (`--driver-userspace=discover`: src/userspace/provider.ts): its mounts and hooks go
   * into the spec-level edits, so any device of the claim brings them once.
   */
  readonly userspace?: UserspaceEdits;
}

/** Environment variable carrying a device's UUID: `GPULET_DEVICE_<NAME>` (`gpu-0` → `GPULET_DEVICE_GPU_0`). */
export function deviceEnvName(deviceName: string): string {
  return `GPULET_DEVICE_${deviceName.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Build the spec of one claim.
 * @throws CdiError for an invalid claim UID, a vendor the CDI parser would reject, or no devices.
 */
export function buildCdiSpec(input: BuildCdiSpecInput): CdiSpec {
  const vendor = cdiVendor(input.driverName);
  if (!/^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(vendor)) {
    throw new CdiError(`driver name ${JSON.stringify(input.driverName)} gives CDI vendor ${JSON.stringify(vendor)}, which CDI parsers reject`);
  }
  if (!isObjectUid(input.claimUid)) {
    throw new CdiError(`claim uid ${JSON.stringify(input.claimUid)} is not a lower-case UUID`);
  }
  if (input.devices.length === 0) throw new CdiError(`claim ${input.claimUid}: no devices to put in a CDI spec`);
  const devRoot = input.devRoot;
  const majors: DeviceMajors = devRoot !== undefined ? { ...MOCK_DEVICE_MAJORS, ...input.majors } : (input.majors ?? {});
  const node = (path: string, major: number | undefined, minor: number): CdiDeviceNode => {
    const hostPath = devRoot !== undefined ? { hostPath: `${devRoot.replace(/\/+$/, '')}/${path.slice(path.lastIndexOf('/') + 1)}` } : {};
    return major === undefined ? { path, ...hostPath } : { path, ...hostPath, type: 'c', major, minor };
  };

  const devices = input.devices.map(({ device, env }) => {
    const nodes: CdiDeviceNode[] = [];
    const gpuMinor = device.gpu.minor;
    nodes.push(node(`/dev/nvidia${gpuMinor}`, NVIDIA_MAJOR, gpuMinor));
    if (device.kind === 'mig') {
      const caps = migCapMinors(device.mig.parentMinor, device.mig.gpuInstanceId, device.mig.computeInstanceId);
      nodes.push(node(`/dev/nvidia-caps/nvidia-cap${caps.gi}`, majors.nvidiaCaps, caps.gi));
      nodes.push(node(`/dev/nvidia-caps/nvidia-cap${caps.ci}`, majors.nvidiaCaps, caps.ci));
    }
    const envList = [`${deviceEnvName(device.name)}=${device.uuid}`, ...Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`)];
    return { name: cdiDeviceName(input.claimUid, device.name), containerEdits: { env: envList, deviceNodes: nodes } };
  });

  const specWithoutVersion = {
    kind: `${vendor}/${CDI_CLAIM_CLASS}`,
    devices,
    containerEdits: {
      env: ['NVIDIA_VISIBLE_DEVICES=void', ...Object.entries(input.env ?? {}).map(([k, v]) => `${k}=${v}`)],
      deviceNodes: [
        node('/dev/nvidiactl', NVIDIA_MAJOR, NVIDIACTL_MINOR),
        node('/dev/nvidia-uvm', majors.nvidiaUvm, 0),
        node('/dev/nvidia-uvm-tools', majors.nvidiaUvm, 1),
      ],
      ...(input.userspace !== undefined && input.userspace.mounts.length > 0 ? { mounts: input.userspace.mounts } : {}),
      ...(input.userspace !== undefined && input.userspace.hooks.length > 0 ? { hooks: input.userspace.hooks } : {}),
    },
  };
  return { cdiVersion: requiredCdiVersion(specWithoutVersion), ...specWithoutVersion };
}

/**
 * Lowest CDI version a spec needs, by the rules of the CDI library's `MinimumRequiredVersion`
 * (specs-go/version.go) for the features gpulet uses: 0.5.0 when a device node has `hostPath` or a device
 * name does not start with a letter (a claim UID may start with a digit); otherwise 0.3.0. (0.6.0 would be
 * needed only for annotations or a dot in the class.) Emitting the minimum matters: podman 4.3's CDI
 * library rejects a 0.6.0 spec.
 */
export function requiredCdiVersion(spec: Omit<CdiSpec, 'cdiVersion'>): '0.3.0' | '0.5.0' {
  const edits = [spec.containerEdits, ...spec.devices.map((d) => d.containerEdits)];
  const hostPath = edits.some((e) => e?.deviceNodes?.some((n) => n.hostPath !== undefined));
  const digitName = spec.devices.some((d) => !/^[A-Za-z]/.test(d.name));
  return hostPath || digitName ? '0.5.0' : '0.3.0';
}

/** Host paths of every device node of the spec (the stand-ins to create in mock mode). */
export function hostPaths(spec: CdiSpec): string[] {
  const edits = [spec.containerEdits, ...spec.devices.map((d) => d.containerEdits)];
  const paths = edits.flatMap((e) => e?.deviceNodes ?? []).flatMap((n) => (n.hostPath !== undefined ? [n.hostPath] : []));
  return [...new Set(paths)];
}
