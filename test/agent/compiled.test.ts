/**
 * The production build in the image's layout (Dockerfile runtime stage: `/app/dist/agent/...`, `/app/proto`,
 * `/app/package.json`, `/app/binding.gyp`, `/app/build/Release/gpulet_nvml.node`, `/app/node_modules`), started
 * with the Dockerfile's own ENTRYPOINT command (node, its flags, the bundle) against an API server in the test
 * process: built the way `npm run build` builds it (tsc, then scripts/bundle.ts), it must find its protos, its
 * version and its addon from the bundle's directory, register, publish and serve /metrics, export OTLP when given
 * an endpoint, and exit 0 on SIGTERM. The source-tree tests cannot see a path that only breaks once compiled or
 * bundled (every upward search starts from the chunk's own URL), nor a dependency that fails once bundled.
 *
 * Which files the agent loads is recorded by Node's module loader itself (a `module.registerHooks` load hook
 * passed with `--import`): without an OTLP endpoint the OTLP exporter's chunk — identified from esbuild's
 * metafile by its inputs — must stay unloaded, while the telemetry chunk (the other lazy `import()`) is loaded;
 * with an endpoint the exporter chunk is loaded and sends. The bundle must load nothing from node_modules and
 * nothing of tsc's dist/src: it is self-contained except for its declared external, @kubernetes/client-node,
 * which a kubeconfig with an exec credential plugin makes it load from node_modules (and work through).
 * The tsc output (`node dist/src/cli.js`, what tests and benchmarks import) is started in the same layout too.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { startEmbeddedApi } from '../../dev/embedded.js';
import { bundleAgent, BUNDLE_DIR, BUNDLE_EXTERNAL } from '../../scripts/bundle.js';
import { silentLogger } from '../../src/log.js';
import { nodeName } from '../helpers/names.js';
import { startOtlpReceiver } from '../helpers/otlp-receiver.js';
import { REPO_ROOT } from '../helpers/repo.js';

const run = promisify(execFile);
let app: string;
let meta: Metafile;

/** The Dockerfile's ENTRYPOINT (exec form): `node`, node's flags, the script (relative to WORKDIR /app). */
function imageEntrypoint(): { flags: string[]; script: string } {
  const text = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const argv = JSON.parse([...text.matchAll(/^ENTRYPOINT\s+(\[.*\])\s*$/gm)].pop()![1]!) as string[];
  const at = argv.findIndex((a, i) => i > 0 && !a.startsWith('--'));
  return { flags: argv.slice(1, at), script: argv[at]! };
}

/** A load hook recording every module URL Node loads (ESM and CommonJS) into $LOAD_LOG, one per line. */
const RECORDER = `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
const log = process.env.LOAD_LOG;
registerHooks({ load(url, context, nextLoad) { appendFileSync(log, url + '\\n'); return nextLoad(url, context); } });
`;

beforeAll(async () => {
  app = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-'));
  // What the Dockerfile's runtime stage copies next to dist/ (node_modules and the addon as links: same files).
  for (const f of ['package.json', 'binding.gyp']) copyFileSync(path.join(REPO_ROOT, f), path.join(app, f));
  for (const d of ['proto', 'node_modules', 'build']) symlinkSync(path.join(REPO_ROOT, d), path.join(app, d));
  // `npm run build`: tsc (dist/src), then the bundle (dist/agent) from tsc's output (node_modules beside it, as
  // in the Dockerfile's build stage).
  await run(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { cwd: REPO_ROOT });
  meta = await bundleAgent({ from: path.join(app, 'dist') });
  writeFileSync(path.join(app, 'record-loads.mjs'), RECORDER);
}, 180_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

/** The bundle's output file (absolute) whose inputs include a path matching `input`. */
function outputWith(input: RegExp): string {
  const found = Object.entries(meta.outputs).filter(([out, o]) => out.endsWith('.js') && Object.keys(o.inputs).some((i) => input.test(i)));
  expect(found.map(([out]) => out), String(input)).toHaveLength(1);
  return path.resolve(process.cwd(), found[0]![0]);
}

interface Started {
  readonly metricsUrl: string;
  /** Files (absolute paths) the process has loaded so far, from its load hook. */
  loaded(): string[];
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * The embedded API server's kubeconfig with its user's token replaced by an exec credential plugin (this Node
 * printing a `client.authentication.k8s.io/v1` ExecCredential), the case src/k8s/kubeconfig.ts hands to
 * @kubernetes/client-node.
 */
function withExecCredential(kubeconfigPath: string, dir: string): string {
  const config = parse(readFileSync(kubeconfigPath, 'utf8')) as { users: { user: Record<string, unknown> }[] };
  const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'exec-token' } };
  for (const u of config.users) {
    u.user = { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: ['-e', `console.log(${JSON.stringify(JSON.stringify(credential))})`], interactiveMode: 'Never' } };
  }
  const file = path.join(dir, 'kubeconfig-exec');
  writeFileSync(file, stringify(config));
  return file;
}

/** Start `node <flags> <script> <args>` in the app dir and wait until it is running and has published its slices. */
async function startAgent(flags: readonly string[], script: string, extraArgs: readonly string[], cleanup: (() => Promise<void> | void)[], options: { execCredential?: boolean } = {}): Promise<Started> {
  const apiDir = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-api-'));
  const api = await startEmbeddedApi({ stateDir: apiDir, nodeName: nodeName('image-node'), embeddedApiPort: 0 }, silentLogger());
  const kubeconfig = options.execCredential === true ? withExecCredential(api.kubeconfigPath, apiDir) : api.kubeconfigPath;
  const state = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-state-'));
  const loadLog = path.join(state, 'loads.txt');
  writeFileSync(loadLog, '');
  const child = spawn(path.join(REPO_ROOT, 'node_modules/.bin/node'), [...flags, '--import', path.join(app, 'record-loads.mjs'), path.join(app, script),
    '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig, '--node-name', 'image-node', '--state-dir', state,
    '--metrics-address', '127.0.0.1:0', '--log-level', 'info', ...extraArgs], { cwd: app, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LOAD_LOG: loadLog }, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanup.push(async () => {
    child.kill('SIGKILL');
    await api.close();
    rmSync(apiDir, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  });
  const seen = new Set<string>();
  let metricsUrl = '';
  await new Promise<void>((resolve, reject) => {
    const lines: string[] = [];
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line);
      const rec = JSON.parse(line) as { msg?: string; metrics?: string };
      if (rec.msg !== undefined) seen.add(rec.msg);
      if (rec.msg === 'gpulet is running' && rec.metrics !== undefined) metricsUrl = rec.metrics;
      if (seen.has('gpulet is running') && seen.has('ResourceSlices published')) resolve();
    });
    void exited.then((code) => reject(new Error(`${script} exited (${code}) before it was ready:\n${lines.join('\n')}`)));
  });
  return {
    metricsUrl,
    loaded: () => readFileSync(loadLog, 'utf8').split('\n').filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u)),
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

async function expectMetricsWithVersion(metricsUrl: string): Promise<void> {
  const res = await fetch(`${metricsUrl}/metrics`);
  expect(res.status).toBe(200);
  const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  expect(await res.text()).toContain(`service_version="${version}"`);
}

describe('the image entry point (the bundle, dist/agent/cli.js) in the image layout', () => {
  it('is the bundle this script builds, with node flags from the Dockerfile', () => {
    expect(imageEntrypoint().script).toBe(`dist/${BUNDLE_DIR}/cli.js`);
  });

  it('registers, publishes, serves /metrics with the package version, loads no lazy OTLP chunk and nothing outside the bundle, and exits 0 on SIGTERM', async () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      const { flags, script } = imageEntrypoint();
      const agent = await startAgent(flags, script, [], cleanup);
      await expectMetricsWithVersion(agent.metricsUrl);
      const loaded = agent.loaded();
      const bundleDir = path.join(app, 'dist', BUNDLE_DIR);
      expect(loaded).toContain(path.join(app, script));
      // The telemetry pipeline is a lazy chunk loaded after registration: seen, so the recorder sees chunks.
      expect(loaded).toContain(outputWith(/src\/telemetry\/exporters\.js$/));
      // The OTLP exporter's chunk stays unloaded without an endpoint.
      expect(loaded).not.toContain(outputWith(/@opentelemetry\/exporter-metrics-otlp-grpc\/dist\/OTLPMetricExporter\.mjs$/));
      // Self-contained: every file loaded is the bundle's (no node_modules, no dist/src).
      expect(loaded.filter((f) => !f.startsWith(`${bundleDir}${path.sep}`))).toEqual([]);
      expect(await agent.stop()).toBe(0);
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  });

  it('with an OTLP endpoint loads the exporter chunk (still nothing outside the bundle), exports hw.* metrics to a real OTLP receiver, and exits 0 on SIGTERM', async () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    const receiver = await startOtlpReceiver();
    cleanup.push(() => receiver.close());
    try {
      const { flags, script } = imageEntrypoint();
      const agent = await startAgent(flags, script, ['--otlp-endpoint', receiver.endpoint, '--otlp-export-interval', '500'], cleanup);
      const req = await receiver.waitFor((r) => r.resourceMetrics.some((rm) => rm.scopeMetrics.some((s) => s.metrics.some((m) => m.name === 'hw.gpu.utilization'))), 30_000);
      expect(req.resourceMetrics.length).toBeGreaterThan(0);
      const loaded = agent.loaded();
      expect(loaded).toContain(outputWith(/@opentelemetry\/exporter-metrics-otlp-grpc\/dist\/OTLPMetricExporter\.mjs$/));
      // One @grpc/grpc-js, the bundled one: a second from node_modules (the exporter's run-time require) would
      // fail every export (its credentials are not the bundled client's class).
      expect(loaded.filter((f) => !f.startsWith(`${path.join(app, 'dist', BUNDLE_DIR)}${path.sep}`))).toEqual([]);
      expect(await agent.stop()).toBe(0);
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  });

  it('with an exec credential plugin in the kubeconfig loads the external @kubernetes/client-node from node_modules, registers and publishes through it', async () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      const { flags, script } = imageEntrypoint();
      const agent = await startAgent(flags, script, [], cleanup, { execCredential: true });
      await expectMetricsWithVersion(agent.metricsUrl);
      const outside = agent.loaded().filter((f) => !f.startsWith(`${path.join(app, 'dist', BUNDLE_DIR)}${path.sep}`));
      // Resolved from dist/agent/ up to <app>/node_modules (a link here, hence the package's own path).
      expect(outside.some((f) => f.includes(`${path.sep}node_modules${path.sep}@kubernetes${path.sep}client-node${path.sep}`))).toBe(true);
      expect(await agent.stop()).toBe(0);
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  });

  it('leaves to node_modules only the declared externals and two macOS-only optional modules (esbuild metafile)', () => {
    const imported = Object.values(meta.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
    // Node's builtins (CommonJS dependencies write require('fs') without the node: prefix) are not packages.
    const packages = [...new Set(imported)].filter((p) => !isBuiltin(p)).sort();
    // systeminformation require()s these in a try block, on macOS only (lib/cpu.js): absent there, as here.
    expect(packages).toEqual([...BUNDLE_EXTERNAL, 'macos-temperature-sensor', 'osx-temperature-sensor'].sort());
  });
});

describe('node dist/src/cli.js (tsc output) in the image layout', () => {
  it('registers, publishes, serves /metrics with the package version, and exits 0 on SIGTERM', async () => {
    const cleanup: (() => Promise<void> | void)[] = [];
    try {
      const agent = await startAgent(imageEntrypoint().flags, 'dist/src/cli.js', [], cleanup);
      await expectMetricsWithVersion(agent.metricsUrl);
      expect(await agent.stop()).toBe(0);
    } finally {
      for (const c of cleanup.reverse()) await c();
    }
  });
});
