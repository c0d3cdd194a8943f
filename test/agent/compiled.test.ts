/**
 * The compiled agent in the image's layout (Dockerfile: `/app/dist/src/...`, `/app/proto`, `/app/package.json`,
 * `/app/build/Release/gpulet_nvml.node`, `/app/node_modules`), started the way the container starts it
 * (`node dist/src/cli.js`, the production command), against an API server in the test process: it must find its
 * protos, its version and its addon from the build output, register, publish and serve /metrics, and exit 0 on
 * SIGTERM. The source-tree tests cannot see a path that only breaks once compiled (a file moved one directory
 * deeper changes every `../` it resolves).
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedApi } from '../../dev/embedded.js';
import { silentLogger } from '../../src/log.js';
import { nodeName } from '../helpers/names.js';
import { REPO_ROOT } from '../helpers/repo.js';

const run = promisify(execFile);
let app: string;

beforeAll(async () => {
  app = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-'));
  await run(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', path.join(app, 'dist')], { cwd: REPO_ROOT });
  // What the Dockerfile's runtime stage copies next to dist/ (node_modules and the addon as links: same files).
  for (const f of ['package.json', 'binding.gyp']) copyFileSync(path.join(REPO_ROOT, f), path.join(app, f));
  for (const d of ['proto', 'node_modules', 'build']) symlinkSync(path.join(REPO_ROOT, d), path.join(app, d));
}, 180_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('node dist/src/cli.js in the image layout', () => {
  it('registers, publishes, serves /metrics with the package version, and exits 0 on SIGTERM', async () => {
    const apiDir = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-api-'));
    const api = await startEmbeddedApi({ stateDir: apiDir, nodeName: nodeName('image-node'), embeddedApiPort: 0 }, silentLogger());
    const state = mkdtempSync(path.join(os.tmpdir(), 'gpulet-image-state-'));
    const child = spawn(path.join(REPO_ROOT, 'node_modules/.bin/node'), [path.join(app, 'dist/src/cli.js'),
      '--kube-api', 'kubeconfig', '--kubeconfig', api.kubeconfigPath, '--node-name', 'image-node', '--state-dir', state,
      '--metrics-address', '127.0.0.1:0', '--log-level', 'info'], { cwd: app, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
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
        void exited.then((code) => reject(new Error(`the compiled agent exited (${code}) before it was ready:\n${lines.join('\n')}`)));
      });
      const res = await fetch(`${metricsUrl}/metrics`);
      expect(res.status).toBe(200);
      const version = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
      expect(await res.text()).toContain(`service_version="${version}"`);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await api.close();
      rmSync(apiDir, { recursive: true, force: true });
      rmSync(state, { recursive: true, force: true });
    }
  });
});
