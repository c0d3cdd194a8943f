/**
 * fast-check arbitraries of ResourceClaim statuses as the API server may hold them, each generated together
 * with its verdict, so the suite knows what the agent must answer.
 *
 * The verdict follows resource.k8s.io/v1 semantics (AllocationResult, DeviceRequestAllocationResult,
 * DeviceAllocationConfiguration, OpaqueDeviceConfiguration: "The length of the raw data must be smaller or
 * equal to 10 Ki"; AllocationResultsMaxSize = 32) and docs/contracts.md §2/§5:
 * - results of other drivers are ignored; ours must name this node's pool and a device of the inventory;
 * - opaque config of other drivers is ignored; ours must be `{"apiVersion": "gpulet.dev/v1", "kind":
 *   "GpuConfig", "env"?: {NAME: "value"}}` of at most 10 KiB (UTF-8 bytes of its JSON), names matching
 *   `[A-Za-z_][A-Za-z0-9_]*`, not reserved (`GPULET_*`, `NVIDIA_VISIBLE_DEVICES`);
 * - a claim is prepared iff it is allocated, has ≤ 32 results, at least one of ours, and nothing of ours is
 *   wrong; a rejection names one of the wrong parts (`hints`);
 * - a `status.reservedFor` entry names a pod when its resource is "pods" of the core group and it is a valid
 *   pod reference: name a DNS subdomain (apimachinery `ValidatePodName`, `dns1123SubdomainFmt`), uid a
 *   lower-case UUID as the API server issues it; other entries are ignored.
 */
import fc from 'fast-check';
import { DRIVER, NODE } from '../agent.js';
import { configArb, OTHER_DRIVERS, requestName, type ConfigGen } from './config-arb.js';

/** What the agent must answer for one claim. */
export type Verdict =
  | { readonly ok: true }
  /** Rejected; the error contains one of `hints` (any reason when `hints` is empty). */
  | { readonly ok: false; readonly hints: readonly string[] };

/** One generated allocation result with its classification. */
interface ResultGen {
  readonly json: unknown;
  readonly kind: 'ours' | 'foreign' | 'bad';
  readonly device?: string;
  readonly request?: string;
  readonly shareId?: string;
}

/** A claim to create and prepare. */
export interface StatusClaim {
  /** The `status` to store (undefined: none). */
  readonly status: unknown;
  readonly verdict: Verdict;
  /** On success: the devices the answer must hold, each with its request names (subrequest stripped). */
  readonly devices: readonly { readonly device: string; readonly shareId?: string; readonly requestNames: readonly string[] }[];
  /** On success: how many pods `status.reservedFor` names (resource "pods", core group). */
  readonly pods: number;
  /** Send a UID other than the claim's. */
  readonly wrongUid: boolean;
  /** Do not create the claim at all (HTTP 404). */
  readonly missing: boolean;
}

const OTHER_POOLS = ['other-node', '', `${NODE} `, NODE.toUpperCase(), `${NODE}/..`, '../'];
/** Allocation results; `clean` ones are only ours (valid) or another driver's. */
const resultArb = (devices: readonly string[], clean: boolean): fc.Arbitrary<ResultGen> => {
  const known = fc.constantFrom(...devices);
  // Huge names (the real API server caps device names at 63 and pools at 253 characters; a broken or
  // hostile server may not): up to 1.5 MiB each.
  const huge = fc.tuple(fc.constantFrom('x', '\0', '"', 'é'), fc.integer({ min: 100_000, max: 1_500_000 })).map(([u, n]) => u.repeat(n));
  const unknown = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('gpu-99', '', '../gpu-0', 'gpu-0\0', 'GPU-0', `${devices[0] ?? 'gpu-0'} `, 'gpu-0/..', '日本') },
    { weight: 1, arbitrary: huge },
  );
  const otherPool = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...OTHER_POOLS) }, { weight: 1, arbitrary: huge });
  const share = fc.option(fc.oneof(fc.uuid(), fc.constant('')), { nil: undefined });
  const base = (request: string, driver: string, pool: string, device: string): Record<string, unknown> => ({ request, driver, pool, device });
  const dirty = clean ? 0 : 1;
  return fc.oneof(
    {
      weight: 8,
      arbitrary: fc.tuple(requestName, known, share, fc.boolean()).map(([request, device, shareId, admin]): ResultGen => ({
        json: { ...base(request, DRIVER, NODE, device), ...(shareId !== undefined ? { shareID: shareId } : {}), ...(admin ? { adminAccess: false } : {}) },
        kind: 'ours',
        device,
        request,
        ...(shareId ? { shareId } : {}),
      })),
    },
    {
      weight: 3,
      arbitrary: fc.tuple(requestName, fc.constantFrom(...OTHER_DRIVERS), fc.string(), fc.string()).map(([request, driver, pool, device]): ResultGen => ({
        json: base(request, driver, pool, device),
        kind: 'foreign',
      })),
    },
    { weight: dirty, arbitrary: fc.tuple(requestName, otherPool, known).map(([r, pool, d]): ResultGen => ({ json: base(r, DRIVER, pool, d), kind: 'bad' })) },
    { weight: dirty, arbitrary: fc.tuple(requestName, unknown).map(([r, d]): ResultGen => ({ json: base(r, DRIVER, NODE, d), kind: 'bad' })) },
    {
      weight: dirty,
      arbitrary: fc.tuple(requestName, known, fc.oneof(fc.integer(), fc.boolean(), fc.constant({}), fc.constant([]))).map(([r, d, shareID]): ResultGen => ({
        json: { ...base(r, DRIVER, NODE, d), shareID },
        kind: 'bad',
      })),
    },
    {
      // A required field missing or not a string (for any driver: the type check comes first).
      weight: dirty,
      arbitrary: fc
        .tuple(requestName, known, fc.constantFrom('request', 'driver', 'pool', 'device'), fc.constantFrom(undefined, 7, true, ['x']), fc.constantFrom(DRIVER, OTHER_DRIVERS[0] ?? 'x'))
        .map(([r, d, field, value, driver]): ResultGen => {
          const json: Record<string, unknown> = base(r, driver, NODE, d);
          if (value === undefined) delete json[field];
          else json[field] = value;
          return { json, kind: 'bad' };
        }),
    },
    { weight: dirty, arbitrary: fc.constantFrom<unknown>(null, 5, 'junk', [], true).map((json): ResultGen => ({ json, kind: 'bad' })) },
  );
};

/** apimachinery `dns1123SubdomainFmt` (at most 253 characters: `DNS1123SubdomainMaxLength`). */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `status.reservedFor` entries and how many of them name pods (core group, valid name and uid). */
const reservedForArb: fc.Arbitrary<{ readonly json: unknown[]; readonly pods: number }> = fc
  .tuple(
    fc.array(
      fc.oneof(
        fc.record({ resource: fc.constant('pods'), name: fc.string({ maxLength: 20 }), uid: fc.uuid() }).map((json) => ({ json: json, pod: DNS_SUBDOMAIN.test(json.name) })),
        fc.record({ resource: fc.constant('pods'), name: fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/), uid: fc.uuid() }).map((json) => ({ json: json, pod: true })),
        fc.record({ resource: fc.constant('pods'), name: fc.constant('p'), uid: fc.constantFrom('p-1', '', 'ABCDEF01-2345-4678-89AB-CDEF01234567') }).map((json) => ({ json: json, pod: false })),
        fc.record({ resource: fc.constant('pods'), apiGroup: fc.constant(''), name: fc.constant('p'), uid: fc.uuid() }).map((json) => ({ json: json, pod: true })),
        fc.record({ resource: fc.constantFrom('deployments', 'Pods', 'pod'), apiGroup: fc.constantFrom('apps', ''), name: fc.string(), uid: fc.uuid() }).map((json) => ({ json: json, pod: false })),
        fc.record({ resource: fc.constant('pods'), apiGroup: fc.constant('example.com'), name: fc.constant('p'), uid: fc.uuid() }).map((json) => ({ json: json, pod: false })),
        fc.constantFrom<unknown>(null, 3, 'pod', { resource: 'pods', name: 7, uid: 'x' }, { resource: 'pods', name: 'p' }).map((json) => ({ json, pod: false })),
      ),
      { maxLength: 6 },
    ),
    // Huge lists: one pod entry repeated (upstream caps reservedFor at 256; the agent must cope with more).
    fc.oneof({ weight: 5, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 200, max: 3000 }) }),
  )
  .map(([entries, repeat]) => {
    const json = entries.map((e) => e.json);
    for (let i = 0; i < repeat; i++) json.push({ resource: 'pods', name: `p-${i}`, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` });
    return { json, pods: entries.filter((e) => e.pod).length + repeat };
  });

function stripSubrequest(r: string): string {
  const i = r.indexOf('/');
  return i < 0 ? r : r.slice(0, i);
}

/** The verdict and expected devices of an allocation made of `results` and `configs`. */
function judge(results: readonly ResultGen[], configs: readonly ConfigGen[]): Pick<StatusClaim, 'verdict' | 'devices'> {
  const hints: string[] = [];
  if (results.length > 32) hints.push(`results has ${results.length} entries`);
  configs.forEach((c, i) => c.kind === 'bad' && hints.push(`status.allocation.devices.config[${i}]`));
  results.forEach((r, i) => r.kind === 'bad' && hints.push(`status.allocation.devices.results[${i}]`));
  const ours = results.filter((r) => r.kind === 'ours');
  if (ours.length === 0) hints.push('no allocation results for driver');
  if (hints.length > 0) return { verdict: { ok: false, hints }, devices: [] };
  const byKey = new Map<string, { device: string; shareId?: string; requestNames: string[] }>();
  for (const r of ours) {
    const key = `${r.device ?? ''}\0${r.shareId ?? ''}`;
    const entry = byKey.get(key) ?? { device: r.device ?? '', ...(r.shareId ? { shareId: r.shareId } : {}), requestNames: [] };
    const name = stripSubrequest(r.request ?? '');
    if (!entry.requestNames.includes(name)) entry.requestNames.push(name);
    byKey.set(key, entry);
  }
  return { verdict: { ok: true }, devices: [...byKey.values()] };
}

/** One claim: a status (allocated or not, valid or not) with its verdict. */
export const statusClaimArb = (devices: readonly string[]): fc.Arbitrary<StatusClaim> =>
  fc
    .boolean()
    .chain((clean) =>
      fc.tuple(
        fc.oneof(
          { weight: 1, arbitrary: fc.array(resultArb(devices, clean), { minLength: 33, maxLength: 40 }) },
          { weight: 12, arbitrary: fc.array(resultArb(devices, clean), { maxLength: 6 }) },
          { weight: 1, arbitrary: fc.array(resultArb(devices, clean), { minLength: 30, maxLength: 32 }) },
        ),
        fc.array(configArb(clean), { maxLength: 3 }),
        reservedForArb,
        fc.oneof(
          { weight: 12, arbitrary: fc.constant('allocated') },
          { weight: 1, arbitrary: fc.constantFrom('none', 'null', 'empty', 'junk') },
        ),
        fc.oneof({ weight: 14, arbitrary: fc.constant('ok') }, { weight: 1, arbitrary: fc.constantFrom('wrongUid', 'missing') }),
      ),
    )
    .map(([results, configs, reservedFor, shape, ref]): StatusClaim => {
      const claim = (status: unknown, j: Pick<StatusClaim, 'verdict' | 'devices'>, pods = 0): StatusClaim => {
        if (ref === 'wrongUid') return { status, verdict: { ok: false, hints: ['UID mismatch'] }, devices: [], pods: 0, wrongUid: true, missing: false };
        if (ref === 'missing') return { status, verdict: { ok: false, hints: ['not found (HTTP 404)'] }, devices: [], pods: 0, wrongUid: false, missing: true };
        return { status, ...j, pods, wrongUid: false, missing: false };
      };
      const notAllocated = { verdict: { ok: false, hints: ['not allocated'] } as Verdict, devices: [] };
      if (shape === 'none') return claim(undefined, notAllocated);
      if (shape === 'empty') return claim({ reservedFor: reservedFor.json }, notAllocated);
      if (shape === 'null') return claim({ allocation: null }, notAllocated);
      if (shape === 'junk') return claim({ allocation: 'junk' }, { verdict: { ok: false, hints: [] }, devices: [] });
      const status = {
        allocation: {
          devices: { results: results.map((r) => r.json), ...(configs.length > 0 ? { config: configs.map((c) => c.json) } : {}) },
          nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [NODE] }] }] },
        },
        reservedFor: reservedFor.json,
      };
      return claim(status, judge(results, configs), reservedFor.pods);
    })
    .map(printable);

/** JSON with long strings and long arrays cut, for counterexample reports. */
export function compactJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'string' && x.length > 120) return `${x.slice(0, 40)}…(${x.length} chars of ${JSON.stringify(x.slice(0, 1))})`;
    if (Array.isArray(x) && x.length > 40) return [...(x as unknown[]).slice(0, 10), `…(${x.length} entries)`];
    return x;
  });
}

/** Give the claim a compact form in fast-check's reports (a 1.5 MiB status stays readable). */
export function printable(c: StatusClaim): StatusClaim {
  return Object.defineProperty({ ...c }, fc.toStringMethod, { value: () => `StatusClaim${compactJson(c)}`, enumerable: false });
}
