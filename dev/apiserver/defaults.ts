/**
 * Defaulting of `resource.k8s.io/v1` objects on create and update (in place, pure apart from the clock), as
 * kubernetes `pkg/apis/resource/v1/defaults.go` and `zz_generated.defaults.go` (v1.37) do before validation:
 *
 * - `ExactDeviceRequest` and `DeviceSubRequest` (ResourceClaim, ResourceClaimTemplate): `allocationMode`
 *   defaults to `ExactCount`, and `count` to 1 when the mode is `ExactCount` and count is 0 or unset;
 * - `DeviceToleration.operator` defaults to `Equal`;
 * - `DeviceTaint.timeAdded` (ResourceSlice devices) defaults to now, truncated to the second;
 * - a ResourceClaimTemplate's `spec.metadata` is `{}` when absent (a struct the Go types always serialise).
 */
import type { KubeObject } from './types.js';

type Rec = Record<string, unknown>;

function recOrUndefined(v: unknown): Rec | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : undefined;
}

function items(v: unknown): Rec[] {
  return Array.isArray(v) ? v.map(recOrUndefined).filter((x): x is Rec => x !== undefined) : [];
}

/** `SetDefaults_ExactDeviceRequest` / `SetDefaults_DeviceSubRequest` plus the tolerations' operator. */
function defaultRequest(r: Rec): void {
  if (r['allocationMode'] === undefined || r['allocationMode'] === '') r['allocationMode'] = 'ExactCount';
  if (r['allocationMode'] === 'ExactCount' && (r['count'] === undefined || r['count'] === 0)) r['count'] = 1;
  for (const t of items(r['tolerations'])) if (t['operator'] === undefined || t['operator'] === '') t['operator'] = 'Equal';
}

function defaultDeviceClaim(devices: unknown): void {
  for (const req of items(recOrUndefined(devices)?.['requests'])) {
    const exactly = recOrUndefined(req['exactly']);
    if (exactly) defaultRequest(exactly);
    for (const sub of items(req['firstAvailable'])) defaultRequest(sub);
  }
}

/** Apply the scheme defaults of `kind` to `obj` (mutates it). `now` is the clock for `timeAdded`. */
export function applyDefaults(kind: string, obj: KubeObject, now: Date = new Date()): void {
  const spec = recOrUndefined(obj['spec']);
  if (!spec) return;
  switch (kind) {
    case 'ResourceClaim':
      defaultDeviceClaim(spec['devices']);
      break;
    case 'ResourceClaimTemplate':
      defaultDeviceClaim(recOrUndefined(spec['spec'])?.['devices']);
      // `spec.metadata` is an ObjectMeta struct: the real server always answers `metadata: {}`.
      if (spec['metadata'] === undefined) spec['metadata'] = {};
      break;
    case 'ResourceSlice': {
      const added = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
      for (const d of items(spec['devices'])) for (const t of items(d['taints'])) if (t['timeAdded'] === undefined || t['timeAdded'] === null) t['timeAdded'] = added;
      break;
    }
    default:
      break;
  }
}
