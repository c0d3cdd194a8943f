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
