/**
 * The whole agent (startAgent, configured by the CLI's loadConfig) on the fake libnvidia-ml through the real
 * addon: `--backend nvml --nvml-library <fake>`. Its published ResourceSlices equal the mock backend's for
 * the same machine and node, a claim prepares through the kubelet plugin, and /metrics has
 * hw_gpu_utilization for the full GPUs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceV1Api } from '@kubernetes/client-node';
import { clientKubeConfig } from '../../dev/embedded.js';
import { buildResourceSlices } from '../../src/dra/slices/build.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { allocatedClaim, NODE, removeDir, scrape, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';
import { fakeSetup, type FakeSetup } from '../helpers/nvml.js';
import { nodeName, poolName } from '../helpers/names.js';

describe('the agent on the NVML backend (fake library)', () => {
  let fake: FakeSetup;
  let h: Harness | undefined;
  let dir: string;
  beforeAll(async () => {
    fake = await fakeSetup({ machine: 'dgx-h100', nodeName: NODE });
    process.env['FAKE_NVML_MACHINE'] = fake.files.env.FAKE_NVML_MACHINE;
    process.env['FAKE_NVML_FAULTS'] = fake.files.env.FAKE_NVML_FAULTS;
    dir = await tempDir();
    h = await startHarness({ dir, extraArgs: ['--backend', 'nvml', '--nvml-library', fake.library, '--sysfs-root', fake.sysfsRoot] });
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
    await removeDir(dir);
    await fake?.cleanup();
  });

  it('publishes the same devices (names, attributes, capacities) as the mock backend would', async () => {
    const harness = h!;
    expect(harness.agent.backend.kind).toBe('nvml');
    const api = clientKubeConfig(harness.agent).makeApiClient(ResourceV1Api);
    const slices = (await api.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE}` })).items;
    const published = slices.flatMap((s) => s.spec.devices ?? []).sort((a, b) => a.name.localeCompare(b.name));
    const expected = buildResourceSlices({
      driverName: harness.config.driverName,
      nodeName: nodeName(NODE),
      poolName: poolName(NODE),
      generation: 1,
      inventory: buildMockInventory(machineSpecByName('dgx-h100'), NODE),
    }).flatMap((s) => s.spec.devices ?? []).sort((a, b) => a.name.localeCompare(b.name));
    expect(published.length).toBe(expected.length);
    expect(JSON.parse(JSON.stringify(published))).toEqual(JSON.parse(JSON.stringify(expected)));
  });

  it('prepares a claim for gpu-0 through the kubelet plugin', async () => {
    const harness = h!;
    const ref = await allocatedClaim(harness.api, 'nvml-claim', [{ device: 'gpu-0' }]);
    const prepared = await harness.kubelet.prepare([ref]);
    const res = prepared.claims[ref.uid];
    expect(res?.error ?? '').toBe('');
    expect(res?.devices.map((d) => d.device_name)).toEqual(['gpu-0']);
  });

  it('/metrics has hw_gpu_utilization for every full (non-MIG) GPU', async () => {
    const harness = h!;
    const full = harness.agent.backend.inventory().gpus.filter((g) => !g.migEnabled).map((g) => g.uuid);
    const samples = await waitFor(async () => {
      const all = (await scrape(harness.agent)).filter((s) => s.name.startsWith('hw_gpu_utilization') && !s.name.includes('memory'));
      const ids = new Set(all.map((s) => Object.values(s.labels).find((v) => v.startsWith('GPU-'))));
      return full.every((u) => ids.has(u)) ? all : undefined;
    }, { what: 'hw_gpu_utilization for all full GPUs' });
    for (const s of samples) {
      expect(s.value).toBeGreaterThanOrEqual(0);
      expect(s.value).toBeLessThanOrEqual(1);
    }
  });
});
