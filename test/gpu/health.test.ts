import { afterEach, describe, expect, it, vi } from 'vitest';
import { APPLICATION_XIDS, DOUBLE_BIT_ECC_XID, HealthTracker, stateForEvent, worstState, type HealthChange, type RecoveryTimer } from '../../src/gpu/health.js';
import type { HealthEvent } from '../../src/gpu/types.js';
import { FakeBackend, GPU0, GPU1, INVENTORY, MIG_A, MIG_B } from '../helpers/telemetry.js';
import { waitFor } from '../helpers/wait.js';

const ev = (uuid: string, kind: HealthEvent['kind'], xid?: number): HealthEvent =>
  xid === undefined ? { kind, uuid, timestampMs: 1, message: kind } : { kind, uuid, xid, timestampMs: 1, message: `xid ${xid}` };

describe('health policy', () => {
  it('ignores the application XIDs NVIDIA ignores (k8s-dra-driver-gpu device_health.go xidsToSkip)', () => {
    expect([...APPLICATION_XIDS].sort((a, b) => a - b)).toEqual([13, 31, 43, 45, 68, 109]);
    for (const xid of APPLICATION_XIDS) expect(stateForEvent(ev(GPU0, 'xid', xid))).toBe('ok');
  });

  it('fails a device on critical XIDs', () => {
    for (const xid of [48, 63, 64, 74, 79, 92, 94, 95, 119]) expect(stateForEvent(ev(GPU0, 'xid', xid)), `xid ${xid}`).toBe('failed');
  });

  it('double-bit ECC fails, single-bit degrades, lost/unavailable fail, unmonitored/recovered inform', () => {
    expect(stateForEvent(ev(GPU0, 'ecc-double-bit'))).toBe('failed');
    expect(stateForEvent(ev(GPU0, 'ecc-single-bit'))).toBe('degraded');
    expect(stateForEvent(ev(GPU0, 'gpu-lost'))).toBe('failed');
    expect(stateForEvent(ev(GPU0, 'gpu-unavailable'))).toBe('failed');
    expect(stateForEvent(ev(GPU0, 'unmonitored'))).toBe('ok');
    expect(stateForEvent(ev(GPU0, 'gpu-recovered'))).toBe('ok');
  });
});

describe('HealthTracker', () => {
  it('starts every inventory device ok', () => {
    const t = new HealthTracker(INVENTORY);
    expect([...t.states().entries()].sort()).toEqual([[GPU0, 'ok'], [GPU1, 'ok'], [MIG_A, 'ok'], [MIG_B, 'ok']].sort());
    expect(t.unhealthyUuids()).toEqual([]);
  });

  it('keeps app-level XIDs ok but counts them and keeps the latest as a non-fatal xid condition', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 13));
    t.record(ev(GPU0, 'xid', 31));
    t.record(ev(GPU0, 'xid', 13));
    expect(t.state(GPU0)).toBe('ok');
    expect([...t.xidCounts(GPU0)]).toEqual([[13, 2], [31, 1]]);
    expect(t.lastXid(GPU0)).toBe(13);
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 13, fatal: false });
  });

  it('a fatal XID replaces an application XID, never the other way round', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 43));
    t.record(ev(GPU0, 'xid', 79));
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 79, fatal: true });
    t.record(ev(GPU0, 'xid', 13));
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 79, fatal: true });
    expect(t.state(GPU0)).toBe('failed');
    t.record(ev(GPU0, 'xid', 94));
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 94, fatal: true });
  });

  it('names a double-bit ECC error by its XID (48), a lost or unavailable GPU by lost, no registration by unmonitored', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'ecc-double-bit'));
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: DOUBLE_BIT_ECC_XID, fatal: true });
    expect(DOUBLE_BIT_ECC_XID).toBe(48);
    expect(t.xidCounts(GPU0).size).toBe(0); // counted as an ECC error, not as an XID event
    t.record(ev(GPU1, 'gpu-unavailable'));
    expect(t.conditions(GPU1).lost).toBeDefined();
    expect(t.conditions(MIG_A).lost).toBeDefined(); // inherited
    const u = new HealthTracker(INVENTORY);
    u.record(ev(GPU0, 'unmonitored'));
    expect(u.conditions(GPU0).unmonitored).toBeDefined();
    expect(u.state(GPU0)).toBe('ok');
    expect([...u.allConditions().keys()]).toEqual([GPU0]);
  });

  it('without a recovery interval, never improves by itself: degraded then failed stays failed', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'ecc-single-bit'));
    expect(t.state(GPU0)).toBe('degraded');
    t.record(ev(GPU0, 'ecc-double-bit'));
    t.record(ev(GPU0, 'ecc-single-bit'));
    expect(t.state(GPU0)).toBe('failed');
    expect(t.unhealthyUuids()).toEqual([GPU0]);
  });

  it('MIG devices inherit the parent failure; a MIG event leaves siblings and parent alone', () => {
    let clock = 1_000;
    const t = new HealthTracker(INVENTORY, { now: () => clock });
    t.record(ev(MIG_A, 'xid', 94));
    expect(t.state(MIG_A)).toBe('failed');
    expect(t.state(MIG_B)).toBe('ok');
    expect(t.state(GPU1)).toBe('ok');
    const changes: HealthChange[] = [];
    t.onChange((c) => changes.push(c));
    clock += 1;
    t.record(ev(GPU1, 'xid', 79));
    expect(t.state(MIG_B)).toBe('failed');
    // MIG_A stays failed, but its taint's XID becomes the parent's later one (79): listeners hear of it.
    expect(changes.map((c) => [c.uuid, c.previous, c.state, c.conditions.xid?.xid])).toEqual(
      expect.arrayContaining([[GPU1, 'ok', 'failed', 79], [MIG_A, 'failed', 'failed', 79], [MIG_B, 'ok', 'failed', 79]]),
    );
    expect(changes).toHaveLength(3);
    expect(t.unhealthyUuids().sort()).toEqual([GPU1, MIG_A, MIG_B].sort());
  });

  it('notifies only on changes (state or taint facts), survives a throwing listener, and unsubscribes', () => {
    const t = new HealthTracker(INVENTORY);
    const seen: string[] = [];
    t.onChange(() => {
      throw new Error('boom');
    });
    const off = t.onChange((c) => seen.push(`${c.uuid}:${c.state}:${c.conditions.xid?.xid ?? '-'}`));
    t.record(ev(GPU0, 'xid', 13)); // informational xid taint appears
    t.record(ev(GPU0, 'xid', 13)); // no change
    t.record(ev(GPU0, 'ecc-single-bit'));
    t.record(ev(GPU0, 'ecc-single-bit')); // no change
    off();
    t.record(ev(GPU0, 'gpu-lost'));
    expect(seen).toEqual([`${GPU0}:ok:13`, `${GPU0}:degraded:13`]);
  });

  it('honours additional ignored XIDs, tolerates bad input and unknown UUIDs', () => {
    const t = new HealthTracker(INVENTORY, { additionalIgnoredXids: [63] });
    t.record(ev(GPU0, 'xid', 63));
    expect(t.state(GPU0)).toBe('ok');
    t.record({ kind: 'xid', uuid: '', timestampMs: 1, message: 'no uuid' });
    t.record(ev('GPU-unknown', 'gpu-lost'));
    expect(t.state('GPU-unknown')).toBe('failed');
    expect(t.state('GPU-never-seen')).toBe('ok');
  });

  it('attaches to a backend', () => {
    const backend = new FakeBackend();
    const t = new HealthTracker(INVENTORY);
    const off = t.attach(backend);
    backend.emit(ev(GPU0, 'ecc-double-bit'));
    expect(t.state(GPU0)).toBe('failed');
    off();
    backend.emit(ev(GPU1, 'ecc-double-bit'));
    expect(t.state(GPU1)).toBe('ok');
  });
});

/** A manual clock and one-shot timer: `advance(ms)` fires what is due, in order. */
function fakeTime(start = 1_000_000) {
  let now = start;
  const pending = new Map<number, { at: number; fn: () => void }>();
  let seq = 0;
  let sets = 0;
  const timer: RecoveryTimer = {
    set: (fn, ms) => {
      seq += 1;
      sets += 1;
      pending.set(seq, { at: now + ms, fn });
      return seq;
    },
    clear: (h) => void pending.delete(h as number),
  };
  return {
    now: () => now,
    timer,
    pending: () => pending.size,
    /** How many timers were set so far. */
    sets: () => sets,
    advance(ms: number): void {
      const end = now + ms;
      for (;;) {
        const due = [...pending.entries()].filter(([, p]) => p.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (due === undefined) break;
        pending.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
      }
      now = end;
    },
  };
}

describe('HealthTracker recovery', () => {
  const MIN = 60_000;

  it('gpu-recovered clears a lost GPU and its MIG devices, keeps unmonitored, and notifies', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU1, 'unmonitored'));
    t.record(ev(GPU1, 'gpu-lost'));
    t.record(ev(MIG_A, 'xid', 94));
    expect(t.unhealthyUuids().sort()).toEqual([GPU1, MIG_A, MIG_B].sort());
    const changes: HealthChange[] = [];
    t.onChange((c) => changes.push(c));
    t.record({ kind: 'gpu-recovered', uuid: GPU1, timestampMs: 2, message: 'answers again' });
    expect(t.unhealthyUuids()).toEqual([]);
    expect(t.conditions(MIG_A)).toEqual({ unmonitored: expect.anything(), message: 'answers again' });
    expect(changes.map((c) => [c.uuid, c.previous, c.state, c.reason]).sort()).toEqual(
      [[GPU1, 'failed', 'ok', 'answers again'], [MIG_A, 'failed', 'ok', 'answers again'], [MIG_B, 'failed', 'ok', 'answers again']].sort(),
    );
  });

  it('a lost GPU never recovers by time, only when it answers again', () => {
    const time = fakeTime();
    const t = new HealthTracker(INVENTORY, { recoveryMs: MIN, now: time.now, timer: time.timer });
    t.record(ev(GPU0, 'gpu-lost'));
    expect(t.nextRecoveryAt()).toBeUndefined();
    time.advance(60 * MIN);
    expect(t.state(GPU0)).toBe('failed');
  });

  it('drops a fatal XID after the quiet interval; a new non-ignored event restarts it, an application XID does not', () => {
    const time = fakeTime();
    const t = new HealthTracker(INVENTORY, { recoveryMs: 10 * MIN, now: time.now, timer: time.timer });
    const changes: HealthChange[] = [];
    t.onChange((c) => changes.push(c));
    t.record(ev(GPU0, 'xid', 79));
    const t0 = time.now();
    expect(t.nextRecoveryAt()).toBe(t0 + 10 * MIN);
    time.advance(6 * MIN);
    t.record(ev(GPU0, 'xid', 13)); // application XID: does not renew the fatal condition
    t.record(ev(GPU0, 'ecc-double-bit')); // XID 48: renews it
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 48, fatal: true, sinceMs: t0 });
    time.advance(9 * MIN);
    expect(t.state(GPU0)).toBe('failed');
    time.advance(1 * MIN);
    expect(t.state(GPU0)).toBe('ok');
    expect(t.conditions(GPU0).xid).toBeUndefined();
    expect(changes.at(-1)).toMatchObject({ uuid: GPU0, previous: 'failed', state: 'ok', reason: `recovered: no new health event for ${10 * MIN} ms` });
    expect(time.pending()).toBe(0);
  });

  it('recovers degraded devices and informational XIDs the same way; MIG devices follow their parent', () => {
    const time = fakeTime();
    const t = new HealthTracker(INVENTORY, { recoveryMs: MIN, now: time.now, timer: time.timer });
    t.record(ev(GPU1, 'xid', 79));
    t.record(ev(GPU0, 'ecc-single-bit'));
    time.advance(MIN / 2);
    t.record(ev(GPU0, 'xid', 43));
    expect(t.state(MIG_B)).toBe('failed');
    time.advance(MIN / 2);
    expect(t.state(MIG_B)).toBe('ok');
    expect(t.state(GPU0)).toBe('ok');
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 43, fatal: false });
    time.advance(MIN / 2);
    expect(t.allConditions().size).toBe(0);
  });

  it('stops its timer on close and rejects a bad interval', () => {
    const time = fakeTime();
    const t = new HealthTracker(INVENTORY, { recoveryMs: MIN, now: time.now, timer: time.timer });
    t.record(ev(GPU0, 'xid', 79));
    expect(time.pending()).toBe(1);
    t.close();
    expect(time.pending()).toBe(0);
    time.advance(2 * MIN);
    expect(t.state(GPU0)).toBe('failed');
    expect(() => new HealthTracker(INVENTORY, { recoveryMs: -1 })).toThrow(RangeError);
  });
});

/*
 * The policy's finer points, each pinned (found by mutation testing, docs/testing.md): input that is not an
 * event, when a condition begins, which devices an event or a recovery touches, the effective conditions of a
 * MIG device, and the recovery timer's life.
 */
describe('health policy: edges', () => {
  it('the worse of two states: failed over degraded over ok, in either order', () => {
    const order = ['ok', 'degraded', 'failed'] as const;
    for (const [i, a] of order.entries()) for (const [j, b] of order.entries()) expect(worstState(a, b), `${a} ${b}`).toBe(order[Math.max(i, j)]);
  });

  it('an XID event without an integer XID is fatal, even when the ignore list holds that value', () => {
    expect(stateForEvent({ kind: 'xid', uuid: GPU0, timestampMs: 1, message: 'no number' })).toBe('failed');
    expect(stateForEvent({ kind: 'xid', uuid: GPU0, xid: 13.5, timestampMs: 1, message: 'xid 13.5' }, new Set([13.5]))).toBe('failed');
  });
});

describe('HealthTracker: edges', () => {
  const MIN = 60_000;

  it('drops events without a UUID string; counts only the integer XIDs of XID events', () => {
    const t = new HealthTracker(INVENTORY);
    t.record({ kind: 'gpu-lost', uuid: '', timestampMs: 1, message: 'empty' });
    t.record({ kind: 'gpu-lost', uuid: 7 as unknown as string, timestampMs: 1, message: 'not a string' });
    expect([...t.states().keys()].sort()).toEqual([GPU0, GPU1, MIG_A, MIG_B].sort());
    t.record({ kind: 'xid', uuid: GPU0, xid: 13.5, timestampMs: 1, message: 'xid 13.5' });
    expect(t.xidCounts(GPU0).size).toBe(0);
    expect(t.lastXid(GPU0)).toBeUndefined();
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 0, fatal: true }); // a fatal XID of unknown number
    t.record({ kind: 'ecc-double-bit', uuid: GPU1, xid: 48, timestampMs: 1, message: 'DBE' });
    expect(t.xidCounts(GPU1).size).toBe(0);
    expect(t.lastXid(GPU1)).toBeUndefined();
  });

  it('names a change by the event kind when the event carries no message', () => {
    const t = new HealthTracker(INVENTORY);
    const reasons: string[] = [];
    t.onChange((c) => reasons.push(c.reason));
    t.record({ kind: 'gpu-lost', uuid: GPU0, timestampMs: 1, message: undefined as unknown as string });
    expect(reasons).toEqual(['gpu-lost']);
    expect(t.conditions(GPU0).message).toBe('gpu-lost');
  });

  it('rejects a negative interval with a message naming the value', () => {
    expect(() => new HealthTracker(INVENTORY, { recoveryMs: -1 })).toThrow('health recovery interval must be a non-negative integer (ms), got -1');
  });

  it('a rediscovery keeps recorded conditions and replaces the MIG → parent links', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 79));
    t.record(ev(MIG_A, 'xid', 94));
    t.record(ev(GPU1, 'gpu-lost'));
    t.setInventory(INVENTORY);
    expect(t.conditions(GPU0).xid).toMatchObject({ xid: 79, fatal: true });
    expect(t.conditions(MIG_A).xid).toMatchObject({ xid: 94, fatal: true });
    expect(t.state(MIG_B)).toBe('failed');
    // GPU 1 gone from the inventory: its former MIG devices no longer inherit, and its recovery reaches none of them.
    t.setInventory({ ...INVENTORY, gpus: [INVENTORY.gpus[0]!] });
    expect(t.state(MIG_B)).toBe('ok');
    t.record(ev(GPU1, 'gpu-recovered'));
    expect(t.conditions(MIG_A).xid).toMatchObject({ xid: 94, fatal: true });
  });

  it('a recovery touches only the device and its MIG devices, and leaves exactly its message', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'gpu-lost'));
    t.record(ev('GPU-unknown', 'gpu-lost'));
    t.record(ev(GPU0, 'gpu-recovered'));
    t.record(ev('GPU-unknown', 'gpu-recovered'));
    expect([...t.states().keys()].sort()).toEqual([GPU0, GPU1, MIG_A, MIG_B, 'GPU-unknown'].sort());
    expect(t.conditions(GPU0)).toStrictEqual({ message: 'gpu-recovered' });
  });

  it("an event on a GPU leaves its MIG devices' own conditions; its recovery keeps their own unmonitored", () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(MIG_A, 'unmonitored'));
    t.record(ev(MIG_A, 'xid', 94));
    t.record(ev(GPU1, 'ecc-single-bit'));
    expect(t.conditions(MIG_A).xid).toMatchObject({ xid: 94, fatal: true });
    t.record(ev(GPU1, 'gpu-recovered'));
    expect(t.conditions(MIG_A)).toStrictEqual({ unmonitored: { sinceMs: expect.any(Number) }, message: 'gpu-recovered' });
  });

  it('a condition begins at its first event: renewals keep sinceMs; a fatal XID after an application XID begins anew', () => {
    let clock = 1_000;
    const t = new HealthTracker(INVENTORY, { now: () => clock });
    for (const kind of ['ecc-single-bit', 'unmonitored', 'gpu-lost'] as const) t.record(ev(GPU0, kind));
    t.record(ev(GPU0, 'xid', 13));
    clock = 2_000;
    for (const kind of ['ecc-single-bit', 'unmonitored', 'gpu-lost'] as const) t.record(ev(GPU0, kind));
    t.record(ev(GPU0, 'xid', 79));
    expect(t.conditions(GPU0)).toMatchObject({
      degraded: { sinceMs: 1_000, lastMs: 2_000 },
      unmonitored: { sinceMs: 1_000 },
      lost: { sinceMs: 1_000 },
      xid: { xid: 79, fatal: true, sinceMs: 2_000, lastMs: 2_000 },
    });
  });

  it('lists every device with a condition of any kind, and only those', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 13)); // an xid condition only
    t.record(ev('GPU-x', 'gpu-lost')); // lost only
    t.record(ev('GPU-y', 'ecc-single-bit')); // degraded only
    t.record(ev('GPU-z', 'unmonitored')); // unmonitored only
    expect([...t.allConditions().keys()].sort()).toEqual([GPU0, 'GPU-x', 'GPU-y', 'GPU-z'].sort());
  });

  it('tells listeners when a taint appears without a change of state: lost on a failed GPU, unmonitored on a healthy one', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 79));
    const changes: HealthChange[] = [];
    t.onChange((c) => changes.push(c));
    t.record(ev(GPU0, 'gpu-lost'));
    t.record(ev(GPU1, 'unmonitored'));
    expect(changes.map((c) => [c.uuid, c.previous, c.state, c.conditions.lost !== undefined, c.conditions.unmonitored !== undefined])).toEqual([
      [GPU0, 'failed', 'failed', true, false],
      [GPU1, 'ok', 'ok', false, true],
      [MIG_A, 'ok', 'ok', false, true],
      [MIG_B, 'ok', 'ok', false, true],
    ]);
  });

  describe("a MIG device's effective conditions", () => {
    it('are exactly its own and its parent GPU\'s', () => {
      const t = new HealthTracker(INVENTORY);
      expect(t.conditions(MIG_A)).toStrictEqual({});
      t.record(ev(MIG_A, 'ecc-single-bit'));
      expect(t.state(MIG_A)).toBe('degraded');
      expect(t.state(MIG_B)).toBe('ok');
      t.record(ev(GPU1, 'ecc-single-bit'));
      expect(t.state(MIG_B)).toBe('degraded');
    });

    it('carry the message of whichever makes it unhealthy, else its own, else its parent\'s', () => {
      const t = new HealthTracker(INVENTORY);
      t.record(ev(MIG_A, 'xid', 13)); // ok, own message
      t.record(ev(GPU1, 'unmonitored')); // parent ok, with a message
      expect(t.conditions(MIG_A).message).toBe('xid 13');
      expect(t.conditions(MIG_B).message).toBe('unmonitored');
      t.record(ev(GPU1, 'gpu-lost')); // the parent fails MIG_A
      expect(t.conditions(MIG_A).message).toBe('gpu-lost');
      t.record(ev(MIG_A, 'xid', 94)); // MIG_A fails by itself too
      expect(t.conditions(MIG_A).message).toBe('xid 94');
    });

    it('carry the worse XID: fatal over an application XID, then the later, its own on a tie', () => {
      let clock = 1_000;
      const t = new HealthTracker(INVENTORY, { now: () => clock });
      t.record(ev(MIG_A, 'xid', 94));
      t.record(ev(GPU1, 'xid', 79)); // same time: MIG_A keeps its own, MIG_B inherits
      expect(t.conditions(MIG_A).xid?.xid).toBe(94);
      expect(t.conditions(MIG_B).xid?.xid).toBe(79);
      clock = 2_000;
      t.record(ev(MIG_B, 'xid', 95)); // own, later than the parent's
      expect(t.conditions(MIG_B).xid?.xid).toBe(95);
      const u = new HealthTracker(INVENTORY, { now: () => clock });
      u.record(ev(MIG_A, 'xid', 94));
      clock = 3_000;
      u.record(ev(GPU1, 'xid', 13)); // later, but an application XID
      expect(u.conditions(MIG_A).xid).toMatchObject({ xid: 94, fatal: true });
    });
  });

  describe('recovery by time', () => {
    it('is a no-op without an interval: expire() drops nothing, no deadline, no timer', () => {
      const time = fakeTime();
      const t = new HealthTracker(INVENTORY, { now: time.now, timer: time.timer });
      t.record(ev(GPU0, 'xid', 79));
      t.record(ev(GPU1, 'ecc-single-bit'));
      time.advance(MIN);
      t.expire();
      expect(t.state(GPU0)).toBe('failed');
      expect(t.state(GPU1)).toBe('degraded');
      expect(t.nextRecoveryAt()).toBeUndefined();
      expect(time.sets()).toBe(0);
    });

    it('drops each condition on its own deadline, touches nothing else, and tells the MIG devices of their parent', () => {
      const time = fakeTime();
      const t = new HealthTracker(INVENTORY, { recoveryMs: MIN, now: time.now, timer: time.timer });
      const t0 = time.now();
      t.record(ev(GPU0, 'xid', 79)); // due at t0 + MIN
      t.record(ev(GPU1, 'xid', 79)); // due at t0 + MIN
      time.advance(MIN / 2);
      t.record(ev(GPU1, 'ecc-single-bit')); // due at t0 + 1.5 MIN
      t.record(ev('GPU-other', 'unmonitored')); // never due
      expect(t.nextRecoveryAt()).toBe(t0 + MIN);
      const changes: HealthChange[] = [];
      t.onChange((c) => changes.push(c));
      time.advance(MIN / 2);
      const reason = `recovered: no new health event for ${MIN} ms`;
      expect(t.conditions(GPU0)).toStrictEqual({ message: reason });
      expect(t.conditions(GPU1)).toStrictEqual({ degraded: { sinceMs: t0 + MIN / 2, lastMs: t0 + MIN / 2 }, message: reason });
      expect(t.conditions('GPU-other')).toStrictEqual({ unmonitored: { sinceMs: t0 + MIN / 2 }, message: 'unmonitored' });
      expect(changes.map((c) => [c.uuid, c.previous, c.state, c.reason]).sort()).toEqual(
        [[GPU0, 'failed', 'ok', reason], [GPU1, 'failed', 'degraded', reason], [MIG_A, 'failed', 'degraded', reason], [MIG_B, 'failed', 'degraded', reason]].sort(),
      );
      expect(t.nextRecoveryAt()).toBe(t0 + 1.5 * MIN);
      time.advance(MIN / 2);
      expect(t.conditions(GPU1)).toStrictEqual({ message: reason });
      expect(time.pending()).toBe(0);
    });

    it('re-arms a deadline beyond the longest timer Node accepts (2^31 - 1 ms)', () => {
      const time = fakeTime();
      const DAY = 24 * 60 * MIN;
      const t = new HealthTracker(INVENTORY, { recoveryMs: 30 * DAY, now: time.now, timer: time.timer });
      t.record(ev(GPU0, 'xid', 79));
      time.advance(2_147_483_647);
      expect(t.state(GPU0)).toBe('failed');
      expect(time.pending()).toBe(1);
      time.advance(30 * DAY - 2_147_483_647);
      expect(t.state(GPU0)).toBe('ok');
    });

    it('keeps one timer, for the earliest deadline: moved when it moves, kept when it does not, none when nothing can recover or after close', () => {
      const time = fakeTime();
      const t = new HealthTracker(INVENTORY, { recoveryMs: MIN, now: time.now, timer: time.timer });
      t.record(ev(GPU0, 'xid', 79));
      expect([time.sets(), time.pending()]).toEqual([1, 1]);
      t.record(ev(GPU0, 'xid', 13)); // does not renew the fatal condition: same deadline, same timer
      expect([time.sets(), time.pending()]).toEqual([1, 1]);
      time.advance(MIN / 2);
      t.record(ev(GPU0, 'xid', 79)); // renews it: the deadline moves, the old timer goes
      expect([time.sets(), time.pending()]).toEqual([2, 1]);
      t.record(ev(GPU0, 'gpu-recovered')); // nothing left to recover by time
      expect(time.pending()).toBe(0);
      t.close();
      t.record(ev(GPU1, 'ecc-single-bit'));
      expect(time.pending()).toBe(0);
      expect(t.nextRecoveryAt()).toBe(time.now() + MIN);
    });
  });

  describe('the default timer', () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it("recovers on a real setTimeout that does not keep the process alive, and clears it on close", async () => {
      const set = vi.spyOn(globalThis, 'setTimeout');
      const clear = vi.spyOn(globalThis, 'clearTimeout');
      const t = new HealthTracker(INVENTORY, { recoveryMs: 20 });
      t.record(ev(GPU0, 'xid', 79));
      const first = set.mock.results.at(-1)?.value as NodeJS.Timeout;
      expect(first.hasRef()).toBe(false);
      await waitFor(() => t.state(GPU0) === 'ok', { what: 'GPU 0 to recover 20 ms after its XID' });
      t.record(ev(GPU0, 'xid', 79));
      const second = set.mock.results.at(-1)?.value as NodeJS.Timeout;
      t.close();
      expect(clear).toHaveBeenCalledWith(second);
    });
  });
});
