/**
 * The GPM part of a native reading (native/nvml_gpm.cc, js_convert.cc `gpm`): validated (finite numbers ≥ 0, unknown
 * fields dropped, a malformed one names the field and device) and mapped to GpmMetrics in gpulet's units — NVML's
 * percent (nvml.h: "0.0 - 100.0") to fractions, NVML's MiB/s to bytes per second (× 2^20); an absent NVML metric
 * stays absent, and a reading without `gpm` has no `gpm`.
 */
import { describe, expect, it } from 'vitest';
import { PcieIntegrator, toDeviceSample, toGpmMetrics } from '../../../src/gpu/nvml/map-readings.js';
import { MalformedNativeValue, validateSample } from '../../../src/gpu/nvml/validate.js';

const reading = (gpm?: unknown) => ({ gpu: 1, mig: -1, memTotal: 1, ...(gpm === undefined ? {} : { gpm }) });

describe('GPM readings from the addon', () => {
  it('passes well-formed figures through, dropping unknown fields, and keeps a reading without gpm without one', () => {
    const s = validateSample({ timestampMs: 1, devices: [reading({ smUtil: 42.5, nvlinkTotalRxPerSec: 0, bogus: 'x' }), reading()] });
    expect(s.devices[0]?.gpm).toEqual({ smUtil: 42.5, nvlinkTotalRxPerSec: 0 });
    expect(s.devices[1]).not.toHaveProperty('gpm');
  });

  it.each([['a negative figure', -1], ['NaN', Number.NaN], ['Infinity', Infinity], ['a string', '42']])('rejects %s, naming the field and device', (_what, v) => {
    let err: unknown;
    try {
      validateSample({ timestampMs: 1, devices: [reading({ dramBwUtil: v })] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MalformedNativeValue);
    expect((err as MalformedNativeValue).path).toBe('sample.devices[0].gpm.dramBwUtil');
    expect((err as Error).message).toContain('gpu 1');
  });

  it('maps percent to fractions and MiB/s to bytes per second; absent stays absent', () => {
    expect(toGpmMetrics({ graphicsUtil: 50, smUtil: 25, smOccupancy: 10, anyTensorUtil: 100, dramBwUtil: 0, fp64Util: 1, fp32Util: 2, fp16Util: 3, pcieTxPerSec: 1, pcieRxPerSec: 2, nvlinkTotalTxPerSec: 1024, nvlinkTotalRxPerSec: 0.5 })).toEqual({
      graphicsActive: 0.5, smActive: 0.25, smOccupancy: 0.1, tensorActive: 1, dramActive: 0, fp64Active: 0.01, fp32Active: 0.02, fp16Active: 0.03,
      pcieTxBytesPerSecond: 1048576, pcieRxBytesPerSecond: 2097152, nvlinkTxBytesPerSecond: 1073741824, nvlinkRxBytesPerSecond: 524288,
    });
    expect(toGpmMetrics({ smUtil: 90 })).toEqual({ smActive: 0.9 });
    const d = toDeviceSample('GPU-x', { gpu: 0, mig: -1, gpm: {} }, 1, new PcieIntegrator());
    expect(d).not.toHaveProperty('gpm'); // an empty GPM reading is no GPM reading
  });
});
