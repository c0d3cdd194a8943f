/**
 * gpulet's version, from the one place it is written: `version` in the package's package.json. Read once, when
 * this module is first imported, from the nearest package.json above this file that is gpulet's: the repository
 * root when run from source (`src/version.ts` under tsx), and the same root when compiled (`dist/src/version.js`)
 * or bundled (a chunk of `dist/agent/`, what the image runs; the image keeps package.json at /app next to
 * dist/). The native addon is built with the same version (binding.gyp reads package.json).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package name whose package.json holds the version. */
const PACKAGE_NAME = 'gpulet';

/**
 * `version` of the first package.json named {@link PACKAGE_NAME} in `startDir` or above it.
 * @throws Error naming `startDir` when there is none, or when that package.json has no version string (a
 *   broken install: every layout gpulet runs from has package.json at its root)
 */
export function readPackageVersion(startDir: string): string {
  for (let dir = path.resolve(startDir); ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (typeof pkg === 'object' && pkg !== null && (pkg as { name?: unknown }).name === PACKAGE_NAME) {
        const version = (pkg as { version?: unknown }).version;
        if (typeof version !== 'string' || version === '') throw new Error(`${file} has no "version"`);
        return version;
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`no package.json of ${PACKAGE_NAME} in ${startDir} or above it`);
}

/** gpulet's version (package.json's `version`, e.g. `0.1.0`). */
export const PACKAGE_VERSION: string = readPackageVersion(path.dirname(fileURLToPath(import.meta.url)));
