/**
 * Reconcile planning (pure) and the publisher's scheduling (coalescing, one reconcile in flight, backoff,
 * build errors) with an in-memory SliceClient. The HTTP path is covered by test/dra/slices/publisher-apiserver.test.ts.
 */
import type { V1DeviceTaint, V1ResourceSlice } from '@kubernetes/client-node';
import { taintsByUuid } from '../../../src/dra/slices/taints.js';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { planReconcile } from '../../../src/dra/slices/plan.js';
import type { SliceClient } from '../../../src/dra/slices/client.js';
import { SlicePublisher } from '../../../src/dra/slices/publisher.js';
import { buildResourceSlices } from '../../../src/dra/slices/build.js';
import { ApiError } from '../../../src/errors.js';
import type { Inventory } from '../../../src/gpu/types.js';
import { silentLogger } from '../../../src/log.js';
import { exampleInventory, h100, manyGpus } from '../../helpers/slices.js';
import { driverName, nodeName } from '../../helpers/names.js';
import { poolNameOf } from '../../../src/model/names.js';

const DRIVER = driverName('gpu.gpulet.dev');
const NODE = nodeName('node-p');
const POOL = poolNameOf(NODE);

afterEach(() => {
  vi.useRealTimers();
});

/** Taints of a GPU lost since `sinceMs` (src/dra/slices/taints.ts). */
const lostSince = (uuid: string, sinceMs: number) => taintsByUuid(DRIVER, new Map([[uuid, { lost: { sinceMs } }]]));

function builder(inventory: Inventory, taints?: ReadonlyMap<string, readonly V1DeviceTaint[]>) {
  return (generation: number) =>
    buildResourceSlices({ driverName: DRIVER, nodeName: NODE, poolName: POOL, inventory, generation, nodeUid: 'nu', ...(taints ? { taints } : {}) });
}

/** Store the bodies as an API server would: name, uid, resourceVersion. */
function stored(slices: readonly V1ResourceSlice[]): V1ResourceSlice[] {
  return slices.map((s, i) => ({
    ...structuredClone(s),
    metadata: { ...structuredClone(s.metadata), name: `slice-${i}`, uid: `uid-${i}`, resourceVersion: `${10 + i}` },
  }));
}

describe('planReconcile', () => {
  const base = { poolName: POOL, lastGeneration: 0, ignoreTaints: false };

  it('writes nothing when the pool already matches, whatever its generation', () => {
    const existing = stored(builder(exampleInventory())(5));
    const plan = planReconcile({ ...base, existing, build: builder(exampleInventory()) });
    expect(plan).toEqual({ upToDate: true, generation: 5, actions: [] });
  });

  it('first publish: one create at generation 1', () => {
    const plan = planReconcile({ ...base, existing: [], build: builder(exampleInventory()) });
    expect(plan.generation).toBe(1);
    expect(plan.actions.map((a) => a.op)).toEqual(['create']);
  });

  it('a changed device: one PUT of the same object with resourceVersion and generation + 1', () => {
    const existing = stored(builder(exampleInventory())(5));
    const inv = exampleInventory();
    const changed: Inventory = { ...inv, gpus: [{ ...inv.gpus[0]!, memoryBytes: 80 * 1024 ** 3 }, inv.gpus[1]!] };
    const plan = planReconcile({ ...base, existing, build: builder(changed) });
    expect(plan.generation).toBe(6);
    expect(plan.actions).toHaveLength(1);
    const a = plan.actions[0]!;
    expect(a.op).toBe('update');
    if (a.op !== 'update') return;
    expect(a.body.metadata).toMatchObject({ name: 'slice-0', uid: 'uid-0', resourceVersion: '10' });
    expect(a.body.spec.pool.generation).toBe(6);
    expect(a.body.spec.devices?.[0]?.capacity?.memory?.value).toBe('80Gi');
  });

  it('grows 1 → 3 slices (update + 2 creates, all at the new generation) and shrinks back (update + 2 deletes)', () => {
    const one = stored(builder(manyGpus(100))(2));
    const grow = planReconcile({ ...base, existing: one, build: builder(manyGpus(300)) });
    expect(grow.actions.map((a) => a.op)).toEqual(['update', 'create', 'create']);
    for (const a of grow.actions) if (a.op !== 'delete') expect(a.body.spec.pool).toMatchObject({ generation: 3, resourceSliceCount: 3 });
    const three = stored(builder(manyGpus(300))(3));
    const shrink = planReconcile({ ...base, existing: three, build: builder(manyGpus(100)) });
    expect(shrink.actions.map((a) => a.op)).toEqual(['update', 'delete', 'delete']);
    expect(shrink.actions.slice(1)).toEqual([{ op: 'delete', name: 'slice-1', uid: 'uid-1' }, { op: 'delete', name: 'slice-2', uid: 'uid-2' }]);
  });

  it('rewrites a pool with mixed generations and deletes slices of another (immutable) pool name', () => {
    const existing = stored(builder(exampleInventory())(4));
    const foreign = { ...structuredClone(existing[0]!), metadata: { name: 'old', uid: 'uid-old' } };
    foreign.spec.pool = { ...foreign.spec.pool, name: 'other-pool' };
    const plan = planReconcile({ ...base, existing: [...existing, foreign], build: builder(exampleInventory()) });
    expect(plan.actions.map((a) => a.op)).toEqual(['update', 'delete']);
    expect(plan.generation).toBe(5);
  });

  it('never goes below the last generation it published (slices deleted by the kubelet)', () => {
    const plan = planReconcile({ ...base, lastGeneration: 9, existing: [], build: builder(exampleInventory()) });
    expect(plan.generation).toBe(10);
  });

  it('compares without taints when the server drops them', () => {
    const inv = exampleInventory();
    const withTaint = builder(inv, lostSince(inv.gpus[0]!.uuid, 1_000));
    const dropped = stored(builder(inv)(2)); // what a server without DRADeviceTaints stores
    expect(planReconcile({ ...base, existing: dropped, build: withTaint }).upToDate).toBe(false);
    expect(planReconcile({ ...base, ignoreTaints: true, existing: dropped, build: withTaint }).upToDate).toBe(true);
  });

  it('ignores timeAdded when comparing taints (server-set when absent)', () => {
    const inv = exampleInventory();
    const kept = stored(builder(inv, lostSince(inv.gpus[0]!.uuid, 5_000))(2));
    expect(planReconcile({ ...base, existing: kept, build: builder(inv, lostSince(inv.gpus[0]!.uuid, 1_000)) }).upToDate).toBe(true);
  });
});

/**
 * A stored slice as an API server returns it: every object's keys in another order (the server writes Go struct
 * field order, not ours) and empty lists left out (`omitempty` on the list fields of resource.k8s.io/v1).
 */
function asServed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asServed);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).reverse()) {
    const x = (v as Record<string, unknown>)[k];
    if (!(Array.isArray(x) && x.length === 0)) out[k] = asServed(x);
  }
  return out;
}

describe('planReconcile: what counts as a change', () => {
  const base = { poolName: POOL, lastGeneration: 0, ignoreTaints: false };
  const inv = exampleInventory();
  const gpu0 = inv.gpus[0]!.uuid;
  const xid = (n: number) => taintsByUuid(DRIVER, new Map([[gpu0, { xid: { xid: n, fatal: true, sinceMs: 1_000, lastMs: 1_000 } }]]));

  it('a pool as the server returns it (its key order, empty lists left out) is up to date', () => {
    const existing = stored(builder(inv)(3)).map((s) => asServed(s) as V1ResourceSlice);
    expect(JSON.stringify(existing)).not.toBe(JSON.stringify(stored(builder(inv)(3))));
    expect(planReconcile({ ...base, existing, build: builder(inv) })).toEqual({ upToDate: true, generation: 3, actions: [] });
  });

  it('an empty taint list, an empty sharedCounters list and an empty taint value equal absent ones', () => {
    const existing = stored(builder(inv)(3));
    for (const d of existing[0]!.spec.devices ?? []) d.taints = [];
    existing[0]!.spec.sharedCounters = [];
    expect(planReconcile({ ...base, existing, build: builder(inv) }).upToDate).toBe(true);
    const lost = stored(builder(inv, lostSince(gpu0, 1_000))(3));
    for (const d of lost[0]!.spec.devices ?? []) for (const t of d.taints ?? []) t.value = '';
    expect(planReconcile({ ...base, existing: lost, build: builder(inv, lostSince(gpu0, 1_000)) }).upToDate).toBe(true);
  });

  it('another taint value (a different XID), key or effect is a change', () => {
    const existing = stored(builder(inv, xid(79))(3));
    expect(planReconcile({ ...base, existing, build: builder(inv, xid(79)) }).upToDate).toBe(true);
    expect(planReconcile({ ...base, existing, build: builder(inv, xid(48)) }).upToDate).toBe(false);
    const none = taintsByUuid(DRIVER, new Map([[gpu0, { xid: { xid: 79, fatal: false, sinceMs: 1_000, lastMs: 1_000 } }]]));
    expect(planReconcile({ ...base, existing, build: builder(inv, none) }).upToDate).toBe(false);
    expect(planReconcile({ ...base, existing, build: builder(inv, lostSince(gpu0, 1_000)) }).upToDate).toBe(false);
    expect(planReconcile({ ...base, existing, build: builder(inv) }).upToDate).toBe(false);
  });

  it('foreign labels and annotations are not ours to compare, and a PUT keeps them; our labels are', () => {
    const existing = stored(builder(inv)(3));
    existing[0]!.metadata!.labels = { ...existing[0]!.metadata!.labels, 'team.example.com/x': 'y' };
    existing[0]!.metadata!.annotations = { 'note.example.com/a': 'b' };
    expect(planReconcile({ ...base, existing, build: builder(inv) }).upToDate).toBe(true);
    const ourKey = Object.keys(builder(inv)(1)[0]!.metadata.labels)[0]!;
    existing[0]!.metadata!.labels[ourKey] = 'someone-else';
    const plan = planReconcile({ ...base, existing, build: builder(inv) });
    expect(plan.upToDate).toBe(false);
    const a = plan.actions[0]!;
    if (a.op !== 'update') throw new Error(`expected an update, got ${a.op}`);
    expect(a.body.metadata).toStrictEqual({
      name: 'slice-0', uid: 'uid-0', resourceVersion: '10', generateName: existing[0]!.metadata!.generateName,
      annotations: { 'note.example.com/a': 'b' },
      labels: { ...builder(inv)(1)[0]!.metadata.labels, 'team.example.com/x': 'y' },
      ownerReferences: builder(inv)(1)[0]!.metadata.ownerReferences,
    });
  });

  it('another owner (the Node re-created with a new uid) is a change; the PUT carries the new owner', () => {
    const existing = stored(builder(inv)(3));
    const recreated = (generation: number) =>
      buildResourceSlices({ driverName: DRIVER, nodeName: NODE, poolName: POOL, inventory: inv, generation, nodeUid: 'nu-2' });
    const plan = planReconcile({ ...base, existing, build: recreated });
    expect(plan.upToDate).toBe(false);
    const a = plan.actions[0]!;
    if (a.op !== 'update') throw new Error(`expected an update, got ${a.op}`);
    expect(a.body.metadata?.ownerReferences?.map((o) => o.uid)).toEqual(['nu-2']);
    // An owner reference listed without `controller` is not the controller reference we publish.
    const noController = stored(builder(inv)(3));
    for (const o of noController[0]!.metadata!.ownerReferences ?? []) delete o.controller;
    const controller = builder(inv)(1)[0]!.metadata.ownerReferences?.[0]?.controller;
    expect(planReconcile({ ...base, existing: noController, build: builder(inv) }).upToDate).toBe(controller !== true);
    const notController = stored(builder(inv)(3));
    for (const o of notController[0]!.metadata!.ownerReferences ?? []) o.controller = false;
    expect(planReconcile({ ...base, existing: notController, build: builder(inv) }).upToDate).toBe(controller === false);
  });

  it('a duplicate of a slice is not up to date: the copy is deleted', () => {
    const [one] = stored(builder(inv)(3));
    const copy = { ...structuredClone(one!), metadata: { ...structuredClone(one!.metadata), name: 'slice-9', uid: 'uid-9' } };
    const plan = planReconcile({ ...base, existing: [one!, copy], build: builder(inv) });
    expect(plan.upToDate).toBe(false);
    expect(plan.actions).toEqual([expect.objectContaining({ op: 'update' }), { op: 'delete', name: 'slice-9', uid: 'uid-9' }]);
  });

  it('pairs each desired slice with the existing slice that holds its first device, whatever the list order', () => {
    // Names in the opposite order of the slices: pairing by name alone would mismatch them.
    const three = stored(builder(manyGpus(300))(3)).map((s, i, all) => ({ ...s, metadata: { ...s.metadata, name: `slice-${all.length - 1 - i}` } }));
    const plan = planReconcile({ ...base, existing: three, build: builder(manyGpus(299)) });
    const updates = plan.actions.filter((a) => a.op === 'update');
    expect(updates).toHaveLength(3);
    for (const u of updates) {
      const before = three.find((s) => s.metadata?.name === u.body.metadata?.name)!;
      expect(u.body.spec.devices?.[0]?.name).toBe(before.spec.devices?.[0]?.name);
    }
    // Without a slice holding its first device, a desired slice takes the first remaining one by name.
    const [one] = stored(builder(manyGpus(100))(3));
    const emptied = (name: string, uid: string): V1ResourceSlice => {
      const e = { ...structuredClone(one!), metadata: { ...structuredClone(one!.metadata), name, uid } };
      e.spec.devices = [];
      return e;
    };
    const plan2 = planReconcile({ ...base, existing: [emptied('b-0', 'uid-b'), emptied('a-0', 'uid-a')], build: builder(manyGpus(100)) });
    expect(plan2.actions.map((a) => (a.op === 'delete' ? `delete ${a.name}` : `${a.op} ${a.body.metadata?.name}`))).toEqual(['update a-0', 'delete b-0']);
  });

  it('a PUT sets only the metadata the existing object has, and no owner when the Node uid is unknown', () => {
    const noOwner = (generation: number) =>
      buildResourceSlices({ driverName: DRIVER, nodeName: NODE, poolName: POOL, inventory: inv, generation });
    const existing = stored(builder(inv)(3));
    delete existing[0]!.metadata!.generateName;
    const plan = planReconcile({ ...base, existing, build: noOwner });
    const a = plan.actions[0]!;
    if (a.op !== 'update') throw new Error(`expected an update, got ${a.op}`);
    expect(a.body.metadata).toStrictEqual({ name: 'slice-0', uid: 'uid-0', resourceVersion: '10', labels: noOwner(1)[0]!.metadata.labels });
  });

  it('slices of mixed generations, a missing slice, or another resourceSliceCount are not up to date', () => {
    const three = stored(builder(manyGpus(300))(3));
    expect(planReconcile({ ...base, existing: three, build: builder(manyGpus(300)) }).upToDate).toBe(true);
    const mixed = structuredClone(three);
    mixed[1]!.spec.pool.generation = 2;
    expect(planReconcile({ ...base, existing: mixed, build: builder(manyGpus(300)) })).toMatchObject({ upToDate: false, generation: 4 });
    for (const gone of [0, 1, 2]) {
      const missing = planReconcile({ ...base, existing: three.filter((_, i) => i !== gone), build: builder(manyGpus(300)) });
      expect(missing.upToDate).toBe(false);
      expect(missing.actions.map((a) => a.op)).toEqual(['update', 'update', 'create']);
    }
    const count = structuredClone(three);
    for (const s of count) s.spec.pool.resourceSliceCount = 4;
    expect(planReconcile({ ...base, existing: count, build: builder(manyGpus(300)) }).upToDate).toBe(false);
  });

  it('compares a pool whatever the order the slices are listed in', () => {
    const three = stored(builder(manyGpus(300))(3));
    expect(planReconcile({ ...base, existing: [three[2]!, three[0]!, three[1]!], build: builder(manyGpus(300)) }).upToDate).toBe(true);
  });

  it('an emptied pool (no GPUs left) keeps the first slice by name and deletes the rest', () => {
    const empty: Inventory = { ...inv, gpus: [] };
    const [one] = stored(builder(inv)(3));
    const named = (name: string, uid: string): V1ResourceSlice => ({ ...structuredClone(one!), metadata: { ...structuredClone(one!.metadata), name, uid } });
    const plan = planReconcile({ ...base, existing: [named('b-0', 'uid-b'), named('a-0', 'uid-a')], build: builder(empty) });
    expect(plan.actions.map((a) => (a.op === 'delete' ? `delete ${a.name}` : `${a.op} ${a.body.metadata?.name}`))).toEqual(['update a-0', 'delete b-0']);
    expect(plan.actions[0]?.op === 'update' && plan.actions[0].body.spec.devices).toEqual([]);
  });

  it('odd listed slices (no metadata, no labels, a null field) are rewritten, never a crash', () => {
    const existing = stored(builder(inv)(3));
    const bare = structuredClone(existing[0]!);
    delete bare.metadata;
    const unlabelled = structuredClone(existing[0]!);
    delete unlabelled.metadata!.labels;
    delete unlabelled.metadata!.ownerReferences;
    const withNull = structuredClone(existing[0]!);
    (withNull.spec.devices![0] as unknown as Record<string, unknown>)['nodeSelector'] = null;
    for (const odd of [bare, unlabelled, withNull]) {
      const plan = planReconcile({ ...base, existing: [odd], build: builder(inv) });
      expect(plan.upToDate).toBe(false);
      expect(plan.actions.map((a) => a.op)).toEqual(['update']);
    }
    // A slice listed without `devices` (the server leaves an empty list out) is searched like an empty one.
    const noDevices = structuredClone(existing[0]!);
    delete noDevices.spec.devices;
    noDevices.metadata = { ...noDevices.metadata, name: 'a-0', uid: 'uid-a' };
    const paired = planReconcile({ ...base, existing: [noDevices, existing[0]!], build: builder(inv) });
    expect(paired.actions.map((a) => (a.op === 'delete' ? `delete ${a.name}` : `${a.op} ${a.body.metadata?.name}`))).toEqual(['update slice-0', 'delete a-0']);
    // Two slices without metadata: both paired or deleted without a name to sort by, none crashes the plan.
    const two = planReconcile({ ...base, existing: [bare, structuredClone(bare)], build: builder(inv) });
    expect(two.actions.map((a) => a.op)).toEqual(['update']);
  });

  it('a listed slice without a name or uid is never deleted (a delete needs the uid precondition)', () => {
    const existing = stored(builder(inv)(3));
    const foreign = (metadata: V1ResourceSlice['metadata']): V1ResourceSlice => {
      const f = structuredClone(existing[0]!);
      if (metadata === undefined) delete f.metadata;
      else f.metadata = metadata;
      f.spec.pool = { ...f.spec.pool, name: 'other-pool' };
      return f;
    };
    const plan = planReconcile({ ...base, existing: [...existing, foreign({ name: 'x' }), foreign({ uid: 'u' }), foreign(undefined), foreign({ name: 'y', uid: 'v' })], build: builder(inv) });
    expect(plan.actions.filter((a) => a.op === 'delete')).toEqual([{ op: 'delete', name: 'y', uid: 'v' }]);
  });
});

/** In-memory API: records calls, optional failures, a gate to hold a call in flight, and tells when a call began. */
class FakeClient implements SliceClient {
  slices: V1ResourceSlice[] = [];
  calls: string[] = [];
  failNext = 0;
  gate: Promise<void> | undefined;
  private seq = 0;
  private callWaiters: { name: string; resolve: () => void }[] = [];
  /** Resolves once a call named `name` has begun (at once if one has): e.g. "reconcile #1 is held at the gate". */
  called(name: string): Promise<void> {
    if (this.calls.includes(name)) return Promise.resolve();
    return new Promise((resolve) => this.callWaiters.push({ name, resolve }));
  }
  private async step(name: string): Promise<void> {
    this.calls.push(name);
    for (const w of this.callWaiters.filter((x) => x.name === name)) w.resolve();
    this.callWaiters = this.callWaiters.filter((x) => x.name !== name);
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext -= 1;
      throw new ApiError(`${name} failed (HTTP 500)`, 500);
    }
  }
  async nodeUid(): Promise<string> { await this.step('node'); return 'nu'; }
  async list(): Promise<V1ResourceSlice[]> { await this.step('list'); return structuredClone(this.slices); }
  async create(body: V1ResourceSlice): Promise<V1ResourceSlice> {
    await this.step('create');
    const s = { ...structuredClone(body), metadata: { ...body.metadata, name: `s${++this.seq}`, uid: `u${this.seq}`, resourceVersion: '1' } };
    this.slices.push(s);
    return s;
  }
  async replace(body: V1ResourceSlice): Promise<V1ResourceSlice> {
    await this.step('replace');
    this.slices = this.slices.map((s) => (s.metadata?.name === body.metadata?.name ? structuredClone(body) : s));
    return body;
  }
  async delete(name: string): Promise<void> { await this.step('delete'); this.slices = this.slices.filter((s) => s.metadata?.name !== name); }
}

function publisher(client: FakeClient) {
  return new SlicePublisher({
    kubeConfig: new KubeConfig(), driverName: DRIVER, nodeName: NODE, poolName: POOL, logger: silentLogger(), client,
    backoff: { initialMs: 5, maxMs: 20 }, random: () => 0.5,
  });
}

describe('SlicePublisher scheduling (fake client)', () => {
  it('coalesces updates arriving during a reconcile into exactly one more', async () => {
    const client = new FakeClient();
    const p = publisher(client);
    let open!: () => void;
    client.gate = new Promise((r) => (open = r));
    p.start();
    p.update(exampleInventory());
    await client.called('node'); // reconcile #1 has begun and is held at the gate in its first call
    expect(client.calls).toEqual(['node']);
    // While reconcile #1 is blocked, three more changes arrive.
    for (const mem of [1, 2, 3]) {
      const inv = exampleInventory();
      p.update({ ...inv, gpus: [{ ...inv.gpus[0]!, memoryBytes: mem * 1024 ** 3 }, inv.gpus[1]!] });
    }
    client.gate = undefined;
    open();
    await p.whenSynced();
    expect(client.calls.filter((c) => c === 'list')).toHaveLength(2);
    expect(client.calls.filter((c) => c === 'create' || c === 'replace')).toEqual(['create', 'replace']);
    expect(client.slices[0]!.spec.devices?.[0]?.capacity?.memory?.value).toBe('3Gi');
    expect(p.stats()).toMatchObject({ writes: 2, errors: 0, generation: 2, reconciles: 2 });
    await p.stop();
  });

  it('a change made right after whenSynced() resolves is not lost', async () => {
    const client = new FakeClient();
    const p = publisher(client);
    p.start();
    p.update(exampleInventory());
    await p.whenSynced();
    for (let i = 1; i <= 3; i++) {
      const inv = exampleInventory();
      p.update({ ...inv, gpus: [{ ...inv.gpus[0]!, memoryBytes: i * 1024 ** 3 }, inv.gpus[1]!] });
      await p.whenSynced();
      expect(client.slices[0]!.spec.devices?.[0]?.capacity?.memory?.value).toBe(`${i}Gi`);
      expect(client.slices[0]!.spec.pool.generation).toBe(i + 1);
    }
    await p.stop();
  });

  it('retries failures with backoff and converges; stats count the errors', async () => {
    const client = new FakeClient();
    client.failNext = 3;
    const p = publisher(client);
    p.start();
    p.update(exampleInventory());
    await p.whenSynced();
    expect(p.stats()).toMatchObject({ errors: 3, writes: 1, consecutiveFailures: 0 });
    expect(p.stats().lastError).toMatch(/HTTP 500/);
    expect(client.slices).toHaveLength(1);
    await p.stop();
    await p.stop(); // idempotent
  });

  it('rejects whenSynced with the SliceError for an unpublishable inventory, without API writes', async () => {
    const client = new FakeClient();
    const p = publisher(client);
    p.start();
    p.update({ system: exampleInventory().system, gpus: [h100(0, { brand: 'x'.repeat(80) })] });
    await expect(p.whenSynced()).rejects.toThrow(/device gpu-0: attribute brand/);
    expect(client.calls.filter((c) => c !== 'node')).toEqual([]);
    // A good inventory afterwards publishes.
    p.update(exampleInventory());
    await p.whenSynced();
    expect(client.slices).toHaveLength(1);
    await p.stop();
  });

  it('stop() rejects pending waiters and stops retrying', async () => {
    // Fake timers: the retry schedule is pure timer logic, so time moves only when the test moves it.
    vi.useFakeTimers();
    const client = new FakeClient();
    client.failNext = 1_000;
    const p = new SlicePublisher({
      kubeConfig: new KubeConfig(), driverName: DRIVER, nodeName: NODE, poolName: POOL, logger: silentLogger(), client, backoff: { initialMs: 50, maxMs: 50 }, random: () => 0.9,
    });
    p.start();
    p.update(exampleInventory());
    const waiting = p.whenSynced();
    // Every attempt fails at its first call; retries are 0.9 × 50 = 45 ms apart (no busy loop): t = 0, 45, 90.
    await vi.advanceTimersByTimeAsync(120);
    expect(client.calls).toEqual(['node', 'node', 'node']);
    await p.stop();
    await expect(waiting).rejects.toThrow(/stopped/);
    // Stopped: however long the clock runs, no further attempt.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(client.calls).toEqual(['node', 'node', 'node']);
    expect(vi.getTimerCount()).toBe(0);
  });
});
