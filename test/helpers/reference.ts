/**
 * Where the independent reference data lives: `test/reference/` in this repository (upstream artefacts copied in,
 * each with its source and version in `test/reference/README.md`). There is no fallback: a missing file throws,
 * so a test fails — never skips, never passes — without its reference.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './repo.js';

/** Absolute path of the reference dir, `<repo>/test/reference`. */
export const REFERENCE_DIR: string = path.join(REPO_ROOT, 'test', 'reference');

/**
 * Absolute path of a file (or directory) under the reference dir.
 * @throws Error naming the path when it does not exist, so a test without its reference fails at once.
 */
export function reference(...parts: string[]): string {
  const p = path.join(REFERENCE_DIR, ...parts);
  if (!existsSync(p)) throw new Error(`reference file missing: ${path.relative(REPO_ROOT, p)} (see test/reference/README.md)`);
  return p;
}
