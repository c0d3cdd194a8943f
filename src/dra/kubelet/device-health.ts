/**
 * Adapter from the GPU health tracker (per-UUID `ok` / `degraded` / `failed`) to the DRA device health that
 * the DRAResourceHealth service streams to the kubelet (per pool/device `healthy` / `unhealthy`), KEP-4680.
 *
 * Mapping: `failed` (a fatal XID, a lost GPU) → unhealthy (the kubelet shows it in the pod's
 * `allocatedResourcesStatus`); otherwise `unmonitored` (no health events can be received for the device) →
 * unknown; `ok` and `degraded` (e.g. a corrected single-bit ECC error) → healthy, with the last event as the
 * message so the user sees it. A device that recovers (src/gpu/health.ts) goes back to healthy.
 */
import { stateOf, type HealthTracker } from '../../gpu/health.js';
import type { Inventory } from '../../gpu/types.js';
import { allocatableDevices } from '../../model/devices.js';
import type { PoolName } from '../../model/names.js';
import type { DeviceHealthEntry, HealthSource } from './health-service.js';

/**
 * Build a {@link HealthSource} over the tracker for the allocatable devices of `inventory()`.
 * @param poolName the ResourceSlice pool (`Config.poolName`)
 * @param clock Unix ms (injectable for tests)
 */
export function deviceHealthSource(
  poolName: PoolName,
  inventory: () => Inventory,
  tracker: Pick<HealthTracker, 'conditions' | 'onChange'>,
  clock: () => number = Date.now,
): HealthSource {
  const startedSeconds = Math.floor(clock() / 1000);
  const last = new Map<string, { message: string; seconds: number }>();
  tracker.onChange((change) => {
    last.set(change.uuid, { message: `${change.state}: ${change.reason}`, seconds: Math.floor(clock() / 1000) });
  });
  return {
    snapshot(): DeviceHealthEntry[] {
      return allocatableDevices(inventory()).map((d) => {
        const conditions = tracker.conditions(d.uuid);
        const state = stateOf(conditions);
        const info = last.get(d.uuid) ?? (d.kind === 'mig' ? last.get(d.gpu.uuid) : undefined);
        return {
          poolName,
          deviceName: d.name,
          health: state === 'failed' ? 'unhealthy' : conditions.unmonitored !== undefined ? 'unknown' : 'healthy',
          message: info?.message ?? (state === 'ok' ? 'ok' : state),
          lastUpdatedUnixSeconds: info?.seconds ?? startedSeconds,
        };
      });
    },
    onChange(cb: () => void): () => void {
      return tracker.onChange(() => cb());
    },
  };
}
