/**
 * Writes and removes per-claim CDI spec files (I/O half of `cdi.ts`). Container runtimes read `/etc/cdi`
 * and `/var/run/cdi` (docs/contracts.md §6); gpulet writes transient specs to `/var/run/cdi` by default.
 */
import { access, constants, open, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isObjectUid, type ObjectUid } from '../model/names.js';
import { CdiError, errorMessage } from '../errors.js';
import { ensureDir, removeFileDurable, writeFileAtomic } from './atomic-file.js';
import { CDI_CLAIM_CLASS, cdiSpecFileName, cdiVendor, hostPaths, type CdiSpec } from './cdi.js';

/** Mode of spec files (no secrets; readable by debugging tools like the runtimes' own `cdi list`). */
const SPEC_FILE_MODE = 0o644;
const SPEC_DIR_MODE = 0o755;

/** Writes one spec file per claim into `dir`. */
export class CdiWriter {
  private readonly vendor: string;

  /**
   * @param dir CDI spec directory, e.g. `/var/run/cdi`.
   * @param driverName our driver name (vendor `k8s.<driverName>`).
   */
  constructor(
    readonly dir: string,
    driverName: string,
  ) {
    this.vendor = cdiVendor(driverName);
  }

  /** Absolute path of a claim's spec. @throws CdiError for a UID that is not a UUID. */
  specPath(claimUid: string): string {
    return join(this.dir, cdiSpecFileName(this.vendor, CDI_CLAIM_CLASS, claimUid));
  }

  /**
   * Write the spec atomically (temp file, fsync, rename, fsync dir), creating the directory if needed.
   * @throws CdiError naming the directory and what to check when it cannot be created or written.
   */
  async write(claimUid: string, spec: CdiSpec): Promise<string> {
    const path = this.specPath(claimUid);
    await this.ensureDirectory();
    try {
      await writeFileAtomic(path, `${JSON.stringify(spec, null, 2)}\n`, SPEC_FILE_MODE);
    } catch (err) {
      throw new CdiError(
        `cannot write CDI spec ${path}: ${errorMessage(err)}; check that CDI dir ${this.dir} is writable by gpulet ` +
          `and on a writable filesystem (the runtime must read the same dir: /etc/cdi or /var/run/cdi)`,
        { cause: err },
      );
    }
    return path;
  }

  /** True when the claim's spec file exists. */
  async exists(claimUid: string): Promise<boolean> {
    try {
      await access(this.specPath(claimUid), constants.F_OK);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Remove a claim's spec. Idempotent: a missing file is success.
   * @throws CdiError when the file exists but cannot be removed.
   */
  async remove(claimUid: string): Promise<void> {
    const path = this.specPath(claimUid);
    try {
      await removeFileDurable(path);
    } catch (err) {
      throw new CdiError(`cannot remove CDI spec ${path}: ${errorMessage(err)}; check permissions of ${this.dir}`, { cause: err });
    }
  }

  /**
   * Read a claim's spec file.
   * @returns the parsed JSON; `undefined` when there is no file; `null` when it exists but is not valid JSON
   *   (a torn or foreign file: the caller rewrites it).
   */
  async read(claimUid: string): Promise<unknown> {
    let text: string;
    try {
      text = await readFile(this.specPath(claimUid), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return null;
    }
  }

  /**
   * UIDs of the claims that have a spec file of ours (`<vendor>-claim_<uid>.json`, the UID an object UID) in
   * the directory; other files (other vendors, other drivers) are never touched. A missing directory lists nothing.
   */
  async listClaimUids(): Promise<ObjectUid[]> {
    const prefix = `${this.vendor}-${CDI_CLAIM_CLASS}_`;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      if (!n.startsWith(prefix) || !n.endsWith('.json')) return [];
      const uid = n.slice(prefix.length, -'.json'.length);
      return isObjectUid(uid) ? [uid] : [];
    });
  }

  /**
   * Remove temp files of our spec writes that a crash left behind (`.<vendor>-claim_<uid>.json.tmp-*`).
   * @returns how many were removed. Never throws (a file that cannot be removed is skipped).
   */
  async removeTempFiles(): Promise<number> {
    const prefix = `.${this.vendor}-${CDI_CLAIM_CLASS}_`;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const n of names.filter((x) => x.startsWith(prefix) && x.includes('.json.tmp-'))) {
      removed += await rm(join(this.dir, n), { force: true }).then(() => 1, () => 0);
    }
    return removed;
  }

  /**
   * Mock mode: create each host path of the spec as an empty regular file (never truncating an existing
   * one), so runtimes that check for the host path find it.
   * @throws CdiError naming the path.
   */
  async createStandIns(spec: CdiSpec): Promise<void> {
    for (const path of hostPaths(spec)) {
      try {
        await ensureDir(dirname(path), 0o755);
        const handle = await open(path, 'a', 0o644);
        await handle.close();
      } catch (err) {
        throw new CdiError(`cannot create mock device stand-in ${path}: ${errorMessage(err)}; check the dev root dir`, { cause: err });
      }
    }
  }

  private async ensureDirectory(): Promise<void> {
    try {
      await ensureDir(this.dir, SPEC_DIR_MODE);
    } catch (err) {
      throw new CdiError(
        `cannot create CDI spec dir ${this.dir}: ${errorMessage(err)}; check that the path is a directory ` +
          `(no regular file in the way), writable by gpulet, and mounted from the host`,
        { cause: err },
      );
    }
  }
}
