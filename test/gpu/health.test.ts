import { describe, expect, it } from 'vitest';
import { APPLICATION_XIDS, HealthTracker, stateForEvent, type HealthChange } from '../../src/gpu/health.js';
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

  it('double-bit ECC fails, single-bit degrades, lost/unavailable fail', () => {
    expect(stateForEvent(ev(GPU0, 'ecc-double-bit'))).toBe('failed');
    expect(stateForEvent(ev(GPU0, 'ecc-single-bit'))).toBe('degraded');
    expect(stateForEvent(ev(GPU0, 'gpu-lost'))).toBe('failed');
    expect(stateForEvent(ev(GPU0, 'gpu-unavailable'))).toBe('failed');
  });
});

describe('HealthTracker', () => {
  it('starts every inventory device ok', () => {
    const t = new HealthTracker(INVENTORY);
    expect([...t.states().entries()].sort()).toEqual([[GPU0, 'ok'], [GPU1, 'ok'], [MIG_A, 'ok'], [MIG_B, 'ok']].sort());
    expect(t.unhealthyUuids()).toEqual([]);
  });

  it('keeps app-level XIDs ok but counts them', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'xid', 13));
    t.record(ev(GPU0, 'xid', 31));
    t.record(ev(GPU0, 'xid', 13));
    expect(t.state(GPU0)).toBe('ok');
    expect([...t.xidCounts(GPU0)]).toEqual([[13, 2], [31, 1]]);
    expect(t.lastXid(GPU0)).toBe(13);
  });

  it('never improves: degraded then failed stays failed', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(GPU0, 'ecc-single-bit'));
    expect(t.state(GPU0)).toBe('degraded');
    t.record(ev(GPU0, 'ecc-double-bit'));
    t.record(ev(GPU0, 'ecc-single-bit'));
    expect(t.state(GPU0)).toBe('failed');
    expect(t.unhealthyUuids()).toEqual([GPU0]);
  });

  it('MIG devices inherit the parent failure; a MIG event leaves siblings and parent alone', () => {
    const t = new HealthTracker(INVENTORY);
    t.record(ev(MIG_A, 'xid', 94));
    expect(t.state(MIG_A)).toBe('failed');
    expect(t.state(MIG_B)).toBe('ok');
    expect(t.state(GPU1)).toBe('ok');
    const changes: HealthChange[] = [];
    t.onChange((c) => changes.push(c));
    t.record(ev(GPU1, 'xid', 79));
    expect(t.state(MIG_B)).toBe('failed');
    expect(changes.map((c) => [c.uuid, c.previous, c.state]).sort()).toEqual([[GPU1, 'ok', 'failed'], [MIG_B, 'ok', 'failed']].sort());
    expect(t.unhealthyUuids().sort()).toEqual([GPU1, MIG_A, MIG_B].sort());
  });

  it('notifies only on changes, survives a throwing listener, and unsubscribes', () => {
    const t = new HealthTracker(INVENTORY);
    const seen: string[] = [];
    t.onChange(() => {
      throw new Error('boom');
    });
    const off = t.onChange((c) => seen.push(`${c.uuid}:${c.state}`));
    t.record(ev(GPU0, 'xid', 13)); // no change
    t.record(ev(GPU0, 'ecc-single-bit'));
    t.record(ev(GPU0, 'ecc-single-bit')); // no change
    off();
    t.record(ev(GPU0, 'gpu-lost'));
    expect(seen).toEqual([`${GPU0}:degraded`]);
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
