/**
 * The DaemonSet mounts exactly what the driver userspace source reads (src/userspace/): the real discovery
 * (`decideUserspace`: the ld cache, library dirs, binaries, GSP firmware, IPC sockets, `nvidia-cdi-hook`; the
 * toolkit's spec) run on a whole fake node and on a tree holding ONLY what the rendered pod mounts gives the
 * same decision.
 *
 * - The fake node (a temp dir) is laid out as a real one: merged /usr (`/lib -> usr/lib`, `/bin -> usr/bin`,
 *   ...), `/var/run -> ../run`, the driver's libraries with their soname links, an ld cache written in glibc's
 *   format (test/helpers/ld-cache.ts; glibc's `ldconfig -p -C` reads it below) whose entries name the libraries
 *   where ldconfig names them on such a host (`/lib/x86_64-linux-gnu/...`, `/lib64/...`: the first directory
 *   of its search list, through the `/lib` link), the binaries and `nvidia-cdi-hook` in /usr/bin, GSP
 *   firmware, live unix sockets of the persistence daemon and fabric manager, the MPS pipe directory, the
 *   toolkit's generated spec in /etc/cdi, and host files no mount may need (/etc/shadow, the kubelet's key).
 *   For the GPU Operator the same driver tree is under /run/nvidia/driver.
 * - The pod's view: for every hostPath volume of the rendered DaemonSet (daemonset/07-daemonset.yaml, and the
 *   chart for each userspace source), the host path resolved as the kernel does (symlinks followed from the
 *   host's `/`; a missing DirectoryOrCreate path created first, as the kubelet does) and copied to the mount
 *   path in a second tree: a mount point is a real directory, symlinks inside a mount are kept as they are.
 * - Both trees are read with the agent's own configuration (loadConfig of the pod's environment) and compared.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { V1DaemonSet, V1EnvVar } from '@kubernetes/client-node';
import { loadConfig, type DriverUserspaceMode } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { DRIVER_BINARIES } from '../../src/userspace/driver-files.js';
import { resolveInRoot, scanDriverRoot } from '../../src/userspace/host-scan.js';
import { decideUserspace, toolkitSpecDirs, type DriverUserspace } from '../../src/userspace/provider.js';
import { tempDir } from '../helpers/agent.js';
import { HELM_BUILD_TIMEOUT_MS, ensureHelm, helmUnavailable, renderChart } from '../helpers/helm.js';
import { buildLdCache } from '../helpers/ld-cache.js';
import { findOne, installDocs, type ManifestDoc } from '../helpers/manifests.js';

const V = '550.54.15';
/** Libraries of the fake driver: name, soname (the link ldconfig makes). */
const LIBS: ReadonlyArray<readonly [string, string]> = [
  ['libnvidia-ml.so', 'libnvidia-ml.so.1'], ['libnvidia-cfg.so', 'libnvidia-cfg.so.1'], ['libcuda.so', 'libcuda.so.1'],
  ['libcudadebugger.so', 'libcudadebugger.so.1'], ['libnvidia-ptxjitcompiler.so', 'libnvidia-ptxjitcompiler.so.1'],
  ['libnvidia-nvvm.so', 'libnvidia-nvvm.so.4'], ['libnvidia-allocator.so', 'libnvidia-allocator.so.1'],
  ['libnvidia-gpucomp.so', `libnvidia-gpucomp.so.${V}`],
];
const TOOLKIT_SPEC = `cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: GPU-11111111-2222-3333-4444-555555555555\n  containerEdits: {deviceNodes: [{path: /dev/nvidia0}]}\ncontainerEdits: {}\n`;

/** Live unix sockets of the trees (a socket file answers lstat as a socket only while it is bound). */
const servers: Server[] = [];
async function socketAt(p: string): Promise<void> {
  await mkdir(path.dirname(p), { recursive: true });
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, resolve);
  });
  servers.push(server);
}

async function fileAt(p: string, content: string | Buffer = 'x', mode = 0o644): Promise<void> {
  await mkdir(path.dirname(p), { recursive: true });
  await writeFile(p, content);
  await chmod(p, mode);
}

async function linkAt(p: string, target: string): Promise<void> {
  await mkdir(path.dirname(p), { recursive: true });
  await symlink(target, p);
}

/** What of the NVIDIA Container Toolkit the node has: its `nvidia-cdi-hook` (in the driver's /usr/bin), its generated spec in /etc/cdi. */
interface Toolkit {
  readonly hook: boolean;
  readonly spec: boolean;
}

/**
 * A node: the driver (and the toolkit's spec) at `driverRoot` in the host tree `host`, with the library dir
 * `libDir` (`/usr/lib/x86_64-linux-gnu` or RHEL's `/usr/lib64`) and the ld cache's name for it (`cacheDir`).
 */
async function buildNode(host: string, driverRoot: string, libDir: string, cacheDir: string, toolkit: Toolkit): Promise<void> {
  const r = (p: string) => path.join(host, driverRoot, p);
  for (const [link, target] of [['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['bin', 'usr/bin'], ['sbin', 'usr/sbin']]) {
    await mkdir(r(target!), { recursive: true });
    await linkAt(r(link!), target!);
  }
  await linkAt(r('var/run'), '../run');
  for (const [lib, soname] of LIBS) {
    await fileAt(r(`${libDir}/${lib}.${V}`));
    if (soname !== `${lib}.${V}`) await linkAt(r(`${libDir}/${soname}`), `${lib}.${V}`);
  }
  await linkAt(r(`${libDir}/libcuda.so`), 'libcuda.so.1');
  await fileAt(r(`${libDir}/libcuda.so.535.0.0`)); // a leftover of another driver version
  await fileAt(r(`${libDir}/libc.so.6`));
  const entries = [...LIBS.map(([, soname]) => soname), 'libc.so.6'].sort().map((soname) => ({ soname, path: `${cacheDir}/${soname}` }));
  await fileAt(r('etc/ld.so.cache'), buildLdCache(entries));
  for (const b of [...DRIVER_BINARIES, ...(toolkit.hook ? ['nvidia-cdi-hook'] : [])]) await fileAt(r(`usr/bin/${b}`), 'x', 0o755);
  await fileAt(r('usr/bin/ls'), 'x', 0o755);
  for (const fw of ['gsp_ga10x.bin', 'gsp_tu10x.bin']) await fileAt(r(`lib/firmware/nvidia/${V}/${fw}`));
  await fileAt(r('lib/firmware/nvidia/535.0.0/gsp_ga10x.bin'));
  await socketAt(r('run/nvidia-persistenced/socket'));
  await socketAt(r('run/nvidia-fabricmanager/socket'));
  await mkdir(r('tmp/nvidia-mps'), { recursive: true });
  await fileAt(r('tmp/nvidia-mps/control'));
  // The node itself (the driver root may be the GPU Operator's, under it): what no mount may need.
  const h = (p: string) => path.join(host, p);
  if (!existsSync(h('etc'))) await mkdir(h('etc'));
  await fileAt(h('etc/shadow'), 'root:*:1::::::', 0o600);
  await fileAt(h('var/lib/kubelet/pki/kubelet-client-current.pem'), 'key', 0o600);
  for (const d of ['var/lib/kubelet/plugins_registry', 'var/lib/kubelet/plugins', 'var/lib/gpulet']) await mkdir(h(d), { recursive: true });
  // The kubelet's pod-resources socket (pkg/kubelet/kubelet.go setupDataDirs makes the directory at start).
  await socketAt(h('var/lib/kubelet/pod-resources/kubelet.sock'));
  if (!existsSync(h('var/run'))) await linkAt(h('var/run'), '../run');
  await mkdir(h('run/cdi'), { recursive: true });
  if (toolkit.spec) await fileAt(h('etc/cdi/nvidia.yaml'), TOOLKIT_SPEC);
}

/** Copy `from` to `to` as a bind mount shows it: directories, files (mode kept), symlinks as they are, live sockets. */
async function copyAsMounted(from: string, to: string): Promise<void> {
  const st = await lstat(from);
  if (st.isDirectory()) {
    await mkdir(to, { recursive: true });
    for (const name of await readdir(from)) await copyAsMounted(path.join(from, name), path.join(to, name));
  } else if (st.isSymbolicLink()) {
    await linkAt(to, await readlink(from));
  } else if (st.isSocket()) {
    await socketAt(to);
  } else if (st.isFile()) {
    await mkdir(path.dirname(to), { recursive: true });
    await copyFile(from, to);
    await chmod(to, st.mode & 0o7777);
  } else {
    throw new Error(`${from}: not a file, directory, symlink or socket`);
  }
}

interface PodView {
  readonly env: Record<string, string>;
  readonly mounts: ReadonlyArray<{ name: string; hostPath: string; type: string; mountPath: string }>;
}

function podView(docs: readonly ManifestDoc[]): PodView {
  const pod = findOne<V1DaemonSet>(docs, 'DaemonSet').spec!.template.spec!;
  const container = pod.containers[0]!;
  const downward: Record<string, string> = { 'spec.nodeName': 'gpu-node-1', 'metadata.uid': '0f7c5e3a-2b1d-4c9e-8a6f-1d2e3f4a5b6c' };
  const env = Object.fromEntries((container.env ?? []).map((e: V1EnvVar) => [e.name, e.value ?? downward[e.valueFrom?.fieldRef?.fieldPath ?? ''] ?? '']));
  const byName = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
  const mounts = (container.volumeMounts ?? []).flatMap((m) => {
    const hp = byName.get(m.name)?.hostPath;
    return hp === undefined ? [] : [{ name: m.name, hostPath: hp.path, type: hp.type ?? '', mountPath: m.mountPath }];
  });
  return { env, mounts };
}

/** The pod's filesystem, as far as hostPath volumes go, built in `into` from the node `host`. */
async function mountedTree(host: string, into: string, view: PodView): Promise<void> {
  for (const m of view.mounts) {
    let source = await resolveInRoot(host, m.hostPath);
    if (source === undefined && m.type === 'DirectoryOrCreate') {
      // The kubelet creates it on the host (through any symlink on the way, as mkdir -p does).
      await mkdir(path.join(host, m.hostPath), { recursive: true });
      source = await resolveInRoot(host, m.hostPath);
    }
    if (source === undefined) throw new Error(`volume ${m.name}: hostPath ${m.hostPath} (type ${m.type}) is not on the node: the pod would not start`);
    await copyAsMounted(path.join(host, source), path.join(into, m.mountPath));
  }
}

/** A decision made comparable across trees: the toolkit spec's path relative to its tree. */
function comparable(d: DriverUserspace, tree: string): unknown {
  if (d.source === 'unavailable') return { ...d, reason: d.reason.replaceAll(tree, '<tree>') };
  if (d.source !== 'toolkit') return d;
  return { source: d.source, version: d.version, path: path.relative(tree, d.spec.path), devices: [...d.spec.deviceNames] };
}

/** The agent's decision with the pod's configuration, reading the driver root at `driverRootDir` and spec dirs under `tree`. */
async function decide(view: PodView, mode: DriverUserspaceMode, tree: string, driverRootDir: string): Promise<unknown> {
  const config = loadConfig([], view.env, '/');
  const d = await decideUserspace({
    mode,
    hostDriverRoot: config.nvidiaDriverRoot,
    containerDriverRoot: driverRootDir,
    toolkitSpecDirs: toolkitSpecDirs(config.cdiDir).map((dir) => path.join(tree, dir)),
    arch: 'x64',
    logger: silentLogger(),
  }, V);
  return comparable(d, tree);
}

/** The sources a configured mode decides between. */
const MODES: Record<DriverUserspaceMode, DriverUserspaceMode[]> = { auto: ['auto', 'discover', 'toolkit'], discover: ['discover'], toolkit: ['toolkit'], none: ['none'] };

const helmMissing = helmUnavailable();
if (helmMissing !== undefined) console.warn(`NOTICE: ${helmMissing}`);

interface Case {
  readonly name: string;
  readonly docs: () => Promise<ManifestDoc[]>;
  readonly driverRoot: string;
  readonly libDir: string;
  readonly cacheDir: string;
  readonly needsHelm: boolean;
}
const DEB = { libDir: '/usr/lib/x86_64-linux-gnu', cacheDir: '/lib/x86_64-linux-gnu' };
const RHEL = { libDir: '/usr/lib64', cacheDir: '/lib64' };
const CASES: Case[] = [
  { name: 'daemonset/07-daemonset.yaml (auto, driver on the host)', docs: () => Promise.resolve(installDocs()), driverRoot: '/', ...DEB, needsHelm: false },
  { name: 'chart, default values (auto, driver on the host)', docs: () => renderChart(), driverRoot: '/', ...DEB, needsHelm: true },
  { name: 'chart, discover, driver on the host', docs: () => renderChart({ driverUserspace: 'discover' }), driverRoot: '/', ...DEB, needsHelm: true },
  { name: 'chart, discover, GPU Operator root /run/nvidia/driver', docs: () => renderChart({ driverUserspace: 'discover', nvidiaDriverRoot: '/run/nvidia/driver' }), driverRoot: '/run/nvidia/driver', ...DEB, needsHelm: true },
  {
    name: 'chart, auto, GPU Operator root /run/nvidia/driver, RHEL library dir',
    docs: () => renderChart({ driverUserspace: 'auto', nvidiaDriverRoot: '/run/nvidia/driver', driverLibraryDir: '/usr/lib64' }),
    driverRoot: '/run/nvidia/driver', ...RHEL, needsHelm: true,
  },
  { name: 'chart, toolkit', docs: () => renderChart({ driverUserspace: 'toolkit' }), driverRoot: '/', ...DEB, needsHelm: true },
  { name: 'chart, none', docs: () => renderChart({ driverUserspace: 'none' }), driverRoot: '/', ...DEB, needsHelm: true },
];

const dirs: string[] = [];
beforeAll(async () => {
  if (helmMissing === undefined) await ensureHelm();
}, HELM_BUILD_TIMEOUT_MS);
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('the fake node', () => {
  const ldconfig = ['/sbin/ldconfig', '/usr/sbin/ldconfig'].find((p) => existsSync(p));
  it.skipIf(ldconfig === undefined)("has an ld cache glibc's own reader prints as written (ldconfig -p -C)", async () => {
    const host = await tempDir('gpulet-node-');
    dirs.push(host);
    await buildNode(host, '/', DEB.libDir, DEB.cacheDir, { hook: false, spec: false });
    const printed = spawnSync(ldconfig!, ['-p', '-C', path.join(host, 'etc/ld.so.cache')], { encoding: 'utf8' }).stdout;
    expect(printed).toMatch(new RegExp(`^${LIBS.length + 1} libs found in cache`));
    expect(printed).toContain(`\tlibcuda.so.1 (libc6,x86-64) => ${DEB.cacheDir}/libcuda.so.1\n`);
  });
});

/**
 * The one thing the pod cannot see as the node does, and why: the ld cache of a merged-/usr node names the
 * libraries through the `/lib -> usr/lib` link (`/lib/x86_64-linux-gnu/libcuda.so.1`, RHEL `/lib64/...`), and
 * no mount can put that link into /driver-root (a hostPath mount shows the directory it resolves to, never a
 * link). Without `nvidia-cdi-hook` discover mounts each soname both where the ld cache names it and beside the
 * file; in the pod only the second is found. A workload gets the same files at the same `/usr/lib/...` paths
 * either way (and on a merged-/usr image `/lib/...` is that directory). With the hook the soname links are
 * made beside the file in both. Once discover takes an ld cache entry's directory resolved in the driver root,
 * this is empty and the test says so.
 */
function withoutLdCacheNamedSonames(d: DriverUserspace, c: Case): DriverUserspace {
  if (d.source !== 'discover' || c.cacheDir === c.libDir) return d;
  const under = (p: string) => p.startsWith(`${c.cacheDir}/`);
  const dropped = d.edits.mounts.filter((m) => under(m.containerPath));
  for (const m of dropped) {
    // Each is a soname of a library that is also mounted, at the same name, beside the real file.
    expect(d.edits.mounts.find((x) => x.containerPath === `${c.libDir}/${path.posix.basename(m.containerPath)}`)?.hostPath, m.containerPath).toBe(m.hostPath);
  }
  return { ...d, edits: { ...d.edits, mounts: d.edits.mounts.filter((m) => !under(m.containerPath)) } };
}

const NODES: ReadonlyArray<readonly [string, Toolkit]> = [
  ['toolkit installed: nvidia-cdi-hook and its generated spec', { hook: true, spec: true }],
  ['nvidia-cdi-hook, no generated spec', { hook: true, spec: false }],
  ['no toolkit files', { hook: false, spec: false }],
];

describe.each(CASES)('$name mounts exactly what its driver userspace source reads', (c) => {
  it.skipIf(c.needsHelm && helmMissing !== undefined).each(NODES)('node: %s', async (_n, toolkit) => {
    const view = podView(await c.docs());
    const config = loadConfig([], view.env, '/');
    expect(config.nvidiaDriverRoot).toBe(c.driverRoot);
    const host = await tempDir('gpulet-node-');
    const pod = await tempDir('gpulet-pod-');
    dirs.push(host, pod);
    await buildNode(host, c.driverRoot, c.libDir, c.cacheDir, toolkit);
    await mountedTree(host, pod, view);
    // Nothing of the node beyond the mounts: no /etc/shadow, no kubelet key, no host `/`.
    expect(existsSync(path.join(pod, 'etc/shadow')) || existsSync(path.join(pod, 'driver-root/etc/shadow'))).toBe(false);
    expect(existsSync(path.join(pod, 'var/lib/kubelet/pki'))).toBe(false);

    for (const mode of MODES[config.driverUserspace]) {
      const onNode = await decide(view, mode, host, path.join(host, config.nvidiaDriverRoot));
      const inPod = await decide(view, mode, pod, path.join(pod, config.containerDriverRoot));
      const d = onNode as DriverUserspace;
      if (toolkit.hook) expect(inPod, `--driver-userspace=${mode}`).toEqual(onNode);
      else expect(inPod, `--driver-userspace=${mode}`).toEqual(withoutLdCacheNamedSonames(d, c));
      // The comparison is not vacuous: what the node offers is found.
      if (d.source === 'discover') {
        expect(d.missing).toEqual([
          `libnvidia-opencl.so.${V}`, `libnvidia-fatbinaryloader.so.${V}`, `libnvidia-compiler.so.${V}`, `libnvidia-pkcs11.so.${V}`,
          `libnvidia-pkcs11-openssl3.so.${V}`,
        ]);
        const containerPaths = d.edits.mounts.map((m) => m.containerPath);
        expect(containerPaths).toEqual(expect.arrayContaining([
          `${c.libDir}/libcuda.so.${V}`, '/usr/bin/nvidia-smi', '/usr/bin/nvidia-cuda-mps-server', `/lib/firmware/nvidia/${V}/gsp_ga10x.bin`,
          '/var/run/nvidia-persistenced/socket', '/var/run/nvidia-fabricmanager/socket', '/tmp/nvidia-mps',
          ...(toolkit.hook ? [] : [`${c.libDir}/libcuda.so.1`, `${c.cacheDir}/libcuda.so.1`]),
        ]));
        expect(containerPaths.filter((p) => p.includes('535.0.0'))).toEqual([]);
        expect(d.edits.hooks.map((h) => h.path)).toEqual(toolkit.hook ? Array(2).fill(path.posix.join(config.nvidiaDriverRoot, '/usr/bin/nvidia-cdi-hook')) : []);
      }
      if (mode === 'toolkit') expect(d.source).toBe(toolkit.spec ? 'toolkit' : 'unavailable');
    }
    if (config.driverUserspace === 'auto' || config.driverUserspace === 'discover') {
      // The scan itself, beyond the decision: the pod reads the same ld cache (it names no other library dir
      // here, but a cache not mounted is a different scan: the agent falls back to the fixed dirs and says so).
      const scan = (root: string) => scanDriverRoot({ containerDriverRoot: root, hostDriverRoot: config.nvidiaDriverRoot, version: V, arch: 'x64' });
      const [onNode, inPod] = [await scan(path.join(host, config.nvidiaDriverRoot)), await scan(path.join(pod, config.containerDriverRoot))];
      expect(onNode.ldCacheProblem).toBeUndefined();
      expect(inPod.ldCacheProblem).toBeUndefined();
      expect(inPod.missing).toEqual(onNode.missing);
      expect({ ...inPod.files, libraries: [] }).toEqual({ ...onNode.files, libraries: [] });
      expect(inPod.files.libraries.map((l) => [l.dir, l.file])).toEqual(onNode.files.libraries.map((l) => [l.dir, l.file]));
    }
  });
});
