/**
 * The DaemonSet's confinement, applied to the real agent process: does gpulet work with exactly what
 * daemonset/07-daemonset.yaml gives it?
 *
 * The agent (`src/cli.ts`, mock backend, against a real API server) runs as UID 0 with
 * - no capabilities at all (`capabilities.drop: [ALL]`): bounding, inheritable, ambient, permitted and
 *   effective sets empty (setpriv(1));
 * - no_new_privs (`allowPrivilegeEscalation: false`);
 * - a read-only root filesystem (`readOnlyRootFilesystem: true`): in a private mount namespace (unshare(1))
 *   `/` is remounted read-only and only its node directories (the hostPath mounts) plus TMPDIR (the /tmp
 *   emptyDir) are writable;
 * and a simulated kubelet registers it and prepares and unprepares a claim through its sockets.
 *
 * A control run of the same wrapper proves the confinement is real: the process cannot write to `/` (EROFS)
 * nor into a directory owned by another user (EACCES: CAP_DAC_OVERRIDE is gone), but can write into
 * root-owned directories, which is what the agent relies on (see daemonset/README.md, "Security").
 *
 * Needs root and util-linux (setpriv, unshare) with permission to create a mount namespace; skipped
 * otherwise, saying so.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { KubeConfig, ResourceV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import { allocatedClaim, checkpointClaims, DRIVER, NODE, removeDir, tempDir } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';
import { loadConfig } from '../../src/config.js';
import { REPO_ROOT } from '../helpers/manifests.js';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p));

/** Whether this machine can run the confinement (root, setpriv, unshare, mount namespaces). */
function canConfine(): boolean {
  if (process.getuid?.() !== 0 || SETPRIV === undefined || UNSHARE === undefined) return false;
  try {
    execFileSync(UNSHARE, ['--mount', '--propagation', 'private', '--', 'true'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

const supported = canConfine();
if (!supported) console.warn('security-confinement: skipped (needs root, setpriv and unshare --mount)');

/**
 * argv that runs `command` as the DaemonSet would: private mount namespace, `/` read-only except `writable`,
 * then setpriv to UID/GID 0 with every capability set empty and no_new_privs.
 */
function confined(writable: string, command: readonly string[]): string[] {
  const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro / && shift && exec "$@"';
  return [
    UNSHARE!, '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', writable,
    SETPRIV!, '--reuid=0', '--regid=0', '--clear-groups', '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all',
    '--no-new-privs', '--', ...command,
  ];
}

/** Run a confined command to completion; its stdout. */
function runConfined(writable: string, command: readonly string[]): string {
  const [file, ...args] = confined(writable, command);
  return execFileSync(file!, args, { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TMPDIR: join(writable, 'tmp') } });
}

/** `Cap*` and `NoNewPrivs` lines of /proc/<pid>/status. */
function privileges(pid: number): Record<string, string> {
  const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(Cap\w+|NoNewPrivs):/.test(l));
  return Object.fromEntries(lines.map((l) => l.split(/:\s+/) as [string, string]));
}

describe.skipIf(!supported)('the agent under the DaemonSet confinement (UID 0, no capabilities, no_new_privs, read-only /)', () => {
  let base: string;
  let server: EmbeddedApiServer;
  let child: ChildProcess | undefined;
  let output = '';
  let kubelet: KubeletSimulator | undefined;
  const dirs = { state: '', registry: '', plugins: '', cdi: '', dev: '', tmp: '' };

  beforeAll(async () => {
    base = await tempDir('gpulet-confined-');
    for (const [k, sub] of Object.entries({ state: 'state', registry: 'plugins_registry', plugins: 'plugins', cdi: 'cdi', dev: 'dev', tmp: 'tmp' })) {
      dirs[k as keyof typeof dirs] = join(base, sub);
    }
    mkdirSync(dirs.tmp, { mode: 0o700 });
    server = await startApiServer({ nodes: [NODE], kubeconfigPath: join(base, 'api.kubeconfig') });
  });

  afterAll(async () => {
    await kubelet?.stop();
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    await server?.close();
    await removeDir(base);
  });

  it('control: the wrapper really confines (no write to /, none into a directory root does not own; root-owned dirs are fine)', () => {
    const foreign = join(base, 'foreign');
    mkdirSync(foreign, { mode: 0o755 });
    chownSync(foreign, 65534, 65534);
    chmodSync(foreign, 0o755);
    const probe = [
      process.execPath, '-e',
      `const fs = require('node:fs');
       const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'ok'; } catch (e) { return e.code; } };
       console.log(JSON.stringify({
         root: tryWrite(${JSON.stringify(join(REPO_ROOT, `.gpulet-probe-${randomUUID()}`))}),
         foreign: tryWrite(${JSON.stringify(join(foreign, 'x'))}),
         own: tryWrite(${JSON.stringify(join(base, 'own-probe'))}),
         status: fs.readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => /^(CapEff|CapBnd|NoNewPrivs):/.test(l)),
       }));`,
    ];
    const result = JSON.parse(runConfined(base, probe)) as { root: string; foreign: string; own: string; status: string[] };
    expect(result).toEqual({
      root: 'EROFS',
      foreign: 'EACCES',
      own: 'ok',
      status: ['CapEff:\t0000000000000000', 'CapBnd:\t0000000000000000', 'NoNewPrivs:\t1'],
    });
    // The same write into the foreign directory succeeds unconfined (root with CAP_DAC_OVERRIDE): the
    // EACCES above is the dropped capability, not the directory.
    execFileSync(process.execPath, ['-e', `require('node:fs').writeFileSync(${JSON.stringify(join(foreign, 'y'))}, 'y')`]);
    expect(readdirSync(foreign)).toEqual(['y']);
  });

  it('registers with the kubelet, prepares and unprepares a claim, and shuts down cleanly', async () => {
    const args = [
      '--node-name', NODE, '--backend', 'mock', '--kube-api', 'kubeconfig', '--kubeconfig', join(base, 'api.kubeconfig'),
      '--state-dir', dirs.state, '--plugin-registry-dir', dirs.registry, '--plugins-dir', dirs.plugins, '--cdi-dir', dirs.cdi,
      '--dev-root', dirs.dev, '--metrics-address', '127.0.0.1:0', '--sample-interval', '500', '--log-level', 'warn',
    ];
    const config = loadConfig(args, {}, base); // the same arguments, parsed as the child will
    const [file, ...argv] = confined(base, [process.execPath, '--import', 'tsx', join(REPO_ROOT, 'src/cli.ts'), ...args]);
    child = spawn(file!, argv, { cwd: REPO_ROOT, env: { ...process.env, TMPDIR: dirs.tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

    kubelet = new KubeletSimulator({ registryDir: dirs.registry, rescanIntervalMs: 200 });
    await kubelet.start();
    await kubelet.waitForPlugin(DRIVER, 45_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\nagent output:\n${output}`);
    });

    // The serving process is the confined one: same PID through unshare → sh → setpriv → node (all exec).
    expect(privileges(child.pid!)).toMatchObject({
      CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000',
      CapBnd: '0000000000000000', CapAmb: '0000000000000000', NoNewPrivs: '1',
    });

    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfig());
    const api = kc.makeApiClient(ResourceV1Api);
    const ref = await allocatedClaim(api, 'confined', [{ device: 'gpu-0' }], { pod: { name: 'p', uid: randomUUID() } });
    const prepared = await kubelet.prepare([ref]);
    expect(prepared.claims[ref.uid]?.error, output).toBe('');
    expect(prepared.claims[ref.uid]?.devices.length).toBeGreaterThan(0);
    expect(readdirSync(dirs.cdi).filter((n) => n.includes(ref.uid))).toHaveLength(1);
    expect((await checkpointClaims(config))[ref.uid]?.state).toBe('PrepareCompleted');

    expect((await kubelet.unprepare([ref])).claims[ref.uid]?.error).toBe('');
    expect(readdirSync(dirs.cdi).filter((n) => n.includes(ref.uid))).toEqual([]);
    expect(await checkpointClaims(config)).not.toHaveProperty(ref.uid);

    // SIGTERM: the agent removes its sockets and exits 0, all without a capability.
    child.kill('SIGTERM');
    expect(await exited, output).toBe(0);
    await waitFor(() => readdirSync(dirs.registry).length === 0, { what: 'sockets removed' });
    expect(output).not.toMatch(/EACCES|EPERM|EROFS/);
  });
});
