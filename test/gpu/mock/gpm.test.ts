/**
 * The mock backend's GPM profiling metrics are the fake libnvidia-ml's (the same documented activity model,
 * test/helpers/gpm-model.ts), so the mock and the NVML backend on the fake report the same figures for the same
 * machine: none at the first sample, then per Hopper GPU and MIG device (no PCIe / NVLink figures for a MIG
 * device); none ever for the A100. An unsupported reading is removable like any other (`setUnsupported(['gpm'])`).
 */
import { describe, expect, it } from 'vitest';
import { createMockBackend } from '../../../src/gpu/mock/index.js';
import { closeTo, expectedGpm, fakeGpmActivity, GPM_MACHINE } from '../../helpers/gpm-model.js';

describe('mock backend: GPM profiling metrics', () => {
  it('none at the first sample, then the fake\'s figures on every Hopper device and none on the A100', async () => {
    let t = 1_700_000_000_000;
    const backend = createMockBackend({ machine: GPM_MACHINE, nodeName: 'node-gpm', clock: () => t });
    await backend.init();
    const first = await backend.sample();
    expect(first.devices.filter((d) => d.gpm !== undefined)).toEqual([]);
    for (let round = 0; round < 3; round++) {
      t += 5_000;
      const s = await backend.sample();
      const byUuid = new Map(s.devices.map((d) => [d.uuid, d]));
      for (const g of backend.inventory().gpus) {
        if (g.architecture === 'Ampere') {
          expect(byUuid.get(g.uuid)?.gpm).toBeUndefined();
          continue;
        }
        expect(closeTo(byUuid.get(g.uuid)?.gpm, expectedGpm(fakeGpmActivity(g.minor), false)), g.uuid).toEqual([]);
        for (const m of g.migDevices) {
          expect(closeTo(byUuid.get(m.uuid)?.gpm, expectedGpm(fakeGpmActivity(g.minor, m.gpuInstanceId), true)), m.uuid).toEqual([]);
        }
      }
    }
    backend.setUnsupported(['gpm']);
    expect((await backend.sample()).devices.filter((d) => d.gpm !== undefined)).toEqual([]);
    await backend.shutdown();
  });
});
