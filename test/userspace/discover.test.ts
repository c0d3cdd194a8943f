/**
 * Discovery of the driver userspace in a driver root laid out as on real nodes, built in a temp dir: the GPU
 * Operator's driver container (`/run/nvidia/driver`: absolute symlinks that must resolve inside the root), a
 * leftover library and firmware of another driver version (never mounted), a non-executable binary (not
 * one), IPC paths. The edits carry host paths under `--nvidia-driver-root` and container paths inside it, and a
 * claim spec with them — in both modes, with and without `nvidia-cdi-hook` — is valid against the official CDI
 * schema (test/reference/cdi-schema). The provider decides once per driver version, as documented.
 */
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCdiSpec } from '../../src/state/cdi.js';
import { buildMockInventory, machineSpecByName } from '../../src/gpu/mock/index.js';
import { devicesByName } from '../../src/model/devices.js';
import { silentLogger } from '../../src/log.js';
import { planUserspaceEdits } from '../../src/userspace/edits.js';
import { resolveInRoot, scanDriverRoot } from '../../src/userspace/host-scan.js';
import { decideUserspace, UserspaceProvider, type UserspaceOptions } from '../../src/userspace/provider.js';
import { cdiValidator, tempDir } from '../helpers/agent.js';

const V = '550.54.15';
const LIB = '/usr/lib/x86_64-linux-gnu';
const HOST_ROOT = '/run/nvidia/driver';
let root: string;

async function file(path: string, mode = 0o644): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), 'x');
  await chmod(join(root, path), mode);
}

beforeEach(async () => {
  root = await tempDir('gpulet-driver-root-');
  await file(`${LIB}/libcuda.so.${V}`);
  await symlink(`libcuda.so.${V}`, join(root, `${LIB}/libcuda.so.1`));
  await file(`${LIB}/libnvidia-ml.so.${V}`);
  await symlink(`${LIB}/libnvidia-ml.so.${V}`, join(root, `${LIB}/libnvidia-ml.so.1`)); // absolute: inside the root
  await file(`${LIB}/libnvidia-nvvm.so.${V}`);
  await symlink(`libnvidia-nvvm.so.${V}`, join(root, `${LIB}/libnvidia-nvvm.so.4`));
  await file(`${LIB}/libcuda.so.535.0.0`); // another version's leftover
  await symlink('/etc/hostname', join(root, `${LIB}/libnvidia-cfg.so.${V}`)); // a link, not the library
  await file('/usr/bin/nvidia-smi', 0o755);
  await file('/usr/bin/nvidia-debugdump', 0o644); // not executable
  await file(`/lib/firmware/nvidia/${V}/gsp_ga10x.bin`);
  await file(`/lib/firmware/nvidia/${V}/gsp_tu10x.bin`);
  await file('/lib/firmware/nvidia/535.0.0/gsp_ga10x.bin');
  await mkdir(join(root, 'tmp/nvidia-mps'), { recursive: true });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const options = (extra: Partial<UserspaceOptions> = {}): UserspaceOptions => ({
  mode: 'discover', hostDriverRoot: HOST_ROOT, containerDriverRoot: root, toolkitSpecDirs: [join(root, 'cdi')], arch: 'x64',
  logger: silentLogger(), ...extra,
});

function claimSpec(userspace: ReturnType<typeof planUserspaceEdits>): unknown {
  const device = devicesByName(buildMockInventory(machineSpecByName('dgx-h100'), 'n')).get('gpu-0')!;
  return buildCdiSpec({ driverName: 'gpu.gpulet.dev', claimUid: '0b3c7c1e-7b1e-4d6e-9a43-0d9d0e6f1a11', devices: [{ device }], userspace });
}

describe('scanDriverRoot + planUserspaceEdits', () => {
  it('finds the running version\'s files inside the root, never another version\'s or outside the root', async () => {
    const scan = await scanDriverRoot({ containerDriverRoot: root, hostDriverRoot: HOST_ROOT, version: V, arch: 'x64' });
    expect(scan.ldCacheProblem).toMatch(/ld\.so\.cache/);
    expect(scan.files.libraries.map((l) => `${l.dir}/${l.file}`)).toEqual([`${LIB}/libnvidia-ml.so.${V}`, `${LIB}/libcuda.so.${V}`, `${LIB}/libnvidia-nvvm.so.${V}`]);
    expect(scan.files.libraries.find((l) => l.library === 'libnvidia-ml.so')?.sonames).toEqual([{ name: 'libnvidia-ml.so.1', dir: LIB }]);
    expect(scan.files.libraries.find((l) => l.library === 'libnvidia-nvvm.so')?.sonames).toEqual([{ name: 'libnvidia-nvvm.so.4', dir: LIB }]);
    expect(scan.missing).toContain(`libnvidia-cfg.so.${V}`);
    expect(scan.files.binaries).toEqual([{ path: '/usr/bin/nvidia-smi', target: '/usr/bin/nvidia-smi' }]);
    expect(scan.missing).toContain('nvidia-debugdump');
    expect(scan.files.firmware).toEqual([`/lib/firmware/nvidia/${V}/gsp_ga10x.bin`, `/lib/firmware/nvidia/${V}/gsp_tu10x.bin`]);
    expect(scan.files.ipc).toEqual(['/tmp/nvidia-mps']);
    expect(scan.files.cdiHook).toBeUndefined();

    const edits = planUserspaceEdits(scan.files, HOST_ROOT);
    expect(edits.hooks).toEqual([]);
    const byPath = new Map(edits.mounts.map((m) => [m.containerPath, m]));
    expect(byPath.get(`${LIB}/libcuda.so.1`)?.hostPath).toBe(`${HOST_ROOT}${LIB}/libcuda.so.${V}`);
    expect(byPath.get(`${LIB}/libcuda.so.${V}`)?.hostPath).toBe(`${HOST_ROOT}${LIB}/libcuda.so.${V}`);
    expect(byPath.get('/usr/bin/nvidia-smi')?.hostPath).toBe(`${HOST_ROOT}/usr/bin/nvidia-smi`);
    expect([...byPath.keys()].some((p) => p.includes('535.0.0'))).toBe(false);
    for (const m of edits.mounts) expect(m.options).toEqual(['ro', 'nosuid', 'nodev', 'rbind', 'rprivate']);
    const validate = cdiValidator();
    expect(validate(claimSpec(edits)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('with nvidia-cdi-hook: real files at their paths, soname links and the ld cache through hooks (valid CDI)', async () => {
    await file('/usr/local/nvidia/toolkit/nvidia-cdi-hook', 0o755);
    const scan = await scanDriverRoot({ containerDriverRoot: root, hostDriverRoot: HOST_ROOT, version: V, arch: 'x64' });
    const hook = `${HOST_ROOT}/usr/local/nvidia/toolkit/nvidia-cdi-hook`;
    expect(scan.files.cdiHook).toBe(hook);
    const edits = planUserspaceEdits(scan.files, HOST_ROOT);
    expect(edits.mounts.map((m) => m.containerPath)).not.toContain(`${LIB}/libcuda.so.1`);
    expect(edits.hooks).toEqual([
      { hookName: 'createContainer', path: hook, args: ['nvidia-cdi-hook', 'create-symlinks', '--link', `libnvidia-ml.so.${V}::${LIB}/libnvidia-ml.so.1`, '--link', `libcuda.so.${V}::${LIB}/libcuda.so.1`, '--link', `libnvidia-nvvm.so.${V}::${LIB}/libnvidia-nvvm.so.4`] },
      { hookName: 'createContainer', path: hook, args: ['nvidia-cdi-hook', 'update-ldcache', '--folder', LIB] },
    ]);
    const validate = cdiValidator();
    expect(validate(claimSpec(edits)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('resolveInRoot never leaves the root', async () => {
    await mkdir(join(root, 'etc'));
    await symlink('../../../../../../../../etc', join(root, 'up'));
    expect(await resolveInRoot(root, '/up')).toBe('/etc');
    expect(await resolveInRoot(root, `${LIB}/libnvidia-ml.so.1`)).toBe(`${LIB}/libnvidia-ml.so.${V}`);
    await symlink('loop', join(root, 'loop'));
    expect(await resolveInRoot(root, '/loop')).toBeUndefined();
  });
});

describe('the userspace decision', () => {
  const toolkitYaml = (names: readonly string[], kind = 'nvidia.com/gpu'): string =>
    `cdiVersion: 0.5.0\nkind: ${kind}\ndevices:\n${names.map((n) => `- name: ${n}\n  containerEdits: {env: [X=1]}\n`).join('')}containerEdits: {}\n`;

  it('auto: discover without a toolkit spec, the toolkit spec when there', async () => {
    expect((await decideUserspace(options({ mode: 'auto' }), V)).source).toBe('discover');
    await mkdir(join(root, 'cdi'));
    await writeFile(join(root, 'cdi/nvidia.yaml'), toolkitYaml(['GPU-1', 'MIG-2']));
    const d = await decideUserspace(options({ mode: 'auto' }), V);
    expect(d.source === 'toolkit' && [...d.spec.deviceNames]).toEqual(['GPU-1', 'MIG-2']);
  });

  it('toolkit without a usable spec: every device fails, naming what to do; a spec of another kind is named', async () => {
    const p = new UserspaceProvider(options({ mode: 'toolkit' }));
    await p.refresh(V);
    expect(() => p.cdiIdsFor('GPU-1')).toThrow(/no NVIDIA Container Toolkit CDI spec .* in .*cdi.*nvidia-ctk cdi generate --device-name-strategy=uuid/);
    await mkdir(join(root, 'cdi'));
    await writeFile(join(root, 'cdi/nvidia.yaml'), toolkitYaml(['GPU-1'], 'example.com/gpu'));
    await p.refresh(V); // an unavailable decision is retried
    expect(() => p.cdiIdsFor('GPU-1')).toThrow(new RegExp(`${join(root, 'cdi/nvidia.yaml')} is of kind "example.com/gpu"`));
    await writeFile(join(root, 'cdi/nvidia.yaml'), toolkitYaml(['GPU-1']));
    await p.refresh(V);
    expect(p.cdiIdsFor('GPU-1')).toEqual(['nvidia.com/gpu=GPU-1']);
    expect(() => p.cdiIdsFor('MIG-9')).toThrow(new RegExp(`device MIG-9 is not in the NVIDIA Container Toolkit's CDI spec ${join(root, 'cdi/nvidia.yaml')}`));
    await writeFile(join(root, 'cdi/nvidia.yaml'), toolkitYaml(['GPU-1', 'MIG-9']));
    await p.refresh(V); // a device that was missing makes the next refresh read the (regenerated) spec
    expect(p.cdiIdsFor('MIG-9')).toEqual(['nvidia.com/gpu=MIG-9']);
  });

  it('decides once per driver version', async () => {
    const p = new UserspaceProvider(options({ mode: 'auto' }));
    await p.refresh(V);
    expect(p.current().source).toBe('discover');
    expect(p.edits()?.mounts.length).toBeGreaterThan(0);
    await mkdir(join(root, 'cdi'));
    await writeFile(join(root, 'cdi/nvidia.yaml'), toolkitYaml(['GPU-1']));
    await p.refresh(V);
    expect(p.current().source).toBe('discover'); // same version: not decided again
    await p.refresh('560.1.2');
    expect(p.current().source).toBe('toolkit');
    expect(p.edits()).toBeUndefined();
  });

  it('a driver version that is not digits and dots names no file (never a path)', async () => {
    for (const bad of ['', '../../etc', '550.54.15/../x']) {
      const d = await decideUserspace(options(), bad);
      expect(d.source === 'discover' && d.edits.mounts).toEqual([]);
    }
  });

  it('none: nothing, ever', async () => {
    const p = new UserspaceProvider(options({ mode: 'none' }));
    await p.refresh(V);
    expect(p.current()).toEqual({ source: 'none' });
    expect(p.edits()).toBeUndefined();
    expect(p.cdiIdsFor('GPU-1')).toEqual([]);
  });
});
