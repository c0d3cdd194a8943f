import { describe, expect, it } from 'vitest';
import type { DeviceOwner } from '../../src/model/types.js';
import { deviceIdentities } from '../../src/telemetry/attributes.js';
import { escapeLabelValue, nvmlBusId, renderDcgm, type DcgmInput } from '../../src/telemetry/dcgm.js';
import { fullReadings, GPU0, GPU1, INVENTORY, MIG_A } from '../helpers/telemetry.js';
import { parsePrometheusText } from '../helpers/promtext.js';
import { claimRef, podRef } from '../helpers/names.js';

const owner: DeviceOwner = {
  claim: claimRef({ namespace: 'ml', name: 'mig-claim' }),
  pods: [podRef({ namespace: 'ml', name: 'pod-a' })],
  deviceName: 'gpu-1-mig-1g10gb-19-9',
  uuid: MIG_A,
};

function input(over: Partial<DcgmInput> = {}): DcgmInput {
  return {
    sample: { timestampMs: 1, devices: [fullReadings(GPU0), fullReadings(GPU1), fullReadings(MIG_A, { gpuUtilizationPercent: undefined, memoryUsedBytes: 512 * 1024 ** 2, memoryReservedBytes: undefined })] },
    identities: deviceIdentities(INVENTORY),
    owners: new Map([[MIG_A, [owner]]]),
    lastXid: (u) => (u === GPU1 ? 79 : undefined),
    hostname: 'node-a',
    driverName: 'gpu.gpulet.dev',
    poolName: 'node-a',
    ...over,
  };
}

describe('renderDcgm', () => {
  const parsed = parsePrometheusText(renderDcgm(input()));
  const find = (name: string, uuidLabel: string, extra: Record<string, string> = {}) =>
    parsed.samples.filter((s) => s.name === name && s.labels['UUID'] === uuidLabel && Object.entries(extra).every(([k, v]) => s.labels[k] === v));

  it('is valid text format with HELP and TYPE for every family', () => {
    const families = new Set(parsed.samples.map((s) => s.name));
    expect(families.size).toBeGreaterThan(10);
    for (const f of families) {
      expect(parsed.types.get(f), f).toMatch(/^(gauge|counter)$/);
      expect(parsed.help.get(f), f).toBeTruthy();
    }
  });

  it('writes dcgm-exporter units: % utilisation, MiB framebuffer, W power, mJ energy', () => {
    expect(find('DCGM_FI_DEV_GPU_UTIL', GPU0)[0]!.value).toBe(42);
    // NVML's used (20 GiB) includes the reserved 1 GiB; DCGM's FB_USED does not: FB_USED + FB_FREE + FB_RESERVED = total.
    expect(find('DCGM_FI_DEV_FB_USED', GPU0)[0]!.value).toBe(19_456);
    expect(find('DCGM_FI_DEV_FB_FREE', GPU0)[0]!.value).toBe(60 * 1024);
    expect(find('DCGM_FI_DEV_FB_RESERVED', GPU0)[0]!.value).toBe(1024);
    expect(find('DCGM_FI_DEV_POWER_USAGE', GPU0)[0]!.value).toBeCloseTo(345.678, 9);
    expect(find('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', GPU0)[0]!.value).toBe(123_456_789);
    expect(find('DCGM_FI_DEV_SM_CLOCK', GPU0)[0]!.value).toBe(1980);
  });

  it('reports the last XID of every GPU with err_code and err_msg, 0 ("No Error") before any XID', () => {
    // dcgm-exporter gpu_collector.go toMetric: err_code = the value, err_msg = xidErrCodeToText[value]
    // (test/reference/dcgm-exporter/xid-messages.md: 0 "No Error", 79 "GPU has fallen off the bus").
    const xids = parsed.samples.filter((s) => s.name === 'DCGM_FI_DEV_XID_ERRORS');
    expect(xids.map((s) => [s.labels['UUID'], s.labels['GPU_I_ID'], s.value, s.labels['err_code'], s.labels['err_msg']])).toEqual([
      [GPU0, undefined, 0, '0', 'No Error'],
      [GPU1, undefined, 79, '79', 'GPU has fallen off the bus'],
    ]);
    expect(parsed.types.get('DCGM_FI_DEV_XID_ERRORS')).toBe('gauge');
    const unknown = parsePrometheusText(renderDcgm(input({ lastXid: (u) => (u === GPU0 ? 4242 : undefined) })));
    expect(unknown.samples.find((s) => s.name === 'DCGM_FI_DEV_XID_ERRORS' && s.labels['UUID'] === GPU0)?.labels).toMatchObject({ err_code: '4242', err_msg: 'Unknown Error' });
  });

  it("labels a GPU like dcgm-exporter: gpu, UUID, pci_bus_id (NVML form), device, modelName, Hostname/hostname, DCGM_FI_DRIVER_VERSION", () => {
    const s = find('DCGM_FI_DEV_GPU_TEMP', GPU0)[0]!;
    expect(s.labels).toEqual({
      gpu: '0', UUID: GPU0, pci_bus_id: '00000000:18:00.0', device: 'nvidia0', modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: 'node-a', hostname: 'node-a', DCGM_FI_DRIVER_VERSION: INVENTORY.system.driverVersion,
    });
  });

  it('adds a container label per container of the pod that uses the claim', () => {
    const text = renderDcgm(input({ containersOf: (pod, claim) => (pod.name === 'pod-a' && claim === 'mig-claim' ? ['train', 'sidecar'] : undefined) }));
    const fb = parsePrometheusText(text).samples.filter((s) => s.name === 'DCGM_FI_DEV_FB_USED' && s.labels['GPU_I_ID'] === '9');
    expect(fb.map((s) => [s.labels['pod'], s.labels['container']])).toEqual([['pod-a', 'train'], ['pod-a', 'sidecar']]);
  });

  it('writes the row-remap failure flag, the NVLink byte counter and both names of the clock event reasons', () => {
    const text = renderDcgm(input({
      sample: { timestampMs: 1, devices: [fullReadings(GPU0, { remappedRowsFailure: 0, nvlinkDataBytes: 5_000_000, clockEventReasons: 4 })] },
    }));
    const p = parsePrometheusText(text);
    const v = (name: string) => p.samples.find((s) => s.name === name && s.labels['UUID'] === GPU0)?.value;
    expect(v('DCGM_FI_DEV_ROW_REMAP_FAILURE')).toBe(0);
    expect(v('DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL')).toBe(5_000_000);
    expect(v('DCGM_FI_DEV_CLOCKS_EVENT_REASONS')).toBe(4);
    expect(v('DCGM_FI_DEV_CLOCK_THROTTLE_REASONS')).toBe(4);
  });

  it('labels a held MIG device with its parent, GPU instance and DRA claim', () => {
    const s = find('DCGM_FI_DEV_FB_USED', GPU1, { GPU_I_ID: '9' });
    expect(s).toHaveLength(1);
    expect(s[0]!.value).toBe(512);
    expect(s[0]!.labels).toMatchObject({
      gpu: '1', UUID: GPU1, device: 'nvidia1', GPU_I_PROFILE: '1g.10gb', GPU_I_ID: '9',
      namespace: 'ml', pod: 'pod-a', dra_claim_name: 'mig-claim', dra_claim_namespace: 'ml',
      dra_device_name: 'gpu-1-mig-1g10gb-19-9', dra_driver_name: 'gpu.gpulet.dev', dra_pool_name: 'node-a',
      dra_mig_profile: '1g.10gb', dra_mig_device_uuid: MIG_A,
    });
    expect(s[0]!.labels['container']).toBeUndefined(); // the pod's containers are not known here
    // An unsupported reading has no line (the MIG device has no GPU_UTIL).
    expect(find('DCGM_FI_DEV_GPU_UTIL', GPU1, { GPU_I_ID: '9' })).toHaveLength(0);
  });

  it('escapes the label values it writes', () => {
    const text = renderDcgm(input({ hostname: 'node "a"\\b' }));
    expect(text).toContain('Hostname="node \\"a\\"\\\\b"');
    expect(parsePrometheusText(text).samples.find((s) => s.name === 'DCGM_FI_DEV_GPU_TEMP')?.labels['Hostname']).toBe('node "a"\\b');
  });

  it('renders nothing before the first sample but the XID family (0 for every GPU)', () => {
    const text = renderDcgm(input({ sample: undefined }));
    expect(new Set(parsePrometheusText(text).samples.map((s) => s.name))).toEqual(new Set(['DCGM_FI_DEV_XID_ERRORS']));
  });
});

describe('helpers', () => {
  it('converts sysfs bus IDs to the NVML form', () => {
    expect(nvmlBusId('0000:3b:00.0')).toBe('00000000:3B:00.0');
    expect(nvmlBusId('0009:01:00.0')).toBe('00000009:01:00.0');
    expect(nvmlBusId('garbage')).toBe('garbage');
  });
  it('escapes label values', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});
