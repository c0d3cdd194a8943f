/**
 * The pure status builder (src/dra/claim-status/build.ts): entries keyed as the API keys `status.devices`
 * (driver/pool/device[/shareID]), a Ready condition, `data` from the inventory (the mock dgx-h100: full GPUs
 * and MIG devices), devices no longer in the inventory left out, and the API's 10 Ki limit on `data` (pkg/apis/resource/types.go
 * AllocatedDeviceStatusDataMaxLength; the real API server accepting what is built is
 * test/upstream/claim-status.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { buildDeviceStatuses, DEVICE_STATUS_DATA_MAX_BYTES, entryKey, type BuildInput } from '../../../src/dra/claim-status/build.js';
import { buildMockInventory, machineSpecByName } from '../../../src/gpu/mock/index.js';
import type { Inventory } from '../../../src/gpu/types.js';
import { allocatableDevices, devicesByName } from '../../../src/model/devices.js';

const DRIVER = 'gpu.gpulet.dev';
const NODE = 'node-a';
const inventory = buildMockInventory(machineSpecByName('dgx-h100'), NODE);
const gpu = allocatableDevices(inventory).find((d) => d.kind === 'gpu')!;
const mig = allocatableDevices(inventory).find((d) => d.kind === 'mig')!;
const NOW = new Date('2026-12-04T15:04:05.678Z');

function input(over: Partial<BuildInput> & { inv?: Inventory } = {}): BuildInput {
  const inv = over.inv ?? inventory;
  return {
    driverName: DRIVER,
    nodeName: NODE,
    prepared: [{ poolName: NODE, deviceName: gpu.name }],
    byName: devicesByName(inv),
    driverVersion: inv.system.driverVersion,
    now: NOW,
    ...over,
  };
}

describe('buildDeviceStatuses', () => {
  it('a full GPU: keyed entry, Ready True at the time of the write, data from the inventory', () => {
    const { entries, skipped } = buildDeviceStatuses(input());
    expect(skipped).toEqual([]);
    expect(entries).toEqual([
      {
        driver: DRIVER,
        pool: NODE,
        device: gpu.name,
        conditions: [{ type: 'Ready', status: 'True', reason: 'Prepared', message: `prepared by ${DRIVER} on node ${NODE}`, lastTransitionTime: '2026-12-04T15:04:05Z' }],
        data: { type: 'gpu', uuid: gpu.gpu.uuid, productName: gpu.gpu.productName, driverVersion: inventory.system.driverVersion, memory: gpu.gpu.memoryBytes },
      },
    ]);
    expect(gpu.gpu.uuid).toMatch(/^GPU-/);
    expect(Number.isInteger(gpu.gpu.memoryBytes) && gpu.gpu.memoryBytes > 2 ** 30).toBe(true);
  });

  it('a MIG device: its own UUID and memory, its profile and parent UUID', () => {
    if (mig.kind !== 'mig') throw new Error('dgx-h100 has MIG devices');
    const { entries } = buildDeviceStatuses(input({ prepared: [{ poolName: NODE, deviceName: mig.name }] }));
    expect(entries[0]!.data).toEqual({
      type: 'mig',
      uuid: mig.mig.uuid,
      productName: mig.gpu.productName,
      driverVersion: inventory.system.driverVersion,
      memory: mig.mig.memoryBytes,
      profile: mig.mig.profile,
      parentUUID: mig.gpu.uuid,
    });
    expect(mig.mig.memoryBytes).toBeLessThan(mig.gpu.memoryBytes);
  });

  it('leaves out devices not in the inventory, saying why; duplicates once; sorted by key', () => {
    const others = allocatableDevices(inventory).filter((d) => d.kind === 'gpu').slice(1, 3);
    const { entries, skipped } = buildDeviceStatuses(
      input({
        prepared: [
          { poolName: NODE, deviceName: others[1]!.name },
          { poolName: NODE, deviceName: others[0]!.name },
          { poolName: NODE, deviceName: others[0]!.name },
          { poolName: NODE, deviceName: 'gpu-99' },
        ],
      }),
    );
    expect(entries.map((e) => e.device)).toEqual(others.map((d) => d.name).sort());
    expect(skipped).toEqual([`${DRIVER}/${NODE}/gpu-99: not in the current inventory`]);
  });

  it('keys a shared allocation by its shareID', () => {
    const shareId = '7c1f0d2e-1b2a-4c3d-8e4f-5a6b7c8d9e0f';
    const { entries, skipped } = buildDeviceStatuses(
      input({ prepared: [{ poolName: NODE, deviceName: gpu.name, shareId }] }),
    );
    expect(skipped).toEqual([]);
    expect(entries[0]).toMatchObject({ device: gpu.name, shareID: shareId });
    expect(entryKey(entries[0]!)).toBe(`${DRIVER}/${NODE}/${gpu.name}/${shareId}`);
  });

  it("holds data to the API's 10 Ki: at the limit kept, one byte over left out", () => {
    const sized = (productName: string): Inventory => ({ ...inventory, gpus: inventory.gpus.map((g) => (g.uuid === gpu.uuid ? { ...g, productName } : g)) });
    const overhead = Buffer.byteLength(JSON.stringify(buildDeviceStatuses(input({ inv: sized('') })).entries[0]!.data));
    const atLimit = buildDeviceStatuses(input({ inv: sized('x'.repeat(DEVICE_STATUS_DATA_MAX_BYTES - overhead)) }));
    expect(Buffer.byteLength(JSON.stringify(atLimit.entries[0]!.data))).toBe(10 * 1024);
    const over = buildDeviceStatuses(input({ inv: sized('x'.repeat(DEVICE_STATUS_DATA_MAX_BYTES - overhead + 1)) }));
    expect(over.entries).toEqual([]);
    expect(over.skipped[0]).toContain('exceeds the API');
  });
});
