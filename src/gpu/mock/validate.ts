/**
 * Validation of a {@link MachineSpec} from untrusted input (a JSON file, a flag). Pure.
 * Layout rules from `test/reference/mig-profiles.md`: instances start at one of their profile's placements and
 * do not overlap in memory slices; compute slices in use sum to ≤ 7; at most one `+me` instance; at most
 * `max` instances per profile.
 */
import { ConfigError } from '../../errors.js';
import { GPU_MODELS, GPU_MODEL_NAMES, isGpuModelName, type GpuModel } from './models.js';
import type { GpuSpec, MachineSpec, MigInstanceSpec } from './spec.js';

/** Most GPUs a mock machine may have. */
export const MAX_GPUS = 64;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Problems with one GPU's MIG layout, as human-readable strings (empty = valid). Pure; exported for the
 * partitionable-device model and tests.
 */
export function migLayoutProblems(model: GpuModel, layout: readonly MigInstanceSpec[]): string[] {
  const problems: string[] = [];
  const used = new Map<number, string>();
  const counts = new Map<string, number>();
  let compute = 0;
  let me = 0;
  layout.forEach((inst, i) => {
    const where = `mig[${i}] (${inst.profile}@${inst.placementStart})`;
    const profile = model.migProfiles.find((p) => p.name === inst.profile);
    if (!profile) {
      problems.push(`${where}: unknown profile; valid: ${model.migProfiles.map((p) => p.name).join(', ')}`);
      return;
    }
    if (!profile.placementStarts.includes(inst.placementStart)) {
      problems.push(`${where}: bad placement, ${inst.profile} may start at ${profile.placementStarts.join(', ')}`);
      return;
    }
    for (let s = inst.placementStart; s < inst.placementStart + profile.placementSize; s++) {
      const other = used.get(s);
      if (other !== undefined) {
        problems.push(`${where}: overlaps ${other} at memory slice ${s}`);
        return;
      }
    }
    for (let s = inst.placementStart; s < inst.placementStart + profile.placementSize; s++) used.set(s, where);
    compute += profile.computeSlices;
    if (profile.name.endsWith('+me')) me++;
    const n = (counts.get(profile.name) ?? 0) + 1;
    counts.set(profile.name, n);
    if (n === profile.maxCount + 1) problems.push(`more than ${profile.maxCount} × ${profile.name} (max per GPU)`);
  });
  if (compute > 7) problems.push(`compute slices sum to ${compute} > 7`);
  if (me > 1) problems.push(`${me} '+me' instances, at most 1 allowed`);
  return problems;
}

function gpuProblems(raw: unknown, g: number): string[] {
  const at = `gpus[${g}]`;
  if (!isRecord(raw)) return [`${at}: must be an object {model, mig?}`];
  const model = raw['model'];
  if (typeof model !== 'string' || !isGpuModelName(model)) {
    return [`${at}.model: ${JSON.stringify(model)} is not one of ${GPU_MODEL_NAMES.join(', ')}`];
  }
  const mig = raw['mig'];
  if (mig === undefined) return [];
  if (!Array.isArray(mig)) return [`${at}.mig: must be an array of {profile, placementStart}`];
  const layout: MigInstanceSpec[] = [];
  const shape: string[] = [];
  mig.forEach((inst: unknown, i) => {
    if (
      !isRecord(inst) ||
      typeof inst['profile'] !== 'string' ||
      typeof inst['placementStart'] !== 'number' ||
      !Number.isInteger(inst['placementStart'])
    ) {
      shape.push(`${at}.mig[${i}]: must be {profile: string, placementStart: integer}`);
    } else {
      layout.push({ profile: inst['profile'], placementStart: inst['placementStart'] });
    }
  });
  if (shape.length > 0) return shape;
  return migLayoutProblems(GPU_MODELS[model], layout).map((p) => `${at} (${model}): ${p}`);
}

/**
 * Check an untrusted value and return it as a {@link MachineSpec} (a fresh copy with only known fields).
 * @throws ConfigError `invalid mock machine spec: ...` naming every problem found, e.g.
 *   `gpus[0] (h100-80gb): mig[1] (1g.10gb@2): overlaps mig[0] (3g.40gb@0) at memory slice 2`.
 */
export function validateMachineSpec(raw: unknown): MachineSpec {
  const fail = (problems: readonly string[]): never => {
    throw new ConfigError(`invalid mock machine spec: ${problems.join('; ')}`);
  };
  if (!isRecord(raw)) return fail(['must be an object {name?, gpus: [...]}']);
  const name = raw['name'];
  if (name !== undefined && typeof name !== 'string') fail(['name: must be a string']);
  const gpus = raw['gpus'];
  if (!Array.isArray(gpus) || gpus.length === 0 || gpus.length > MAX_GPUS) {
    return fail([`gpus: must be an array of 1–${MAX_GPUS} GPUs`]);
  }
  const problems = gpus.flatMap((g: unknown, i) => gpuProblems(g, i));
  if (problems.length > 0) fail(problems);
  const out: GpuSpec[] = (gpus as GpuSpec[]).map((g) =>
    g.mig === undefined
      ? { model: g.model }
      : { model: g.model, mig: g.mig.map((m) => ({ profile: m.profile, placementStart: m.placementStart })) },
  );
  return typeof name === 'string' ? { name, gpus: out } : { gpus: out };
}
