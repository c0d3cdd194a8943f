/**
 * The reference artefacts in test/reference/ are what their README says they are: every file is listed with its
 * source and SHA-256, the bytes match the recorded digest (an edit must update the record, and say why), and the
 * copy of the Kubernetes OpenAPI document that the embedded development API server serves is byte-identical
 * to the test reference, so the server and the tests cannot drift apart.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REFERENCE_DIR, reference } from '../helpers/reference.js';
import { REPO_ROOT } from '../helpers/repo.js';

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Rows of the README's table: `file` (first column) → sha256 (last column), both in backticks. */
function recorded(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(reference('README.md'), 'utf8').split('\n')) {
    const m = /^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$/.exec(line);
    if (m !== null) rows.set(m[1]!, m[2]!);
  }
  return rows;
}

/** Every file under the reference dir but its README, root-relative to it, `/`-separated. */
function artefacts(dir = REFERENCE_DIR): string[] {
  return readdirSync(dir).flatMap((name) => {
    const abs = path.join(dir, name);
    if (statSync(abs).isDirectory()) return artefacts(abs);
    const rel = path.relative(REFERENCE_DIR, abs).split(path.sep).join('/');
    return rel === 'README.md' ? [] : [rel];
  });
}

describe('test/reference', () => {
  const rows = recorded();

  it('lists every artefact in its README, and nothing that is not there', () => {
    expect(rows.size).toBeGreaterThanOrEqual(6);
    expect([...rows.keys()].sort()).toEqual(artefacts().sort());
  });

  it('holds each artefact with the recorded SHA-256', () => {
    for (const [file, digest] of rows) expect(sha256(reference(file)), file).toBe(digest);
  });

  it("holds the same OpenAPI document, byte for byte, as the embedded API server's copy", () => {
    const served = readFileSync(path.join(REPO_ROOT, 'dev/apiserver/openapi/resource.k8s.io-v1.json'));
    const ours = readFileSync(reference('resource.k8s.io-v1.openapi-1.35.json'));
    expect(served.equals(ours)).toBe(true);
    expect(JSON.parse(ours.toString('utf8'))).toMatchObject({ openapi: '3.0.0', paths: expect.objectContaining({ '/apis/resource.k8s.io/v1/resourceslices': expect.any(Object) }) });
  });
});
