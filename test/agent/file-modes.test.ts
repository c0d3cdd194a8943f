/**
 * Files the running agent creates on a node, checked on a real agent (startAgent on temp dirs, a real
 * API server, a real gRPC client over the agent's unix sockets):
 *
 * - Permission bits. The agent runs under umask 000 here, the most permissive a node could have, so every
 *   mode below comes from the agent itself and not from the environment: a file or directory created without
 *   an explicit mode would show up as 0666/0777 and fail. Expected (daemonset/README.md, "Security"):
 *   kubelet sockets 0600 in 0750 directories (only root, which the kubelet runs as, may connect: a socket
 *   that others could connect to would let any local user prepare claims); the state directory 0700 and the
 *   checkpoint 0600 (claim names and namespaces of other tenants); CDI specs 0644 in a 0755 directory
 *   (the container runtime runs as root, so 0600 would do too; 0644 is what `nvidia-ctk cdi generate` and
 *   the CDI library write, and a spec holds no secret: device paths and the claim's environment). Nothing
 *   the agent creates is writable by group or others.
 * - File names never built from unvalidated input. Claim UIDs with `../`, `/`, an absolute path and NUL
 *   are sent through the real DRA socket, for a claim that exists in the API server; each is rejected with an
 *   error naming the UID, and nothing appears anywhere in the agent's tree (or at the paths a naive
 *   `path.join(cdiDir, …uid…)` would reach). The pod UID and driver name that go into socket names are
 *   validated when the configuration is loaded.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { loadConfig } from '../../src/config.js';
import { allocatedClaim, checkpointClaims, NODE, removeDir, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';

/** Permission bits of `p` (no symlink following). */
function mode(p: string): number {
  return lstatSync(p).mode & 0o7777;
}

const octal = (m: number): string => `0${m.toString(8).padStart(3, '0')}`;

/** Every path under `root` (root included) with its lstat, depth first. */
function walk(root: string): Array<{ path: string; stat: Stats }> {
  const out = [{ path: root, stat: lstatSync(root) }];
  if (out[0]!.stat.isDirectory()) {
    for (const name of readdirSync(root).sort()) out.push(...walk(join(root, name)));
  }
  return out;
}

/** Entries of the agent's tree (path, type and mode; size too for CDI specs). */
function snapshot(): string[] {
  return walk(base).map((e) => `${e.path} ${e.stat.mode}${e.path.startsWith(`${dirs.cdi}/`) ? ` ${e.stat.size}` : ''}`);
}

let base: string;
let server: EmbeddedApiServer;
let h: Harness;
let savedUmask: number;
const dirs = { state: '', registry: '', plugins: '', cdi: '', dev: '' };

beforeAll(async () => {
  // umask 000: the agent's own modes are all that protects its files (vitest runs this file in a forked
  // process, so the umask is this test's alone).
  savedUmask = process.umask(0);
  base = await tempDir('gpulet-sec-');
  dirs.state = join(base, 'state');
  dirs.registry = join(base, 'kubelet', 'plugins_registry');
  dirs.plugins = join(base, 'kubelet', 'plugins');
  dirs.cdi = join(base, 'cdi');
  dirs.dev = join(base, 'dev');
  server = await startApiServer({ nodes: [NODE] });
  h = await startHarness({
    dir: base,
    server,
    extraArgs: [
      '--state-dir', dirs.state, '--plugin-registry-dir', dirs.registry, '--plugins-dir', dirs.plugins,
      '--cdi-dir', dirs.cdi, '--dev-root', dirs.dev,
    ],
  });
});

afterAll(async () => {
  await h?.stop();
  await server?.close();
  process.umask(savedUmask);
  await removeDir(base);
});

describe('modes of what the running agent creates (umask 000)', () => {
  it('kubelet sockets: 0600 unix sockets in 0750 directories', () => {
    const sockets = [h.agent.plugin.registrationSocket, h.agent.plugin.draSocket];
    for (const s of sockets) {
      expect(lstatSync(s).isSocket(), s).toBe(true);
      expect(octal(mode(s)), s).toBe('0600');
    }
    // The DRA socket's own directory (<plugins>/<driver>) and the registry dir are created by the agent.
    expect(dirname(h.agent.plugin.draSocket)).toBe(join(dirs.plugins, h.config.driverName));
    expect(octal(mode(dirname(h.agent.plugin.draSocket)))).toBe('0750');
    expect(octal(mode(dirs.registry))).toBe('0750');
  });

  it('after a prepare: checkpoint 0600 in a 0700 state dir, CDI spec 0644 in a 0755 dir, nothing group/other-writable', async () => {
    const ref = await allocatedClaim(h.api, 'modes', [{ device: 'gpu-0' }], { pod: { name: 'p', uid: randomUUID() } });
    const res = await h.kubelet.prepare([ref]);
    expect(res.claims[ref.uid]?.error).toBe('');
    expect((await checkpointClaims(h.config))[ref.uid]?.state).toBe('PrepareCompleted');

    expect(h.config.checkpointPath).toBe(join(dirs.state, 'checkpoint.json'));
    expect(octal(mode(h.config.checkpointPath))).toBe('0600');
    expect(octal(mode(dirs.state))).toBe('0700');

    const specs = readdirSync(dirs.cdi).filter((n) => n.includes(ref.uid));
    expect(specs).toHaveLength(1);
    expect(octal(mode(join(dirs.cdi, specs[0]!)))).toBe('0644');
    expect(octal(mode(dirs.cdi))).toBe('0755');

    // The whole tree the agent wrote (state, kubelet dirs, CDI, mock device stand-ins): no write bit for
    // group or others, no set-id bits, and sockets/state readable by root alone.
    const loose = walk(base)
      .filter((e) => e.path !== base && (e.stat.mode & 0o7022) !== 0)
      .map((e) => `${e.path.slice(base.length)} ${octal(e.stat.mode & 0o7777)}`);
    expect(loose).toEqual([]);
    const stateTree = walk(dirs.state).filter((e) => (e.stat.mode & 0o077) !== 0).map((e) => `${e.path} ${octal(e.stat.mode & 0o777)}`);
    expect(stateTree).toEqual([]);
  });
});

describe('no file name from unvalidated input', () => {
  const hostile = [
    '../escape',
    '../../../../../../../../tmp/gpulet-escape',
    'a/b',
    '/etc/gpulet-escape',
    'x\u0000y',
    `${'..'}/${'..'}/state/checkpoint.json`,
  ];

  /**
   * Let the per-claim accounting's own checkpoint writes settle (src/telemetry/accounting.ts: asynchronous, right
   * after a prepare and then once a minute): every prepared claim tracked, its usage recorded, the interval restarted.
   */
  async function accountingSettled(): Promise<void> {
    const accounting = h.agent.telemetry.accounting;
    await waitFor(() => h.agent.claims.prepared().every((c) => accounting.totals(c.claim.uid) !== undefined), { what: 'the accounting tracking every prepared claim' });
    await accounting.flush();
  }

  it.each(hostile.map((uid) => [JSON.stringify(uid), uid] as const))('claim UID %s is rejected by name and writes nothing', async (_n, uid) => {
    // A claim that exists and is allocated: only the UID the kubelet sends is hostile.
    const real = await allocatedClaim(h.api, `hostile-${Math.random().toString(36).slice(2, 8)}`, [{ device: 'gpu-1' }]);
    await accountingSettled();
    const before = snapshot();
    const checkpointBefore = await checkpointClaims(h.config);

    const res = await h.kubelet.prepare([{ ...real, uid }]);
    const entry = res.claims[uid];
    expect(entry, 'an answer keyed by the UID as sent').toBeDefined();
    expect(entry?.devices ?? []).toEqual([]);
    expect(entry?.error).toMatch(/uid/i);
    // Named as sent (JSON-escaped, so a NUL or a newline cannot forge log lines).
    expect(entry?.error).toContain(JSON.stringify(uid));

    const unprep = await h.kubelet.unprepare([{ ...real, uid }]);
    expect(unprep.claims[uid]?.error ?? '').not.toBe('');

    // Nothing created or removed anywhere in the agent's tree, no CDI spec changed, the checkpoint's claims
    // unchanged, and nothing at the paths a naive join would reach outside the tree.
    const after = snapshot();
    expect(after).toEqual(before);
    expect(await checkpointClaims(h.config)).toEqual(checkpointBefore);
    const clean = uid.replace(/\0/g, '');
    for (const target of [resolve(dirs.cdi, `x_${clean}.json`), resolve(dirs.cdi, `${clean}.json`), resolve(dirs.state, clean)]) {
      if (target.startsWith(`${base}/`)) continue; // inside the tree: covered by the snapshot above
      expect(() => lstatSync(target), target).toThrow(/ENOENT/);
    }

    // The agent still serves: the real UID prepares.
    expect((await h.kubelet.prepare([real])).claims[real.uid]?.error).toBe('');
  });

  it.each([
    ['--pod-uid', '../../etc'],
    ['--pod-uid', 'a/b'],
    ['--driver-name', '../gpu.gpulet.dev'],
    ['--driver-name', 'gpu/gpulet.dev'],
  ])('%s %s (goes into socket names) is refused at start, naming the option', (flag, value) => {
    expect(() => loadConfig(['--node-name', NODE, '--state-dir', base, flag, value], {}, base)).toThrow(/pod.?uid|driver.?name/i);
  });
});
