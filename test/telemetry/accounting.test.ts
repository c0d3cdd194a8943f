/**
 * Per-claim accounting (src/telemetry/accounting.ts) on the mock backend, whose readings are deterministic for a
 * given clock (src/gpu/mock/simulate.ts: the energy counter integrates power with the trapezoid rule). The
 * expected figures come from the backend's own readings — the energy counter of the GPU, GPM's SM activity of
 * each sample, the sample times — never from the accumulator. Proves:
 * - accuracy: a claim's energy equals the GPU energy counter's delta over the samples at which it held the
 *   GPU, within one sample interval's delta; device-seconds within one interval; SM-active-seconds equal the
 *   sum of SM activity × interval over its intervals (utilization where GPM is absent);
 * - a device that changes hands between two samples: the interval goes to the claim that held it at its start,
 *   none to the arriving one, so the claims add up to the counter's delta;
 * - MIG: each MIG device gets its compute-slice share of its GPU's delta; the claims of a fully partitioned GPU
 *   add up to the GPU's delta; an unheld instance's share stays unattributed; a shared device is split equally;
 *   MIG devices (no utilization) get SM-active-seconds from GPM, and none (never 0) without it;
 * - a counter that goes back (driver reload) or jumps implausibly adds no energy, never a negative one;
 * - restart: a new accumulator continues from the recorded usage and integrates the gap from the cumulative
 *   counter, losing no energy and no device-seconds;
 * - unprepare: one final info log line with the totals; the final data point is reported until each export path
 *   collected it once, then it is gone.
 */
import { describe, expect, it } from 'vitest';
import { createMockBackend, type MockBackend } from '../../src/gpu/mock/index.js';
import type { DeviceSample, Inventory, Sample } from '../../src/gpu/types.js';
import type { ClaimRef, ClaimUsage, ClaimUsageStore, DeviceOwner, PodRef } from '../../src/model/types.js';
import { ClaimAccounting } from '../../src/telemetry/accounting.js';
import { activeFraction, migEnergyShare } from '../../src/telemetry/accounting-rules.js';
import { silentLogger } from '../../src/log.js';
import { recordingLogger } from '../helpers/log.js';
import { claimRef, podRef } from '../helpers/names.js';

/** Sample interval of these tests, ms. */
const STEP_MS = 5_000;

/** A mock machine on a clock the test advances one {@link STEP_MS} per sample. */
async function machine(name: string): Promise<{ backend: MockBackend; inventory: Inventory; next: () => Promise<Sample> }> {
  let now = Date.UTC(2026, 0, 1);
  const backend = createMockBackend({ machine: name, nodeName: 'acct-node', clock: () => now });
  await backend.init();
  return {
    backend,
    inventory: backend.inventory(),
    next: () => {
      now += STEP_MS;
      return backend.sample();
    },
  };
}

type Holding = readonly [ClaimRef, readonly string[], (readonly PodRef[])?];

/** The ownership map of `holdings` (claim, device UUIDs, pods), as `OwnershipSource.owners()` gives it. */
function ownersOf(holdings: readonly Holding[]): Map<string, DeviceOwner[]> {
  const map = new Map<string, DeviceOwner[]>();
  for (const [claim, uuids, pods = []] of holdings) {
    for (const uuid of uuids) map.set(uuid, [...(map.get(uuid) ?? []), { claim, pods, deviceName: 'dev', uuid }]);
  }
  return map;
}

const reading = (s: Sample, uuid: string): DeviceSample => {
  const d = s.devices.find((x) => x.uuid === uuid);
  if (d === undefined) throw new Error(`no reading of ${uuid}`);
  return d;
};
const energyMj = (s: Sample, uuid: string): number => reading(s, uuid).energyMillijoules!;

class MemoryUsageStore implements ClaimUsageStore {
  readonly recorded = new Map<string, ClaimUsage>();
  writes = 0;
  usages(): ReadonlyMap<string, ClaimUsage> {
    return this.recorded;
  }
  record(usages: ReadonlyMap<string, ClaimUsage>): Promise<void> {
    this.writes++;
    for (const [uid, u] of usages) this.recorded.set(uid, u);
    return Promise.resolve();
  }
}

describe('per-claim accounting on a full GPU', () => {
  it('energy equals the energy counter delta over the holding interval within one sample interval', async () => {
    const { inventory, next } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!.uuid;
    const claim = claimRef({ namespace: 'ml', name: 'train' });
    const pod = podRef({ namespace: 'ml', name: 'trainer-0' });
    const log = recordingLogger('info');
    const acct = new ClaimAccounting({ logger: log.logger, paths: ['prometheus'] });
    const samples: Sample[] = [];
    // Samples 0–2: free; 3–12: held; 13: released (unprepared before it).
    for (let i = 0; i < 14; i++) {
      const s = await next();
      samples.push(s);
      acct.observe(s, ownersOf(i >= 3 && i <= 12 ? [[claim, [gpu], [pod]]] : []), inventory);
    }
    const first = samples[3]!;
    const last = samples[12]!;
    const after = samples[13]!;
    const expectedJ = (energyMj(last, gpu) - energyMj(first, gpu)) / 1000;
    const oneIntervalJ = (energyMj(after, gpu) - energyMj(last, gpu)) / 1000;
    const totals = acct.totals(claim.uid)!;
    expect(totals.departedAtMs).toBe(after.timestampMs);
    expect(Math.abs(totals.energyJoules! - expectedJ)).toBeLessThanOrEqual(oneIntervalJ + 1e-9);
    expect(totals.energyJoules!).toBeGreaterThan(expectedJ * 0.99); // not zero, not a fraction of it
    const heldS = (last.timestampMs - first.timestampMs) / 1000;
    expect(Math.abs(totals.deviceSeconds - heldS)).toBeLessThanOrEqual(STEP_MS / 1000);
    // SM-active-seconds (an H100 has GPM): each interval (i−1, i] with GPM's SM activity read at i, for i = 4…13.
    let utilS = 0;
    for (let i = 4; i <= 13; i++) utilS += reading(samples[i]!, gpu).gpm!.smActive! * (STEP_MS / 1000);
    expect(totals.activeSeconds).toBeCloseTo(utilS, 9);
    // Peak memory: used less reserved, the largest over the held samples.
    const mem = samples.slice(3, 13).map((s) => reading(s, gpu).memoryUsedBytes! - reading(s, gpu).memoryReservedBytes!);
    expect(totals.memoryPeakBytes).toBe(Math.max(...mem));

    // One final info line with the totals.
    const finals = log.withMessage('final totals');
    expect(finals).toHaveLength(1);
    expect(finals[0]).toMatchObject({ level: 30, claimUid: claim.uid, claim: 'ml/train', pods: ['trainer-0'], devices: [gpu], energyJoules: totals.energyJoules, deviceSeconds: totals.deviceSeconds });
    // The final data point: reported by the collections until the path delivered it, then gone.
    expect(acct.collect().map((t) => t.attributes)).toEqual([
      { 'k8s.namespace.name': 'ml', 'gpulet.claim.name': 'train', 'gpulet.claim.namespace': 'ml', 'gpulet.claim.uid': claim.uid, 'k8s.pod.name': 'trainer-0', 'k8s.pod.uid': pod.uid },
    ]);
    acct.delivered('prometheus');
    expect(acct.collect()).toEqual([]);
    expect(acct.totals(claim.uid)).toBeUndefined();
  });

  it('a device held by two claims is split equally between them; device-seconds are each claim\'s own', async () => {
    const { inventory, next } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!.uuid;
    const a = claimRef({ namespace: 'ml', name: 'a' });
    const b = claimRef({ namespace: 'ml', name: 'b' });
    const acct = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const samples: Sample[] = [];
    for (let i = 0; i < 8; i++) {
      const s = await next();
      samples.push(s);
      acct.observe(s, ownersOf([[a, [gpu]], [b, [gpu]]]), inventory);
    }
    const delta = (energyMj(samples[7]!, gpu) - energyMj(samples[0]!, gpu)) / 1000;
    const ta = acct.totals(a.uid)!;
    const tb = acct.totals(b.uid)!;
    expect(ta.energyJoules! + tb.energyJoules!).toBeCloseTo(delta, 6);
    expect(ta.energyJoules).toBeCloseTo(tb.energyJoules!, 9);
    expect(ta.deviceSeconds).toBe((7 * STEP_MS) / 1000);
    expect(tb.deviceSeconds).toBe((7 * STEP_MS) / 1000);
    expect(ta.attributes['k8s.pod.name']).toBeUndefined(); // no pod known: no pod attribute
  });
});

describe('per-claim accounting when a device changes hands', () => {
  it('the interval goes to the claim that held the device at its start, none to the one that arrived: no double count', async () => {
    const { inventory, next } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!.uuid;
    const a = claimRef({ namespace: 'ml', name: 'first' });
    const b = claimRef({ namespace: 'ml', name: 'second' });
    const acct = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const samples: Sample[] = [];
    // a holds the GPU for samples 0–4; b from sample 5 on (a was unprepared and b prepared in between).
    for (let i = 0; i < 10; i++) {
      const s = await next();
      samples.push(s);
      acct.observe(s, ownersOf(i < 5 ? [[a, [gpu]]] : [[b, [gpu]]]), inventory);
    }
    const delta = (from: number, to: number) => (energyMj(samples[to]!, gpu) - energyMj(samples[from]!, gpu)) / 1000;
    expect(acct.totals(a.uid)!.energyJoules).toBeCloseTo(delta(0, 5), 6); // (4, 5] closes a's holding in full
    expect(acct.totals(b.uid)!.energyJoules).toBeCloseTo(delta(5, 9), 6);
    expect(acct.totals(a.uid)!.energyJoules! + acct.totals(b.uid)!.energyJoules!).toBeCloseTo(delta(0, 9), 6);
    expect(acct.totals(a.uid)!.deviceSeconds + acct.totals(b.uid)!.deviceSeconds).toBe((9 * STEP_MS) / 1000);
  });
});

describe('per-claim accounting across samples (what it keeps from one sample to the next)', () => {
  it('follows an ownership map changed in place (owners replaced, a device added), as a new map', async () => {
    const { inventory, next } = await machine('dgx-h100');
    const [g0, g1] = [inventory.gpus[0]!.uuid, inventory.gpus[1]!.uuid];
    const a = claimRef({ namespace: 'ml', name: 'a' });
    const b = claimRef({ namespace: 'ml', name: 'b' });
    const inPlace = ownersOf([[a, [g0]]]);
    const fresh = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const same = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const steps: readonly Holding[][] = [[[a, [g0]]], [[a, [g0]]], [[b, [g0]]], [[b, [g0]]], [[b, [g0, g1]]], [[b, [g0, g1]]], [[a, [g1]]]];
    for (const holdings of steps) {
      const s = await next();
      const owners = ownersOf(holdings);
      inPlace.clear();
      for (const [uuid, list] of owners) inPlace.set(uuid, list);
      fresh.observe(s, owners, inventory);
      same.observe(s, inPlace, inventory);
    }
    for (const c of [a, b]) expect(same.totals(c.uid)).toEqual(fresh.totals(c.uid));
    expect(same.totals(b.uid)?.departedAtMs).toBeDefined();
    expect(same.totals(a.uid)?.departedAtMs).toBeUndefined(); // a holds g1 again (same UID: live again)
  });

  it('a device missing from a sample (lost) has no readings in it: its interval adds device-seconds but no energy and no memory', async () => {
    const { inventory, next } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!.uuid;
    const claim = claimRef({ namespace: 'ml', name: 'lost' });
    const owners = ownersOf([[claim, [gpu]]]);
    const acct = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const first = await next();
    acct.observe(first, owners, inventory);
    const second = await next();
    acct.observe(second, owners, inventory);
    const before = acct.totals(claim.uid)!;
    const lost = await next();
    acct.observe({ timestampMs: lost.timestampMs, devices: [] }, owners, inventory);
    const after = acct.totals(claim.uid)!;
    expect(after.deviceSeconds).toBe(before.deviceSeconds + STEP_MS / 1000);
    expect(after.energyJoules).toBe(before.energyJoules);
    expect(after.activeSeconds).toBe(before.activeSeconds);
    expect(after.memoryPeakBytes).toBe(before.memoryPeakBytes);
  });
});

describe('per-claim accounting of MIG devices', () => {
  it('shares add up: a fully partitioned GPU\'s claims get its whole delta; an unheld instance\'s share stays unattributed', async () => {
    const { inventory, next } = await machine('dgx-h100');
    const full = inventory.gpus[7]!; // 7 × 1g.10gb
    const partial = inventory.gpus[6]!; // 3g.40gb + 2g.20gb + 1g.10gb
    expect(full.migDevices.map((m) => m.profile)).toEqual(Array(7).fill('1g.10gb'));
    const fullClaims = full.migDevices.map((m, i) => [claimRef({ namespace: 'team', name: `mig-${i}` }), [m.uuid]] as const);
    const big = partial.migDevices.find((m) => m.profile === '3g.40gb')!;
    const small = partial.migDevices.find((m) => m.profile === '1g.10gb')!;
    const bigClaim = claimRef({ namespace: 'team', name: 'big' });
    const smallClaim = claimRef({ namespace: 'team', name: 'small' });
    const owners = ownersOf([...fullClaims, [bigClaim, [big.uuid]], [smallClaim, [small.uuid]]]);
    const acct = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const samples: Sample[] = [];
    for (let i = 0; i < 10; i++) {
      const s = await next();
      samples.push(s);
      acct.observe(s, owners, inventory);
    }
    const delta = (uuid: string) => (energyMj(samples[9]!, uuid) - energyMj(samples[0]!, uuid)) / 1000;
    const sumFull = fullClaims.reduce((sum, [c]) => sum + acct.totals(c.uid)!.energyJoules!, 0);
    expect(sumFull).toBeCloseTo(delta(full.uuid), 6);
    for (const [c] of fullClaims) expect(acct.totals(c.uid)!.energyJoules).toBeCloseTo(delta(full.uuid) / 7, 6);
    expect(acct.totals(bigClaim.uid)!.energyJoules).toBeCloseTo((delta(partial.uuid) * 3) / 7, 6);
    expect(acct.totals(smallClaim.uid)!.energyJoules).toBeCloseTo(delta(partial.uuid) / 7, 6);
    // The 2g.20gb instance is unheld and one slice is unpartitioned: 3/7 of the GPU's delta is nobody's.
    expect(acct.totals(bigClaim.uid)!.energyJoules! + acct.totals(smallClaim.uid)!.energyJoules!).toBeCloseTo((delta(partial.uuid) * 4) / 7, 6);
    // MIG devices give no utilization, but an H100's give GPM's SM activity (from a device's second sample on):
    // active-seconds are SM-active-seconds, the interval × the activity read at its end.
    expect(reading(samples[0]!, big.uuid).gpm).toBeUndefined();
    const smActiveSeconds = samples.slice(1).reduce((sum, s) => sum + reading(s, big.uuid).gpm!.smActive! * (STEP_MS / 1000), 0);
    expect(smActiveSeconds).toBeGreaterThan(0);
    expect(acct.totals(bigClaim.uid)!.activeSeconds).toBeCloseTo(smActiveSeconds, 9);
    // Memory is the MIG device's own.
    const bigMem = Math.max(...samples.slice(0, 10).map((s) => reading(s, big.uuid).memoryUsedBytes!));
    expect(acct.totals(bigClaim.uid)!.memoryPeakBytes).toBe(bigMem);
  });

  it('migEnergyShare is the profile\'s compute slices over the GPU\'s', () => {
    expect(migEnergyShare('3g.40gb', 7)).toBeCloseTo(3 / 7, 12);
    expect(migEnergyShare('1g.10gb+me', 7)).toBeCloseTo(1 / 7, 12);
    expect(migEnergyShare('2g.12gb', 4)).toBe(0.5); // A30: 4 compute slices
    expect(migEnergyShare('weird', 7)).toBeUndefined();
  });
});

describe('per-claim accounting and bad counters', () => {
  it('a counter that goes back or jumps implausibly adds no energy, never a negative one', async () => {
    const { inventory } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!;
    const claim = claimRef({ namespace: 'ml', name: 'reset' });
    const acct = new ClaimAccounting({ logger: silentLogger(), paths: [] });
    const owners = ownersOf([[claim, [gpu.uuid]]]);
    const at = (tMs: number, energy: number): Sample => ({ timestampMs: tMs, devices: [{ uuid: gpu.uuid, energyMillijoules: energy, gpuUtilizationPercent: 50 }] });
    const maxMj = 2 * gpu.powerLimitMilliwatts * 10; // twice the power limit over 10 s
    acct.observe(at(0, 1_000_000), owners, inventory);
    acct.observe(at(10_000, 1_500_000), owners, inventory); // +500 J
    acct.observe(at(20_000, 200_000), owners, inventory); // driver reload: counter back to 200 J
    acct.observe(at(30_000, 300_000), owners, inventory); // +100 J
    acct.observe(at(40_000, 300_000 + maxMj + 1), owners, inventory); // impossible in 10 s
    acct.observe(at(50_000, 300_000 + maxMj + 1 + 50_000), owners, inventory); // +50 J
    const t = acct.totals(claim.uid)!;
    expect(t.energyJoules).toBeCloseTo(650, 9);
    expect(t.deviceSeconds).toBe(50);
    expect(t.activeSeconds).toBeCloseTo(25, 9);
    expect(activeFraction({ uuid: gpu.uuid })).toBeUndefined();
    // GPM's SM activity, where sampled, is preferred to utilization; a MIG device without GPM (A100) has neither.
    expect(activeFraction({ uuid: gpu.uuid, gpuUtilizationPercent: 90, gpm: { smActive: 0.25 } })).toBe(0.25);
    expect(activeFraction({ uuid: gpu.uuid, gpuUtilizationPercent: 90, gpm: { dramActive: 0.5 } })).toBe(0.9);
    expect(activeFraction({ uuid: 'MIG-a100', memoryUsedBytes: 1 })).toBeUndefined();
  });
});

describe('per-claim accounting across an agent restart', () => {
  it('continues from the recorded usage and integrates the gap from the cumulative counter: no energy or device-seconds lost', async () => {
    const { inventory, next } = await machine('h100-80gb');
    const gpu = inventory.gpus[0]!.uuid;
    const claim = claimRef({ namespace: 'ml', name: 'long' });
    const owners = ownersOf([[claim, [gpu]]]);
    const store = new MemoryUsageStore();
    const before = new ClaimAccounting({ logger: silentLogger(), paths: [], store, persistIntervalMs: 3 * STEP_MS });
    const samples: Sample[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await next();
      samples.push(s);
      before.observe(s, owners, inventory);
    }
    await before.flush(); // what the agent records at shutdown (a kill loses at most the persist interval of activity)
    expect(store.writes).toBeGreaterThanOrEqual(2); // the new claim's baselines at once, then at the interval
    const recorded = store.recorded.get(claim.uid)!;
    expect(recorded.lastSampleMs).toBe(samples[5]!.timestampMs);
    // The agent is down for samples 6–8 (nobody samples; the GPU's counter keeps counting).
    for (let i = 6; i < 9; i++) samples.push(await next());
    const after = new ClaimAccounting({ logger: silentLogger(), paths: [], store });
    for (let i = 9; i < 14; i++) {
      const s = await next();
      samples.push(s);
      after.observe(s, owners, inventory);
    }
    const t = after.totals(claim.uid)!;
    expect(t.energyJoules).toBeCloseTo((energyMj(samples[13]!, gpu) - energyMj(samples[0]!, gpu)) / 1000, 6);
    expect(t.deviceSeconds).toBeCloseTo((samples[13]!.timestampMs - samples[0]!.timestampMs) / 1000, 9);
    // Activity is integrated where the agent sampled, the gap's (samples 6–9) is unknown.
    let utilS = 0;
    for (const i of [1, 2, 3, 4, 5, 10, 11, 12, 13]) utilS += reading(samples[i]!, gpu).gpm!.smActive! * (STEP_MS / 1000);
    expect(t.activeSeconds).toBeCloseTo(utilS, 9);
  });
});
