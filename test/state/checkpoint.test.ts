/**
 * Checkpoint file: round trip, checksum as an independent sha256 of the canonical claims JSON, and every
 * unusable file (checksum mismatch, truncated, unknown apiVersion) moved aside and reported.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import { checksumOf, CheckpointStore, type CheckpointClaims } from '../../src/state/checkpoint.js';
import { tempDir } from '../helpers/claims.js';

const UID = '3b0c7a52-4a1f-4c77-9a55-0d6e1f2a3b4c';
const claims: CheckpointClaims = {
  [UID]: {
    namespace: 'ml',
    name: 'train',
    uid: UID,
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
    pods: [{ namespace: 'ml', name: 'p', uid: 'pod-1' }],
  },
};

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
    expect(await store().load()).toEqual({ claims: {}, fileBootId: '' });
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
    ['malformed entry with valid checksum', () => '', 'malformed entry'],
  ];
  for (const [name, mutate, reason] of corruptCases) {
    it(`moves aside and reports a ${name} file`, async () => {
      await store().save(claims);
      const original = await readFile(path, 'utf8');
      let text = mutate(original);
      if (text === '') {
        // a well-checksummed document whose entry is malformed
        const bad = { [UID]: { ...claims[UID], state: 'Bogus' } };
        text = JSON.stringify({ apiVersion: 'gpulet.dev/v1', kind: 'Checkpoint', bootId: 'b', checksum: checksumOf(bad as unknown as CheckpointClaims), claims: bad });
      }
      await writeFile(path, text);
      const loaded = await store().load();
      expect(loaded.claims).toEqual({});
      expect(loaded.error).toBeInstanceOf(CheckpointError);
      expect(loaded.error!.message).toContain(reason);
      expect(loaded.error!.message).toContain(path);
      expect(loaded.movedTo).toBe(`${path}.corrupt-1700000000000`);
      expect(await readFile(loaded.movedTo!, 'utf8')).toBe(text);
      // The original is gone, so the next load starts clean.
      expect(await store().load()).toEqual({ claims: {}, fileBootId: '' });
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
