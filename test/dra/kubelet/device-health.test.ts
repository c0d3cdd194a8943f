/**
 * The health tracker as the kubelet's DRAResourceHealth source: a fatal XID is UNHEALTHY, an unmonitored GPU
 * UNKNOWN, a recovered one HEALTHY again, with the event that caused the change as the message; a MIG device
 * follows its parent GPU.
 */
import { describe, expect, it } from 'vitest';
import { deviceHealthSource } from '../../../src/dra/kubelet/device-health.js';
import { HealthTracker } from '../../../src/gpu/health.js';
import { allocatableDevices } from '../../../src/model/devices.js';
import { poolNameOf } from '../../../src/model/names.js';
import { nodeName } from '../../helpers/names.js';
import { GPU0, GPU1, INVENTORY, MIG_A } from '../../helpers/telemetry.js';

const POOL = poolNameOf(nodeName('node-a'));
const nameOf = (uuid: string): string => allocatableDevices(INVENTORY).find((d) => d.uuid === uuid)!.name;

describe('deviceHealthSource', () => {
  it('maps conditions to kubelet health and notifies on every change', () => {
    let now = 1_700_000_000_000;
    const tracker = new HealthTracker(INVENTORY, { now: () => now });
    const source = deviceHealthSource(POOL, () => INVENTORY, tracker, () => now);
    let notified = 0;
    source.onChange(() => (notified += 1));
    const entry = (uuid: string) => source.snapshot().find((e) => e.deviceName === nameOf(uuid))!;
    expect(entry(GPU0)).toMatchObject({ poolName: POOL, health: 'healthy', message: 'ok' });

    now += 5_000;
    tracker.record({ kind: 'xid', uuid: GPU0, xid: 79, timestampMs: now, message: 'XID 79' });
    expect(entry(GPU0)).toMatchObject({ health: 'unhealthy', message: 'failed: XID 79', lastUpdatedUnixSeconds: Math.floor(now / 1000) });
    tracker.record({ kind: 'unmonitored', uuid: GPU1, timestampMs: now, message: 'no events' });
    expect(entry(MIG_A)).toMatchObject({ health: 'unknown' });
    tracker.record({ kind: 'gpu-lost', uuid: GPU1, timestampMs: now, message: 'lost' });
    expect(entry(MIG_A)).toMatchObject({ health: 'unhealthy', message: 'failed: lost' });

    tracker.record({ kind: 'gpu-recovered', uuid: GPU0, timestampMs: now, message: 'answers again' });
    expect(entry(GPU0)).toMatchObject({ health: 'healthy', message: 'ok: answers again' });
    tracker.record({ kind: 'gpu-recovered', uuid: GPU1, timestampMs: now, message: 'back' });
    expect(entry(MIG_A)).toMatchObject({ health: 'unknown', message: 'ok: back' }); // still unmonitored
    expect(notified).toBeGreaterThanOrEqual(5);
  });
});
