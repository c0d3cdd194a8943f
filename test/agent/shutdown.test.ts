/**
 * Graceful shutdown of the real process (issue #4 part 4): SIGTERM stops accepting calls, lets an in-flight
 * NodePrepareResources finish, flushes metrics to the OTLP collector, removes the sockets and exits 0 within a
 * bounded time; a second signal exits at once. The agent runs as one process (`node --import tsx src/cli.ts`,
 * Node 24 from node_modules/.bin) against an API server the test owns, which holds the claim GET in flight until
 * the test releases it (no sleeps: the test acts on "the GET arrived", "the sockets are gone", the exit).
 * SIGTERM during a long start-up reconciliation (issue 9 item 8: 50,000 claims whose CDI specs a reboot
 * removed) stops it between two claims and exits 0, leaving a checkpoint that loads whole.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubeConfig, ResourceV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { startApiServer } from '../../dev/apiserver/server.js';
import type { EmbeddedApiServer } from '../../dev/apiserver/types.js';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import { DRIVER, NODE, allocatedClaim, removeDir, tempDir } from '../helpers/agent.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { REPO_ROOT as REPO } from '../helpers/repo.js';
import { deferred, waitFor, within } from '../helpers/wait.js';
import { allocatableDevices } from '../../src/model/devices.js';
import { decodeCheckpoint, droppedEntries, encodeCheckpoint, type CheckpointClaim } from '../../src/state/checkpoint.js';
import { dgxInventory } from '../helpers/claims.js';
import { claimRef } from '../helpers/names.js';

const NODE24 = join(REPO, 'node_modules/.bin/node');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Agent {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string;
  readonly dir: string;
  readonly server: EmbeddedApiServer;
  readonly otlp: OtlpReceiver;
  readonly kubelet: KubeletSimulator;
  readonly api: ResourceV1Api;
}

async function startAgentProcess(): Promise<Agent> {
  const dir = await tempDir('gpulet-shutdown-');
  cleanups.push(() => removeDir(dir));
  const server = await startApiServer({ nodes: [NODE] });
  cleanups.push(() => server.close());
  const otlp = await startOtlpReceiver();
  cleanups.push(() => otlp.close());
  const kubeconfig = join(dir, 'api.kubeconfig');
  await writeFile(kubeconfig, server.kubeconfig(), { mode: 0o600 });
  const child = spawn(NODE24, ['--import', 'tsx', 'src/cli.ts',
    '--node-name', NODE, '--state-dir', join(dir, 'state'), '--metrics-address', '127.0.0.1:0',
    '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig, '--sample-interval', '200',
    // Export interval far beyond the test: any export the collector sees comes from the shutdown flush.
    '--otlp-endpoint', otlp.endpoint, '--otlp-export-interval', '600000'], {
    cwd: REPO,
    env: { PATH: `${join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/root' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (code, signal) => res({ code, signal })));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const agent: Agent = {
    child, exited, stderr: '', dir, server, otlp,
    kubelet: new KubeletSimulator({ registryDir: join(dir, 'state', 'plugins_registry'), rescanIntervalMs: 100 }),
    api: (() => {
      const kc = new KubeConfig();
      kc.loadFromString(server.kubeconfig());
      return kc.makeApiClient(ResourceV1Api);
    })(),
  };
  child.stderr?.on('data', (b: Buffer) => (agent.stderr += b.toString()));
  cleanups.push(() => agent.kubelet.stop());
  await agent.kubelet.start();
  await agent.kubelet.waitForPlugin(DRIVER, 20_000);
  return agent;
}

function sockets(dir: string): string[] {
  const found: string[] = [];
  for (const sub of ['state/plugins_registry', `state/plugins/${DRIVER}`]) {
    const d = join(dir, sub);
    if (existsSync(d)) found.push(...readdirSync(d).filter((f) => f.endsWith('.sock')));
  }
  return found;
}

describe('graceful shutdown', () => {
  it('finishes an in-flight prepare, flushes metrics, removes sockets and exits 0 on SIGTERM', async () => {
    const a = await startAgentProcess();
    const ref = await allocatedClaim(a.api, 'in-flight', [{ device: 'gpu-1' }]);
    // The server holds the claim GET until the test releases it: the prepare is in flight for as long as needed.
    const held = deferred();
    const release = deferred();
    cleanups.push(() => release.resolve());
    a.server.injectFault({ method: 'GET', pathIncludes: '/resourceclaims/in-flight', times: 1, arrived: () => held.resolve(), holdUntil: release.promise });
    const before = a.otlp.requests.length;
    let answered = false;
    const prepare = a.kubelet.prepare([ref]).finally(() => (answered = true));
    await within(held.promise, 'the claim GET held by the server');
    a.child.kill('SIGTERM');
    // Shutdown has begun and stopped accepting calls (both sockets are gone) while the prepare is still in flight.
    await waitFor(() => sockets(a.dir).length === 0, { what: 'the sockets removed after SIGTERM', detail: () => a.stderr.slice(-2000) });
    expect(answered).toBe(false);
    expect(a.child.exitCode).toBeNull();
    release.resolve();
    const res = await prepare;
    expect(res.claims[ref.uid]?.error ?? '').toBe('');
    expect(res.claims[ref.uid]?.devices.map((d) => d.device_name)).toEqual(['gpu-1']);
    // The agent bounds its own shutdown (--shutdown-timeout, 10 s by default); this deadline only ends a hung test.
    const { code } = await within(a.exited, 'exit after SIGTERM', 60_000, () => a.stderr.slice(-2000));
    expect(code).toBe(0);
    expect(sockets(a.dir)).toEqual([]);
    // The prepared claim was completed, not cut off: its CDI spec is on disk.
    expect(readdirSync(join(a.dir, 'state', 'cdi')).some((f) => f.includes(ref.uid))).toBe(true);
    // Metrics were flushed on the way out (the periodic export is 10 min away).
    await waitFor(() => a.otlp.requests.length > before, { what: 'the OTLP flush at shutdown' });
  });

  it('exits at once on a second signal, even with a call in flight', async () => {
    const a = await startAgentProcess();
    const ref = await allocatedClaim(a.api, 'stuck', [{ device: 'gpu-2' }]);
    // The claim GET is held until the test ends: a graceful shutdown would wait for this prepare (then time out
    // after --shutdown-timeout and exit 0); only the second-signal path exits 143 without it.
    const held = deferred();
    const release = deferred();
    cleanups.push(() => release.resolve());
    a.server.injectFault({ method: 'GET', pathIncludes: '/resourceclaims/stuck', times: 1, arrived: () => held.resolve(), holdUntil: release.promise });
    const prepare = a.kubelet.prepare([ref]).catch((err: unknown) => err);
    await within(held.promise, 'the claim GET held by the server');
    a.child.kill('SIGTERM');
    await waitFor(() => a.stderr.includes('"shutting down"'), { what: 'the "shutting down" log line after the first signal', detail: () => a.stderr.slice(-2000) });
    a.child.kill('SIGTERM');
    // "At once" = without waiting for the held call: the exit code tells which path was taken (143: the second
    // signal's; the graceful path would end 0 after its own bound). The deadline only ends a hung test.
    const { code } = await within(a.exited, 'exit after the second signal', 60_000, () => a.stderr.slice(-2000));
    expect(code).toBe(143);
    expect(a.stderr).toContain('second signal: exiting at once');
    // The call in flight was cut off, not answered.
    expect(release.settled).toBe(false);
    expect(await prepare).toBeInstanceOf(Error);
  });

  it('stops a long start-up reconciliation on SIGTERM between two claims and exits 0, the checkpoint whole', async () => {
    const entries = 50_000;
    const dir = await tempDir('gpulet-startup-abort-');
    cleanups.push(() => removeDir(dir));
    const server = await startApiServer({ nodes: [NODE] });
    cleanups.push(() => server.close());
    const kubeconfig = join(dir, 'api.kubeconfig');
    await writeFile(kubeconfig, server.kubeconfig(), { mode: 0o600 });
    // A checkpoint of 50,000 prepared claims whose specs are gone (a reboot emptied the CDI dir), same boot ID.
    const state = join(dir, 'state');
    await mkdir(state, { recursive: true, mode: 0o700 });
    const bootIdFile = join(dir, 'boot_id');
    await writeFile(bootIdFile, 'boot-1\n');
    const gpus = allocatableDevices(await dgxInventory(NODE)).filter((d) => d.kind === 'gpu');
    const claims: Record<string, CheckpointClaim> = {};
    for (let i = 0; i < entries; i++) {
      const ref = claimRef({ namespace: 'ml', name: `c-${i}`, uid: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}` });
      const d = gpus[i % gpus.length]!;
      claims[ref.uid] = { ...ref, state: 'PrepareCompleted', pods: [], configs: [],
        devices: [{ requestNames: ['gpu'], poolName: NODE, deviceName: d.name, uuid: d.uuid, cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-${d.name}`] }] };
    }
    await writeFile(join(state, 'checkpoint.json'), encodeCheckpoint(claims, 'boot-1'), { mode: 0o600 });
    const child = spawn(NODE24, ['--import', 'tsx', 'src/cli.ts', '--node-name', NODE, '--state-dir', state, '--metrics-address', '127.0.0.1:0',
      '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig], {
      cwd: REPO,
      env: { PATH: `${join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, HOME: process.env['HOME'] ?? '/root', GPULET_BOOT_ID_FILE: bootIdFile },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<{ code: number | null }>((res) => child.on('exit', (code) => res({ code })));
    cleanups.push(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    const cdi = join(state, 'cdi');
    const specs = () => (existsSync(cdi) ? readdirSync(cdi).filter((f) => f.endsWith('.json')) : []);
    await waitFor(() => specs().length >= 5, { what: 'the reconciliation restoring specs', timeoutMs: 60_000, intervalMs: 20, detail: () => stderr.slice(-2000) });
    child.kill('SIGTERM');
    const { code } = await within(exited, 'exit after SIGTERM during start-up', 60_000, () => stderr.slice(-2000));
    expect(code).toBe(0);
    expect(stderr).toContain('start-up reconciliation stopped by shutdown');
    expect(stderr).toContain('start-up cancelled by a signal');
    const restored = specs().length;
    expect(restored).toBeLessThan(entries); // stopped between two claims, long before the end
    expect(sockets(dir)).toEqual([]); // nothing was registered
    const saved = decodeCheckpoint(await readFile(join(state, 'checkpoint.json'), 'utf8'));
    expect(Object.keys(saved.claims)).toHaveLength(entries);
    expect(droppedEntries(saved.claims)).toEqual([]);
    for (const f of specs()) expect(JSON.parse(await readFile(join(cdi, f), 'utf8'))).toHaveProperty('devices'); // each written whole
  });
});
