/**
 * Pure mapping of NVML facts: brand/architecture strings as go-nvlib spells them (NVIDIA/go-nvlib
 * pkg/nvlib/device/device.go, what NVIDIA's DRA driver publishes), with the enum values read from NVIDIA's
 * nvml.h when installed; bus-ID normalisation; MIG profile names; PCIe root from a sysfs tree; events.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildMockInventory, machineSpecByName } from '../../../src/gpu/mock/index.js';
import { addressingModeName, architectureName, brandName, mapInventory, migProfileName, normalizeBusId, pcieRootFromSysfs } from '../../../src/gpu/nvml/index.js';
import { PcieIntegrator, toHealthEvent } from '../../../src/gpu/nvml/map-readings.js';
import { NvmlError } from '../../../src/gpu/nvml/nvml-error.js';
import { writeFakeSysfs } from '../../helpers/nvml.js';
import { reference } from '../../helpers/reference.js';

const NVML_H = '/usr/include/nvml.h';

/** Value of `#define NAME value` or enum `NAME = value` in nvml.h. */
function nvmlConstant(header: string, name: string): number {
  const m = new RegExp(`(?:#define\\s+${name}\\s+|\\b${name}\\s*=\\s*)(0x[0-9a-fA-F]+|\\d+)`).exec(header);
  if (!m?.[1]) throw new Error(`${name} not in nvml.h`);
  return Number(m[1]);
}

describe('NVML fact mapping', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("brand and architecture strings are go-nvlib's, for nvml.h's enum values", (ctx) => {
    if (!existsSync(NVML_H)) {
      console.warn(`SKIP: ${NVML_H} is absent (apt-get install libnvidia-ml-dev)`);
      ctx.skip();
      return;
    }
    const h = readFileSync(NVML_H, 'utf8');
    expect(brandName(nvmlConstant(h, 'NVML_BRAND_NVIDIA'))).toBe('Nvidia');
    expect(brandName(nvmlConstant(h, 'NVML_BRAND_TESLA'))).toBe('Tesla');
    expect(brandName(nvmlConstant(h, 'NVML_BRAND_GEFORCE_RTX'))).toBe('GeForceRTX');
    expect(architectureName(nvmlConstant(h, 'NVML_DEVICE_ARCH_HOPPER'))).toBe('Hopper');
    expect(architectureName(nvmlConstant(h, 'NVML_DEVICE_ARCH_AMPERE'))).toBe('Ampere');
    expect(architectureName(nvmlConstant(h, 'NVML_DEVICE_ARCH_ADA'))).toBe('Ada Lovelace');
    expect(architectureName(nvmlConstant(h, 'NVML_DEVICE_ARCH_UNKNOWN'))).toBe('Unknown');
    expect(brandName(999)).toBe('Unknown');
  });

  it("addressing modes are go-nvlib's strings for nvml.h's values (NVIDIA's 13.5.37 header); unknown values are left out", () => {
    const h = readFileSync(reference('nvml', 'nvml-13.5.37-addressing-mode.h'), 'utf8');
    expect(addressingModeName(nvmlConstant(h, 'NVML_DEVICE_ADDRESSING_MODE_HMM'))).toBe('HMM');
    expect(addressingModeName(nvmlConstant(h, 'NVML_DEVICE_ADDRESSING_MODE_ATS'))).toBe('ATS');
    expect(addressingModeName(nvmlConstant(h, 'NVML_DEVICE_ADDRESSING_MODE_NONE'))).toBe('None');
    expect(addressingModeName(3)).toBeUndefined();
    // Through mapInventory: an unknown value leaves the GPU in (it is still allocatable) without the mode, and says so.
    const gpu = {
      index: 0, uuid: 'GPU-1', name: 'NVIDIA H100 80GB HBM3', minor: 0, brand: 14, architecture: 9, ccMajor: 9, ccMinor: 0,
      pci: { busId: '00000000:18:00.0', domain: 0, bus: 0x18, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0 },
      memoryTotal: 1, migDevices: [], errors: [],
    };
    const known = mapInventory({ system: { errors: [] }, gpus: [{ ...gpu, addressingMode: 2, vbiosVersion: '96.00.8D.00.03' }] }, () => undefined);
    expect(known.inventory.gpus[0]).toMatchObject({ addressingMode: 'ATS', vbiosVersion: '96.00.8D.00.03' });
    const odd = mapInventory({ system: { errors: [] }, gpus: [{ ...gpu, addressingMode: 7 }] }, () => undefined);
    expect(odd.inventory.gpus).toHaveLength(1);
    expect(odd.inventory.gpus[0]).not.toHaveProperty('addressingMode');
    expect(odd.problems).toEqual(['GPU 0 (GPU-1) attribute addressingMode: nvmlDeviceGetAddressingMode value 7 is not one this gpulet knows (NVML newer than gpulet?)']);
    const none = mapInventory({ system: { errors: [] }, gpus: [gpu] }, () => undefined);
    expect(none.inventory.gpus[0]).not.toHaveProperty('addressingMode');
    expect(none.inventory.gpus[0]).not.toHaveProperty('vbiosVersion');
  });

  it('bus IDs take the sysfs form', () => {
    expect(normalizeBusId('00000000:18:00.0')).toBe('0000:18:00.0');
    expect(normalizeBusId('00000001:DB:00.0')).toBe('0001:db:00.0');
    expect(normalizeBusId('0000:3A:00.0')).toBe('0000:3a:00.0');
    expect(normalizeBusId('0001000A:01:00.0')).toBe('1000a:01:00.0');
    expect(normalizeBusId('garbage')).toBeUndefined();
  });

  it("MIG profile names: the v2 info name without 'MIG ', else derived from slices and memory (go-nvlib)", () => {
    const base = { index: 0, id: 19, sliceCount: 1, multiprocessorCount: 16, copyEngineCount: 1, decoderCount: 1, encoderCount: 0, jpegCount: 1, ofaCount: 0 };
    const h100 = 81559 * 2 ** 20;
    expect(migProfileName({ ...base, name: 'MIG 1g.10gb', memorySizeMB: 9856 }, h100)).toBe('1g.10gb');
    expect(migProfileName({ ...base, name: 'MIG 1g.10gb+me', memorySizeMB: 9856 }, h100)).toBe('1g.10gb+me');
    expect(migProfileName({ ...base, name: '', memorySizeMB: 9856 }, h100)).toBe('1g.10gb');
    expect(migProfileName({ ...base, name: '', sliceCount: 3, memorySizeMB: 40192 }, h100)).toBe('3g.40gb');
  });

  it('PCIe root from a sysfs tree; undefined for a device not in sysfs', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'gpulet-sysfs-'));
    dirs.push(root);
    const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'n');
    await writeFakeSysfs(root, inv);
    for (const g of inv.gpus) expect(pcieRootFromSysfs(g.pci.busId, root)).toBe(g.pci.pcieRoot);
    expect(pcieRootFromSysfs('0000:77:00.0', root)).toBeUndefined();
  });

  it('events: XID with its number, MIG attribution by GI/CI ID, GPU_IS_LOST from the wait, unknown GPU dropped', () => {
    const inv = buildMockInventory(machineSpecByName('dgx-h100'), 'n');
    const uuids = inv.gpus.map((g) => g.uuid);
    const migGpu = inv.gpus.findIndex((g) => g.migEnabled);
    const mig = inv.gpus[migGpu]!.migDevices[1]!;
    const base = { gpuInstanceId: 0xffffffff, computeInstanceId: 0xffffffff, timestampMs: 5 };
    expect(toHealthEvent({ ...base, gpu: 0, eventType: 0x8, eventData: 79 }, uuids, inv)).toMatchObject({ kind: 'xid', xid: 79, uuid: uuids[0] });
    expect(toHealthEvent({ ...base, gpu: migGpu, eventType: 0x2, eventData: 0, gpuInstanceId: mig.gpuInstanceId, computeInstanceId: 0 }, uuids, inv))
      .toMatchObject({ kind: 'ecc-double-bit', uuid: mig.uuid });
    const lost = new NvmlError('GPU is lost', 15, 'NVML_ERROR_GPU_IS_LOST', 'nvmlEventSetWait_v2');
    expect(toHealthEvent({ ...base, gpu: 2, eventType: 0, eventData: 0, error: lost }, uuids, inv)).toMatchObject({ kind: 'gpu-lost', uuid: uuids[2] });
    expect(toHealthEvent({ ...base, gpu: -1, eventType: 0x8, eventData: 1 }, uuids, inv)).toBeUndefined();
  });

  it('PCIe throughput (KB/s) integrates into cumulative bytes (trapezoid rule)', () => {
    const p = new PcieIntegrator();
    expect(p.add('GPU-a', 0, 100, 200)).toEqual({ tx: 0, rx: 0 });
    expect(p.add('GPU-a', 2000, 300, 200)).toEqual({ tx: 200 * 1024 * 2, rx: 200 * 1024 * 2 });
  });
});
