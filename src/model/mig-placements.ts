/**
 * The hardware's MIG placement rules, as an oracle independent of the published counters: which sets of GPU
 * instances NVML lets exist together on one GPU. Pure, no I/O. Used by the slice builder to publish only devices
 * that can be created, and by prepare (later: issue 12 item 3) to refuse cleanly, with the rule and the reason,
 * a placement the hardware would not accept, before any NVML call (the scheduler then retries elsewhere).
 *
 * Facts (NVIDIA Multi-Instance GPU User Guide, "Concepts → Partitioning" and "Supported MIG Profiles"; nvml.h):
 * - A100, H100 and H200 split memory into 8 memory slices and the SMs into 7 compute slices.
 * - A GPU instance of a GI profile sits at a placement `start:size` in memory slices (`nvmlGpuInstancePlacement_t`);
 *   `nvmlDeviceGetGpuInstancePossiblePlacements_v2` "only returns all the possible placements for the given
 *   profile", and "creation of new GPU instance will fail if there is overlap with the already occupied memory
 *   slices" (nvml.h) — `nvmlDeviceCreateGpuInstanceWithPlacement` answers NVML_ERROR_INSUFFICIENT_RESOURCES.
 * - A profile `<N>g.<M>gb` uses N compute slices; the instances of a GPU together use at most 7.
 * - A profile has at most `instanceCount` instances (`nvmlGpuInstanceProfileInfo_v2_t.instanceCount`, the
 *   guide's "Number of Instances Available").
 * - Media extensions (`+me`: the GPU's one OFA and its JPEG/decoder share for a 1g instance) go to one instance
 *   at most: "A single 1g profile can include media extensions" (the guide's profile tables). `+me.all`
 *   (RTX PRO 6000 Blackwell: all media engines to one instance) counts the same: it holds the OFA too, and the
 *   GPU has one (the guide's RTX PRO 6000 table: OFA 1 for `+me`, `+me.all` and the full `4g.96gb`;
 *   test/reference/mig-media-extensions.md).
 * - A GI profile must be one the GPU supports (`nvmlDeviceGetGpuInstanceProfileInfoV` answers
 *   NVML_ERROR_NOT_SUPPORTED otherwise).
 * - The whole GPU (no MIG instance; the full-GPU device) excludes every instance.
 */
import type { MigDeviceInfo, MigProfileSpec } from '../gpu/types.js';
import { migDeviceName } from './devices.js';

export type { MigProfileSpec } from '../gpu/types.js';

/** The MIG facts of one GPU: slice counts and the GI profiles it supports. */
export interface MigGeometry {
  /** Memory slices of the GPU (8 on A100/H100/H200, MIG guide). */
  readonly memorySlices: number;
  /** Compute slices of the GPU (7 on A100/H100/H200, MIG guide). */
  readonly computeSlices: number;
  /** Supported GI profiles with their possible placements. */
  readonly profiles: readonly MigProfileSpec[];
}

/** Memory and compute slices of A100, H100 and H200 (MIG guide, "Partitioning"). */
export const MIG_MEMORY_SLICES = 8;
export const MIG_COMPUTE_SLICES = 7;

/** A GPU instance of `profile` at memory slice `start` (existing, or a candidate). */
export interface MigPlacement {
  readonly profile: MigProfileSpec;
  readonly start: number;
}

/** What may be asked for on a GPU: one GPU instance at a placement, or the whole GPU. */
export type MigCandidate = MigPlacement | 'whole-gpu';

/** The rules of the module doc, by name (used in messages and by tests). */
export const HARDWARE_RULES = [
  'profile-supported',
  'possible-placement',
  'memory-slices',
  'compute-slices',
  'profile-maximum',
  'media-extensions',
  'whole-gpu',
] as const;
export type HardwareRule = (typeof HARDWARE_RULES)[number];

/** One broken rule, with a sentence naming the instances at fault. */
export interface RuleViolation {
  readonly rule: HardwareRule;
  readonly message: string;
}

/** The attributes of a profile name that ask for the media extensions (go-nvlib `AttributeMediaExtensions`, `AttributeMediaExtensionsAll`). */
const MEDIA_EXTENSION_ATTRIBUTES: ReadonlySet<string> = new Set(['me', 'me.all']);

/**
 * Whether the profile carries media extensions: `me` or `me.all` among the attributes of its name, which
 * follow a `+`, comma-separated, as `nvidia-smi` prints them and go-nvlib parses them
 * (pkg/nvlib/device/mig_profile.go `parseMigProfile`): `1g.10gb+me`, `1g.24gb+me.all`. `-me` (no media
 * engines) and `+gfx` do not.
 */
export function hasMediaExtensions(profile: Pick<MigProfileSpec, 'name'>): boolean {
  // Without a `+` this looks up the whole name, which is never an attribute.
  const attributes = profile.name.slice(profile.name.indexOf('+') + 1).split(',');
  return attributes.some((a) => MEDIA_EXTENSION_ATTRIBUTES.has(a));
}

/** `3g.40gb@4` — a placement as messages show it. */
export function placementLabel(p: MigPlacement): string {
  return `${p.profile.name} (GI profile ${p.profile.id}) at ${p.start}:${p.profile.placementSize}`;
}

/** Every possible placement of every profile, in profile-table order then by start. */
export function possiblePlacements(geometry: MigGeometry): MigPlacement[] {
  return geometry.profiles.flatMap((profile) => profile.placementStarts.map((start) => ({ profile, start })));
}

/**
 * The rules a set of GPU instances (and optionally whole-GPU uses) breaks together; empty when NVML accepts the
 * layout. `wholeGpu` counts full-GPU uses (more than one, or one beside any instance, is a violation).
 */
export function layoutViolations(geometry: MigGeometry, instances: readonly MigPlacement[], wholeGpu = 0): RuleViolation[] {
  const out: RuleViolation[] = [];
  if (wholeGpu > 1) out.push({ rule: 'whole-gpu', message: `the whole GPU is asked for ${wholeGpu} times` });
  if (wholeGpu > 0 && instances.length > 0) {
    out.push({ rule: 'whole-gpu', message: `the whole GPU cannot be used beside MIG instance ${placementLabel(instances[0]!)}` });
  }
  const owner = new Array<MigPlacement | undefined>(geometry.memorySlices).fill(undefined);
  let compute = 0;
  let media: MigPlacement | undefined;
  const perProfile = new Map<number, number>();
  for (const p of instances) {
    const supported = geometry.profiles.find((q) => q.id === p.profile.id);
    if (supported === undefined) {
      out.push({ rule: 'profile-supported', message: `GI profile ${p.profile.id} (${p.profile.name}) is not supported by this GPU` });
      continue;
    }
    if (!supported.placementStarts.includes(p.start)) {
      out.push({
        rule: 'possible-placement',
        message: `${placementLabel(p)} is not a possible placement; starts: ${supported.placementStarts.join(', ')}`,
      });
    }
    for (let s = p.start; s < p.start + supported.placementSize; s++) {
      if (s < 0 || s >= geometry.memorySlices) {
        out.push({ rule: 'possible-placement', message: `${placementLabel(p)} reaches past memory slice ${geometry.memorySlices - 1}` });
        break;
      }
      const other = owner[s];
      if (other !== undefined) {
        out.push({ rule: 'memory-slices', message: `${placementLabel(p)} overlaps ${placementLabel(other)} in memory slice ${s}` });
        break;
      }
      owner[s] = p;
    }
    compute += supported.computeSlices;
    if (hasMediaExtensions(supported)) {
      if (media !== undefined) {
        out.push({ rule: 'media-extensions', message: `${placementLabel(p)} and ${placementLabel(media)} both ask for the media extensions` });
      }
      media ??= p;
    }
    const n = (perProfile.get(supported.id) ?? 0) + 1;
    perProfile.set(supported.id, n);
    if (n === supported.maxCount + 1) {
      out.push({ rule: 'profile-maximum', message: `more than ${supported.maxCount} instances of ${supported.name} (GI profile ${supported.id})` });
    }
  }
  if (compute > geometry.computeSlices) {
    out.push({ rule: 'compute-slices', message: `the instances use ${compute} compute slices, the GPU has ${geometry.computeSlices}` });
  }
  return out;
}

/** Answer of {@link fitsHardwareRules}. */
export type HardwareFit = { readonly ok: true } | { readonly ok: false; readonly rule: HardwareRule; readonly reason: string };

/**
 * May `candidate` be created on a GPU where `existing` instances are (whoever made them)? The question prepare
 * asks before its first NVML call: "does this placement device still fit given the instances that exist".
 * @returns `{ ok: true }`, or the first rule broken with a sentence naming the instances at fault, e.g.
 *   `{ ok: false, rule: 'memory-slices', reason: '3g.40gb (GI profile 9) at 4:4 overlaps 1g.10gb (GI profile 19) at 5:1 in memory slice 5' }`.
 *   A violation already present among `existing` alone is not blamed on the candidate.
 */
export function fitsHardwareRules(geometry: MigGeometry, existing: readonly MigPlacement[], candidate: MigCandidate): HardwareFit {
  const before = new Set(layoutViolations(geometry, existing).map((v) => v.message));
  const after = candidate === 'whole-gpu' ? layoutViolations(geometry, existing, 1) : layoutViolations(geometry, [...existing, candidate]);
  const fresh = after.find((v) => !before.has(v.message));
  return fresh === undefined ? { ok: true } : { ok: false, rule: fresh.rule, reason: fresh.message };
}

/** The profile of `geometry` with GI profile ID `id`, if the GPU supports it. */
export function profileById(geometry: MigGeometry, id: number): MigProfileSpec | undefined {
  return geometry.profiles.find((p) => p.id === id);
}

/**
 * The placement of an existing MIG instance (as discovery reports it: GI profile ID and placement) in
 * `geometry`'s terms; undefined when the GPU's table has no such profile with that placement size.
 */
export function placementOfInstance(geometry: MigGeometry, mig: Pick<MigDeviceInfo, 'giProfileId' | 'placement'>): MigPlacement | undefined {
  const profile = profileById(geometry, mig.giProfileId);
  if (profile === undefined || profile.placementSize !== mig.placement.size) return undefined;
  return { profile, start: mig.placement.start };
}

/**
 * The possible placement a published device name stands for on the GPU with minor number `minor`
 * (`gpu-<minor>-mig-<profile>-<giProfileId>-<start>`, src/model/devices.ts), or undefined when the name is
 * not one of that GPU's placement devices. What prepare resolves an allocated device to before asking
 * {@link fitsHardwareRules}.
 */
export function placementOfDeviceName(geometry: MigGeometry, minor: number, name: string): MigPlacement | undefined {
  return possiblePlacements(geometry).find(
    (p) => migDeviceName({ parentMinor: minor, profile: p.profile.name, giProfileId: p.profile.id, placement: { start: p.start, size: p.profile.placementSize } }) === name,
  );
}

/**
 * Whether the GPU switches MIG mode without a GPU reset: Hopper and newer do, Ampere (A100, A30) does not — its
 * `nvmlDeviceSetMigMode` leaves the change pending until a reset (NVIDIA's driver `supportsMIGModeToggle`:
 * architecture ≥ NVML_DEVICE_ARCH_HOPPER; MIG guide, "Enable MIG Mode"). On such a GPU in MIG mode the full
 * GPU cannot be handed out, so dynamic mode does not publish it (as NVIDIA's driver).
 * @param architecture `GpuInfo.architecture` as NVIDIA's driver spells it (`Ampere`, `Hopper`, `Blackwell`).
 */
export function togglesMigModeWithoutReset(architecture: string): boolean {
  return architecture !== 'Ampere';
}
