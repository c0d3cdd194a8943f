/**
 * Checkpoint file (checkpoint-file.ts): round trip, checksum as an independent sha256 of the canonical claims
 * JSON, and every unusable file (checksum mismatch, truncated, unknown apiVersion) moved aside and reported.
 * The document (checkpoint.ts `decodeCheckpoint`): the order of the envelope's checks, and a bad entry of a
 * well-checksummed file dropped alone (what each entry check refuses: checkpoint-entry.test.ts).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { checksumOf, decodeCheckpoint, droppedEntries, encodeCheckpoint, type CheckpointClaims } from '../../src/state/checkpoint.js';
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
    configs: [{ devices: [], env: { MODEL: 'llama' } }],
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

  it('keeps a well-checksummed file with a bad entry: the entry alone is dropped, and reported', async () => {
    const bad = { ...claims[UID], uid: '11111111-2222-4333-8444-555555555555', state: 'Bogus' };
    await mkdir(join(dir, 'sub'));
    await writeFile(path, docOf({ ...claims, [bad.uid]: bad }));
    const loaded = await store().load();
    expect(loaded.error).toBeUndefined();
    expect(loaded.claims).toEqual(claims);
    expect(droppedEntries(loaded.claims)).toEqual([{ key: bad.uid, reason: expect.stringMatching(/^state: /) as unknown }]);
    expect(await readdir(join(dir, 'sub'))).toEqual(['checkpoint.json']); // not moved aside
  });

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

  it('accepts what encodeCheckpoint writes, configs included, env as own properties of plain objects', () => {
    const env = JSON.parse('{"A": "x", "constructor": "y"}') as Record<string, string>;
    const withEnv: CheckpointClaims = { [UID]: { ...entry, configs: [{ devices: ['gpu-0'], env }] } };
    const decoded = decodeCheckpoint(encodeCheckpoint(withEnv, 'b'));
    expect(decoded).toEqual({ bootId: 'b', claims: withEnv });
    expect(droppedEntries(decoded.claims)).toEqual([]);
    const decodedEnv = decoded.claims[UID]!.configs[0]!.env;
    expect(Object.keys(decodedEnv)).toEqual(['A', 'constructor']);
    expect(Object.getPrototypeOf(decodedEnv)).toBe(Object.prototype);
  });

  it('encodes byte for byte JSON.stringify(document, null, 2), whatever entries it serialised before', () => {
    const plain = (c: CheckpointClaims, bootId: string) =>
      `${JSON.stringify({ apiVersion: 'gpulet.dev/v1', kind: 'Checkpoint', bootId, checksum: checksumOf(c), claims: c }, null, 2)}\n`;
    const other = { ...entry, uid: OTHER, name: 'ö"\n', devices: [{ ...device, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${OTHER}-gpu-0`] }] } as unknown as typeof entry; // encode checks nothing
    for (const c of [{}, claims, { ...claims, [OTHER]: other }, { [OTHER]: other }, claims] as CheckpointClaims[]) {
      expect(encodeCheckpoint(c, 'b"1')).toBe(plain(c, 'b"1'));
    }
    // Its own text read back is the same claims (no second parse); any other text is parsed.
    const text = encodeCheckpoint(claims, 'b');
    expect(decodeCheckpoint(text).claims).toBe(claims);
    expect(decodeCheckpoint(text.replace('"b"', '"c"')).claims).toEqual(claims);
  });

  it('checksums many claims listed in any order as sha256 of the claims with keys sorted', () => {
    // Independent canonical form (as in the round-trip test above): keys sorted recursively, no whitespace.
    const sortKeys = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(sortKeys) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)])) : v;
    const uids = Array.from({ length: 200 }, (_, i) => `${((i * 7919) % 200).toString(16).padStart(8, '0')}-2222-4333-8444-555555555555`);
    const many: CheckpointClaims = Object.fromEntries(
      uids.map((uid) => [uid, { ...entry, uid: uid as typeof entry.uid, devices: [{ ...device, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${uid}-gpu-0`] }] }]),
    );
    const text = encodeCheckpoint(many, 'b');
    const doc = JSON.parse(text) as { checksum: string };
    expect(doc.checksum).toBe(createHash('sha256').update(JSON.stringify(sortKeys(many))).digest('hex'));
    encodeCheckpoint({}, 'other'); // so that the next decode parses the text
    expect(Object.keys(decodeCheckpoint(text).claims)).toHaveLength(200);
  });

  it('answers a text it decoded last with the same claims object, without parsing it again', () => {
    const text = doc(claims);
    const first = decodeCheckpoint(text);
    expect(decodeCheckpoint(text).claims).toBe(first.claims);
  });

  it('keeps the JSON parser\'s error as the cause of "not valid JSON"', () => {
    let caught: unknown;
    try {
      decodeCheckpoint('{"apiVersion": ');
    } catch (err) {
      caught = err;
    }
    expect((caught as Error).message).toMatch(/^not valid JSON \(truncated\?\): /);
    expect((caught as Error).cause).toBeInstanceOf(SyntaxError);
  });

  it('drops each bad entry alone, naming it and the field, and keeps the rest', () => {
    const good = { ...entry, uid: OTHER, devices: [{ ...device, cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${OTHER}-gpu-0`] }] };
    const decoded = decodeCheckpoint(doc({ [UID]: { ...entry, state: 'Bogus' }, [OTHER]: good }));
    expect(Object.keys(decoded.claims)).toEqual([OTHER]);
    expect(droppedEntries(decoded.claims)).toEqual([{ key: UID, reason: expect.stringMatching(/^state: /) as unknown }]);
  });

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
