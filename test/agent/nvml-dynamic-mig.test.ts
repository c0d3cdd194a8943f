/**
 * The whole agent on the fake libnvidia-ml with `--mig-mode dynamic`: the profile table of a dynamic GPU comes
 * from NVML (`nvmlDeviceGetGpuInstanceProfileInfoV` + `nvmlDeviceGetGpuInstancePossiblePlacements_v2`), not from
 * gpulet's catalogue. The GPU's product name is one the catalogue does not know, so a start that looked the
 * table up by product name would fail ("no MIG profile table"); the devices published are one per profile and
 * possible placement of the table the fake serves (the H100 80GB reference table).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResourceV1Api } from '@kubernetes/client-node';
import { clientKubeConfig } from '../../dev/embedded.js';
import { buildMockInventory, GPU_MODELS, migProfilesByProductName } from '../../src/gpu/mock/index.js';
import { migDeviceName } from '../../src/model/devices.js';
import { NODE, removeDir, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { buildFakeNvml, writeFakeFaults } from '../helpers/fake-nvml.js';
import { writeFakeSysfs } from '../helpers/nvml.js';

/** A MIG-capable product gpulet's catalogue has no table for. */
const PRODUCT = 'NVIDIA H100 80GB HBM3 (catalogue-less test board)';
const H100 = GPU_MODELS['h100-80gb'].migProfiles;

describe('the agent on the NVML backend with --mig-mode dynamic', () => {
  let h: Harness | undefined;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
    const library = await buildFakeNvml();
    const built = buildMockInventory({ name: 'dyn', gpus: [{ model: 'h100-80gb', mig: [] }] }, NODE);
    const inventory = { ...built, gpus: built.gpus.map((g) => ({ ...g, productName: PRODUCT })) };
    const machinePath = path.join(dir, 'machine.json');
    const faultsPath = path.join(dir, 'faults.json');
    await writeFile(machinePath, JSON.stringify({ ...inventory, fakeNvml: { models: { [PRODUCT]: { migProfiles: H100 } } } }));
    await writeFakeFaults(faultsPath, {});
    const sysfsRoot = path.join(dir, 'sys');
    await writeFakeSysfs(sysfsRoot, inventory);
    process.env['FAKE_NVML_MACHINE'] = machinePath;
    process.env['FAKE_NVML_FAULTS'] = faultsPath;
    h = await startHarness({ dir, extraArgs: ['--backend', 'nvml', '--nvml-library', library, '--sysfs-root', sysfsRoot, '--mig-mode', 'dynamic'] });
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
    await removeDir(dir);
  });

  it("publishes one device per profile and possible placement of NVML's table (the catalogue has none for this board)", async () => {
    expect(migProfilesByProductName(PRODUCT)).toBeUndefined();
    const harness = h!;
    const api = clientKubeConfig(harness.agent).makeApiClient(ResourceV1Api);
    const slices = (await api.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE}` })).items;
    const names = slices.flatMap((s) => s.spec.devices ?? []).map((d) => d.name).sort();
    const expected = H100.flatMap((p) =>
      p.placementStarts.map((start) => migDeviceName({ parentMinor: 0, profile: p.name, giProfileId: p.id, placement: { start, size: p.placementSize } })),
    );
    expect(names).toEqual(['gpu-0', ...expected].sort());
  });
});
