/**
 * Helm for the tests of deployments/helm/gpulet: the real `helm` CLI, built from the Go module proxy
 * (`go install helm.sh/helm/v4/cmd/helm@<HELM_VERSION>`) into the gitignored `.gpulet/bin/`, as .ci/run does.
 * `go install` is a no-op (about 2 s) when the binary is current and minutes from cold; test files run in
 * parallel workers, so the build holds a lock (proper-lockfile on `.gpulet/bin/`). Tests that need helm are
 * skipped with a visible notice only where neither `go` nor a built helm is there.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { lock } from 'proper-lockfile';
import { parseAllDocuments } from 'yaml';
import type { K8sObject, ManifestDoc } from './manifests.js';
import { REPO_ROOT } from './repo.js';

const run = promisify(execFile);

/** The helm release the tests build: the newest v4 the Go module proxy serves (helm.sh/helm/v4 v4.3.2). */
export const HELM_VERSION = 'v4.3.2';
/** The chart under test. */
export const CHART_DIR = path.join(REPO_ROOT, 'deployments', 'helm', 'gpulet');
/** Where `go install` puts helm (gitignored; .ci/run installs it there too). */
export const HELM_BINARY = path.join(REPO_ROOT, '.gpulet', 'bin', 'helm');
/** The namespace the README installs into (daemonset/00-namespace.yaml). */
export const RELEASE_NAMESPACE = 'gpulet-system';
/** Bound on one go install of helm from cold (downloads and compiles ~200 modules on 2 cores). */
export const HELM_BUILD_TIMEOUT_MS = 20 * 60_000;

function hasGo(): boolean {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Why helm cannot be had here (then the tests are skipped with this notice), or undefined. */
export function helmUnavailable(): string | undefined {
  if (hasGo() || existsSync(HELM_BINARY)) return undefined;
  return `helm tests skipped: neither go (to build helm.sh/helm/v4/cmd/helm@${HELM_VERSION}) nor ${path.relative(REPO_ROOT, HELM_BINARY)} is there`;
}

/**
 * `go install` helm into {@link HELM_BINARY} (where go is installed) and return its path.
 * @throws Error with go's output when the build fails
 */
export async function ensureHelm(): Promise<string> {
  if (!hasGo()) return HELM_BINARY;
  const dir = path.dirname(HELM_BINARY);
  mkdirSync(dir, { recursive: true });
  const release = await lock(dir, { lockfilePath: `${HELM_BINARY}.build.lock`, retries: { retries: 2000, minTimeout: 500, maxTimeout: 2000 }, stale: HELM_BUILD_TIMEOUT_MS });
  try {
    await run('go', ['install', `helm.sh/helm/v4/cmd/helm@${HELM_VERSION}`], {
      env: { ...process.env, GOBIN: dir },
      timeout: HELM_BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: unknown) => {
      const e = err as { stderr?: string; message?: string };
      throw new Error(`go install helm.sh/helm/v4/cmd/helm@${HELM_VERSION} failed: ${e.stderr ?? e.message ?? String(err)}`);
    });
  } finally {
    await release();
  }
  return HELM_BINARY;
}

/** The result of one helm command: exit status and output (helm's errors name the value or template at fault). */
export interface HelmResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `helm <args>` in the repository root with `values` in a temporary values file (`-f`) when given. */
export async function helm(args: readonly string[], values?: Record<string, unknown>): Promise<HelmResult> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gpulet-helm-'));
  try {
    const extra: string[] = [];
    if (values !== undefined) {
      const file = path.join(tmp, 'values.json');
      writeFileSync(file, JSON.stringify(values));
      extra.push('-f', file);
    }
    // Helm's own state (repositories, cache) in the temp dir: nothing is read from or written to $HOME.
    const env = { ...process.env, HELM_CACHE_HOME: path.join(tmp, 'cache'), HELM_CONFIG_HOME: path.join(tmp, 'config'), HELM_DATA_HOME: path.join(tmp, 'data') };
    try {
      const { stdout, stderr } = await run(HELM_BINARY, [...args, ...extra], { cwd: REPO_ROOT, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
      return { ok: true, stdout, stderr };
    } catch (err: unknown) {
      const e = err as { stdout?: string; stderr?: string; message?: string };
      return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message ?? String(err) };
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** `helm template gpulet <chart> --namespace <ns>` with `values`; the objects, each named by its template. */
export async function renderChart(values: Record<string, unknown> = {}, namespace = RELEASE_NAMESPACE): Promise<ManifestDoc[]> {
  const res = await helm(['template', 'gpulet', path.relative(REPO_ROOT, CHART_DIR), '--namespace', namespace], values);
  if (!res.ok) throw new Error(`helm template failed: ${res.stderr}`);
  return parseRendered(res.stdout);
}

/** Parse `helm template` output: one object per non-empty document, `file` from its `# Source:` comment. */
export function parseRendered(out: string): ManifestDoc[] {
  return parseAllDocuments(out).flatMap((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`helm template document ${i}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const obj: unknown = doc.toJS();
    if (obj === null || obj === undefined) return [];
    if (typeof obj !== 'object') throw new Error(`helm template document ${i} is not an object`);
    const source = /# Source: (\S+)/.exec(doc.commentBefore ?? '')?.[1] ?? `helm template document ${i}`;
    return [{ file: source, obj: obj as K8sObject }];
  });
}
