import { describe, expect, it } from 'vitest';
import { APPLICATION_XIDS, DOUBLE_BIT_ECC_XID, HealthTracker, stateForEvent, type HealthChange, type RecoveryTimer } from '../../src/gpu/health.js';
import type { HealthEvent } from '../../src/gpu/types.js';
import { FakeBackend, GPU0, GPU1, INVENTORY, MIG_A, MIG_B } from '../helpers/telemetry.js';

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
  const timer: RecoveryTimer = {
    set: (fn, ms) => {
      seq += 1;
      pending.set(seq, { at: now + ms, fn });
      return seq;
    },
    clear: (h) => void pending.delete(h as number),
  };
  return {
    now: () => now,
    timer,
    pending: () => pending.size,
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
