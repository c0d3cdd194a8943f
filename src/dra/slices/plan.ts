/**
 * Pure reconcile planning for one pool: existing slices (as listed) + the desired ones → the writes to make.
 * Follows the upstream publishing pattern (k8s.io/dynamic-resource-allocation resourceslice controller, docs/contracts.md
 * §4): write nothing when the content already matches; otherwise bump `spec.pool.generation` in every slice,
 * update slices in place (PUT with resourceVersion), create missing ones, delete obsolete ones (uid precondition).
 */
import type { V1Device, V1ObjectMeta, V1ResourceSlice } from '@kubernetes/client-node';
import { wireSlice, type SliceSpec } from './build.js';

/** One write. */
export type SliceAction =
  | { readonly op: 'create'; readonly body: V1ResourceSlice }
  | { readonly op: 'update'; readonly body: V1ResourceSlice }
  | { readonly op: 'delete'; readonly name: string; readonly uid: string };

/** Result of {@link planReconcile}. */
export interface ReconcilePlan {
  /** True when nothing needs writing. */
  readonly upToDate: boolean;
  /** Pool generation the written slices carry (the existing one when up to date). */
  readonly generation: number;
  /** Creates and updates first, then deletes (consumers never see a pool with fewer slices than announced). */
  readonly actions: readonly SliceAction[];
}

/** Input of {@link planReconcile}. */
export interface PlanInput {
  /** Slices listed for our node and driver. */
  readonly existing: readonly V1ResourceSlice[];
  /** Pure builder of the desired slices at a generation. */
  readonly build: (generation: number) => SliceSpec[];
  /** Our pool name; existing slices of another pool are obsolete (pool name is immutable). */
  readonly poolName: string;
  /** Highest generation this process has published (never go below it). */
  readonly lastGeneration: number;
  /** Compare without device taints (when the API server drops them: DRADeviceTaints feature gate off). */
  readonly ignoreTaints: boolean;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v instanceof Date) return v.toISOString();
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

function normDevice(d: V1Device, ignoreTaints: boolean): unknown {
  const { taints, ...rest } = d;
  const t = ignoreTaints || taints === undefined || taints.length === 0
    ? undefined
    : taints.map((x) => ({ key: x.key, value: x.value ?? '', effect: x.effect })); // timeAdded is server-set
  return { ...rest, taints: t };
}

/**
 * Canonical content of a slice for comparison: spec without `pool.generation`, our labels, and owner refs.
 * Exported for tests.
 */
export function sliceContentKey(s: V1ResourceSlice, labelKeys: readonly string[], ignoreTaints: boolean): string {
  const spec = s.spec;
  const labels = Object.fromEntries(labelKeys.map((k) => [k, s.metadata?.labels?.[k]]));
  const owners = (s.metadata?.ownerReferences ?? []).map((o) => ({
    apiVersion: o.apiVersion, kind: o.kind, name: o.name, uid: o.uid, controller: o.controller ?? false,
  }));
  return JSON.stringify(sortKeys({
    driver: spec.driver,
    nodeName: spec.nodeName,
    pool: { name: spec.pool.name, resourceSliceCount: spec.pool.resourceSliceCount },
    devices: (spec.devices ?? []).map((d) => normDevice(d, ignoreTaints)),
    sharedCounters: spec.sharedCounters ?? [],
    labels,
    owners,
  }));
}

/** Metadata for a PUT: keep identity and foreign labels/annotations, take our labels and owner refs. */
function updateMetadata(existing: V1ObjectMeta, desired: SliceSpec['metadata']): V1ObjectMeta {
  const meta: V1ObjectMeta = {
    ...(existing.name === undefined ? {} : { name: existing.name }),
    ...(existing.uid === undefined ? {} : { uid: existing.uid }),
    ...(existing.resourceVersion === undefined ? {} : { resourceVersion: existing.resourceVersion }),
    ...(existing.generateName === undefined ? {} : { generateName: existing.generateName }),
    ...(existing.annotations === undefined ? {} : { annotations: existing.annotations }),
    labels: { ...existing.labels, ...desired.labels },
  };
  if (desired.ownerReferences !== undefined) meta.ownerReferences = desired.ownerReferences;
  return meta;
}

/** Decide the writes for one reconcile. Pure. */
export function planReconcile(input: PlanInput): ReconcilePlan {
  const ours = input.existing.filter((s) => s.spec.pool.name === input.poolName);
  const obsolete = input.existing.filter((s) => s.spec.pool.name !== input.poolName);
  const gens = new Set(ours.map((s) => s.spec.pool.generation));
  const probe = input.build(0);
  const labelKeys = Object.keys(probe[0]?.metadata.labels ?? {});
  const key = (s: V1ResourceSlice): string => sliceContentKey(s, labelKeys, input.ignoreTaints);

  if (obsolete.length === 0 && gens.size === 1 && ours.length === probe.length) {
    const have = ours.map(key).sort();
    const want = probe.map(key).sort();
    if (have.every((k, i) => k === want[i])) {
      return { upToDate: true, generation: ours[0]?.spec.pool.generation ?? 0, actions: [] };
    }
  }

  const generation = Math.max(input.lastGeneration, ...ours.map((s) => s.spec.pool.generation)) + 1;
  const desired = input.build(generation);
  // Pair each desired slice with an existing one: the one holding its first device, else the next by name.
  const unpaired = [...ours].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const actions: SliceAction[] = [];
  const creates: SliceAction[] = [];
  for (const want of desired) {
    // Pair by the first device, or for a counter slice (dynamic MIG) by its first counter set.
    const first = want.spec.devices[0]?.name;
    const firstSet = want.spec.sharedCounters?.[0]?.name;
    let idx = first !== undefined
      ? unpaired.findIndex((s) => s.spec.devices?.some((d) => d.name === first) === true)
      : firstSet !== undefined
        ? unpaired.findIndex((s) => s.spec.sharedCounters?.some((c) => c.name === firstSet) === true)
        : -1;
    if (idx < 0 && unpaired.length > 0) idx = 0;
    const match = idx >= 0 ? unpaired.splice(idx, 1)[0] : undefined;
    if (match === undefined) {
      creates.push({ op: 'create', body: wireSlice(want) });
    } else {
      actions.push({
        op: 'update',
        body: wireSlice({ apiVersion: want.apiVersion, kind: want.kind, metadata: updateMetadata(match.metadata ?? {}, want.metadata), spec: want.spec }),
      });
    }
  }
  actions.push(...creates);
  for (const s of [...unpaired, ...obsolete]) {
    const name = s.metadata?.name;
    const uid = s.metadata?.uid;
    if (name !== undefined && uid !== undefined) actions.push({ op: 'delete', name, uid });
  }
  return { upToDate: false, generation, actions };
}
