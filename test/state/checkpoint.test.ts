/**
 * Checkpoint file (checkpoint-file.ts): round trip, checksum as an independent sha256 of the canonical claims
 * JSON, and every unusable file (checksum mismatch, truncated, unknown apiVersion) moved aside and reported.
 * The document's schemas (checkpoint.ts `decodeCheckpoint`): the order of the checks, what each rejects, and
 * the message naming the claim and the field.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { checksumOf, decodeCheckpoint, encodeCheckpoint, type CheckpointClaims } from '../../src/state/checkpoint.js';
import { CheckpointStore } from '../../src/state/checkpoint-file.js';
import { tempDir } from '../helpers/claims.js';
import { claimRef, podRef } from '../helpers/names.js';

const REF = claimRef({ namespace: 'ml', name: 'train', uid: '3b0c7a52-4a1f-4c77-9a55-0d6e1f2a3b4c' });
const UID = REF.uid;
const POD = podRef({ namespace: 'ml', name: 'p', uid: '7d2e9c41-1b3a-4f5e-8c6d-9a0b1c2d3e4f' });
const claims: CheckpointClaims = {
  [UID]: {
    ...REF,
    state: 'PrepareCompleted',
    devices: [
      {
        requestNames: ['gpu'],
        poolName: 'node-a',
        deviceName: 'gpu-0',
        uuid: 'GPU-1',
        cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${UID}-gpu-0`],
        shareId: 'abc',
      },
    ],
    pods: [POD],
  },
};

/** A document with a correct checksum over `entries` (whatever they are). */
const docOf = (entries: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ apiVersion: 'gpulet.dev/v1', kind: 'Checkpoint', bootId: 'b', checksum: checksumOf(entries as CheckpointClaims), claims: entries, ...extra });

describe('CheckpointStore', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let path: string;
  const store = () => new CheckpointStore({ path, readBootId: () => Promise.resolve('boot-1'), now: () => 1700000000000 });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    path = join(dir, 'sub', 'checkpoint.json');
  });
  afterEach(() => cleanup());

  it('starts empty when the file is missing', async () => {
    expect(await store().load()).toEqual({ claims: {}, fileBootId: '', missing: true });
  });

  it('round-trips claims with boot ID, 0600 file in a 0700 dir, and a sha256 checksum', async () => {
    await store().save(claims);
    const loaded = await store().load();
    expect(loaded.claims).toEqual(claims);
    expect(loaded.fileBootId).toBe('boot-1');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(doc).toMatchObject({ apiVersion: 'gpulet.dev/v1', kind: 'Checkpoint', bootId: 'boot-1' });
    // Independent canonical form: keys sorted recursively, no whitespace.
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)])) : v;
    expect(doc.checksum).toBe(createHash('sha256').update(JSON.stringify(sortKeys(claims))).digest('hex'));
    // No temp files left behind.
    expect(await readdir(join(dir, 'sub'))).toEqual(['checkpoint.json']);
  });

  const corruptCases: [string, (text: string) => string, string][] = [
    ['checksum mismatch', (t) => t.replace('"gpu-0"', '"gpu-1"'), 'checksum mismatch'],
    ['truncated', (t) => t.slice(0, Math.floor(t.length / 2)), 'not valid JSON'],
    ['unknown apiVersion', (t) => t.replace('gpulet.dev/v1', 'gpulet.dev/v9'), 'unknown apiVersion'],
    // well-checksummed documents whose entry is malformed
    ['malformed entry with valid checksum', () => docOf({ [UID]: { ...claims[UID], state: 'Bogus' } }), 'malformed entry'],
    ['pod reference breaking the rules with valid checksum', () => docOf({ [UID]: { ...claims[UID], pods: [{ ...POD, uid: 'pod-1' }] } }), 'pods.0.uid: must be a lower-case UUID'],
  ];
  for (const [name, mutate, reason] of corruptCases) {
    it(`moves aside and reports a ${name} file`, async () => {
      await store().save(claims);
      const text = mutate(await readFile(path, 'utf8'));
      await writeFile(path, text);
      const loaded = await store().load();
      expect(loaded.claims).toEqual({});
      expect(loaded.error).toBeInstanceOf(CheckpointError);
      expect(loaded.error!.message).toContain(reason);
      expect(loaded.error!.message).toContain(path);
      expect(loaded.movedTo).toBe(`${path}.corrupt-1700000000000`);
      expect(await readFile(loaded.movedTo!, 'utf8')).toBe(text);
      // The original is gone, so the next load starts clean.
      expect(await store().load()).toEqual({ claims: {}, fileBootId: '', missing: true });
    });
  }

  it('reports a directory it cannot write as a CheckpointError naming the file', async () => {
    const blocker = join(dir, 'file');
    await writeFile(blocker, 'x');
    const s = new CheckpointStore({ path: join(blocker, 'checkpoint.json'), readBootId: () => Promise.resolve('b') });
    await expect(s.save(claims)).rejects.toThrow(CheckpointError);
    await expect(s.save(claims)).rejects.toThrow(/checkpoint .*checkpoint\.json: cannot write/);
  });
});

describe('decodeCheckpoint: entries are checked once the checksum matched, naming the claim and the field', () => {
  const doc = docOf;
  const entry = claims[UID]!;
  const device = entry.devices[0]!;
  const OTHER = '11111111-2222-4333-8444-555555555555';

  it('accepts what encodeCheckpoint writes, env included', () => {
    const env = JSON.parse('{"A": "x", "__proto__": "y"}') as Record<string, string>; // an own __proto__ key, as JSON.parse makes it
    const withEnv: CheckpointClaims = { [UID]: { ...entry, devices: [{ ...device, env }] } };
    const decoded = decodeCheckpoint(encodeCheckpoint(withEnv, 'b'));
    expect(decoded).toEqual({ bootId: 'b', claims: withEnv });
    const decodedEnv = decoded.claims[UID]!.devices[0]!.env!;
    expect(Object.keys(decodedEnv)).toEqual(['A', '__proto__']);
    expect(Object.getPrototypeOf(decodedEnv)).toBe(Object.prototype);
  });

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['a key that is not an object UID', { 'not-a-uuid': { ...entry, uid: 'not-a-uuid' } }, /^malformed entry for claim "not-a-uuid": uid: must be a lower-case UUID/],
    ['an upper-case UID', { [UID.toUpperCase()]: { ...entry, uid: UID.toUpperCase() } }, /^malformed entry for claim ".*": uid: must be a lower-case UUID/],
    ['a uid other than its key', { [OTHER]: entry }, new RegExp(`^malformed entry for claim "${OTHER}": uid "${UID}" differs from its key$`)],
    ['a __proto__ key', JSON.parse(`{"__proto__": ${JSON.stringify(entry)}}`) as Record<string, unknown>, /^malformed entry for claim "__proto__": uid "3b0c.*" differs from its key$/],
    ['an unknown state', { [UID]: { ...entry, state: 'Bogus' } }, /^malformed entry for claim "3b0c.*": state: /],
    ['a device without a uuid', { [UID]: { ...entry, devices: [{ ...device, uuid: undefined }] } }, /: devices\.0\.uuid: /],
    ['a non-string env value', { [UID]: { ...entry, devices: [{ ...device, env: { A: 1 } }] } }, /: devices\.0\.env\.A: /],
    ['more devices than allocation results', { [UID]: { ...entry, devices: Array.from({ length: 33 }, () => device) } }, /: devices: .*32/],
    ['a device UUID longer than NVML\'s buffer', { [UID]: { ...entry, devices: [{ ...device, uuid: `GPU-${'f'.repeat(100)}` }] } }, /: devices\.0\.uuid: .*96/],
    ['pods that are not a list', { [UID]: { ...entry, pods: {} } }, /: pods: /],
    // The claim's reference and its pods follow the rules they passed where they entered (src/model/claim-ref.ts).
    ['an upper-case namespace', { [UID]: { ...entry, namespace: 'ML' } }, /^malformed entry for claim "3b0c.*": namespace: must be a DNS label/],
    ['an empty name', { [UID]: { ...entry, name: '' } }, /: name: must not be empty/],
    ['a name with "/"', { [UID]: { ...entry, name: 'a/b' } }, /: name: must be a DNS subdomain/],
    ['a pod uid that is not a UUID', { [UID]: { ...entry, pods: [{ ...POD, uid: 'pod-1' }] } }, /: pods\.0\.uid: must be a lower-case UUID/],
    ['a pod name that is not a DNS subdomain', { [UID]: { ...entry, pods: [{ ...POD, name: 'P_1' }] } }, /: pods\.0\.name: must be a DNS subdomain/],
    ['a pod without a namespace', { [UID]: { ...entry, pods: [{ name: POD.name, uid: POD.uid }] } }, /: pods\.0\.namespace: /],
  ];
  for (const [name, entries, message] of cases) {
    it(`rejects ${name}`, () => {
      expect(() => decodeCheckpoint(doc(entries))).toThrow(message);
    });
  }

  it('checks the envelope first: object, apiVersion/kind, claims, then the checksum', () => {
    expect(() => decodeCheckpoint('[]')).toThrow(/^not a JSON object$/);
    expect(() => decodeCheckpoint(doc({}, { kind: 'Other' }))).toThrow('unknown apiVersion/kind "gpulet.dev/v1"/"Other", expected gpulet.dev/v1/Checkpoint');
    expect(() => decodeCheckpoint(doc({}, { claims: [] }))).toThrow(/^claims is not an object$/);
    expect(() => decodeCheckpoint(doc({ [UID]: { ...entry, state: 'Bogus' } }, { checksum: 7 }))).toThrow(/^checksum mismatch/);
  });

  it('reads a boot ID that is not a string of at most 256 characters as none', () => {
    for (const bootId of [undefined, 7, null, 'x'.repeat(257)]) expect(decodeCheckpoint(doc(claims, { bootId })).bootId).toBe('');
    expect(decodeCheckpoint(doc(claims, { bootId: 'x'.repeat(256) })).bootId).toHaveLength(256);
  });

  it('keeps only the fields of an entry', () => {
    const extra = { [UID]: { ...entry, note: 'hand-edited', devices: [{ ...device, colour: 'blue' }] } };
    expect(decodeCheckpoint(doc(extra)).claims).toEqual(claims);
  });
});
