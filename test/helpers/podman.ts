/**
 * Real containers for the driver-userspace tests: a minimal Debian root filesystem as a podman image, and a
 * `podman run` that injects CDI devices from a test's own CDI spec dir.
 *
 * The image: the files of the machine's installed Debian packages `libc6` and `busybox-static` (what `dpkg -x`
 * of their .debs unpacks: `dpkg -L`'s regular files and symlinks, copied), `/bin/sh` → busybox, and
 * test/fixtures/cuda-probe/probe.c built with the machine's gcc against the same libc6. Nothing of NVIDIA is in
 * it. Cached under test/fixtures/build/debian-rootfs/<key> (gitignored) and tagged
 * `localhost/gpulet-cuda-probe:<key>`, the key a hash of the package versions and the probe's source, so a rerun
 * only checks `podman image exists`. No image registry is used.
 *
 * CDI spec dir: podman 4.3 (Debian 12) reads only its built-in dirs (`/etc/cdi`, `/var/run/cdi`; it has no
 * `cdi_spec_dirs` setting), so the run happens in a private mount namespace (`unshare --mount --propagation
 * private`) in which the test's dir is bind-mounted over `/var/run/cdi`: the host's dir is untouched (it is
 * created empty when missing, as a mount point), and nothing leaks out of the namespace. That needs root, as
 * does creating the claim's device nodes in the container; the tests skip with a notice when not root.
 * Runtime: Debian's runc (`--runtime /usr/sbin/runc`; crun fails on this machine's hybrid cgroups), cgroupfs.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, readFile, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './repo.js';

const run = promisify(execFile);

/** Debian's runc. */
export const RUNC = '/usr/sbin/runc';
/** Packages whose installed files make the root filesystem. */
const ROOTFS_PACKAGES = ['libc6', 'busybox-static'] as const;
const PROBE_SOURCE = path.join(REPO_ROOT, 'test/fixtures/cuda-probe/probe.c');
const BUILD_DIR = path.join(REPO_ROOT, 'test/fixtures/build/debian-rootfs');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why real containers cannot run here, or undefined when they can (podman, runc, unshare, gcc, dpkg, root). */
export function containersUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (rootful podman creates the device nodes; the CDI dir is bind-mounted in a private mount namespace)';
  for (const cmd of ['podman', 'unshare', 'gcc', 'dpkg', 'dpkg-query']) if (!has(cmd)) return `${cmd} is not installed`;
  if (!existsSync(RUNC)) return `${RUNC} is not installed (Debian package runc)`;
  return undefined;
}

/** Installed version of a Debian package, or undefined. */
export function debianPackageVersion(pkg: string): string | undefined {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${db:Status-Abbrev} ${Version}', pkg], { encoding: 'utf8' });
  const m = /^ii\s+(\S+)$/.exec(r.stdout?.trim() ?? '');
  return r.status === 0 && m ? m[1] : undefined;
}

/**
 * The files (not directories) a package installed, from `dpkg -L`: regular files and symlinks to files (a
 * listed directory that is a symlink on a merged-/usr host, such as `/lib`, is a directory).
 */
async function packageFiles(pkg: string): Promise<string[]> {
  const { stdout } = await run('dpkg', ['-L', pkg], { maxBuffer: 16 * 1024 * 1024 });
  const out: string[] = [];
  for (const f of stdout.split('\n').filter((l) => l.startsWith('/'))) {
    try {
      const st = await lstat(f);
      const dir = st.isSymbolicLink() && (await stat(f).then((t) => t.isDirectory(), () => false));
      if ((st.isFile() || st.isSymbolicLink()) && !dir) out.push(f);
    } catch {
      // listed but not present (diverted, removed): not copied
    }
  }
  return out;
}

let building: Promise<string> | undefined;

/**
 * Build (or reuse) the image.
 * @returns its reference, `localhost/gpulet-cuda-probe:<key>`.
 * @throws Error when a package is not installed or a step fails (with its output).
 */
export function cudaProbeImage(): Promise<string> {
  building ??= (async () => {
    const versions = ROOTFS_PACKAGES.map((p) => {
      const v = debianPackageVersion(p);
      if (v === undefined) throw new Error(`Debian package ${p} is not installed (.ci/run installs it)`);
      return `${p}=${v}`;
    });
    const key = createHash('sha256').update(versions.join('\n')).update(await readFile(PROBE_SOURCE)).digest('hex').slice(0, 16);
    const image = `localhost/gpulet-cuda-probe:${key}`;
    if (spawnSync('podman', ['image', 'exists', image]).status === 0) return image;
    const dir = path.join(BUILD_DIR, key);
    const tar = path.join(dir, 'rootfs.tar');
    if (!existsSync(tar)) {
      const work = `${dir}.tmp-${process.pid}`;
      const root = path.join(work, 'rootfs');
      await rm(work, { recursive: true, force: true });
      for (const pkg of ROOTFS_PACKAGES) {
        for (const f of await packageFiles(pkg)) {
          await mkdir(path.join(root, path.dirname(f)), { recursive: true });
          await cp(f, path.join(root, f), { verbatimSymlinks: true, preserveTimestamps: true });
        }
      }
      for (const d of ['tmp', 'proc', 'sys', 'dev', 'etc', 'usr/local/bin']) await mkdir(path.join(root, d), { recursive: true });
      await symlink('busybox', path.join(root, 'bin/sh'));
      await run('gcc', ['-O2', '-o', path.join(root, 'usr/local/bin/cuda-probe'), PROBE_SOURCE]);
      await run('tar', ['-C', root, '-cf', path.join(work, 'rootfs.tar'), '.']);
      await rm(root, { recursive: true, force: true });
      await mkdir(path.dirname(dir), { recursive: true });
      await rm(dir, { recursive: true, force: true });
      await rename(work, dir);
    }
    await run('podman', ['import', tar, image]);
    return image;
  })();
  building.catch(() => {
    building = undefined;
  });
  return building;
}

/** What a container printed, and its exit code. */
export interface ContainerRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/**
 * Run `sh -c <script>` in a container of `image` with CDI devices `devices` resolved from `cdiDir` (see file doc).
 * @returns output and exit code; a podman error (e.g. an unresolvable CDI device) is a non-zero code with its stderr.
 */
export async function runWithCdi(image: string, cdiDir: string, devices: readonly string[], script: string): Promise<ContainerRun> {
  await mkdir('/var/run/cdi', { recursive: true });
  const podman = [
    'podman', '--runtime', RUNC, '--cgroup-manager=cgroupfs', 'run', '--rm', '--network', 'none',
    '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024',
    ...devices.flatMap((d) => ['--device', d]), image, '/bin/sh', '-c', script,
  ];
  const quoted = podman.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const inner = `mount --bind '${cdiDir.replaceAll("'", `'\\''`)}' /var/run/cdi && exec ${quoted}`;
  try {
    const { stdout, stderr } = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', inner], { maxBuffer: 4 * 1024 * 1024 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? String(err), code: typeof e.code === 'number' ? e.code : -1 };
  }
}
