/**
 * A claim's opaque-config env (src/state/claim-env.ts): one device's env from the configs stored once per claim,
 * the split into what every device shares (spec level) and the rest, checked against CDI's own semantics — the
 * env a container gets from any subset of a claim's devices, applied as the CDI library does (pkg/cdi cache
 * `InjectDevices`: a spec's edits before the first of its devices, then each device's; `AddProcessEnv`: the
 * last value of a name wins) — and the reading of the older per-device shape.
 */
import { describe, expect, it } from 'vitest';
import { buildCdiSpec, MOCK_DEVICE_MAJORS, type CdiSpec } from '../../src/state/cdi.js';
import {
  claimEnvProblem, claimEnvSize, configsFromDeviceEnv, deviceEnv, envBytes, MAX_CLAIM_ENV_BYTES, splitClaimEnv, type ClaimConfig,
} from '../../src/state/claim-env.js';
import { claimCdiSpec } from '../../src/state/claim-spec.js';
import { devicesByName } from '../../src/model/devices.js';
import { dgxInventory, DRIVER } from '../helpers/claims.js';

/** The env a container gets when the runtime injects `devices` (CDI device names) of one spec, in that order. */
function injectedEnv(spec: CdiSpec, devices: readonly string[]): Map<string, string> {
  const env = new Map<string, string>();
  const apply = (list: readonly string[] | undefined) => {
    for (const e of list ?? []) env.set(e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1));
  };
  apply(spec.containerEdits?.env); // the spec's edits come before its first device
  for (const name of devices) apply(spec.devices.find((d) => d.name === name)?.containerEdits.env);
  return env;
}

/** Every non-empty subset of `items`, in order. */
const subsets = <T>(items: readonly T[]): T[][] =>
  Array.from({ length: 2 ** items.length - 1 }, (_, m) => items.filter((_item, i) => ((m + 1) >> i) & 1));

const NAMES = ['gpu-0', 'gpu-1', 'gpu-2'];
const CONFIGS: ClaimConfig[] = [
  { devices: [], env: { MODEL: 'llama', STAGE: 'class' } },
  { devices: ['gpu-1', 'gpu-2'], env: { STAGE: 'claim', ROLE: 'worker' } },
  { devices: ['gpu-2'], env: { ROLE: 'leader' } },
];

describe('claim env', () => {
  it('merges the configs that apply to a device, in config order', () => {
    expect(deviceEnv(CONFIGS, 'gpu-0')).toEqual({ MODEL: 'llama', STAGE: 'class' });
    expect(deviceEnv(CONFIGS, 'gpu-1')).toEqual({ MODEL: 'llama', STAGE: 'claim', ROLE: 'worker' });
    expect(deviceEnv(CONFIGS, 'gpu-2')).toEqual({ MODEL: 'llama', STAGE: 'claim', ROLE: 'leader' });
  });

  it('shares what every device has with one value; the rest stays per device', () => {
    const split = splitClaimEnv(CONFIGS, NAMES);
    expect(split.shared).toEqual({ MODEL: 'llama' });
    expect(Object.fromEntries(split.perDevice)).toEqual({
      'gpu-0': { STAGE: 'class' },
      'gpu-1': { STAGE: 'claim', ROLE: 'worker' },
      'gpu-2': { STAGE: 'claim', ROLE: 'leader' },
    });
    expect(splitClaimEnv([{ devices: [], env: { A: '1' } }], ['gpu-0']).shared).toEqual({ A: '1' });
  });

  it('gives a container the same env as repeating it per device, for every subset and order of the devices', async () => {
    const byName = devicesByName(await dgxInventory());
    const uid = '6f1c2a9e-0b7d-4c3e-9a1f-2b3c4d5e6f70';
    const split = claimCdiSpec({ driverName: DRIVER, claimUid: uid, devices: NAMES.map((deviceName) => ({ deviceName })), configs: CONFIGS, byName });
    // The older layout: every device carries its whole env, nothing extra at spec level.
    const repeated = buildCdiSpec({
      driverName: DRIVER, claimUid: uid, majors: MOCK_DEVICE_MAJORS,
      devices: NAMES.map((n) => ({ device: byName.get(n)!, env: deviceEnv(CONFIGS, n) })),
    });
    expect(split.containerEdits?.env).toEqual(['NVIDIA_VISIBLE_DEVICES=void', 'MODEL=llama']);
    for (const subset of subsets(NAMES.map((n) => `${uid}-${n}`))) {
      for (const order of [subset, [...subset].reverse()]) expect(injectedEnv(split, order)).toEqual(injectedEnv(repeated, order));
    }
  });

  it('counts bytes of NAME=value as stored and as written, and names the limit when over it', () => {
    expect(envBytes({ A: 'xy', 'Ñ': 'é' })).toBe(4 + 5);
    // Stored once each; written: MODEL shared once, the rest per device.
    expect(claimEnvSize(CONFIGS, NAMES)).toEqual({
      stored: envBytes(CONFIGS[0]!.env) + envBytes(CONFIGS[1]!.env) + envBytes(CONFIGS[2]!.env),
      written: envBytes({ MODEL: 'llama' }) + envBytes({ STAGE: 'class' }) + 2 * envBytes({ STAGE: 'claim' }) + envBytes({ ROLE: 'worker' }) + envBytes({ ROLE: 'leader' }),
    });
    expect(claimEnvProblem(CONFIGS, NAMES)).toBeUndefined();
    const atCap: ClaimConfig[] = [{ devices: [], env: { V: 'x'.repeat(MAX_CLAIM_ENV_BYTES - 2) } }];
    expect(claimEnvProblem(atCap, NAMES)).toBeUndefined();
    const over: ClaimConfig[] = [{ devices: [], env: { V: 'x'.repeat(MAX_CLAIM_ENV_BYTES - 1) } }];
    expect(claimEnvProblem(over, NAMES)).toMatch(/^opaque config env is 65537 bytes .*more than the 65536-byte limit per claim/);
  });

  it('reads the older per-device env as one config per distinct env, each device keeping its env', () => {
    const devices = NAMES.map((deviceName) => ({ deviceName, env: deviceEnv(CONFIGS, deviceName) }));
    const configs = configsFromDeviceEnv(devices);
    expect(configs.map((c) => c.devices)).toEqual([['gpu-0'], ['gpu-1'], ['gpu-2']]);
    for (const d of devices) expect(deviceEnv(configs, d.deviceName)).toEqual(d.env);
    // One env on every device: one config for all; a device without env: none; a device listed twice: its last.
    expect(configsFromDeviceEnv([{ deviceName: 'gpu-0', env: { A: '1' } }, { deviceName: 'gpu-1', env: { A: '1' } }])).toEqual([{ devices: [], env: { A: '1' } }]);
    expect(configsFromDeviceEnv([{ deviceName: 'gpu-0' }, { deviceName: 'gpu-1', env: {} }])).toEqual([]);
    expect(configsFromDeviceEnv([{ deviceName: 'gpu-0', env: { A: '1' } }, { deviceName: 'gpu-0', env: { A: '2' } }])).toEqual([{ devices: [], env: { A: '2' } }]);
  });
});
