/**
 * One checkpoint entry (src/state/checkpoint-entry.ts) as untrusted input: what each check refuses, naming the
 * field (the entry is dropped alone, the rest of the file kept), and the older shape — a checkpoint written by
 * gpulet 4ae148b (test/fixtures/checkpoint/, per-device env) — loaded, its spec rewritten at start-up with the
 * same container env, and saved in the new shape. Sizes: a claim adds at most MAX_CLAIM_ENV_BYTES of env to
 * the checkpoint and to its spec, whatever its devices and configs.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { deviceEnv, MAX_CLAIM_ENV_BYTES } from '../../src/state/claim-env.js';
import { checksumOf, decodeCheckpoint, droppedEntries, type CheckpointClaims } from '../../src/state/checkpoint.js';
import { decodeEntry } from '../../src/state/checkpoint-entry.js';
import { reconcileClaims } from '../../src/state/reconcile.js';
import { allocatableDevices } from '../../src/model/devices.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir } from '../helpers/claims.js';
import { claimRef, podRef } from '../helpers/names.js';
import { REPO_ROOT } from '../helpers/repo.js';

const FIXTURE = join(REPO_ROOT, 'test/fixtures/checkpoint/device-env-4ae148b.json');
const FIXTURE_SPEC = join(REPO_ROOT, 'test/fixtures/checkpoint/device-env-4ae148b.cdi.json');
const FIXTURE_UID = '3b0c7a52-4a1f-4c77-9a55-0d6e1f2a3b4c';
const FIXTURE_BOOT = '8c2f3a4e-0d1b-4c5a-9e8f-7a6b5c4d3e2f';

const REF = claimRef({ namespace: 'ml', name: 'train', uid: '3b0c7a52-4a1f-4c77-9a55-0d6e1f2a3b4c' });
const POD = podRef({ namespace: 'ml', name: 'p', uid: '7d2e9c41-1b3a-4f5e-8c6d-9a0b1c2d3e4f' });
const device = { requestNames: ['gpu'], poolName: 'node-a', deviceName: 'gpu-0', uuid: 'GPU-1', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${REF.uid}-gpu-0`] };
const entry = { ...REF, state: 'PrepareCompleted', devices: [device], pods: [POD], configs: [{ devices: [], env: { MODEL: 'llama' } }] };

describe('decodeEntry: an entry is untrusted input, dropped alone with the field and the reason', () => {
  it('accepts what prepare writes', () => {
    expect(decodeEntry(REF.uid, entry)).toEqual({ entry });
  });

  const cases: [string, string, unknown, RegExp][] = [
    // The key, the uid and the claim's reference (src/model/claim-ref.ts).
    ['a key that is not an object UID', 'not-a-uuid', { ...entry, uid: 'not-a-uuid' }, /^uid: must be a lower-case UUID/],
    ['an upper-case UID', REF.uid.toUpperCase(), { ...entry, uid: REF.uid.toUpperCase() }, /^uid: must be a lower-case UUID/],
    ['a uid other than its key', '11111111-2222-4333-8444-555555555555', entry, /^uid "3b0c.*" differs from its key$/],
    ['a __proto__ key', '__proto__', entry, /^uid "3b0c.*" differs from its key$/],
    ['an unknown state', REF.uid, { ...entry, state: 'Bogus' }, /^state: /],
    ['an upper-case namespace', REF.uid, { ...entry, namespace: 'ML' }, /^namespace: must be a DNS label/],
    ['a name with "/"', REF.uid, { ...entry, name: 'a/b' }, /^name: must be a DNS subdomain/],
    ['a pod uid that is not a UUID', REF.uid, { ...entry, pods: [{ ...POD, uid: 'pod-1' }] }, /^pods\.0\.uid: must be a lower-case UUID/],
    ['pods that are not a list', REF.uid, { ...entry, pods: {} }, /^pods: /],
    // Devices: names and pools as the inventory names them, bounds of what prepare writes.
    ['a device name with a path', REF.uid, { ...entry, devices: [{ ...device, deviceName: '../../x' }] }, /^devices\.0\.deviceName: must be a DNS label/],
    ['a pool name breaking the rules', REF.uid, { ...entry, devices: [{ ...device, poolName: 'Node A' }] }, /^devices\.0\.poolName: /],
    ['a device without a uuid', REF.uid, { ...entry, devices: [{ ...device, uuid: undefined }] }, /^devices\.0\.uuid: /],
    ['a device UUID longer than NVML\'s buffer', REF.uid, { ...entry, devices: [{ ...device, uuid: `GPU-${'f'.repeat(100)}` }] }, /^devices\.0\.uuid: .*96/],
    ['more devices than allocation results', REF.uid, { ...entry, devices: Array.from({ length: 33 }, () => device) }, /^devices: .*32/],
    // CDI IDs: exactly what prepare derives (they are recomputed anyway).
    ['a CDI ID of another kind', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: ['nvidia.com/gpu=all'] }] }, /^devices\.0\.cdiDeviceIds: \["nvidia\.com\/gpu=all"\] is not the CDI ID gpulet derives/],
    ['a CDI ID naming another device', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${REF.uid}-gpu-1`] }] }, /cdiDeviceIds/],
    ['a CDI ID with a path', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: ['k8s.gpu.gpulet.dev/claim=../../x'] }] }, /cdiDeviceIds/],
    ['two CDI IDs', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: [device.cdiDeviceIds[0], device.cdiDeviceIds[0]] }] }, /cdiDeviceIds/],
    // Env: the opaque-config rules again (reserved names, names, values), configs naming devices of the entry.
    ['NVIDIA_VISIBLE_DEVICES in a config', REF.uid, { ...entry, configs: [{ devices: [], env: { NVIDIA_VISIBLE_DEVICES: 'all' } }] }, /^configs\.0\.env\.NVIDIA_VISIBLE_DEVICES: env name "NVIDIA_VISIBLE_DEVICES" is reserved by gpulet$/],
    ['NVIDIA_VISIBLE_DEVICES in an older device env', REF.uid, { ...entry, configs: undefined, devices: [{ ...device, env: { NVIDIA_VISIBLE_DEVICES: 'all' } }] }, /^devices\.0\.env\.NVIDIA_VISIBLE_DEVICES: .*reserved by gpulet/],
    ['a GPULET_ name', REF.uid, { ...entry, configs: [{ devices: [], env: { GPULET_DEVICE_GPU_0: 'GPU-x' } }] }, /reserved by gpulet/],
    ['a __proto__ env name', REF.uid, { ...entry, configs: [{ devices: [], env: JSON.parse('{"__proto__": "x"}') as unknown }] }, /reserved by gpulet/],
    ['an env name that is no variable name', REF.uid, { ...entry, configs: [{ devices: [], env: { 'A B': 'x' } }] }, /not a valid variable name/],
    ['a non-string env value', REF.uid, { ...entry, configs: [{ devices: [], env: { A: 1 } }] }, /^configs\.0\.env\.A: must be a string/],
    ['a NUL in a value', REF.uid, { ...entry, configs: [{ devices: [], env: { A: 'a\0b' } }] }, /NUL/],
    ['a config setting nothing', REF.uid, { ...entry, configs: [{ devices: [], env: {} }] }, /^configs\.0\.env: must set at least one variable$/],
    ['a config naming a device the claim lacks', REF.uid, { ...entry, configs: [{ devices: ['gpu-5'], env: { A: '1' } }] }, /^configs\.0\.devices: "gpu-5" is not a device of the claim$/],
    ['configs next to an older device env', REF.uid, { ...entry, devices: [{ ...device, env: { A: '1' } }] }, /^devices\.0\.env: /],
    ['an entry that is not an object', REF.uid, 'x', /^Invalid input: expected object/],
    ['a CDI ID without the k8s. vendor prefix', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: [`gpu.gpulet.dev/claim=${REF.uid}-gpu-0`] }] }, /cdiDeviceIds/],
    ['a CDI ID whose driver is no driver name', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: [`k8s.Bad_Driver!/claim=${REF.uid}-gpu-0`] }] }, /cdiDeviceIds/],
    ['a long CDI ID, quoted cut to 80 characters', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: ['x'.repeat(100)] }] }, new RegExp(`^devices\\.0\\.cdiDeviceIds: \\["${'x'.repeat(78)}… \\(104 characters\\) is not`)],
    ['a CDI ID of 80 characters quoted whole', REF.uid, { ...entry, devices: [{ ...device, cdiDeviceIds: ['y'.repeat(76)] }] }, new RegExp(`^devices\\.0\\.cdiDeviceIds: \\["${'y'.repeat(76)}"\\] is not`)],
    ['a config for two of three devices written twice over the cap', REF.uid, {
      ...entry,
      devices: ['gpu-0', 'gpu-1', 'gpu-2'].map((n) => ({ ...device, deviceName: n, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${REF.uid}-${n}`] })),
      configs: [{ devices: ['gpu-0', 'gpu-1'], env: { A: 'x'.repeat(40_000) } }],
    }, /as written into the CDI spec: 8\d{4}\), more than the 65536-byte limit/],
    ['env over the cap', REF.uid, { ...entry, configs: [{ devices: [], env: { A: 'x'.repeat(MAX_CLAIM_ENV_BYTES) } }] }, /^opaque config env is 65538 bytes .*65536-byte limit per claim/],
    ['an older device env over the cap', REF.uid, { ...entry, configs: undefined, devices: [{ ...device, env: { A: 'x'.repeat(MAX_CLAIM_ENV_BYTES) } }] }, /65536-byte limit/],
  ];
  for (const [name, key, raw, reason] of cases) {
    it(`drops ${name}`, () => {
      const decoded = decodeEntry(key, JSON.parse(JSON.stringify(raw, (_k, v: unknown) => (v === undefined ? undefined : v))) as unknown);
      expect('problem' in decoded ? decoded.problem : 'kept').toMatch(reason);
    });
  }

  it('keeps a config naming some devices of the claim, and a CDI ID of a 63-character driver name', () => {
    const two = {
      ...entry,
      devices: ['gpu-0', 'gpu-1'].map((n) => ({ ...device, deviceName: n, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${REF.uid}-${n}`] })),
      configs: [{ devices: ['gpu-1'], env: { A: '1' } }],
    };
    expect(decodeEntry(REF.uid, two)).toEqual({ entry: two });
    const driver63 = `${'d'.repeat(59)}.dev`;
    expect(driver63).toHaveLength(63);
    const long = { ...entry, devices: [{ ...device, cdiDeviceIds: [`k8s.${driver63}/claim=${REF.uid}-gpu-0`] }] };
    expect(decodeEntry(REF.uid, long)).toEqual({ entry: long });
  });

  it('drops the bad entries of a file and keeps the good ones (not the whole file)', () => {
    const raw = JSON.parse(`{"__proto__": ${JSON.stringify(entry)}, "not-a-uuid": ${JSON.stringify({ ...entry, uid: 'not-a-uuid' })}, "${REF.uid}": ${JSON.stringify(entry)}}`) as Record<string, unknown>;
    const text = JSON.stringify({ apiVersion: 'gpulet.dev/v1', kind: 'Checkpoint', bootId: 'b', checksum: checksumOf(raw as CheckpointClaims), claims: raw });
    const decoded = decodeCheckpoint(text);
    expect(Object.keys(decoded.claims)).toEqual([REF.uid]);
    expect(droppedEntries(decoded.claims).map((d) => d.key)).toEqual(['__proto__', 'not-a-uuid']);
    expect(Object.getPrototypeOf(decoded.claims)).toBe(Object.prototype);
  });
});

describe('the older shape (gpulet 4ae148b: per-device env) and the size bounds', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterEach(() => cleanup());
  const state = (source = new MemoryClaimSource(), bootId = FIXTURE_BOOT) =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: join(dir, 'state', 'checkpoint.json'), logger: silentLogger(), readBootId: () => Promise.resolve(bootId),
    });

  it('decodes the older file: one config per distinct env, each device keeping its env', async () => {
    const text = await readFile(FIXTURE, 'utf8');
    const old = (JSON.parse(text) as { claims: Record<string, { devices: { deviceName: string; env: Record<string, string> }[] }> }).claims[FIXTURE_UID]!;
    const decoded = decodeCheckpoint(text);
    expect(droppedEntries(decoded.claims)).toEqual([]);
    const claim = decoded.claims[FIXTURE_UID]!;
    expect(claim.configs).toEqual([
      { devices: ['gpu-0'], env: { MODEL: 'llama', STAGE: 'class' } },
      { devices: ['gpu-7-mig-1g10gb-19-2', 'gpu-1'], env: { MODEL: 'llama', STAGE: 'claim', ROLE: 'worker' } },
    ]);
    expect(claim.devices.every((d) => !('env' in d))).toBe(true);
    for (const d of old.devices) expect(deviceEnv(claim.configs, d.deviceName)).toEqual(d.env);
  });

  it('upgrades at start-up: the spec is rewritten with the same container env, the next save is the new shape', async () => {
    await mkdir(join(dir, 'state'), { recursive: true });
    await mkdir(join(dir, 'cdi'));
    await writeFile(join(dir, 'state', 'checkpoint.json'), await readFile(FIXTURE, 'utf8'));
    const specPath = join(dir, 'cdi', `k8s.${DRIVER}-claim_${FIXTURE_UID}.json`);
    await writeFile(specPath, await readFile(FIXTURE_SPEC, 'utf8'));
    const source = new MemoryClaimSource();
    const m = state(source);
    const loaded = await m.store.init();
    const report = await reconcileClaims({ store: m.store, recovery: m.recovery, source, loaded, logger: silentLogger() });
    expect(report).toMatchObject({ rolledBack: [], dropped: [], restored: [FIXTURE_UID], errors: [] });
    type Spec = { containerEdits: { env: string[] }; devices: { containerEdits: { env: string[] } }[] };
    const spec = JSON.parse(await readFile(specPath, 'utf8')) as Spec;
    const before = JSON.parse(await readFile(FIXTURE_SPEC, 'utf8')) as Spec;
    expect(spec.containerEdits.env).toEqual(['NVIDIA_VISIBLE_DEVICES=void', 'MODEL=llama']);
    // Each device alone gets what it had: the spec-level env, then its own (CDI's order).
    for (const [i, d] of spec.devices.entries()) {
      expect(new Set([...spec.containerEdits.env, ...d.containerEdits.env])).toEqual(new Set([...before.containerEdits.env, ...before.devices[i]!.containerEdits.env]));
    }
    // A prepare saves the checkpoint: the older claim is written in the new shape (configs, no device env).
    const ref = newRef('next');
    source.put(allocatedClaim(ref, [{ device: 'gpu-3' }]));
    expect((await m.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
    const saved = JSON.parse(await readFile(join(dir, 'state', 'checkpoint.json'), 'utf8')) as { claims: Record<string, { configs?: unknown[]; devices: object[] }> };
    expect(saved.claims[FIXTURE_UID]?.configs).toHaveLength(2);
    expect(saved.claims[FIXTURE_UID]?.devices.some((d) => 'env' in d)).toBe(false);
  });

  it('bounds a fat claim by the cap: checkpoint and spec bytes grow by at most the cap per claim', async () => {
    const source = new MemoryClaimSource();
    const m = state(source);
    await m.store.init();
    // The probe's fat claim brought to the cap: 16 devices, six configs of ~10 KiB for every device, and a
    // small one for each half of the devices.
    const results = allocatableDevices(inventory).slice(0, 16).map((d, i) => ({ request: `r${i % 2}`, device: d.name }));
    expect(results).toHaveLength(16);
    const config = (env: Record<string, string>, requests?: string[]) =>
      ({ opaque: { driver: DRIVER, parameters: { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig', env } }, ...(requests ? { requests } : {}) });
    const configs = [
      ...Array.from({ length: 6 }, (_, i) => config({ [`ALL_${i}`]: 'x'.repeat(10 * 1024 - 100) })),
      config({ ROLE: 'even' }, ['r0']),
      config({ ROLE: 'odd' }, ['r1']),
    ];
    const thin = newRef('thin');
    source.put(allocatedClaim(thin, [{ device: results[0]!.device }]));
    await m.preparer.prepare([thin]);
    const thinBytes = (await readFile(join(dir, 'state', 'checkpoint.json'))).length;
    const refs = Array.from({ length: 10 }, (_, i) => newRef(`fat-${i}`));
    for (const ref of refs) source.put(allocatedClaim(ref, results, { config: configs }));
    const out = await m.preparer.prepare(refs);
    for (const ref of refs) expect(out.get(ref.uid)?.error).toBeUndefined();
    const checkpointBytes = (await readFile(join(dir, 'state', 'checkpoint.json'))).length;
    // The env of each fat claim is stored once: ~61 KiB per claim (it was 16 × 61 KiB); the devices' records add little.
    expect(checkpointBytes - thinBytes).toBeLessThanOrEqual(refs.length * (MAX_CLAIM_ENV_BYTES + 16 * 1024));
    const specBytes = (await readFile(join(dir, 'cdi', `k8s.${DRIVER}-claim_${refs[0]!.uid}.json`))).length;
    const thinSpecBytes = (await readFile(join(dir, 'cdi', `k8s.${DRIVER}-claim_${thin.uid}.json`))).length;
    expect(specBytes).toBeLessThanOrEqual(MAX_CLAIM_ENV_BYTES + 16 * thinSpecBytes);
  });
});
