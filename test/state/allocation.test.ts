/**
 * Allocation resolution against the resource.k8s.io/v1 rules (docs/contracts.md §2, §5): every bad input gives a
 * ClaimError naming the claim and the cause; good input gives exactly the devices of our driver and pool.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { devicesByName, type AllocatableDevice } from '../../src/model/devices.js';
import { ClaimError } from '../../src/errors.js';
import { MAX_ALLOCATION_RESULTS, resolveAllocation, stripSubrequest } from '../../src/state/allocation.js';
import { deviceEnv, MAX_CLAIM_ENV_BYTES } from '../../src/state/claim-env.js';
import type { RawResourceClaim } from '../../src/state/claim-source.js';
import { GPU_CONFIG_API_VERSION, GPU_CONFIG_KIND } from '../../src/state/opaque-config.js';
import { allocatedClaim, checkedClaim, dgxInventory, DRIVER, newRef, NODE, type ResultSpec } from '../helpers/claims.js';
import { podRef } from '../helpers/names.js';

describe('resolveAllocation', () => {
  let devices: Map<string, AllocatableDevice>;
  beforeAll(async () => {
    devices = devicesByName(await dgxInventory());
  });
  const ref = newRef();
  /** Resolve a claim as the API server answers it, after the entry check prepare's GET applies (`claimFromApi`). */
  const resolve = (claim: RawResourceClaim, r = ref) => resolveAllocation({ claim: checkedClaim(claim), ref: r, driverName: DRIVER, poolName: NODE, devices });
  const claimWith = (results: ResultSpec[], extra?: Parameters<typeof allocatedClaim>[2]) => allocatedClaim(ref, results, extra);
  const expectError = (claim: RawResourceClaim, ...fragments: string[]) => {
    let caught: unknown;
    try {
      resolve(claim);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ClaimError);
    const message = (caught as Error).message;
    expect(message).toContain(`claim ${ref.namespace}/${ref.name} (uid ${ref.uid})`);
    for (const f of fragments) expect(message).toContain(f);
  };
  const opaque = (parameters: unknown, requests?: string[], driver = DRIVER) => ({
    source: 'FromClaim',
    ...(requests ? { requests } : {}),
    opaque: { driver, parameters },
  });
  const cfg = (env?: Record<string, string>) => ({ apiVersion: GPU_CONFIG_API_VERSION, kind: GPU_CONFIG_KIND, ...(env ? { env } : {}) });

  it('returns our devices with UUIDs, strips subrequests, passes shareID and ignores other drivers', () => {
    const claim = claimWith([
      { request: 'big/h100', device: 'gpu-2' },
      { request: 'nic', driver: 'net.example.com', pool: 'other', device: 'eth0' },
      { request: 'small', device: 'gpu-7-mig-1g10gb-19-3', shareID: '2f0d3c5e-1111-4222-8333-444455556666' },
    ]);
    const out = resolve(claim);
    expect(out.devices.map((d) => [d.deviceName, d.requestNames, d.shareId])).toEqual([
      ['gpu-2', ['big'], undefined],
      ['gpu-7-mig-1g10gb-19-3', ['small'], '2f0d3c5e-1111-4222-8333-444455556666'],
    ]);
    expect(out.devices[0]!.device.uuid).toBe(devices.get('gpu-2')!.uuid);
    expect(out.devices.every((d) => d.poolName === NODE)).toBe(true);
    expect(stripSubrequest('a/b')).toBe('a');
    expect(stripSubrequest('a')).toBe('a');
  });

  it('merges results that name the same device for several requests', () => {
    const out = resolve(claimWith([{ request: 'a', device: 'gpu-1' }, { request: 'b/x', device: 'gpu-1' }]));
    expect(out.devices).toHaveLength(1);
    expect(out.devices[0]!.requestNames).toEqual(['a', 'b']);
  });

  it('extracts reservedFor pods (resource "pods") in the claim namespace, checked as pod references', () => {
    const trainer = podRef({ namespace: 'ml', name: 'trainer-0' });
    const out = resolve(
      claimWith([{ device: 'gpu-0' }], {
        reservedFor: [
          { resource: 'pods', name: trainer.name, uid: trainer.uid },
          { apiGroup: 'example.com', resource: 'pods', name: 'not-a-pod', uid: 'x' },
          { resource: 'deployments', name: 'd', uid: 'y' },
          'garbage',
          // Pods whose name or uid breaks the rules of a pod reference (src/model/claim-ref.ts) are skipped.
          { resource: 'pods', name: 'trainer-1', uid: 'p-1' },
          { resource: 'pods', name: 'trainer-2', uid: trainer.uid.toUpperCase() },
          { resource: 'pods', name: 'Trainer_3', uid: podRef({ namespace: 'ml', name: 'x' }).uid },
          { resource: 'pods', name: 'trainer-4' },
        ],
      }),
    );
    expect(out.pods).toEqual([trainer]);
  });

  it('fails a claim that is not allocated', () => {
    expectError({ metadata: ref, status: {} }, 'not allocated');
    expectError({ metadata: ref }, 'not allocated');
  });

  it('fails when the UID changed (claim re-created)', () => {
    const other = allocatedClaim({ ...ref, uid: '00000000-0000-4000-8000-000000000000' }, [{ device: 'gpu-0' }]);
    expectError(other, 'UID mismatch', '00000000-0000-4000-8000-000000000000');
  });

  it('fails on an unknown device, naming it', () => {
    expectError(claimWith([{ device: 'gpu-42' }]), 'unknown device "gpu-42"');
  });

  it('fails on a device of another pool, naming the pool', () => {
    expectError(claimWith([{ device: 'gpu-0', pool: 'node-b' }]), 'pool "node-b"');
  });

  it('fails when only other drivers have results', () => {
    expectError(claimWith([{ device: 'eth0', driver: 'net.example.com', pool: 'x' }]), 'no allocation results for driver');
    expectError(claimWith([]), 'no allocation results');
  });

  it('fails with more than 32 results', () => {
    const many = Array.from({ length: MAX_ALLOCATION_RESULTS + 1 }, (_, i) => ({ request: `r${i}`, device: 'gpu-0' }));
    expectError(claimWith(many), `${MAX_ALLOCATION_RESULTS + 1} entries`);
    expect(() => resolve(claimWith(many.slice(0, MAX_ALLOCATION_RESULTS)))).not.toThrow();
  });

  it('fails malformed results and status shapes without crashing', () => {
    const base = claimWith([{ device: 'gpu-0' }]);
    const withResults = (results: unknown): RawResourceClaim => ({ metadata: base.metadata!, status: { allocation: { devices: { results } } } });
    expectError(withResults('nope'), 'is not a list');
    expectError(withResults([42]), 'results[0] is not an object');
    expectError(withResults([{ driver: DRIVER, pool: NODE, device: 7, request: 'gpu' }]), 'lacks a string');
    expectError({ metadata: base.metadata!, status: { allocation: 'x' } }, 'status.allocation is not an object');
  });

  it('applies our opaque config env to the requests it names and ignores other drivers', () => {
    const out = resolve(
      claimWith([{ request: 'a', device: 'gpu-0' }, { request: 'b/sub', device: 'gpu-1' }], {
        config: [
          opaque(cfg({ ALL: '1', X: 'class' })),
          opaque({ anything: ['goes'] }, [], 'net.example.com'),
          opaque(cfg({ X: 'claim' }), ['b']),
        ],
      }),
    );
    // Stored once per claim, each config with the devices it applies to ([] = all), other drivers' left out.
    expect(out.configs).toEqual([
      { devices: [], env: { ALL: '1', X: 'class' } },
      { devices: ['gpu-1'], env: { X: 'claim' } },
    ]);
    expect(deviceEnv(out.configs, 'gpu-0')).toEqual({ ALL: '1', X: 'class' });
    expect(deviceEnv(out.configs, 'gpu-1')).toEqual({ ALL: '1', X: 'claim' });
  });

  it('resolves upstream requests: a listed request covers its subrequests, a listed subrequest only itself', () => {
    const out = resolve(
      claimWith([{ request: 'a/x', device: 'gpu-0' }, { request: 'a/y', device: 'gpu-1' }, { request: 'b', device: 'gpu-2' }], {
        config: [opaque(cfg({ A: '1' }), ['a']), opaque(cfg({ AX: '1' }), ['a/x']), opaque(cfg({ NONE: '1' }), ['c']), opaque(cfg(), [])],
      }),
    );
    // `c` names no result of ours and the last config sets nothing: neither is stored.
    expect(out.configs).toEqual([{ devices: ['gpu-0', 'gpu-1'], env: { A: '1' } }, { devices: ['gpu-0'], env: { AX: '1' } }]);
  });

  it(`refuses a claim whose env is over ${MAX_CLAIM_ENV_BYTES} bytes, naming the claim, the size and the limit`, () => {
    // The probe's claim: 16 devices, 32 configs of nearly 10 KiB each.
    const results = Array.from({ length: 16 }, (_, i) => ({ request: `r${i}`, device: [...devices.keys()][i]! }));
    const fat = (i: number) => opaque(cfg({ [`V${i}`]: 'x'.repeat(10 * 1024 - 100) }));
    expectError(claimWith(results, { config: Array.from({ length: 32 }, (_, i) => fat(i)) }), 'bytes', `more than the ${MAX_CLAIM_ENV_BYTES}-byte limit per claim`);
    // Six such configs fit when every device shares them (stored and written once) ...
    expect(resolve(claimWith(results, { config: Array.from({ length: 6 }, (_, i) => fat(i)) })).configs).toHaveLength(6);
    // A config for some devices only is written once per device: three for two devices each fit, four do not
    // (stored 4 × ~10 KiB, but written twice as much).
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => opaque(cfg({ [`P${i}`]: 'x'.repeat(10 * 1024 - 100) }), [`r${i}`, `r${i + 8}`]));
    expect(resolve(claimWith(results, { config: pairs(3) })).configs.map((c) => c.devices.length)).toEqual([2, 2, 2]);
    expectError(claimWith(results, { config: pairs(4) }), 'is 81144 bytes (as stored: 40572; as written into the CDI spec: 81144)');
  });

  it('names the field of every malformed status shape', () => {
    const base = claimWith([{ device: 'gpu-0' }]);
    const withDevices = (devicesField: unknown): RawResourceClaim => ({ metadata: base.metadata!, status: { allocation: { devices: devicesField } } });
    const result = { driver: DRIVER, pool: NODE, device: 'gpu-0', request: 'gpu' };
    expectError({ metadata: base.metadata!, status: { allocation: null } }, 'not allocated: status.allocation is empty');
    expectError(withDevices('x'), 'status.allocation.devices is not an object');
    expectError(withDevices({ results: 'x' }), 'status.allocation.devices.results is not a list');
    expectError(withDevices({ results: [result], config: {} }), 'status.allocation.devices.config is not a list');
    // null lists are absent lists (JSON null for an omitted field)
    expectError(withDevices({ results: null }), 'no allocation results for driver');
    expect(resolve(withDevices({ results: [result], config: null })).configs).toEqual([]);
    for (const field of ['driver', 'pool', 'device', 'request']) {
      expectError(withDevices({ results: [{ ...result, [field]: 1 }] }), 'status.allocation.devices.results[0] lacks a string driver, pool, device or request');
    }
    expectError(withDevices({ results: [result, { ...result, shareID: 5 }] }), 'status.allocation.devices.results[1].shareID is not a string');
    expectError(withDevices({ results: [result], config: [7] }), 'status.allocation.devices.config[0] is not an object');
    expectError(withDevices({ results: [result], config: [{ requests: 'gpu', opaque: { driver: DRIVER, parameters: cfg() } }] }), 'status.allocation.devices.config[0].requests is not a list of strings');
    expectError(withDevices({ results: [result], config: [{ opaque: { driver: 'x.example.com', parameters: 1 } }, { requests: [1], opaque: { driver: DRIVER, parameters: cfg() } }] }), 'config[1].requests is not a list of strings');
    expectError(withDevices({ results: [result], config: [{ opaque: { driver: DRIVER, parameters: 1 } }] }), `invalid opaque config for driver ${DRIVER} in status.allocation.devices.config[0]: parameters must be a JSON object`);
  });

  it('says which uid the kubelet asked for when the claim was re-created', () => {
    const other = allocatedClaim({ ...ref, uid: '00000000-0000-4000-8000-000000000000' }, [{ device: 'gpu-0' }]);
    expectError(other, `the kubelet asked for ${ref.uid}`);
  });

  it('keeps one entry per (device, shareID): an empty or null shareID is no share, and no shareId field', () => {
    const base = claimWith([{ device: 'gpu-0' }]);
    const results = (...rs: Record<string, unknown>[]): RawResourceClaim => ({ metadata: base.metadata!, status: { allocation: { devices: { results: rs } } } });
    const r = { driver: DRIVER, pool: NODE, device: 'gpu-0' };
    const s1 = '2f0d3c5e-1111-4222-8333-444455556666';
    const s2 = '2f0d3c5e-1111-4222-8333-444455556667';
    const out = resolve(results({ ...r, request: 'a', shareID: s1 }, { ...r, request: 'b', shareID: s2 }, { ...r, request: 'd', shareID: null }, { ...r, request: 'c', shareID: '' }));
    expect(out.devices.map((d) => [d.requestNames, d.shareId])).toEqual([[['a'], s1], [['b'], s2], [['d', 'c'], undefined]]);
    expect(out.devices[2]).not.toHaveProperty('shareId');
    // The same request twice for one device (two subrequests of it) names the request once.
    expect(resolve(results({ ...r, request: 'a/x' }, { ...r, request: 'a/y' })).devices[0]!.requestNames).toEqual(['a']);
  });

  it('applies a config to a device when any one of the device\'s requests is listed', () => {
    const out = resolve(
      claimWith([{ request: 'a', device: 'gpu-0' }, { request: 'b', device: 'gpu-0' }, { request: 'c', device: 'gpu-1' }], {
        config: [opaque(cfg({ B: '1' }), ['b'])],
      }),
    );
    expect(out.configs).toEqual([{ devices: ['gpu-0'], env: { B: '1' } }]);
  });

  it('takes only core-group pods from reservedFor, whatever else is well-formed', () => {
    const pod = podRef({ namespace: 'ml', name: 'p-0' });
    const other = podRef({ namespace: 'ml', name: 'p-1' });
    const third = podRef({ namespace: 'ml', name: 'p-2' });
    const out = resolve(
      claimWith([{ device: 'gpu-0' }], {
        reservedFor: [
          { resource: 'deployments', name: 'web', uid: other.uid },
          { apiGroup: 'example.com', resource: 'pods', name: 'web', uid: other.uid },
          null,
          { apiGroup: '', resource: 'pods', name: pod.name, uid: pod.uid },
          { apiGroup: null, resource: 'pods', name: third.name, uid: third.uid },
        ],
      }),
    );
    expect(out.pods.map((p) => p.name)).toEqual(['p-0', 'p-2']);
    expect(resolve(claimWith([{ device: 'gpu-0' }], { reservedFor: 'pods' as unknown as unknown[] })).pods).toEqual([]);
  });

  it('rejects bad opaque config of our driver: non-object, oversize, unknown params, wrong kind, reserved env', () => {
    const withConfig = (parameters: unknown) => claimWith([{ device: 'gpu-0' }], { config: [opaque(parameters)] });
    expectError(withConfig([1, 2]), 'must be a JSON object', 'an array');
    expectError(withConfig('str'), 'must be a JSON object');
    expectError(withConfig(null), 'must be a JSON object');
    expectError(withConfig({ ...cfg({ BIG: 'x'.repeat(10 * 1024) }) }), 'bytes, more than the 10240-byte limit');
    expectError(withConfig({ ...cfg(), sharing: { strategy: 'TimeSlicing' } }), 'unknown field(s) "sharing"');
    expectError(withConfig({ apiVersion: 'resource.nvidia.com/v1beta1', kind: 'GpuConfig' }), 'apiVersion/kind must be');
    expectError(withConfig(cfg({ NVIDIA_VISIBLE_DEVICES: 'all' })), 'reserved');
    expectError(withConfig(cfg({ 'bad-name': 'v' })), 'not a valid variable name');
    expectError(withConfig({ ...cfg(), env: { A: 1 } }), 'must be a string');
    // Just under the limit is accepted.
    const filler = 'x'.repeat(10 * 1024 - JSON.stringify(cfg({ F: '' })).length);
    expect(() => resolve(withConfig(cfg({ F: filler })))).not.toThrow();
  });
});
