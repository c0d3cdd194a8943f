import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendError } from '../../../src/errors.js';
import { addonPath, loadAddon, loadAddonFrom } from '../../../src/gpu/nvml/addon.js';
import { VERSION } from '../../../src/main.js';
import { REPO_ROOT } from '../../helpers/repo.js';

const DEBIAN_NVML = '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1';

describe('native addon gpulet_nvml', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('is built by npm install and loads (N-API, on the running Node)', () => {
    expect(existsSync(addonPath())).toBe(true);
    const addon = loadAddon();
    expect(addon.addonVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(loadAddon()).toBe(addon);
  });

  it("reports package.json's version, as the agent does (one version: binding.gyp compiles it in)", () => {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    // A stale build (compiled before the version moved) fails here: `npm rebuild` rebuilds it.
    expect(loadAddon().addonVersion).toBe(pkg.version);
    expect(VERSION).toBe(pkg.version); // service.version of the telemetry
  });

  it('links no NVIDIA library: its ELF NEEDED entries name none (NVML is dlopen()ed at run time)', (ctx) => {
    let dynamic: string;
    try {
      dynamic = execFileSync('readelf', ['-d', addonPath()], { encoding: 'utf8' });
    } catch {
      console.warn('SKIP: readelf (binutils) is not installed');
      ctx.skip();
      return;
    }
    const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed.length).toBeGreaterThan(0);
    expect(needed.filter((n) => /nvidia|cuda/i.test(n ?? ''))).toEqual([]);
  });

  it('probeLibrary on a missing path: loaded false with the dlerror() text', () => {
    const missing = path.join(os.tmpdir(), `gpulet-no-such-lib-${process.pid}.so`);
    const r = loadAddon().probeLibrary(missing);
    expect(r.loaded).toBe(false);
    expect(r.path).toBe(missing);
    // glibc's dlerror() for a missing file names the file and says why.
    expect(r.error).toContain(missing);
    expect(r.error).toMatch(/cannot open shared object file: No such file or directory/);
    expect(r.nvmlInitV2).toBeUndefined();
  });

  it('probeLibrary on a file that is not a shared object: loaded false with dlerror()', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-addon-'));
    dirs.push(dir);
    const bogus = path.join(dir, 'libbogus.so');
    await writeFile(bogus, 'not an ELF file\n');
    const r = loadAddon().probeLibrary(bogus);
    expect(r.loaded).toBe(false);
    expect(r.error).toMatch(/invalid ELF header|file too short/);
  });

  it('probeLibrary on a real library without NVML: loaded, nvmlInitV2 false', () => {
    const r = loadAddon().probeLibrary('libc.so.6');
    expect(r).toEqual({ loaded: true, path: 'libc.so.6', nvmlInitV2: false });
  });

  it("probeLibrary on Debian's libnvidia-ml.so.1: loaded, nvmlInit_v2 resolves", (ctx) => {
    if (!existsSync(DEBIAN_NVML)) {
      console.warn(`SKIP: ${DEBIAN_NVML} is absent (apt-get install libnvidia-ml1 to run this check)`);
      ctx.skip();
      return;
    }
    const r = loadAddon().probeLibrary(DEBIAN_NVML);
    expect(r).toEqual({ loaded: true, path: DEBIAN_NVML, nvmlInitV2: true });
  });

  it('probeLibrary rejects a non-string path with a TypeError from C++', () => {
    const probe = loadAddon().probeLibrary as unknown as (p: unknown) => unknown;
    expect(() => probe(42)).toThrow(TypeError);
  });

  it('a missing build gives a BackendError that says to run npm install', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-addon-'));
    dirs.push(dir);
    const file = path.join(dir, 'gpulet_nvml.node');
    expect(() => loadAddonFrom(file)).toThrow(BackendError);
    expect(() => loadAddonFrom(file)).toThrow(/npm install.*npm rebuild/);
  });

  it('a corrupt build gives a BackendError that says to rebuild', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-addon-'));
    dirs.push(dir);
    const file = path.join(dir, 'gpulet_nvml.node');
    await writeFile(file, 'garbage');
    expect(() => loadAddonFrom(file)).toThrow(/failed to load.*npm rebuild/);
  });
});
