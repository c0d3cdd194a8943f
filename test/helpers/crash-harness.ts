/**
 * Harness of the crash, reboot and checkpoint tests: the real CLI as a process (`node_modules/.bin/tsx
 * src/cli.ts`, the production command) in `--kube-api kubeconfig` mode against an API server of the test's
 * own (`startApiServer`), so the server outlives every agent process; a fresh KubeletSimulator per agent
 * process (as the kubelet re-registers a restarted plugin); claims allocated as the scheduler does; and the
 * invariants checked with independent means (sha256 recomputed here, the official CDI schema).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { KubeletSimulator } from '../../dev/kubelet/simulator.js';
import type { ClaimRef } from '../../src/model/types.js';
import { cdiValidator, DRIVER, NODE } from './agent.js';
import { claimRef } from './names.js';
import { REPO_ROOT as REPO } from './repo.js';
import { GiveUp, waitFor } from './wait.js';

export { DRIVER, NODE };

const TSX = join(REPO, 'node_modules/.bin/tsx');
/** CDI vendor of our driver and the file-name prefix of its claim specs (docs/contracts.md §6). */
export const SPEC_PREFIX = `k8s.${DRIVER}-claim_`;

/** A CLI process. */
export interface AgentRun {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  /** Resolves when the process has exited: exit code, or the signal that ended it. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** Options of {@link spawnAgent}. */
export interface SpawnOptions {
  readonly dir: string;
  readonly server: EmbeddedApiServer;
  /** `GPULET_FAULT_POINT`. */
  readonly faultPoint?: string;
  /** Extra environment (e.g. `GPULET_CLEANUP_INTERVAL`). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Path of the boot ID file the agents of `dir` read (`GPULET_BOOT_ID_FILE`). */
export const bootIdFile = (dir: string): string => join(dir, 'boot_id');
export const cdiDir = (dir: string): string => join(dir, 'cdi');
export const checkpointPath = (dir: string): string => join(dir, 'checkpoint.json');

/**
 * Start the CLI on `dir` with a clean environment (PATH with node_modules/.bin first so tsx runs the
 * project's Node, HOME, the boot ID file, and what the options add), in its own process group.
 */
export async function spawnAgent(opts: SpawnOptions): Promise<AgentRun> {
  const kubeconfig = join(opts.dir, 'api.kubeconfig');
  await writeFile(kubeconfig, opts.server.kubeconfig(), { mode: 0o600 });
  const args = [
    'src/cli.ts', '--node-name', NODE, '--state-dir', opts.dir, '--metrics-address', '127.0.0.1:0', '--sample-interval', '1000',
    '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig, '--log-level', 'info', '--shutdown-timeout', '5000',
  ];
  const env: Record<string, string> = {
    PATH: `${join(REPO, 'node_modules/.bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`,
    HOME: process.env['HOME'] ?? '/root',
    GPULET_BOOT_ID_FILE: bootIdFile(opts.dir),
    ...(opts.faultPoint !== undefined ? { GPULET_FAULT_POINT: opts.faultPoint } : {}),
    ...opts.env,
  };
  const child = spawn(TSX, args, { cwd: REPO, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  const run: AgentRun = { child, stderr: () => stderr, exited };
  await waitFor(() => {
    if (child.exitCode !== null || child.signalCode !== null) throw new GiveUp(`gpulet exited early:\n${stderr.slice(-3000)}`);
    return stderr.includes('"gpulet is running"');
  }, { what: 'the "gpulet is running" log line', timeoutMs: 30_000 });
  return run;
}

/** SIGKILL the run's whole process group (tsx and the agent). ESRCH (gone) is fine. */
export function killGroup(run: AgentRun): void {
  if (run.child.pid === undefined) return;
  try {
    process.kill(-run.child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** SIGTERM the agent and expect a clean exit (0) within the bound. */
export async function stopAgent(run: AgentRun): Promise<number | null> {
  run.child.kill('SIGTERM');
  const timer = setTimeout(() => killGroup(run), 30_000); // a bound to end a hung agent, not a speed claim
  const { code } = await run.exited;
  clearTimeout(timer);
  return code;
}

/** A simulated kubelet registered with the agent of `dir`. */
export async function kubeletFor(dir: string): Promise<KubeletSimulator> {
  const kubelet = new KubeletSimulator({ registryDir: join(dir, 'plugins_registry'), rescanIntervalMs: 100 });
  await kubelet.start();
  await kubelet.waitForPlugin(DRIVER, 15_000);
  return kubelet;
}

/**
 * Create a ResourceClaim and allocate it as the scheduler does: results for our driver and pool on
 * `devices` (request `gpus`), `reservedFor` one pod. Through the server's store (same validation-free
 * path the scheduler's status write ends in).
 */
export function allocateClaim(server: EmbeddedApiServer, name: string, devices: readonly string[], namespace = 'default'): ClaimRef {
  const created = server.create({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { name, namespace },
    spec: { devices: { requests: [{ name: 'gpus', exactly: { deviceClassName: DRIVER, count: devices.length } }] } },
  });
  const updated = server.updateStatus({
    ...created,
    status: {
      allocation: { devices: { results: devices.map((device) => ({ request: 'gpus', driver: DRIVER, pool: NODE, device })) } },
      reservedFor: [{ resource: 'pods', name: `${name}-pod`, uid: randomUUID() }],
    },
  });
  return claimRef({ namespace, name, uid: updated.metadata.uid ?? '' });
}

/** Expected CDI device IDs of a claim (docs/contracts.md §6: `<vendor>/<class>=<claimUID>-<device>`). */
export function expectedCdiIds(ref: ClaimRef, devices: readonly string[]): string[] {
  return devices.map((d) => `k8s.${DRIVER}/claim=${ref.uid}-${d}`);
}

/** A checkpoint entry as the tests read it. */
export interface RawEntry {
  readonly state: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly devices: readonly { readonly deviceName: string; readonly cdiDeviceIds: readonly string[] }[];
}

/** JSON with keys sorted at every level (an independent implementation of the canonical form). */
function sortedJson(v: unknown): string {
  const sort = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sort) : x !== null && typeof x === 'object' ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, y]) => [k, sort(y)])) : x;
  return JSON.stringify(sort(v));
}

/**
 * Read the checkpoint and verify it independently: apiVersion, kind, and checksum = sha256 of the sorted
 * JSON of `claims`. Missing file → `undefined`.
 * @throws Error when it does not verify.
 */
export async function verifiedCheckpoint(dir: string): Promise<{ readonly bootId: string; readonly claims: Record<string, RawEntry> } | undefined> {
  let text: string;
  try {
    text = await readFile(checkpointPath(dir), 'utf8');
  } catch {
    return undefined;
  }
  const doc = JSON.parse(text) as { apiVersion: string; kind: string; bootId: string; checksum: string; claims: Record<string, RawEntry> };
  if (doc.apiVersion !== 'gpulet.dev/v1' || doc.kind !== 'Checkpoint') throw new Error(`unexpected apiVersion/kind ${doc.apiVersion}/${doc.kind}`);
  const sum = createHash('sha256').update(sortedJson(doc.claims)).digest('hex');
  if (sum !== doc.checksum) throw new Error(`checksum ${doc.checksum} does not match the content (${sum})`);
  return { bootId: doc.bootId, claims: doc.claims };
}

/** UIDs of our claim spec files in the CDI dir. */
export async function specUids(dir: string): Promise<string[]> {
  const names = await readdir(cdiDir(dir)).catch(() => [] as string[]);
  return names.filter((n) => n.startsWith(SPEC_PREFIX) && n.endsWith('.json')).map((n) => n.slice(SPEC_PREFIX.length, -5)).sort();
}

/** Files whose names say they are temp files of an interrupted atomic write. */
export async function tempFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of [dir, cdiDir(dir)]) {
    for (const n of await readdir(d).catch(() => [] as string[])) if (n.includes('.tmp-')) out.push(join(d, n));
  }
  return out;
}

const validateCdi = cdiValidator();

/**
 * The crash-consistency invariants: the checkpoint verifies; no PrepareStarted entry survives a restart;
 * the set of spec files equals the set of PrepareCompleted entries (no orphan, none missing); each spec
 * passes the official CDI schema and defines exactly the devices the entry's CDI IDs name; no temp files.
 * @throws Error naming the first violation.
 */
export async function assertConsistent(dir: string): Promise<Record<string, RawEntry>> {
  const cp = await verifiedCheckpoint(dir);
  const claims = cp?.claims ?? {};
  const started = Object.values(claims).filter((e) => e.state !== 'PrepareCompleted');
  if (started.length > 0) throw new Error(`entries not PrepareCompleted after a restart: ${JSON.stringify(started)}`);
  const specs = await specUids(dir);
  const completed = Object.keys(claims).sort();
  if (JSON.stringify(specs) !== JSON.stringify(completed)) throw new Error(`spec files ${JSON.stringify(specs)} != prepared claims ${JSON.stringify(completed)}`);
  for (const uid of specs) {
    const spec = JSON.parse(await readFile(join(cdiDir(dir), `${SPEC_PREFIX}${uid}.json`), 'utf8')) as { kind: string; devices: { name: string }[] };
    if (!validateCdi(spec)) throw new Error(`spec of ${uid} fails the CDI schema: ${JSON.stringify(validateCdi.errors)}`);
    const ids = spec.devices.map((d) => `${spec.kind}=${d.name}`).sort();
    const recorded = (claims[uid]?.devices ?? []).flatMap((d) => d.cdiDeviceIds).sort();
    if (JSON.stringify(ids) !== JSON.stringify(recorded)) throw new Error(`spec of ${uid} defines ${JSON.stringify(ids)}, the checkpoint records ${JSON.stringify(recorded)}`);
  }
  const temps = await tempFiles(dir);
  if (temps.length > 0) throw new Error(`temp files left behind: ${temps.join(', ')}`);
  return claims;
}
