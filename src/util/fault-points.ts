/**
 * Crash fault points, for tests only: `faultPoint(name)` kills the process with SIGKILL (no shutdown code,
 * no flush: what a kill -9, an OOM kill or a power cut leaves behind) when the environment variable
 * `GPULET_FAULT_POINT` equals `name`. The variable is read once, when this module loads; when it is unset,
 * `faultPoint` is one comparison with `undefined` and nothing else.
 *
 * Never set `GPULET_FAULT_POINT` in production. The crash tests (test/agent/crash-faults.test.ts) start the
 * real CLI with it, one point per run, then restart without it and check that nothing was lost.
 */

/** Every fault point, in the order the steps run. */
export const FAULT_POINTS = [
  /** Prepare: the ResourceClaim was read from the API server, nothing written yet. */
  'prepare:after-get',
  /** Prepare: the checkpoint says PrepareStarted, no CDI spec yet. */
  'prepare:after-started',
  /** Dynamic MIG prepare: the intent (GPU, profile, placement; or MIG mode off for a full GPU) is in the checkpoint, no MIG call made yet. */
  'mig:after-intent',
  /** Dynamic MIG prepare of a full GPU: MIG mode is off, the checkpoint still holds only the intent. */
  'mig:after-mode-off',
  /** Dynamic MIG prepare (mock backend): the GPU instance exists, its compute instance not yet. */
  'mig:after-gpu-instance',
  /** Dynamic MIG prepare: the MIG device exists, the checkpoint still holds only the intent. */
  'mig:after-create',
  /** Prepare: the CDI spec is written, the checkpoint still says PrepareStarted. */
  'prepare:after-cdi',
  /** Prepare: the checkpoint says PrepareCompleted, the kubelet has no answer yet. */
  'prepare:after-completed',
  /** Unprepare: the CDI spec is removed, the checkpoint entry is still there. */
  'unprepare:after-cdi-removed',
  /** Dynamic MIG unprepare: the CDI spec is removed, the claim's MIG devices destroyed and MIG mode it turned off on again; the entry is still there. */
  'unprepare:after-mig-destroyed',
  /** Unprepare: the entry is gone from the checkpoint, the kubelet has no answer yet. */
  'unprepare:after-checkpoint',
  /** Any atomic write (checkpoint or CDI spec): the temp file is written and fsynced, not yet renamed. */
  'atomic:before-rename',
] as const;

/** Name of a fault point. */
export type FaultPointName = (typeof FAULT_POINTS)[number];

/** Environment variable that arms one fault point. */
export const FAULT_POINT_ENV = 'GPULET_FAULT_POINT';

const armed: string | undefined = process.env[FAULT_POINT_ENV] || undefined;

/**
 * Kill this process with SIGKILL when `GPULET_FAULT_POINT` (as read at module load) names this point;
 * otherwise do nothing. Never returns when it fires.
 */
export function faultPoint(name: FaultPointName): void {
  if (armed === undefined || armed !== name) return;
  process.kill(process.pid, 'SIGKILL');
}
