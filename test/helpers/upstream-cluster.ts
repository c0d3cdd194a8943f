/**
 * The upstream Kubernetes cluster of test/upstream/ (a Go program: etcd, the real kube-apiserver,
 * kube-scheduler, kube-controller-manager and a node agent on the kubelet's DRA manager, all on loopback),
 * driven from vitest: build it once (`go build` into test/upstream/bin/, a no-op when the binary is current
 * and Go's build cache warm), start it in a temp dir, wait for its ready line, stop it with SIGTERM.
 * Tests that need it are skipped with a visible notice only where `go` is absent.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { lock } from 'proper-lockfile';
import { REPO_ROOT } from './repo.js';
import { within } from './wait.js';

/** The Go module of the cluster. */
export const UPSTREAM_DIR = path.join(REPO_ROOT, 'test', 'upstream');
/** Where `go build` puts the binary (gitignored). */
export const CLUSTER_BINARY = path.join(UPSTREAM_DIR, 'bin', 'cluster');

/** Build and start-up are bounded only to end a hung run: a cold build on a loaded 2-core machine takes many minutes. */
export const BUILD_TIMEOUT_MS = 45 * 60_000;
export const START_TIMEOUT_MS = 4 * 60_000;

/** Why the cluster cannot run here (`go` is not on PATH), or undefined when it can. */
export function clusterUnavailable(): string | undefined {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore', timeout: 30_000 });
    return undefined;
  } catch {
    return 'go is not installed (the upstream cluster of test/upstream/ is a Go program)';
  }
}

/**
 * `go build` the cluster into {@link CLUSTER_BINARY}; quick when nothing changed. Test files run in parallel
 * workers, so the build holds a lock (proper-lockfile on test/upstream/bin/): the second file waits for the
 * first build and then finds the binary current. Returns the binary's path.
 */
export async function buildCluster(): Promise<string> {
  await mkdir(path.dirname(CLUSTER_BINARY), { recursive: true });
  const release = await lock(path.dirname(CLUSTER_BINARY), {
    lockfilePath: `${CLUSTER_BINARY}.build.lock`,
    retries: { retries: Math.ceil(BUILD_TIMEOUT_MS / 1000), minTimeout: 1000, maxTimeout: 1000 },
  });
  try {
    await promisify(execFile)('go', ['build', '-o', CLUSTER_BINARY, './cmd/cluster'], {
      cwd: UPSTREAM_DIR,
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
  } finally {
    await release();
  }
  return CLUSTER_BINARY;
}

/** A node of the cluster: where its agent (the kubelet's plugin watcher) looks for registration sockets. */
export interface ClusterNode {
  readonly name: string;
  readonly registryDir: string;
  readonly pluginsDir: string;
  readonly stateDir: string;
  /** The kubelet's pod-resources API v1 socket the node agent serves (test/upstream/internal/node/podresources.go). */
  readonly podResourcesSocket: string;
}

/** The ready line the cluster prints (test/upstream/internal/cluster/cluster.go ReadyLine). */
export interface ClusterReady {
  readonly ready: true;
  readonly version: string;
  readonly server: string;
  readonly kubeconfig: string;
  readonly dir: string;
  readonly logs: string;
  readonly nodes: readonly ClusterNode[];
  readonly featureGates: readonly string[];
  readonly startupMs: number;
  readonly phasesMs: Readonly<Record<string, number>>;
}

/** A running cluster. */
export interface UpstreamCluster extends ClusterReady {
  /** The administrator's KubeConfig (system:masters). */
  readonly admin: KubeConfig;
  /** Milliseconds from spawn to the ready line, as the test saw it. */
  readonly spawnToReadyMs: number;
  /** SIGTERM, wait for a clean exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startCluster}. */
export interface StartClusterOptions {
  /** Node names (one node agent each); default `node-a`. */
  readonly nodes?: readonly string[];
}

/** Start the cluster from {@link buildCluster}'s binary in a fresh temp dir and wait for its ready line. */
export async function startCluster(opts: StartClusterOptions = {}): Promise<UpstreamCluster> {
  // A short name: a node's registry dir is <dir>/nodes/<node>/plugins_registry, and a driver's rolling-update
  // socket there, <driver>-<pod UID>-reg.sock, must fit a unix socket path (107 bytes): /tmp/gk-XXXXXX/... does.
  const dir = await mkdtemp(path.join(tmpdir(), 'gk-'));
  const t0 = performance.now();
  const child = spawn(CLUSTER_BINARY, ['up', '--dir', dir, '--nodes', (opts.nodes ?? ['node-a']).join(',')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = once(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await within(exited, 'the cluster to stop', 60_000);
    await rm(dir, { recursive: true, force: true });
  });
  try {
    const ready = await within(readyLine(child, exited), 'the cluster to be ready', START_TIMEOUT_MS, () => `stderr: ${stderr}`);
    const admin = new KubeConfig();
    admin.loadFromFile(ready.kubeconfig);
    return { ...ready, admin, spawnToReadyMs: Math.round(performance.now() - t0), stop };
  } catch (err) {
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\nstderr: ${stderr}`, { cause: err });
  }
}

/** The first stdout line that parses as the ready line; rejects when the process exits first. */
function readyLine(child: ChildProcess, exited: Promise<number | null>): Promise<ClusterReady> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const parsed = JSON.parse(line) as Partial<ClusterReady>;
        if (parsed.ready === true) {
          lines.close();
          resolve(parsed as ClusterReady);
        }
      } catch {
        // not the ready line
      }
    });
    void exited.then((code) => reject(new Error(`the cluster exited (code ${String(code)}) before it was ready`)));
  });
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/**
 * A KubeConfig for the cluster's server that authenticates with a bearer token (a ServiceAccount token from
 * the TokenRequest API), trusting the cluster's CA from the administrator's kubeconfig.
 */
export function tokenKubeConfig(admin: KubeConfig, token: string, user = 'token-user'): KubeConfig {
  const cluster = admin.getCurrentCluster();
  if (cluster === null) throw new Error('the administrator kubeconfig names no cluster');
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: user, token }],
    contexts: [{ name: user, cluster: cluster.name, user }],
    currentContext: user,
  });
  return kc;
}
