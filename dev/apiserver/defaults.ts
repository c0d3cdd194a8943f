/**
 * Defaulting of `resource.k8s.io/v1` objects on create and update (in place, pure apart from the clock), as
 * kubernetes `pkg/apis/resource/v1/defaults.go` and `zz_generated.defaults.go` (v1.37) do before validation:
 *
 * - `ExactDeviceRequest` and `DeviceSubRequest` (ResourceClaim, ResourceClaimTemplate): `allocationMode`
 *   defaults to `ExactCount`, and `count` to 1 when the mode is `ExactCount` and count is 0 or unset;
 * - `DeviceToleration.operator` defaults to `Equal`;
 * - `DeviceTaint.timeAdded` (ResourceSlice devices) defaults to now, truncated to the second; a given one is
 *   stored as `metav1.Time` encodes it (apimachinery `pkg/apis/meta/v1/time.go` MarshalJSON: UTC, RFC 3339,
 *   fractional seconds dropped), e.g. `2023-11-14T22:13:20.123+01:00` → `2023-11-14T21:13:20Z`;
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

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** RFC 3339 in UTC, whole seconds (truncated, as Go's `Time.Format(time.RFC3339)`). */
function seconds(d: Date): string {
  return new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A `metav1.Time` value as the real server stores it; anything that is not RFC 3339 is left for validation. */
function asMetaTime(v: unknown): unknown {
  if (typeof v !== 'string' || !RFC3339.test(v)) return v;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : seconds(d);
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
      const added = seconds(now);
      for (const d of items(spec['devices'])) {
        for (const t of items(d['taints'])) {
          if (t['timeAdded'] === undefined || t['timeAdded'] === null) t['timeAdded'] = added;
          else t['timeAdded'] = asMetaTime(t['timeAdded']);
        }
      }
      break;
    }
    default:
      break;
  }
}
