/**
 * Machine descriptions for the mock backend (and, in issue 3, the fake libnvidia-ml): a plain, JSON-able data
 * type. Validate untrusted input with `validateMachineSpec()` (validate.ts); resolve names with
 * `machineSpecByName()`.
 *
 * Example (JSON):
 * ```json
 * { "name": "my-box", "gpus": [
 *     { "model": "h100-80gb" },
 *     { "model": "h100-80gb", "mig": [ { "profile": "3g.40gb", "placementStart": 0 },
 *                                      { "profile": "1g.10gb", "placementStart": 4 } ] } ] }
 * ```
 */
import { ConfigError } from '../../errors.js';
import type { GpuModelName } from './models.js';

/** One static MIG device: a GPU instance of `profile` at memory slice `placementStart` (+ one compute instance). */
export interface MigInstanceSpec {
  /** Profile name of the GPU's model, e.g. `1g.10gb` (see profiles.ts). */
  readonly profile: string;
  /** Placement start in memory slices (0–7); must be one of the profile's placements. */
  readonly placementStart: number;
}

/** One GPU of a machine. Its minor number and NVML index are its position in {@link MachineSpec.gpus}. */
export interface GpuSpec {
  /** GPU model, one of `GPU_MODEL_NAMES`. */
  readonly model: GpuModelName;
  /**
   * MIG layout. Absent: MIG mode off (a full GPU). Present (even empty): MIG mode on, with these MIG devices.
   * Must satisfy the rules of `test/reference/mig-profiles.md` (no overlap, valid placements, compute slices
   * ≤ 7, at most one `+me`, at most `max` per profile).
   */
  readonly mig?: readonly MigInstanceSpec[];
}

/** A whole machine: its GPUs in NVML index order (1–64 GPUs). */
export interface MachineSpec {
  /** Optional label for logs. */
  readonly name?: string;
  readonly gpus: readonly GpuSpec[];
}

const single = (model: GpuModelName): MachineSpec => ({ name: model, gpus: [{ model }] });

/**
 * DGX H100: 8 × H100 80GB; GPUs 6 and 7 in MIG mode. GPU 6: 3g.40gb@0 + 2g.20gb@4 + 1g.10gb@6;
 * GPU 7: seven 1g.10gb at 0..6. So 6 full GPUs and 10 MIG devices are allocatable.
 */
const DGX_H100: MachineSpec = {
  name: 'dgx-h100',
  gpus: [
    ...Array.from({ length: 6 }, (): GpuSpec => ({ model: 'h100-80gb' })),
    {
      model: 'h100-80gb',
      mig: [
        { profile: '3g.40gb', placementStart: 0 },
        { profile: '2g.20gb', placementStart: 4 },
        { profile: '1g.10gb', placementStart: 6 },
      ],
    },
    {
      model: 'h100-80gb',
      mig: Array.from({ length: 7 }, (_, i): MigInstanceSpec => ({ profile: '1g.10gb', placementStart: i })),
    },
  ],
};

const MACHINES = {
  'a100-40gb': single('a100-40gb'),
  'h100-80gb': single('h100-80gb'),
  'h200-141gb': single('h200-141gb'),
  'dgx-h100': DGX_H100,
} as const satisfies Record<string, MachineSpec>;

/** Name of a built-in mock machine. */
export type MockMachineName = keyof typeof MACHINES;

/** Names of the built-in mock machines: one single-GPU machine per model, and `dgx-h100`. */
export const MOCK_MACHINES: readonly MockMachineName[] = Object.keys(MACHINES) as MockMachineName[];

/**
 * The spec of a built-in machine.
 * @throws ConfigError for an unknown name, listing the valid names.
 */
export function machineSpecByName(name: string): MachineSpec {
  if (!Object.hasOwn(MACHINES, name)) {
    throw new ConfigError(
      `unknown mock machine "${name}": valid machines are ${MOCK_MACHINES.join(', ')} ` +
        `(or pass a MachineSpec object)`,
    );
  }
  return MACHINES[name as MockMachineName];
}
