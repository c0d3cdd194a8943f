/**
 * What the native addon returns, validated: well-formed values (as native/js_convert.cc builds them) pass
 * through with unknown fields dropped and absent readings absent; malformed ones throw MalformedNativeValue
 * naming the field, the device and what was expected. Sizes are bounded by NVML's buffer sizes
 * (native/nvml_abi.h) and the bounds of validate.ts.
 */
import { describe, expect, it } from 'vitest';
import { NvmlError } from '../../../src/gpu/nvml/nvml-error.js';
import {
  MalformedNativeValue, MAX_NATIVE_GPUS, MAX_NATIVE_MIG_DEVICES, MAX_NATIVE_PLACEMENTS, validateCreateMig, validateDestroyMig,
  validateDiscovery, validateEvent, validateMigMode, validateReadGpu, validateRegistration, validateSample, validateSetMigMode,
} from '../../../src/gpu/nvml/validate.js';

const lost = (): NvmlError => new NvmlError('GPU is lost', 15, 'NVML_ERROR_GPU_IS_LOST', 'nvmlDeviceGetUUID');
const GPU_UUID = 'GPU-5c5bb6e5-61a4-5e58-1d3a-7a2a3a47b2a4';
const MIG_UUID = 'MIG-0b3c5c1e-8b70-5d5e-8f0e-0d6c59b4b8a1';

const profile = {
  index: 0, id: 19, name: 'MIG 1g.10gb', sliceCount: 1, multiprocessorCount: 16, copyEngineCount: 1, decoderCount: 1,
  encoderCount: 0, jpegCount: 1, ofaCount: 0, memorySizeMB: 9856,
};
const mig = { index: 0, uuid: MIG_UUID, gpuInstanceId: 9, computeInstanceId: 0, profileId: 19, placementStart: 0, placementSize: 1, profile, errors: [] };
const gpu = {
  index: 0, uuid: GPU_UUID, serial: '1654922004567', name: 'NVIDIA H100 80GB HBM3', minor: 0, brand: 2, architecture: 9,
  ccMajor: 9, ccMinor: 0, memoryTotal: 85520809984, multiprocessors: 132, powerLimit: 700000, migCurrent: 1, migPending: 1,
  pci: { busId: '00000000:18:00.0', domain: 0, bus: 0x18, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
  migDevices: [mig], errors: [],
};
const discovery = () => ({ system: { driverVersion: '580.95.05', nvmlVersion: '13.580.95.05', cudaDriverVersion: 13000, errors: [] }, gpus: [structuredClone(gpu)] });

/** The MalformedNativeValue `f` throws. */
function malformed(f: () => unknown): MalformedNativeValue {
  try {
    f();
  } catch (err) {
    if (err instanceof MalformedNativeValue) return err;
    throw err;
  }
  throw new Error('no MalformedNativeValue thrown');
}

describe('validateDiscovery', () => {
  it('passes a full discovery through, unchanged', () => {
    expect(validateDiscovery(discovery())).toEqual(discovery());
  });

  it('takes the minimal shapes: absent lists read as empty, absent readings stay absent, unknown fields are dropped', () => {
    const out = validateDiscovery({ system: { future: 1 }, gpus: [{ index: 3, error: lost(), extra: 'x' }, { index: 4, migDevices: null }] });
    expect(out).toEqual({ system: { errors: [] }, gpus: [{ index: 3, error: lost(), errors: [], migDevices: [] }, { index: 4, errors: [], migDevices: [] }] });
    expect(Object.keys(out.gpus[0]!)).not.toContain('uuid');
    expect(out.gpus[0]!.error).toBeInstanceOf(NvmlError);
    // A field set to undefined is absent, never present-and-undefined.
    const u = validateDiscovery({ system: { driverVersion: undefined }, gpus: [{ index: 0, uuid: undefined }] });
    expect(Object.keys(u.system)).toEqual(['errors']);
    expect(Object.keys(u.gpus[0]!).sort()).toEqual(['errors', 'index', 'migDevices']);
  });

  it.each([
    ['not an object', () => [], 'discovery', 'an object', undefined],
    ['no system', () => ({ gpus: [] }), 'system', 'an object', undefined],
    ['no gpus', () => ({ system: {} }), 'gpus', 'an array', undefined],
    ['a string reading', () => ({ system: { cudaDriverVersion: '13.0' }, gpus: [] }), 'system.cudaDriverVersion', 'a number', undefined],
    ['an error that is not an NvmlError', () => ({ system: { errors: [new Error('x')] }, gpus: [] }), 'system.errors[0]', 'an NvmlError', undefined],
    ['a GPU without index', () => ({ ...discovery(), gpus: [{ uuid: GPU_UUID }] }), 'gpus[0].index', 'a number', `GPU ${GPU_UUID}`],
    ['a NaN reading', () => ({ ...discovery(), gpus: [{ ...gpu, memoryTotal: Number.NaN }] }), 'gpus[0].memoryTotal', 'a number', `GPU ${GPU_UUID}`],
    ['a null reading', () => ({ ...discovery(), gpus: [{ ...gpu, powerLimit: null }] }), 'gpus[0].powerLimit', 'a number', `GPU ${GPU_UUID}`],
    ['a PCI block without bus ID', () => ({ ...discovery(), gpus: [{ ...gpu, pci: { ...gpu.pci, busId: 7 } }] }), 'gpus[0].pci.busId', 'a string', `GPU ${GPU_UUID}`],
    ['a GPU error of the wrong class', () => ({ ...discovery(), gpus: [{ index: 1, error: 'lost' }] }), 'gpus[0].error', 'an NvmlError', 'GPU index 1'],
    ['MIG devices that are not a list', () => ({ ...discovery(), gpus: [{ ...gpu, migDevices: {} }] }), 'gpus[0].migDevices', 'an array', `GPU ${GPU_UUID}`],
    ['a MIG profile without name', () => ({ ...discovery(), gpus: [{ ...gpu, migDevices: [{ ...mig, profile: { ...profile, name: undefined } }] }] }),
      'gpus[0].migDevices[0].profile.name', 'a string', `MIG device ${MIG_UUID} of GPU ${GPU_UUID}`],
    ['a MIG device without index and UUID', () => ({ ...discovery(), gpus: [{ ...gpu, migDevices: [{ uuid: 5 }] }] }),
      'gpus[0].migDevices[0].index', 'a number', `GPU ${GPU_UUID}`],
  ])('refuses %s, naming the field and the device', (_what, value, path, expected, device) => {
    const err = malformed(() => validateDiscovery(value()));
    expect(err.path).toBe(path);
    expect(err.device).toBe(device);
    expect(err.message).toBe(
      `native addon returned a malformed value at ${path}${device === undefined ? '' : ` of ${device}`} (expected ${expected}): rebuild it with \`npm rebuild\``,
    );
  });

  it('bounds sizes: GPUs, MIG devices per GPU, and strings no longer than NVML\'s buffers', () => {
    const many = (n: number) => Array.from({ length: n }, (_, index) => ({ index }));
    expect(validateDiscovery({ system: {}, gpus: many(MAX_NATIVE_GPUS) }).gpus).toHaveLength(MAX_NATIVE_GPUS);
    expect(malformed(() => validateDiscovery({ system: {}, gpus: many(MAX_NATIVE_GPUS + 1) })).message).toContain(`at gpus (expected at most ${MAX_NATIVE_GPUS} entries)`);
    const migs = (n: number) => [{ index: 0, migDevices: many(n) }];
    expect(validateDiscovery({ system: {}, gpus: migs(MAX_NATIVE_MIG_DEVICES) }).gpus[0]!.migDevices).toHaveLength(MAX_NATIVE_MIG_DEVICES);
    expect(malformed(() => validateDiscovery({ system: {}, gpus: migs(MAX_NATIVE_MIG_DEVICES + 1) })).path).toBe('gpus[0].migDevices');
    // NVML_DEVICE_UUID_V2_BUFFER_SIZE 96, NVML_DEVICE_SERIAL_BUFFER_SIZE 30, NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80 (with the NUL).
    expect(validateDiscovery({ system: {}, gpus: [{ index: 0, uuid: 'U'.repeat(95), serial: 'S'.repeat(29) }] }).gpus[0]!.uuid).toHaveLength(95);
    expect(malformed(() => validateDiscovery({ system: {}, gpus: [{ index: 0, uuid: 'U'.repeat(96) }] })).message).toContain('at gpus[0].uuid of GPU index 0 (expected at most 95 characters)');
    expect(malformed(() => validateDiscovery({ system: {}, gpus: [{ index: 0, serial: 'S'.repeat(30) }] })).path).toBe('gpus[0].serial');
    expect(malformed(() => validateDiscovery({ system: { driverVersion: '5'.repeat(80) }, gpus: [] })).path).toBe('system.driverVersion');
    // NVML_DEVICE_VBIOS_VERSION_BUFFER_SIZE 32; the addressing mode is a number (nvmlDeviceAddressingMode_v1_t.value).
    expect(validateDiscovery({ system: {}, gpus: [{ index: 0, vbiosVersion: 'V'.repeat(31), addressingMode: 1 }] }).gpus[0]).toMatchObject({ vbiosVersion: 'V'.repeat(31), addressingMode: 1 });
    expect(malformed(() => validateDiscovery({ system: {}, gpus: [{ index: 0, vbiosVersion: 'V'.repeat(32) }] })).path).toBe('gpus[0].vbiosVersion');
    expect(malformed(() => validateDiscovery({ system: {}, gpus: [{ index: 0, addressingMode: 'HMM' }] })).message).toContain('at gpus[0].addressingMode of GPU index 0 (expected a number)');
  });
});

describe('validateSample', () => {
  const reading = { gpu: 0, mig: -1, gpuUtil: 37, memUtil: 12, memTotal: 85520809984, memUsed: 1, power: 312000, energy: 9e12, gpuTemp: 41 };

  it('passes readings through; errors only where the addon set them', () => {
    const raw = { timestampMs: 1_700_000_000_000, devices: [reading, { gpu: 0, mig: 0, error: lost() }, { gpu: 1, mig: -1, errors: [lost()], junk: 1 }] };
    const out = validateSample(raw);
    expect(out).toEqual({ timestampMs: 1_700_000_000_000, devices: [reading, { gpu: 0, mig: 0, error: lost() }, { gpu: 1, mig: -1, errors: [lost()] }] });
    expect(Object.keys(out.devices[0]!)).not.toContain('errors');
    expect(validateSample({ timestampMs: 1, devices: [{ gpu: 0, mig: -1, energy: Number.POSITIVE_INFINITY }] }).devices[0]!.energy).toBe(Number.POSITIVE_INFINITY);
  });

  it.each([
    ['not an object', () => 'x', 'sample', 'an object', undefined],
    ['no devices', () => ({ timestampMs: 1 }), 'sample.devices', 'an array', undefined],
    ['no timestamp', () => ({ devices: [] }), 'sample.timestampMs', 'a number', undefined],
    ['a reading without its GPU index', () => ({ timestampMs: 1, devices: [{ mig: -1 }] }), 'sample.devices[0].gpu', 'a number', undefined],
    ['a string reading of a GPU', () => ({ timestampMs: 1, devices: [{ ...reading, gpuTemp: '41' }] }), 'sample.devices[0].gpuTemp', 'a number', 'gpu 0'],
    ['a NaN reading of a MIG device', () => ({ timestampMs: 1, devices: [reading, { gpu: 2, mig: 3, memUsed: Number.NaN }] }), 'sample.devices[1].memUsed', 'a number', 'gpu 2, MIG device 3'],
    ['errors that are not NvmlErrors', () => ({ timestampMs: 1, devices: [{ gpu: 1, mig: -1, errors: ['x'] }] }), 'sample.devices[0].errors[0]', 'an NvmlError', 'gpu 1'],
  ])('refuses %s, naming the field and the device', (_what, value, path, expected, device) => {
    const err = malformed(() => validateSample(value()));
    expect(err.path).toBe(path);
    expect(err.device).toBe(device);
    expect(err.message).toContain(`(expected ${expected})`);
  });

  it('bounds the number of readings to one per device', () => {
    const n = MAX_NATIVE_GPUS * (1 + MAX_NATIVE_MIG_DEVICES);
    const devices = (k: number) => Array.from({ length: k }, () => ({ gpu: 0, mig: -1 }));
    expect(validateSample({ timestampMs: 1, devices: devices(n) }).devices).toHaveLength(n);
    expect(malformed(() => validateSample({ timestampMs: 1, devices: devices(n + 1) })).path).toBe('sample.devices');
  });
});

describe('validateEvent and validateRegistration', () => {
  const event = { gpu: 1, eventType: 8, eventData: 79, gpuInstanceId: 0xffffffff, computeInstanceId: 0xffffffff, timestampMs: 5 };

  it('pass well-formed values through', () => {
    expect(validateEvent({ ...event, extra: true })).toEqual(event);
    expect(validateEvent({ ...event, eventType: 0, error: lost() }).error).toBeInstanceOf(NvmlError);
    expect(validateRegistration({ registered: [8, 0], errors: [lost()] })).toEqual({ registered: [8, 0], errors: [lost()] });
    expect(validateRegistration({ registered: [] })).toEqual({ registered: [], errors: [] });
  });

  it('refuse malformed ones, naming the field (and the GPU of an event)', () => {
    expect(malformed(() => validateEvent(null)).path).toBe('event');
    const e = malformed(() => validateEvent({ ...event, eventData: '79' }));
    expect([e.path, e.device]).toEqual(['event.eventData', 'gpu 1']);
    expect(malformed(() => validateEvent({ ...event, error: {} })).path).toBe('event.error');
    expect(malformed(() => validateRegistration({ errors: [] })).path).toBe('registration.registered');
    expect(malformed(() => validateRegistration({ registered: [1, '2'] })).path).toBe('registration.registered[1]');
    expect(malformed(() => validateRegistration({ registered: Array.from({ length: MAX_NATIVE_GPUS + 1 }, () => 0) })).path).toBe('registration.registered');
  });
});

describe('MIG results (createMigDevice, destroyMigDevice, setMigMode, migMode, readGpu)', () => {
  const placements = [0, 1, 2, 3, 4, 5, 6].map((start) => ({ start, size: 1 }));
  const withProfiles = () => ({ ...structuredClone(gpu), migProfiles: [{ ...profile, instanceCount: 7, placements }] });

  it('pass well-formed results through, with the GPU read again and its profiles and placements', () => {
    const created = validateCreateMig({ gpuInstanceId: 9, computeInstanceProfileId: 0, gpu: withProfiles() });
    expect(created.gpuInstanceId).toBe(9);
    expect(created.gpu.migProfiles?.[0]).toEqual({ ...profile, instanceCount: 7, placements });
    expect(created.gpu.migDevices[0]?.profile).toEqual(profile);
    expect(validateDestroyMig({ found: false, gpu: structuredClone(gpu) })).toEqual({ found: false, gpu: { ...gpu, migDevices: [mig] } });
    expect(validateSetMigMode({ current: 0, pending: 1, activationStatus: 16, activationStatusName: 'NVML_ERROR_RESET_REQUIRED', gpu: structuredClone(gpu) }))
      .toMatchObject({ current: 0, pending: 1, activationStatus: 16 });
    expect(validateMigMode({ current: 1, pending: 1 })).toEqual({ current: 1, pending: 1 });
    expect(validateReadGpu({ gpu: withProfiles() }).uuid).toBe(GPU_UUID);
  });

  it('refuse malformed ones, naming the field', () => {
    expect(malformed(() => validateCreateMig({ computeInstanceProfileId: 0, gpu: structuredClone(gpu) })).path).toBe('createMigDevice.gpuInstanceId');
    expect(malformed(() => validateDestroyMig({ found: 'yes', gpu: structuredClone(gpu) })).path).toBe('destroyMigDevice.found');
    expect(malformed(() => validateMigMode({ current: 1 })).path).toBe('migMode.pending');
    expect(malformed(() => validateReadGpu({ gpu: { ...structuredClone(gpu), index: 'x' } })).path).toBe('readGpu.gpu.index');
    const tooMany = { ...withProfiles(), migProfiles: [{ ...profile, placements: Array.from({ length: MAX_NATIVE_PLACEMENTS + 1 }, (_, start) => ({ start, size: 1 })) }] };
    expect(malformed(() => validateReadGpu({ gpu: tooMany })).path).toBe('readGpu.gpu.migProfiles[0].placements');
  });
});
