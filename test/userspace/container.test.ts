/**
 * A claim's container gets a working driver userspace — proven with a real container (podman + Debian's runc)
 * and NVIDIA's real userspace: Debian's non-free `nvidia-smi`, `libcuda1`, `libnvidia-ml1` (535 series,
 * installed by .ci/run), read from the machine's root as the driver root.
 *
 * The whole agent runs on the fake libnvidia-ml (`--backend nvml`), which reports the installed packages'
 * driver version (dpkg's, revision stripped: `535.261.03-1` → `535.261.03`). The kubelet simulator prepares a
 * claim through the DRA gRPC API; the container gets only the CDI IDs of the answer, resolved by podman's own
 * CDI library from the agent's CDI dir (test/helpers/podman.ts). The container's image is a bare Debian root
 * filesystem (libc6, busybox, a dlopen probe): everything NVIDIA in it comes from the claim.
 *
 * Facts checked come from outside gpulet: nvidia-smi's own message when the userspace is complete and no
 * kernel driver answers ("couldn't communicate with the NVIDIA driver", not "not found", not a loader error);
 * glibc's dlopen("libcuda.so.1") and libcuda's own `cuInit`; the kernel's /proc/mounts for the mount flags;
 * the official CDI schema for the spec. Without the claim's device, both fail. After a simulated reboot (agent
 * stopped, CDI dir emptied, agent started on the same checkpoint and API server), the spec start-up rebuilds
 * is the same document, userspace included, and the container works again.
 *
 * Second part: `--driver-userspace=auto` with a toolkit-format spec (kind nvidia.com/gpu, devices named by
 * UUID) in the agent's CDI dir: the answer carries the toolkit's device of the GPU's UUID after ours, podman
 * resolves both, and a device missing from that spec fails its claim with the file and the UUID named.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, realpath, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { allocatedClaim, cdiValidator, checkpointClaims, NODE, removeDir, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { fakeSetup, type FakeSetup } from '../helpers/nvml.js';
import { containersUnavailable, cudaProbeImage, debianPackageVersion, runWithCdi } from '../helpers/podman.js';

const libcuda = debianPackageVersion('libcuda1');
const unavailable =
  containersUnavailable() ??
  (libcuda === undefined || debianPackageVersion('nvidia-smi') === undefined || debianPackageVersion('libnvidia-ml1') === undefined
    ? "Debian's non-free nvidia-smi, libcuda1 and libnvidia-ml1 are not installed (.ci/run installs them)"
    : undefined);
if (unavailable !== undefined) console.warn(`SKIPPED test/userspace/container.test.ts (real containers with NVIDIA's userspace): ${unavailable}`);
/** The installed driver userspace's version: the Debian version without its revision. */
const DRIVER_VERSION = (libcuda ?? '').replace(/-[^-]*$/, '');

/** The script run in each container: nvidia-smi, then the probe on libcuda and NVML, then libcuda's mount. */
const SCRIPT = [
  'nvidia-smi 2>&1; echo "nvidia-smi exit $?"',
  'cuda-probe libcuda.so.1 2>&1',
  'cuda-probe libnvidia-ml.so.1 2>&1',
  'grep "libcuda.so.1 " /proc/mounts',
  'echo "NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"',
  'env | grep -E "^(GPULET_DEVICE|TOOLKIT_DEVICE)" | sort',
  'true',
].join('; ');

async function setUp(
  extraArgs: (dir: string) => string[],
  before?: (dir: string, fake: FakeSetup) => Promise<void>,
  server?: EmbeddedApiServer,
): Promise<{ h: Harness; fake: FakeSetup; image: string }> {
  const image = await cudaProbeImage();
  const fake = await fakeSetup({ nodeName: NODE, driverVersion: DRIVER_VERSION });
  process.env['FAKE_NVML_MACHINE'] = fake.files.env.FAKE_NVML_MACHINE;
  process.env['FAKE_NVML_FAULTS'] = fake.files.env.FAKE_NVML_FAULTS;
  const dir = await tempDir('gpulet-userspace-');
  await before?.(dir, fake);
  const h = await startHarness({ dir, ...(server === undefined ? {} : { server }), extraArgs: agentExtraArgs(dir, fake, extraArgs(dir)) });
  return { h, fake, image };
}

function agentExtraArgs(dir: string, fake: FakeSetup, extra: readonly string[]): string[] {
  return ['--backend', 'nvml', '--nvml-library', fake.library, '--sysfs-root', fake.sysfsRoot, '--dev-root', join(dir, 'dev'), ...extra];
}

async function prepared(h: Harness, name: string, device: string): Promise<{ ids: string[]; error: string; uid: string }> {
  const ref = await allocatedClaim(h.api, name, [{ device }], { pod: { name: `${name}-pod`, uid: randomUUID() } });
  const res = (await h.kubelet.prepare([ref])).claims[ref.uid];
  return { ids: (res?.devices ?? []).flatMap((d) => d.cdi_device_ids), error: res?.error ?? '', uid: ref.uid };
}

describe.skipIf(unavailable !== undefined)('--driver-userspace=discover: a real container with only the claim\'s CDI device', () => {
  let h: Harness | undefined;
  let fake: FakeSetup | undefined;
  let server: EmbeddedApiServer | undefined;
  let image = '';
  beforeAll(async () => {
    server = await startApiServer({ nodes: [NODE] });
    ({ h, fake, image } = await setUp(() => ['--driver-userspace', 'discover'], undefined, server));
  }, 300_000);
  afterAll(async () => {
    await h?.stop();
    await server?.close();
    await removeDir(h?.dir);
    await fake?.cleanup();
  });

  it("runs NVIDIA's nvidia-smi and loads libcuda.so.1 from the driver root; the spec is valid CDI", async () => {
    const harness = h!;
    const claim = await prepared(harness, 'cuda-discover', 'gpu-0');
    expect(claim.error).toBe('');
    expect(claim.ids).toEqual([`k8s.${harness.config.driverName}/claim=${claim.uid}-gpu-0`]);
    const spec: unknown = JSON.parse(await readFile(join(harness.config.cdiDir, `k8s.${harness.config.driverName}-claim_${claim.uid}.json`), 'utf8'));
    const validate = cdiValidator();
    expect(validate(spec), JSON.stringify(validate.errors)).toBe(true);

    const out = await runWithCdi(image, harness.config.cdiDir, claim.ids, SCRIPT);
    expect(out.code, out.stderr).toBe(0);
    // nvidia-smi started, loaded its NVML and found no kernel driver: the userspace is complete.
    expect(out.stdout).toMatch(/NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
    expect(out.stdout).not.toMatch(/not found|error while loading shared libraries|NVML Shared Library Not Found/i);
    expect(out.stdout).toMatch(/dlopen libcuda\.so\.1: OK; cuInit found; cuInit\(0\) = \d+/);
    expect(out.stdout).toMatch(/dlopen libnvidia-ml\.so\.1: OK/);
    const mountLine = out.stdout.split('\n').find((l) => l.includes('libcuda.so.1 ')) ?? '';
    const flags = mountLine.split(' ')[3]?.split(',') ?? [];
    expect(flags, mountLine).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    expect(out.stdout).toContain('NVIDIA_VISIBLE_DEVICES=void');
    const uuid = harness.agent.backend.inventory().gpus.find((g) => g.minor === 0)?.uuid;
    expect(out.stdout).toContain(`GPULET_DEVICE_GPU_0=${uuid}`);
  }, 120_000);

  it('without the claim\'s device, the same image has neither nvidia-smi nor libcuda.so.1', async () => {
    const out = await runWithCdi(image, h!.config.cdiDir, [], SCRIPT);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/nvidia-smi: not found/);
    expect(out.stdout).toMatch(/dlopen libcuda\.so\.1: FAILED: libcuda\.so\.1: cannot open shared object file/);
    expect(out.stdout).toMatch(/dlopen libnvidia-ml\.so\.1: FAILED/);
  }, 120_000);

  it('after a reboot (CDI dir emptied), the spec rebuilt from the checkpoint carries the userspace again', async () => {
    const first = h!;
    const claim = await prepared(first, 'cuda-reboot', 'gpu-1');
    expect(claim.error).toBe('');
    const specPath = join(first.config.cdiDir, `k8s.${first.config.driverName}-claim_${claim.uid}.json`);
    const before = JSON.parse(await readFile(specPath, 'utf8')) as { containerEdits: { mounts?: { containerPath: string }[] } };
    expect(before.containerEdits.mounts?.map((m) => m.containerPath)).toContain('/usr/bin/nvidia-smi');
    await first.stop();
    await rm(first.config.cdiDir, { recursive: true, force: true });
    h = await startHarness({ dir: first.dir, server: server!, extraArgs: agentExtraArgs(first.dir, fake!, ['--driver-userspace', 'discover']) });
    // Restored at start-up, before the kubelet calls: the same document, mounts included.
    expect(JSON.parse(await readFile(specPath, 'utf8'))).toEqual(before);
    const out = await runWithCdi(image, h.config.cdiDir, claim.ids, SCRIPT);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/couldn't communicate with the NVIDIA driver/);
    expect(out.stdout).toMatch(/dlopen libcuda\.so\.1: OK/);
  }, 120_000);
});

describe.skipIf(unavailable !== undefined)("--driver-userspace=auto with the NVIDIA Container Toolkit's spec", () => {
  let h: Harness | undefined;
  let fake: FakeSetup | undefined;
  let image = '';
  let gpu0 = '';
  let gpu1 = '';
  beforeAll(async () => {
    ({ h, fake, image } = await setUp(
      () => ['--driver-userspace', 'auto'],
      async (dir, f) => {
        // A spec in the toolkit's format (what `nvidia-ctk cdi generate --device-name-strategy=uuid` writes):
        // libcuda mounted in the common edits, one device per GPU named by UUID — here only gpu-0.
        gpu0 = f.inventory.gpus.find((g) => g.minor === 0)?.uuid ?? '';
        gpu1 = f.inventory.gpus.find((g) => g.minor === 1)?.uuid ?? '';
        const real = await realpath('/usr/lib/x86_64-linux-gnu/libcuda.so.1');
        const yaml = [
          'cdiVersion: 0.5.0',
          'kind: nvidia.com/gpu',
          'devices:',
          `- name: ${gpu0}`,
          '  containerEdits:',
          '    env:',
          `    - TOOLKIT_DEVICE=${gpu0}`,
          'containerEdits:',
          '  env:',
          '  - NVIDIA_VISIBLE_DEVICES=void',
          '  mounts:',
          `  - hostPath: ${real}`,
          '    containerPath: /usr/lib/x86_64-linux-gnu/libcuda.so.1',
          '    options: [ro, nosuid, nodev, bind]',
          '',
        ].join('\n');
        await mkdir(join(dir, 'cdi'), { recursive: true });
        await writeFile(join(dir, 'cdi', 'nvidia.yaml'), yaml);
      },
    ));
  }, 300_000);
  afterAll(async () => {
    await h?.stop();
    await removeDir(h?.dir);
    await fake?.cleanup();
  });

  it("answers the toolkit's UUID device after ours, and podman resolves both", async () => {
    const harness = h!;
    const claim = await prepared(harness, 'cuda-toolkit', 'gpu-0');
    expect(claim.error).toBe('');
    expect(claim.ids).toEqual([`k8s.${harness.config.driverName}/claim=${claim.uid}-gpu-0`, `nvidia.com/gpu=${gpu0}`]);
    const out = await runWithCdi(image, harness.config.cdiDir, claim.ids, SCRIPT);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`TOOLKIT_DEVICE=${gpu0}`);
    expect(out.stdout).toContain(`GPULET_DEVICE_GPU_0=${gpu0}`);
    expect(out.stdout).toMatch(/dlopen libcuda\.so\.1: OK; cuInit found/);
  }, 120_000);

  it('fails the claim of a device the toolkit spec does not have, naming the file and the UUID', async () => {
    const harness = h!;
    const claim = await prepared(harness, 'cuda-toolkit-missing', 'gpu-1');
    expect(claim.ids).toEqual([]);
    expect(claim.error).toContain(join(harness.config.cdiDir, 'nvidia.yaml'));
    expect(claim.error).toContain(gpu1);
    expect(claim.error).toContain('cuda-toolkit-missing');
    // Rolled back: no spec and no checkpoint entry of the failed claim are left.
    expect(existsSync(join(harness.config.cdiDir, `k8s.${harness.config.driverName}-claim_${claim.uid}.json`))).toBe(false);
    expect(Object.keys(await checkpointClaims(harness.config))).not.toContain(claim.uid);
  }, 60_000);
});
