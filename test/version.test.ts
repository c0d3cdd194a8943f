/**
 * src/version.ts: gpulet's version is package.json's, found upward from the module in both layouts it runs
 * from — the source tree (`<root>/src/version.ts` under tsx) and the compiled one (`<root>/dist/src/version.js`,
 * the image's /app with package.json next to dist/) — skipping other packages' package.json on the way.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PACKAGE_VERSION, readPackageVersion } from '../src/version.js';
import { REPO_ROOT } from './helpers/repo.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A temp dir with `files` (relative path → JSON content) written. */
async function tree(files: Record<string, unknown>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'gpulet-version-'));
  dirs.push(root);
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), JSON.stringify(content));
  }
  return root;
}

describe('package version', () => {
  it("is the repository's package.json version when run from source", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(PACKAGE_VERSION).toBe(pkg.version);
  });

  it('is found from the compiled layout (dist/src next to package.json, as in the image), past foreign package.json files', async () => {
    const root = await tree({
      'package.json': { name: 'gpulet', version: '7.8.9' },
      'dist/package.json': { type: 'module' }, // e.g. a marker file without our name
      'dist/src/.keep': {},
    });
    expect(readPackageVersion(path.join(root, 'dist', 'src'))).toBe('7.8.9');
  });

  it('throws naming the directory when no package.json of gpulet is above it, or when it has no version', async () => {
    const none = await tree({ 'package.json': { name: 'other', version: '1.0.0' }, 'a/.keep': {} });
    expect(() => readPackageVersion(path.join(none, 'a'))).toThrow(/no package\.json of gpulet in .*\/a or above it/);
    const versionless = await tree({ 'package.json': { name: 'gpulet' }, 'a/.keep': {} });
    expect(() => readPackageVersion(path.join(versionless, 'a'))).toThrow(/package\.json has no "version"/);
  });
});
