/**
 * A CDI spec written by gpulet's preparer is resolved by a real CDI consumer: Debian's podman (4.3, with
 * the container-device-interface library vendored). `podman init` resolves `--device <cdi-id>` and writes
 * the container's OCI config; the runtime step after it fails in this sandbox (crun cannot set rlimits),
 * which is ignored once config.json exists.
 *
 * Podman 4.3 has no `--cdi-spec-dir` and ignores containers.conf `cdi_spec_dirs` ("Failed to decode the
 * keys [engine.cdi_spec_dirs]"), so it only reads /etc/cdi and /var/run/cdi. Each podman call therefore
 * runs in a private mount namespace (`unshare --mount`) where a tmpfs covers /run and our temp spec dir is
 * bind-mounted on /run/cdi: the host's /etc/cdi and /var/run/cdi are never touched, and every mount
 * disappears with the namespace. Podman state lives in temp --root/--runroot/--tmpdir, removed afterwards.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocatableDevices } from '../../src/model/devices.js';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { migCapMinors, MOCK_DEVICE_MAJORS } from '../../src/state/cdi.js';
import { GPU_CONFIG_API_VERSION, GPU_CONFIG_KIND } from '../../src/state/opaque-config.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, NODE, tempDir } from '../helpers/claims.js';
import { claimRef } from '../helpers/names.js';

const run = promisify(execFile);

async function available(): Promise<string | undefined> {
  try {
    await run('podman', ['--version']);
  } catch {
    return 'podman is not installed';
  }
  try {
    await run('unshare', ['--mount', '--propagation', 'private', 'true']);
  } catch {
    return 'unshare --mount is not permitted (needs root / CAP_SYS_ADMIN)';
  }
  return undefined;
}

const skipReason = await available();
if (skipReason !== undefined) console.warn(`[cdi-podman] SKIPPED: ${skipReason}`);

const WRAPPER = `#!/bin/sh
set -e
spec="$1"; shift
mount -t tmpfs -o mode=0755 gpulet-test /run
mkdir /run/cdi
mount --bind "$spec" /run/cdi
exec podman "$@"
`;

interface OciConfig {
  process: { env: string[] };
  linux: {
    devices?: { path: string; type: string; major: number; minor: number }[];
    resources?: { devices?: { allow: boolean; type?: string; major?: number; minor?: number }[] };
  };
}

describe.skipIf(skipReason !== undefined)('CDI spec resolved by podman', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let inventory: Inventory;
  let podman: (...args: string[]) => Promise<{ stdout: string; stderr: string }>;
  const image = 'localhost/gpulet-busybox:test';
  // Starts with a digit: needs cdiVersion 0.5.0, which podman 4.3's CDI library accepts.
  const ref = claimRef({ namespace: 'ml', name: 'train', uid: '6f1c2a9e-0b7d-4c3e-9a1f-2b3c4d5e6f70' });

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('gpulet-podman-'));
    inventory = await dgxInventory();
    const rootfs = join(dir, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await symlink('busybox', join(rootfs, 'bin', 'sh'));
    await run('tar', ['-C', rootfs, '-cf', join(dir, 'rootfs.tar'), '.']);
    const wrapper = join(dir, 'podman-ns.sh');
    await writeFile(wrapper, WRAPPER);
    await chmod(wrapper, 0o755);
    await mkdir(join(dir, 'cdi'), { recursive: true });
    const globals = ['--root', join(dir, 'root'), '--runroot', join(dir, 'runroot'), '--tmpdir', join(dir, 'tmp'), '--cgroup-manager=cgroupfs'];
    podman = (...args) =>
      run('unshare', ['--mount', '--propagation', 'private', wrapper, join(dir, 'cdi'), ...globals, ...args], {
        timeout: 60_000,
        env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir },
      });
    await podman('import', '-q', join(dir, 'rootfs.tar'), image);
  }, 120_000);

  afterAll(async () => {
    if (podman !== undefined) {
      await podman('rm', '-af').catch(() => undefined);
      await podman('rmi', '-af').catch(() => undefined);
    }
    await cleanup?.();
  }, 120_000);

  /** Create + init a container with the given CDI devices; returns its OCI config or podman's error text. */
  async function ociConfig(deviceIds: string[]): Promise<{ config?: OciConfig; error: string }> {
    let id: string;
    try {
      id = (await podman('create', '--network', 'none', ...deviceIds.flatMap((d) => ['--device', d]), image, 'sh')).stdout.trim();
    } catch (err) {
      return { error: (err as { stderr?: string }).stderr ?? String(err) };
    }
    let error = '';
    await podman('init', id).catch((err: unknown) => {
      error = (err as { stderr?: string }).stderr ?? String(err);
    });
    const staticDir = (await podman('inspect', '--format', '{{.StaticDir}}', id)).stdout.trim();
    try {
      return { config: JSON.parse(await readFile(join(staticDir, 'config.json'), 'utf8')) as OciConfig, error };
    } catch {
      return { error };
    }
  }

  it('applies our device nodes and env to the container, and forgets them after unprepare', async () => {
    const source = new MemoryClaimSource();
    const opaqueConfig = [{ source: 'FromClaim', opaque: { driver: DRIVER, parameters: { apiVersion: GPU_CONFIG_API_VERSION, kind: GPU_CONFIG_KIND, env: { TRAINING_MODE: 'fast' } } } }];
    source.put(allocatedClaim(ref, [{ request: 'gpu', device: 'gpu-0' }, { request: 'mig', device: 'gpu-7-mig-1g10gb-19-2' }], { config: opaqueConfig }));
    const { store, preparer } = claimState({
      driverName: DRIVER,
      poolName: NODE,
      inventory: () => inventory,
      claimSource: source,
      cdiDir: join(dir, 'cdi'),
      devRoot: join(dir, 'dev'),
      checkpointPath: join(dir, 'state', 'checkpoint.json'),
      logger: silentLogger(),
    });
    await store.init();
    const result = (await preparer.prepare([ref])).get(ref.uid)!;
    expect(result.error).toBeUndefined();
    const ids = result.devices!.flatMap((d) => d.cdiDeviceIds);
    expect(ids).toHaveLength(2);

    const { config, error } = await ociConfig(ids);
    expect(config, `podman produced no OCI config: ${error}`).toBeDefined();
    expect(error).not.toContain('CDI'); // init may fail later (rlimits), never on device resolution
    const devices = allocatableDevices(inventory);
    const gpu0 = devices.find((d) => d.name === 'gpu-0')!;
    const mig = devices.find((d) => d.name === 'gpu-7-mig-1g10gb-19-2')!;
    if (mig.kind !== 'mig') throw new Error('fixture');
    const caps = migCapMinors(7, mig.mig.gpuInstanceId, mig.mig.computeInstanceId);
    const expected = [
      { path: '/dev/nvidia0', major: 195, minor: 0 },
      { path: '/dev/nvidia7', major: 195, minor: 7 },
      { path: `/dev/nvidia-caps/nvidia-cap${caps.gi}`, major: MOCK_DEVICE_MAJORS.nvidiaCaps, minor: caps.gi },
      { path: `/dev/nvidia-caps/nvidia-cap${caps.ci}`, major: MOCK_DEVICE_MAJORS.nvidiaCaps, minor: caps.ci },
      { path: '/dev/nvidiactl', major: 195, minor: 255 },
      { path: '/dev/nvidia-uvm', major: MOCK_DEVICE_MAJORS.nvidiaUvm, minor: 0 },
      { path: '/dev/nvidia-uvm-tools', major: MOCK_DEVICE_MAJORS.nvidiaUvm, minor: 1 },
    ];
    const ociDevices = config!.linux.devices ?? [];
    const allowed = (config!.linux.resources?.devices ?? []).filter((r) => r.allow);
    for (const e of expected) {
      expect(ociDevices).toContainEqual(expect.objectContaining({ path: e.path, type: 'c', major: e.major, minor: e.minor }));
      expect(allowed).toContainEqual(expect.objectContaining({ type: 'c', major: e.major, minor: e.minor }));
    }
    const env = config!.process.env;
    expect(env).toContain(`GPULET_DEVICE_GPU_0=${gpu0.uuid}`);
    expect(env).toContain(`GPULET_DEVICE_GPU_7_MIG_1G10GB_19_2=${mig.uuid}`);
    expect(env).toContain('NVIDIA_VISIBLE_DEVICES=void');
    expect(env).toContain('TRAINING_MODE=fast');

    // After unprepare the same IDs no longer resolve.
    expect((await preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    const after = await ociConfig([ids[0]!]);
    expect(after.error).toContain('unresolvable CDI devices');
  }, 120_000);

  it('fails an unknown CDI device with "unresolvable CDI devices"', async () => {
    const { error } = await ociConfig([`k8s.gpu.gpulet.dev/claim=${ref.uid}-gpu-99`]);
    expect(error).toContain('unresolvable CDI devices');
  }, 120_000);
});
