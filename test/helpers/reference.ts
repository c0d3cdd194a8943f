/**
 * Where the independent reference data lives: `shared/reference/` beside the repository (as CI lays it out:
 * `../shared`), else `/work/shared/reference` (a developer's checkout). Throws when neither exists, so a test
 * never passes without its reference.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

const candidates = [
  path.resolve(import.meta.dirname, '../../shared/reference'),
  '/work/shared/reference',
];

/** Absolute path of the reference dir. */
export const REFERENCE_DIR: string = (() => {
  const found = candidates.find((d) => existsSync(path.join(d, 'metrics.md')));
  if (!found) throw new Error(`shared/reference not found (looked in ${candidates.join(', ')})`);
  return found;
})();

/** Absolute path of a file under the reference dir. */
export function reference(...parts: string[]): string {
  return path.join(REFERENCE_DIR, ...parts);
}
