/**
 * The sandbox of the fuzz suites: one whole agent (`startAgent` via the e2e harness, `--kube-api kubeconfig`
 * against a directly started embedded API server) whose state dir and CDI dir sit four levels deep in a
 * fresh temp tree, so that a path escaping either dir (`../`) lands in the tree and is seen by a snapshot.
 *
 *   <root>/a/b/c/d/state     --state-dir (checkpoint, kubeconfig, mock device stand-ins under dev/)
 *   <root>/a/b/c/d/cdi       --cdi-dir
 *   <root>/a/b/c/d/registry  --plugin-registry-dir     <root>/a/b/c/d/plugins  --plugins-dir
 *
 * Also: ResourceClaims written straight into the API server's store (any JSON as `status`, as the brief
 * allows for statuses the typed client would reshape), the invariants every case must keep, and a canary
 * (a fresh valid claim prepared and unprepared) that proves the agent still serves.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { expect } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../../dev/apiserver/server.js';
import { allocatableDevices } from '../../../src/model/devices.js';
import type { DraApiVersion } from '../../../src/dra/kubelet/grpc-protos.js';
import { decodeCheckpoint, type CheckpointClaims } from '../../../src/state/checkpoint.js';
import { DRIVER, NODE, removeDir, startHarness, tempDir, type Harness } from '../agent.js';
import { encodeClaimsRequest, RawDraClient } from './wire.js';

/** A running sandbox. */
export interface Sandbox {
  readonly root: string;
  readonly stateDir: string;
  readonly cdiDir: string;
  readonly server: EmbeddedApiServer;
  readonly harness: Harness;
  readonly client: RawDraClient;
  /** Names of the allocatable devices of the agent's (mock) inventory, e.g. `gpu-0`. */
  readonly devices: readonly string[];
  stop(): Promise<void>;
}

/** Start the API server and the agent in a fresh temp tree. */
export async function startSandbox(): Promise<Sandbox> {
  const root = await tempDir('gpulet-fuzz-');
  const base = join(root, 'a', 'b', 'c', 'd');
  const stateDir = join(base, 'state');
  const cdiDir = join(base, 'cdi');
  await mkdir(stateDir, { recursive: true });
  const server = await startApiServer({ nodes: [NODE] });
  let harness: Harness;
  try {
    harness = await startHarness({
      dir: stateDir,
      server,
      extraArgs: ['--cdi-dir', cdiDir, '--plugin-registry-dir', join(base, 'registry'), '--plugins-dir', join(base, 'plugins')],
    });
  } catch (err) {
    await server.close();
    await removeDir(root);
    throw err;
  }
  const plugin = harness.kubelet.plugins()[0];
  if (plugin === undefined) throw new Error('no plugin registered');
  const client = new RawDraClient(plugin.endpoint);
  const devices = allocatableDevices(harness.agent.backend.inventory()).map((d) => d.name);
  return {
    root, stateDir, cdiDir, server, harness, client, devices,
    stop: async () => {
      client.close();
      await harness.stop();
      await server.close();
      await removeDir(root);
    },
  };
}

// ---- API objects ----

/** Create namespace `ns` in the store unless it exists. */
export function ensureNamespace(server: EmbeddedApiServer, ns: string): void {
  if (server.get('v1', 'Namespace', undefined, ns) === undefined) {
    server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
}

/**
 * Create a ResourceClaim with `status` exactly as given (any JSON; omitted when undefined) and return its
 * server-assigned UID. The spec asks for `gpus` of DeviceClass gpu.gpulet.dev (the agent never reads it).
 */
export function putClaim(server: EmbeddedApiServer, ns: string, name: string, status: unknown): string {
  ensureNamespace(server, ns);
  const created = server.create({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name, namespace: ns },
    spec: { devices: { requests: [{ name: 'gpus', exactly: { deviceClassName: DRIVER, count: 1 } }] } },
    ...(status === undefined ? {} : { status }),
  });
  const uid = created.metadata.uid;
  if (uid === undefined) throw new Error('the API server assigned no uid');
  return uid;
}

/** Delete a ResourceClaim (no-op when absent). */
export function deleteClaim(server: EmbeddedApiServer, ns: string, name: string): void {
  server.delete('resource.k8s.io/v1', 'ResourceClaim', ns, name);
}

/** A valid allocation of one whole device of our driver and pool (resource.k8s.io/v1 AllocationResult). */
export function validStatus(device: string): Record<string, unknown> {
  return { allocation: { devices: { results: [{ request: 'gpus', driver: DRIVER, pool: NODE, device }] } } };
}

// ---- filesystem ----

/** Every path under the tree → `type:size:mtime` (directories and sockets without size/mtime). */
export type TreeSnapshot = ReadonlyMap<string, string>;

/** Snapshot the sandbox tree. */
export async function snapshot(root: string): Promise<TreeSnapshot> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const p = join(dir, name);
      const st = await lstat(p).catch(() => undefined);
      if (st === undefined) continue;
      if (st.isDirectory()) {
        out.set(p, 'dir');
        await walk(p);
      } else if (st.isFile()) out.set(p, `file:${st.size}:${st.mtimeMs}`);
      else out.set(p, st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : 'other');
    }
  };
  await walk(root);
  return out;
}

function inside(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep);
}

/** Paths created, changed or removed between two snapshots outside the CDI dir and the state dir. */
export function changesOutside(sb: Pick<Sandbox, 'cdiDir' | 'stateDir'>, before: TreeSnapshot, after: TreeSnapshot): string[] {
  const allowed = (p: string): boolean => inside(sb.cdiDir, p) || inside(sb.stateDir, p) || p === sb.cdiDir;
  const bad: string[] = [];
  for (const [p, v] of after) if (before.get(p) !== v && !allowed(p)) bad.push(`${before.has(p) ? 'changed' : 'created'} ${p}`);
  for (const p of before.keys()) if (!after.has(p) && !allowed(p)) bad.push(`removed ${p}`);
  return bad;
}

/** CDI spec files in the CDI dir. */
export async function cdiSpecs(sb: Pick<Sandbox, 'cdiDir'>): Promise<string[]> {
  if (!existsSync(sb.cdiDir)) return [];
  return (await readdir(sb.cdiDir)).filter((n) => n.endsWith('.json') || n.endsWith('.yaml'));
}

/**
 * The checkpoint's claims, verified by `decodeCheckpoint` (apiVersion, kind, checksum, entry shapes);
 * `{}` when no checkpoint was written yet. Throws when the file does not verify.
 */
export async function verifiedCheckpoint(sb: Pick<Sandbox, 'harness'>): Promise<CheckpointClaims> {
  let text: string;
  try {
    text = await readFile(sb.harness.config.checkpointPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  return decodeCheckpoint(text).claims;
}

/**
 * Reset after a case (pass or fail), so one failure cannot cascade into the next cases or into shrinking:
 * unprepare every claim the checkpoint still holds, then check that the checkpoint and the CDI dir are empty.
 */
export async function resetAgent(sb: Sandbox): Promise<void> {
  const left = Object.values(await verifiedCheckpoint(sb).catch(() => ({})));
  if (left.length > 0) {
    await sb.client.unprepare('v1', encodeClaimsRequest(left.map((c) => ({ namespace: c.namespace, name: c.name, uid: c.uid }))));
  }
}

// ---- liveness ----

let canaries = 0;

/**
 * The agent still serves: /healthz answers 200, and a fresh valid claim prepares (devices with CDI IDs,
 * spec written, checkpoint PrepareCompleted) and unprepares (spec and entry gone) over `version`.
 */
export async function expectAlive(sb: Sandbox, version: DraApiVersion): Promise<void> {
  const health = await fetch(`${sb.harness.agent.telemetry.url}/healthz`);
  expect(health.status).toBe(200);
  canaries += 1;
  const name = `canary-${canaries}`;
  const device = sb.devices[canaries % sb.devices.length] ?? 'gpu-0';
  const uid = putClaim(sb.server, 'default', name, validStatus(device));
  try {
    const req = encodeClaimsRequest([{ namespace: 'default', name, uid }]);
    const res = await sb.client.prepare(version, req);
    if (!res.ok) throw new Error(`canary prepare failed: ${res.error.message}`);
    expect(res.response.claims[uid]?.error).toBe('');
    expect(res.response.claims[uid]?.devices.map((d) => d.device_name)).toEqual([device]);
    expect((await verifiedCheckpoint(sb))[uid]?.state).toBe('PrepareCompleted');
    expect((await cdiSpecs(sb)).filter((f) => f.includes(uid))).toHaveLength(1);
    const un = await sb.client.unprepare(version, req);
    if (!un.ok) throw new Error(`canary unprepare failed: ${un.error.message}`);
    expect(un.response.claims).toEqual({ [uid]: { error: '' } });
    expect((await verifiedCheckpoint(sb))[uid]).toBeUndefined();
    expect((await cdiSpecs(sb)).filter((f) => f.includes(uid))).toEqual([]);
  } finally {
    deleteClaim(sb.server, 'default', name);
  }
}
