/**
 * fast-check arbitraries of `status.allocation.devices.config[]` entries (resource.k8s.io/v1
 * DeviceAllocationConfiguration with OpaqueDeviceConfiguration), each classified: ours and valid, another
 * driver's (ignored), or ours and wrong. gpulet's config (src/state/opaque-config.ts, docs/contracts.md §5) is
 * `{"apiVersion": "gpulet.dev/v1", "kind": "GpuConfig", "env"?: {NAME: "value"}}`; upstream caps the raw
 * parameters at 10 Ki ("The length of the raw data must be smaller or equal to 10 Ki"), counted here as the
 * UTF-8 bytes of their JSON.
 */
import fc from 'fast-check';
import { DRIVER } from '../agent.js';

/** One generated config entry with its classification. */
export interface ConfigGen {
  readonly json: unknown;
  readonly kind: 'ours' | 'foreign' | 'bad';
}

/** Driver names that are not ours (close calls included). */
export const OTHER_DRIVERS = ['net.example.com', 'gpu.nvidia.com', `${DRIVER}.evil`, DRIVER.toUpperCase(), '', ` ${DRIVER}`];
/** Request names, weird ones included (`a/b/c`, empty, NUL, 300 characters). */
export const requestName = fc.oneof(
  fc.constantFrom('gpus', 'a/b/c', '', 'gpus/sub', '/', 'x/', '/x', 'ñ/😀', '\0', 'r'.repeat(300)),
  fc.stringMatching(/^[a-z]{1,8}(\/[a-z]{1,8})?$/),
);
/** Any JSON value (nested junk). */
export const anyJson = fc.jsonValue({ maxDepth: 4 });

const envName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/).filter((n) => !n.startsWith('GPULET_') && n !== 'NVIDIA_VISIBLE_DEVICES' && n !== '__proto__');
const envValue = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('', 'a=b', 'ñ😀', '$(id)', 'x\ny'));
const goodEnv = fc.dictionary(envName, envValue, { maxKeys: 4 });
const header = { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig' };
const LIMIT = 10 * 1024;

/** UTF-8 bytes of the JSON of `v`: the size the 10 Ki limit counts. */
export function jsonBytes(v: unknown): number {
  return Buffer.byteLength(JSON.stringify(v), 'utf8');
}

/** GpuConfig parameters near or over the 10 KiB limit: one env value padded with `unit` to `target` bytes. */
const sizedParams = fc.tuple(fc.integer({ min: LIMIT - 300, max: LIMIT + 300 }), fc.constantFrom('x', 'é', '😀'), fc.boolean()).map(([target, unit, far]) => {
  const want = far ? target * 4 : target;
  const skeleton = { ...header, env: { PAD: '' } };
  const room = Math.max(0, want - jsonBytes(skeleton));
  const params = { ...header, env: { PAD: unit.repeat(Math.floor(room / Buffer.byteLength(unit, 'utf8'))) } };
  return params;
});

const badParams: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, 'GpuConfig', 42, true, [], [header]),
  anyJson.filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
  fc.record({ extra: anyJson }).map((x) => ({ ...header, ...x })),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['apiVersion', 'kind', 'env'].includes(k)), anyJson, { minKeys: 1, maxKeys: 3 }).map((x) => ({ ...header, ...x })),
  fc.constantFrom<unknown>(
    { apiVersion: 'gpulet.dev/v2', kind: 'GpuConfig' },
    { apiVersion: 'gpulet.dev/v1', kind: 'gpuconfig' },
    { kind: 'GpuConfig' },
    { apiVersion: 'gpulet.dev/v1' },
    {},
    { ...header, env: [] },
    { ...header, env: 'A=B' },
    { ...header, env: null },
    { ...header, env: { '1A': 'x' } },
    { ...header, env: { 'A-B': 'x' } },
    { ...header, env: { '': 'x' } },
    { ...header, env: { 'A B': 'x' } },
    { ...header, env: { GPULET_DEVICE_GPU_0: 'GPU-fake' } },
    { ...header, env: { NVIDIA_VISIBLE_DEVICES: 'all' } },
    { ...header, env: JSON.parse('{"__proto__": "x"}') as unknown },
    { ...header, env: { A: 1 } },
    { ...header, env: { A: { nested: ['junk'] } } },
  ),
  // Deeply nested junk under an unknown field.
  fc.integer({ min: 1, max: 64 }).map((depth) => {
    let v: unknown = 'leaf';
    for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { k: v };
    return { ...header, junk: v };
  }),
);

const requestsList = fc.option(fc.array(requestName, { maxLength: 3 }), { nil: undefined });

/** Config entries; `clean` ones are ours (valid, or sized around the 10 KiB limit) or another driver's. */
export const configArb = (clean: boolean): fc.Arbitrary<ConfigGen> => fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(requestsList, goodEnv, fc.boolean()).map(([requests, env, withEnv]): ConfigGen => ({
      json: { source: 'FromClaim', ...(requests ? { requests } : {}), opaque: { driver: DRIVER, parameters: withEnv ? { ...header, env } : { ...header } } },
      kind: 'ours',
    })),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(requestsList, sizedParams).map(([requests, parameters]): ConfigGen => ({
      json: { source: 'FromClass', ...(requests ? { requests } : {}), opaque: { driver: DRIVER, parameters } },
      kind: jsonBytes(parameters) <= LIMIT ? 'ours' : 'bad',
    })),
  },
  {
    weight: clean ? 0 : 3,
    arbitrary: fc.tuple(requestsList, badParams).map(([requests, parameters]): ConfigGen => ({
      json: { source: 'FromClaim', ...(requests ? { requests } : {}), opaque: { driver: DRIVER, parameters } },
      kind: 'bad',
    })),
  },
  {
    weight: clean ? 0 : 1,
    arbitrary: fc.tuple(fc.constantFrom([1], [null], ['a', 2]), goodEnv).map(([requests, env]): ConfigGen => ({
      json: { source: 'FromClaim', requests, opaque: { driver: DRIVER, parameters: { ...header, env } } },
      kind: 'bad',
    })),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(...OTHER_DRIVERS), fc.oneof(anyJson, badParams, sizedParams), requestsList).map(([driver, parameters, requests]): ConfigGen => ({
      json: { source: 'FromClaim', ...(requests ? { requests } : {}), opaque: { driver, parameters } },
      kind: 'foreign',
    })),
  },
  { weight: clean ? 0 : 1, arbitrary: fc.constant<ConfigGen>({ json: null, kind: 'bad' }) },
);
