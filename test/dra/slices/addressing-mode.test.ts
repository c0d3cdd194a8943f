/**
 * The `addressingMode` device attribute, as NVIDIA's DRA driver publishes it (kubernetes-sigs/dra-driver-nvidia-gpu
 * cmd/gpu-kubelet-plugin/deviceinfo.go `GpuInfo.Attributes` and mig.go `CommonAttributesMig`): an unqualified
 * string attribute `addressingMode` with go-nvlib's value (`HMM`, `ATS`, `None`) on a GPU and on each of its MIG
 * devices (the parent's value), and no attribute at all where NVML does not say. Every slice is validated against
 * the resource.k8s.io/v1 OpenAPI document (test/reference, unknown fields rejected), and a selector written for
 * NVIDIA's driver selects the same devices once its domain is changed.
 */
import { describe, expect, it } from 'vitest';
import { buildResourceSlices, type SliceSpec } from '../../../src/dra/slices/build.js';
import { buildMockInventory, machineSpecByName, MOCK_ADDRESSING_MODE } from '../../../src/gpu/mock/index.js';
import type { AddressingMode, Inventory } from '../../../src/gpu/types.js';
import { celDevice, deviceSelectorEnv, selects } from '../../helpers/cel.js';
import { validateObject } from '../../helpers/manifests.js';
import { driverName, nodeName, poolName } from '../../helpers/names.js';
import { exampleInventory } from '../../helpers/slices.js';

const DRIVER = 'gpu.gpulet.dev';

function slicesOf(inventory: Inventory): SliceSpec[] {
  const slices = buildResourceSlices({ driverName: driverName(DRIVER), nodeName: nodeName('node-a'), poolName: poolName('node-a'), inventory, generation: 1 });
  for (const s of slices) expect(validateObject(JSON.parse(JSON.stringify(s)) as Parameters<typeof validateObject>[0]), 'OpenAPI').toEqual([]);
  return slices;
}

/** The example node (gpu-0 full, gpu-1 in MIG mode with one 1g.10gb) with each GPU's mode set. */
function example(modes: readonly (AddressingMode | undefined)[]): Inventory {
  const inv = exampleInventory();
  return { ...inv, gpus: inv.gpus.map((g, i) => (modes[i] === undefined ? g : { ...g, addressingMode: modes[i] })) };
}

describe('ResourceSlice attribute addressingMode', () => {
  it.each(['HMM', 'ATS', 'None'] as const)('%s: a string attribute on the GPU and on each MIG device of a GPU that has it', (mode) => {
    const devices = slicesOf(example([mode, mode])).flatMap((s) => s.spec.devices);
    expect(devices.map((d) => [d.name, d.attributes?.['addressingMode']])).toEqual([
      ['gpu-0', { string: mode }],
      ['gpu-1-mig-1g10gb-19-0', { string: mode }],
    ]);
  });

  it('absent where NVML does not say: no attribute (not an empty string), on the GPU and its MIG devices', () => {
    const devices = slicesOf(example([undefined, undefined])).flatMap((s) => s.spec.devices);
    for (const d of devices) expect(Object.keys(d.attributes ?? {})).not.toContain('addressingMode');
    // Per GPU: a MIG device follows its own parent.
    const mixed = slicesOf(example([undefined, 'ATS'])).flatMap((s) => s.spec.devices);
    expect(mixed.map((d) => d.attributes?.['addressingMode']?.string)).toEqual([undefined, 'ATS']);
  });

  it('the mock dgx-h100 publishes it on all 16 allocatable devices, the mock\'s value', () => {
    const devices = slicesOf(buildMockInventory(machineSpecByName('dgx-h100'), 'node-a')).flatMap((s) => s.spec.devices);
    expect(devices).toHaveLength(16);
    expect(new Set(devices.map((d) => d.attributes?.['addressingMode']?.string))).toEqual(new Set([MOCK_ADDRESSING_MODE]));
  });

  it("a selector written for NVIDIA's driver selects the same devices with gpulet's domain", () => {
    const env = deviceSelectorEnv();
    const [gpu0, mig] = slicesOf(example(['ATS', 'HMM'])).flatMap((s) => s.spec.devices);
    const nvidia = 'device.attributes["gpu.nvidia.com"].addressingMode == "ATS"';
    const ours = nvidia.replace('gpu.nvidia.com', DRIVER);
    expect(selects(env, ours, celDevice(DRIVER, gpu0!))).toBe(true);
    expect(selects(env, ours, celDevice(DRIVER, mig!))).toBe(false);
    // Where it is absent, a selector guards with `in`, as for any optional attribute.
    const guarded = `"addressingMode" in device.attributes["${DRIVER}"] && device.attributes["${DRIVER}"].addressingMode != "None"`;
    const [bare] = slicesOf(example([undefined, undefined])).flatMap((s) => s.spec.devices);
    expect(selects(env, guarded, celDevice(DRIVER, bare!))).toBe(false);
    expect(selects(env, guarded, celDevice(DRIVER, gpu0!))).toBe(true);
  });
});
