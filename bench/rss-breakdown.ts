/**
 * Where the agent's resident memory goes: RSS of a fresh Node process after importing one group of the
 * agent's dependencies (then two full GCs, `--expose-gc`), next to bare Node and to the agent's whole module
 * graph, imported, not started: tsc's output (`dist/src/main.js`, ~250 modules) and the bundle the image runs
 * (`dist/agent/main.js`, scripts/bundle.ts: the same graph in a few chunks). Each group is its own process, so a
 * row's "over bare Node" is that group alone including what it shares with others (rows do not add up). Needs
 * `npm run build` for the module-graph rows.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUNDLE_DIR } from '../scripts/bundle.js';
import { repoRoot } from './agent-process.js';
import { mib } from './stats.js';

/** One measured group. */
export interface ImportCost {
  readonly label: string;
  /** RSS after the imports and GC, bytes. */
  readonly rssBytes: number;
  /** V8 heap used after GC, bytes. */
  readonly heapUsedBytes: number;
  /** Off-heap memory V8 knows of (Buffers, ...), bytes. */
  readonly externalBytes: number;
}

const SCRIPT = `
for (const m of JSON.parse(process.env.BENCH_IMPORTS)) await import(m);
globalThis.gc(); globalThis.gc();
const u = process.memoryUsage();
process.stdout.write(JSON.stringify({ rss: u.rss, heapUsed: u.heapUsed, external: u.external }));
`;

function groups(): { label: string; imports: string[] }[] {
  const main = path.join(repoRoot, 'dist', 'src', 'main.js');
  const out = [
    { label: 'bare Node', imports: [] as string[] },
    { label: '@kubernetes/client-node (no longer loaded by the agent)', imports: ['@kubernetes/client-node'] },
    { label: 'OTel SDK + Prometheus exporter', imports: ['@opentelemetry/sdk-metrics', '@opentelemetry/exporter-prometheus', '@opentelemetry/resources'] },
    { label: 'OTel OTLP gRPC exporter (+grpc-js; loaded only with an OTLP endpoint)', imports: ['@opentelemetry/exporter-metrics-otlp-grpc'] },
    { label: '@grpc/grpc-js + proto-loader', imports: ['@grpc/grpc-js', '@grpc/proto-loader'] },
    { label: 'pino, zod, yaml, commander, systeminformation', imports: ['pino', 'zod', 'yaml', 'commander', 'systeminformation'] },
  ];
  const lean = path.join(repoRoot, 'dist', 'src', 'k8s', 'kubeconfig.js');
  if (fs.existsSync(lean)) out.push({ label: "gpulet's own Kubernetes client (dist/src/k8s: node:https + yaml)", imports: [pathToFileURL(lean).href] });
  if (fs.existsSync(main)) out.push({ label: 'whole agent module graph (dist/src/main.js)', imports: [pathToFileURL(main).href] });
  const bundle = path.join(repoRoot, 'dist', BUNDLE_DIR, 'main.js');
  if (fs.existsSync(bundle)) out.push({ label: `the same graph bundled, as the image runs it (dist/${BUNDLE_DIR}/main.js)`, imports: [pathToFileURL(bundle).href] });
  return out;
}

function measure(imports: readonly string[]): Promise<{ rss: number; heapUsed: number; external: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--input-type=module', '-e', SCRIPT],
      { cwd: repoRoot, env: { ...process.env, BENCH_IMPORTS: JSON.stringify(imports), NODE_OPTIONS: '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        if (err !== null) return reject(new Error(`import of ${imports.join(', ') || '(nothing)'} failed: ${err.message}\n${stderr.slice(0, 500)}`));
        try {
          resolve(JSON.parse(stdout) as { rss: number; heapUsed: number; external: number });
        } catch (e) {
          reject(new Error(`unexpected output ${JSON.stringify(stdout.slice(0, 200))}`, { cause: e }));
        }
      },
    );
  });
}

/**
 * Measure every group (two processes at a time: RSS does not depend on CPU contention).
 * @throws Error when an import fails (a missing dependency)
 */
export async function measureImportCosts(): Promise<ImportCost[]> {
  const gs = groups();
  const out: ImportCost[] = [];
  for (let i = 0; i < gs.length; i += 2) {
    const batch = gs.slice(i, i + 2);
    const results = await Promise.all(batch.map((g) => measure(g.imports)));
    for (const [j, r] of results.entries()) {
      out.push({ label: batch[j]?.label ?? '?', rssBytes: r.rss, heapUsedBytes: r.heapUsed, externalBytes: r.external });
    }
  }
  return out;
}

/** `X MiB (+Y over bare Node), heap Z MiB` for one row. */
export function fmtImportCost(c: ImportCost, bare: ImportCost | undefined): string {
  const over = bare === undefined || c === bare ? '' : ` (+${mib(c.rssBytes - bare.rssBytes)} over bare Node)`;
  return `RSS ${mib(c.rssBytes)} MiB${over}, V8 heap ${mib(c.heapUsedBytes)} MiB, external ${mib(c.externalBytes)} MiB`;
}
