/**
 * DRAResourceHealth.NodeWatchResources (KEP-4680, docs/contracts.md §3) over a real unix socket: the complete
 * device list on connect, an update after a change, periodic re-sends, clean end on stop; v1 is what a 1.37
 * kubelet picks, v1alpha1 still answers older kubelets.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeletPlugin, type KubeletPlugin } from '../../../src/dra/kubelet/plugin.js';
import type { DeviceHealthEntry, HealthSource } from '../../../src/dra/kubelet/health-service.js';
import { toWireHealth, truncateHealthMessage } from '../../../src/dra/kubelet/health-service.js';
import { loadKubeletServices, type WireWatchResponse } from '../../../src/dra/kubelet/grpc-protos.js';
import { dialUnix, serverStream } from '../../../dev/kubelet/grpc-client.js';
import { silentLogger } from '../../../src/log.js';
import { driverName } from '../../helpers/names.js';
import { InMemoryPreparer } from '../../../dev/kubelet/fake-preparer.js';
import { KubeletSimulator } from '../../../dev/kubelet/simulator.js';
import { WAIT_TIMEOUT_MS, waitFor } from '../../helpers/wait.js';

/** A mutable health source. */
class FakeHealth implements HealthSource {
  entries: DeviceHealthEntry[];
  private readonly subs = new Set<() => void>();
  constructor(entries: DeviceHealthEntry[]) {
    this.entries = entries;
  }
  snapshot(): readonly DeviceHealthEntry[] {
    return this.entries;
  }
  onChange(cb: () => void): () => void {
    this.subs.add(cb);
    return () => this.subs.delete(cb);
  }
  set(deviceName: string, health: DeviceHealthEntry['health'], message: string): void {
    this.entries = this.entries.map((e) => (e.deviceName === deviceName ? { ...e, health, message } : e));
    for (const s of this.subs) s();
  }
  subscribers(): number {
    return this.subs.size;
  }
}

const T0 = 1_700_000_000;
let dir: string;
let plugin: KubeletPlugin | undefined;
let sim: KubeletSimulator | undefined;
let health: FakeHealth;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-kh-'));
  health = new FakeHealth(
    ['gpu-0', 'gpu-1', 'gpu-2'].map((d) => ({ poolName: 'node-a', deviceName: d, health: 'healthy' as const, message: '', lastUpdatedUnixSeconds: T0 })),
  );
});
afterEach(async () => {
  await sim?.stop();
  await plugin?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function setup(resendMs: number) {
  plugin = await startKubeletPlugin({
    driverName: driverName('gpu.gpulet.dev'),
    registryDir: path.join(dir, 'registry'),
    pluginsDir: path.join(dir, 'plugins'),
    preparer: new InMemoryPreparer(),
    health,
    healthResendIntervalMs: resendMs,
    logger: silentLogger(),
  });
  sim = new KubeletSimulator({ registryDir: path.join(dir, 'registry') });
  await sim.start();
  return sim.waitForPlugin('gpu.gpulet.dev', WAIT_TIMEOUT_MS);
}

describe('DRAResourceHealth', () => {
  it('is advertised, streams the complete list, then an update after a change', async () => {
    const p = await setup(60_000);
    expect(p.supportedVersions).toEqual(['v1.DRAPlugin', 'v1beta1.DRAPlugin', 'v1.DRAResourceHealth', 'v1alpha1.DRAResourceHealth']);
    expect(p.healthSupported).toBe(true);
    expect(p.healthVersion).toBe('v1'); // the kubelet 1.37's choice (pickHealthService)

    const msgs: WireWatchResponse[] = [];
    const beforeS = Math.floor(Date.now() / 1000);
    const stream = sim!.watchHealth((m) => msgs.push(m));
    await waitFor(() => msgs.length >= 1, { what: 'the first health message' });
    const afterS = Math.ceil(Date.now() / 1000);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]?.devices.map((d) => [d.device.pool_name, d.device.device_name, d.health])).toEqual([
      ['node-a', 'gpu-0', 'HEALTHY'],
      ['node-a', 'gpu-1', 'HEALTHY'],
      ['node-a', 'gpu-2', 'HEALTHY'],
    ]);
    // Stamped when sent (the entries' own time, T0, is older): between the watch call and the message's arrival.
    expect(msgs[0]?.devices[0]?.last_updated_time).toBeGreaterThanOrEqual(beforeS);
    expect(msgs[0]?.devices[0]?.last_updated_time).toBeLessThanOrEqual(afterS);

    health.set('gpu-1', 'unhealthy', 'XID 79: GPU has fallen off the bus');
    await waitFor(() => msgs.length >= 2, { what: 'the health update after the change' });
    expect(msgs).toHaveLength(2);
    expect(msgs[1]?.devices).toHaveLength(3); // still the complete list
    expect(msgs[1]?.devices[1]).toMatchObject({
      device: { pool_name: 'node-a', device_name: 'gpu-1' },
      health: 'UNHEALTHY',
      message: 'XID 79: GPU has fallen off the bus',
    });
    stream.cancel();
    await waitFor(() => health.subscribers() === 0, { what: 'the cancelled stream to unsubscribe' });
    expect(plugin!.healthStreamsOpened()).toEqual({ v1: 1, v1alpha1: 0 });
  });

  it('still serves v1alpha1.DRAResourceHealth to a kubelet that knows only it (before 1.37)', async () => {
    await setup(60_000);
    const services = loadKubeletServices();
    const client = dialUnix(plugin!.draSocket);
    try {
      const msgs: WireWatchResponse[] = [];
      const stream = serverStream(client, services.health.v1alpha1.NodeWatchResources, {}, (m) => msgs.push(m), () => undefined);
      await waitFor(() => msgs.length >= 1, { what: 'the first v1alpha1 health message' });
      health.set('gpu-2', 'unhealthy', 'XID 48');
      await waitFor(() => msgs.length >= 2, { what: 'the v1alpha1 update after the change' });
      expect(msgs[1]?.devices.map((d) => [d.device.device_name, d.health])).toEqual([
        ['gpu-0', 'HEALTHY'],
        ['gpu-1', 'HEALTHY'],
        ['gpu-2', 'UNHEALTHY'],
      ]);
      expect(msgs[1]?.devices[2]?.message).toBe('XID 48');
      expect(plugin!.healthStreamsOpened()).toEqual({ v1: 0, v1alpha1: 1 });
      // The wire is the same in both packages: a v1alpha1 message decodes as v1 (conversion.go in k8s.io/kubelet).
      const bytes = services.health.v1alpha1.NodeWatchResources.responseSerialize(msgs[1]!);
      expect(services.health.v1.NodeWatchResources.responseDeserialize(bytes)).toEqual(msgs[1]);
      stream.cancel();
      await waitFor(() => health.subscribers() === 0, { what: 'the cancelled stream to unsubscribe' });
    } finally {
      client.close();
    }
  });

  it('re-sends periodically and ends the stream with OK on stop', async () => {
    await setup(100);
    const msgs: WireWatchResponse[] = [];
    let ended: grpc.StatusObject | undefined;
    sim!.watchHealth((m) => msgs.push(m), { onEnd: (s) => (ended = s) });
    await waitFor(() => msgs.length >= 3, { what: '3 health messages (2 periodic re-sends)' });
    await plugin!.stop();
    await waitFor(() => ended, { what: 'the end of the health stream' });
    expect(ended?.code).toBe(0);
    expect(health.subscribers()).toBe(0);
  });

  it('maps states and truncates long messages as upstream documents', () => {
    const long = 'x'.repeat(2000);
    const wire = toWireHealth(
      [
        { poolName: 'p', deviceName: 'a', health: 'unknown', message: long, lastUpdatedUnixSeconds: T0 },
        { poolName: 'p', deviceName: 'b', health: 'unhealthy', message: 'm', lastUpdatedUnixSeconds: T0 + 100 },
      ],
      T0 + 50,
      45,
    );
    expect(wire.devices[0]).toMatchObject({ health: 'UNKNOWN', last_updated_time: T0 + 50, health_check_timeout_seconds: 45 });
    expect(wire.devices[0]?.message).toHaveLength(1024);
    expect(wire.devices[0]?.message.endsWith('...')).toBe(true);
    expect(wire.devices[1]).toMatchObject({ health: 'UNHEALTHY', last_updated_time: T0 + 100 });
    expect(truncateHealthMessage('short')).toBe('short');
  });
});
