/**
 * Socket naming and lifecycle (docs/contracts.md §2, upstream kubeletplugin helper): plain and pod-UID names,
 * stale sockets replaced, non-sockets never deleted, sockets removed on stop.
 */
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { socketPaths } from '../../../src/dra/kubelet/sockets.js';
import { startKubeletPlugin } from '../../../src/dra/kubelet/plugin.js';
import { loadConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import { objectUidSchema } from '../../../src/model/names.js';
import { driverName } from '../../helpers/names.js';
import { silentLogger } from '../../../src/log.js';
import { InMemoryPreparer } from '../../../dev/kubelet/fake-preparer.js';

const POD_UID = objectUidSchema.parse('7c9e6679-7425-40de-944b-e07fc1f90ae7');
const DRIVER = driverName('gpu.gpulet.dev');
let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'gpulet-ks-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('socketPaths', () => {
  it('uses the upstream names', () => {
    expect(socketPaths({ registryDir: '/var/lib/kubelet/plugins_registry', pluginsDir: '/var/lib/kubelet/plugins', driverName: DRIVER })).toEqual({
      registration: '/var/lib/kubelet/plugins_registry/gpu.gpulet.dev-reg.sock',
      dra: '/var/lib/kubelet/plugins/gpu.gpulet.dev/dra.sock',
    });
  });

  it('adds the pod UID for rolling updates', () => {
    expect(socketPaths({ registryDir: '/r', pluginsDir: '/p', driverName: DRIVER, podUid: POD_UID })).toEqual({
      registration: `/r/gpu.gpulet.dev-${POD_UID}-reg.sock`,
      dra: `/p/gpu.gpulet.dev/dra-${POD_UID}.sock`,
    });
  });

  it('never gets pod UIDs and driver names that are not safe in a path: refused where they enter', () => {
    // socketPaths takes only checked names (DriverName, ObjectUid); a plain string does not compile ...
    // @ts-expect-error a plain string is not a DriverName
    expect(socketPaths({ registryDir: '/r', pluginsDir: '/p', driverName: 'gpu.gpulet.dev' }).dra).toBe('/p/gpu.gpulet.dev/dra.sock');
    // @ts-expect-error a plain string is not an ObjectUid
    expect(socketPaths({ registryDir: '/r', pluginsDir: '/p', driverName: DRIVER, podUid: `${POD_UID}` }).dra).toBe(`/p/gpu.gpulet.dev/dra-${POD_UID}.sock`);
    // ... and the configuration, where they enter, refuses these with a ConfigError naming the option.
    const load = (flag: string, value: string) => () => loadConfig(['--node-name', 'n', flag, value], {}, '/x');
    for (const uid of ['', '../x', 'abc', `${POD_UID}/..`, `${POD_UID} `, POD_UID.toUpperCase()]) {
      expect(load('--pod-uid', uid)).toThrow(ConfigError);
      expect(load('--pod-uid', uid)).toThrow(/--pod-uid/);
    }
    for (const name of ['', '../evil', 'Gpu.Example', 'a/b', `${'x'.repeat(64)}`]) {
      expect(load('--driver-name', name)).toThrow(ConfigError);
      expect(load('--driver-name', name)).toThrow(/--driver-name/);
    }
  });

  it('rejects paths longer than a unix socket allows', () => {
    expect(() => socketPaths({ registryDir: `/${'d'.repeat(120)}`, pluginsDir: '/p', driverName: DRIVER })).toThrow(/unix socket/);
  });
});

describe('socket lifecycle', () => {
  const opts = () => ({
    driverName: DRIVER,
    registryDir: path.join(dir, 'registry'),
    pluginsDir: path.join(dir, 'plugins'),
    preparer: new InMemoryPreparer(),
    logger: silentLogger(),
  });

  it('replaces a stale socket left by a dead instance and removes both sockets on stop (idempotent)', async () => {
    const stalePath = path.join(dir, 'registry', 'gpu.gpulet.dev-reg.sock');
    await fs.mkdir(path.dirname(stalePath), { recursive: true });
    // A real crash: a process listens on the path and is SIGKILLed, leaving a dead socket file behind.
    spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stalePath)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    const connect = (p: string) =>
      new Promise<void>((resolve, reject) => {
        const c = net.connect(p, () => {
          c.end();
          resolve();
        });
        c.on('error', reject);
      });
    await expect(connect(stalePath)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect((await fs.lstat(stalePath)).isSocket()).toBe(true);

    const plugin = await startKubeletPlugin(opts());
    expect(plugin.registrationSocket).toBe(stalePath);
    const st = await fs.lstat(stalePath);
    expect(st.isSocket()).toBe(true);
    await expect(connect(stalePath)).resolves.toBeUndefined(); // a live listener now
    expect(st.mode & 0o777).toBe(0o600);
    expect((await fs.stat(path.dirname(plugin.draSocket))).mode & 0o777).toBe(0o750);

    await plugin.stop();
    await plugin.stop();
    await expect(fs.lstat(plugin.registrationSocket)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(fs.lstat(plugin.draSocket)).rejects.toMatchObject({ code: 'ENOENT' });
    // Nothing left behind (no temporary bind names either).
    expect(await fs.readdir(path.dirname(plugin.registrationSocket))).toEqual([]);
    expect(await fs.readdir(path.dirname(plugin.draSocket))).toEqual([]);
  });

  it('refuses to delete a regular file in the socket path', async () => {
    const o = opts();
    const file = path.join(o.pluginsDir, 'gpu.gpulet.dev', 'dra.sock');
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, 'precious');
    await expect(startKubeletPlugin(o)).rejects.toThrow(/not a socket/);
    expect(await fs.readFile(file, 'utf8')).toBe('precious');
  });

  it('serves on pod-UID socket names and leaves a successor socket alone on stop', async () => {
    const plugin = await startKubeletPlugin({ ...opts(), podUid: POD_UID });
    expect(path.basename(plugin.registrationSocket)).toBe(`gpu.gpulet.dev-${POD_UID}-reg.sock`);
    expect(path.basename(plugin.draSocket)).toBe(`dra-${POD_UID}.sock`);
    expect((await fs.lstat(plugin.draSocket)).isSocket()).toBe(true);
    // Another process replaced our registration socket: stop must not remove the successor's.
    await fs.unlink(plugin.registrationSocket);
    const successor = net.createServer();
    await new Promise<void>((r) => successor.listen(plugin.registrationSocket, r));
    await plugin.stop();
    expect((await fs.lstat(plugin.registrationSocket)).isSocket()).toBe(true);
    await expect(fs.lstat(plugin.draSocket)).rejects.toMatchObject({ code: 'ENOENT' });
    await new Promise<void>((r) => successor.close(() => r()));
  });
});
