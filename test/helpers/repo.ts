/** The repository root (absolute), for tests that read the repo's files or run its programs. */
import path from 'node:path';

/** Absolute path of the repository root: this file is `<root>/test/helpers/repo.ts`. */
export const REPO_ROOT: string = path.resolve(import.meta.dirname, '../..');
