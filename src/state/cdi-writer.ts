/**
 * Writes and removes per-claim CDI spec files (I/O half of `cdi.ts`). Container runtimes read `/etc/cdi`
 * and `/var/run/cdi` (docs/contracts.md §6); gpulet writes transient specs to `/var/run/cdi` by default.
 *
 * A spec is read as a plain file (plain-file.ts: no symlink followed, no FIFO waited on, at most
 * {@link CDI_SPEC_MAX_BYTES}); anything else at a spec's path (a symlink, a FIFO, a directory, a huge file) is
 * not a spec of ours, and {@link CdiWriter.read} answers it like an unparsable one, so the caller rewrites it
 * (the atomic rename replaces it without opening it). An I/O error while reading, stat'ing or listing is
 * thrown as a `StateIoError` (nothing changed, retryable), never taken for "no spec".
 */
import { dirname, join } from 'node:path';
import { isObjectUid, type ObjectUid } from '../model/names.js';
import { CdiError, errorMessage } from '../errors.js';
import { DirSyncError, ensureDir, KnownDirs, removeFileDurable, stageFileAtomic, type StagedFile } from './atomic-file.js';
import { CDI_CLAIM_CLASS, cdiSpecFileName, cdiVendor, hostPaths, type CdiSpec } from './cdi.js';
import { lstat, open, readdir, rm } from './fs.js';
import { errnoOf, readPlainFile, StateIoError } from './plain-file.js';

/** Largest CDI spec read, bytes: a claim's spec (at most 32 devices, each with its env under the 10 KiB opaque-config limit) stays far below. */
export const CDI_SPEC_MAX_BYTES = 1024 * 1024;

/** Mode of spec files (no secrets; readable by debugging tools like the runtimes' own `cdi list`). */
const SPEC_FILE_MODE = 0o644;
const SPEC_DIR_MODE = 0o755;

/** Writes one spec file per claim into `dir`. */
export class CdiWriter {
  private readonly vendor: string;
  /** The spec dir once created or found (atomic-file.ts `KnownDirs`: no `mkdir` per write while it stays). */
  private readonly dirs = new KnownDirs();
  /** Mock mode: the stand-in files this writer created or found (see {@link createStandIns}). */
  private readonly standIns = new Set<string>();

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
   * Write the spec atomically (temp file, fsync, rename, fsync dir), creating the directory if needed (once:
   * then again only when a write finds it gone, `KnownDirs`).
   * @throws CdiError naming the directory and what to check when it cannot be created or written, or naming
   *   the file when it was written but the directory could not be synced (a `DirSyncError` cause).
   */
  async write(claimUid: string, spec: CdiSpec): Promise<string> {
    const staged = await this.stage(claimUid, spec);
    await staged.commit();
    return staged.path;
  }

  /**
   * The first half of {@link write}: the spec's temp file written and fsync'd, not yet at its path (atomic-file.ts
   * `stageFileAtomic`: no runtime sees it). `commit()` renames it into place and syncs the directory; `abort()`
   * removes it (call one of them).
   * @throws CdiError as {@link write}; the staged file's `commit()` throws CdiError as `write` does.
   */
  async stage(claimUid: string, spec: CdiSpec): Promise<StagedFile> {
    const path = this.specPath(claimUid);
    const text = `${JSON.stringify(spec, null, 2)}\n`;
    const cannotWrite = (err: unknown): CdiError => {
      if (err instanceof DirSyncError) return new CdiError(`CDI spec ${err.message}`, { cause: err });
      return new CdiError(
        `cannot write CDI spec ${path}: ${errorMessage(err)}; check that CDI dir ${this.dir} is writable by gpulet ` +
          `and on a writable filesystem (the runtime must read the same dir: /etc/cdi or /var/run/cdi)`,
        { cause: err },
      );
    };
    let staged: StagedFile;
    try {
      staged = await this.dirs.within(this.dir, () => this.ensureDirectory(), () => stageFileAtomic(path, text, SPEC_FILE_MODE));
    } catch (err) {
      if (err instanceof CdiError) throw err; // from ensureDirectory
      throw cannotWrite(err);
    }
    return {
      path,
      commit: () => staged.commit().catch((err: unknown) => Promise.reject(cannotWrite(err))),
      commitKept: () => staged.commitKept().catch((err: unknown) => Promise.reject(cannotWrite(err))),
      abort: () => staged.abort(),
    };
  }

  /**
   * True when the claim's spec is a regular file (`lstat`: a symlink or a FIFO at its path is not a spec).
   * @throws StateIoError when it cannot be stat'ed for another reason than its absence (EIO, EACCES, ...).
   */
  async exists(claimUid: string): Promise<boolean> {
    const path = this.specPath(claimUid);
    try {
      return (await lstat(path)).isFile();
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return false; // ENOTDIR: no directory, so no spec
      throw new StateIoError('CDI spec', path, 'stat', err);
    }
  }

  /**
   * Remove a claim's spec. Idempotent: a missing file is success.
   * @throws CdiError when the file exists but cannot be removed, or was removed but the directory could not
   *   be synced (a `DirSyncError` cause).
   */
  async remove(claimUid: string): Promise<void> {
    const path = this.specPath(claimUid);
    try {
      await removeFileDurable(path);
    } catch (err) {
      if (err instanceof DirSyncError) throw new CdiError(`CDI spec ${err.message}`, { cause: err });
      throw new CdiError(`cannot remove CDI spec ${path}: ${errorMessage(err)}; check permissions of ${this.dir}`, { cause: err });
    }
  }

  /**
   * Read a claim's spec file (see file doc).
   * @returns the parsed JSON; `undefined` when there is no file; `null` when something is there that is not
   *   a spec (invalid JSON, a symlink, a FIFO, a directory, larger than {@link CDI_SPEC_MAX_BYTES}): the
   *   caller rewrites it.
   * @throws StateIoError when it cannot be opened, stat'ed or read (EMFILE, EIO, EACCES, ...).
   */
  async read(claimUid: string): Promise<unknown> {
    const read = await readPlainFile(this.specPath(claimUid), CDI_SPEC_MAX_BYTES, 'CDI spec');
    if (read.kind === 'missing') return undefined;
    if (read.kind === 'unusable') return null;
    try {
      return JSON.parse(read.text) as unknown;
    } catch {
      return null;
    }
  }

  /**
   * UIDs of the claims that have a spec file of ours (`<vendor>-claim_<uid>.json`, the UID an object UID) in
   * the directory; other files (other vendors, other drivers) are never touched. A missing directory (or a
   * file in its place) lists nothing.
   * @throws StateIoError when the directory cannot be listed for another reason (EMFILE, EIO, EACCES, ...):
   *   an unreadable directory is never taken for an empty one.
   */
  async listClaimUids(): Promise<ObjectUid[]> {
    const prefix = `${this.vendor}-${CDI_CLAIM_CLASS}_`;
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return [];
      throw new StateIoError('CDI dir', this.dir, 'list', err);
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
   * one), so runtimes that check for the host path find it. Each path once per writer: a path created (or
   * found) before is not opened again (the mock's stand-ins are the same few paths for every claim; a stand-in
   * removed while gpulet runs comes back at its next start).
   * @throws CdiError naming the path.
   */
  async createStandIns(spec: CdiSpec): Promise<void> {
    for (const path of hostPaths(spec)) {
      if (this.standIns.has(path)) continue;
      try {
        await ensureDir(dirname(path), 0o755);
        const handle = await open(path, 'a', 0o644);
        await handle.close();
        this.standIns.add(path);
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
