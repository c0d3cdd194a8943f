/**
 * The agent's bundle: what the container image and `bin/gpulet.js` run (`node dist/agent/cli.js`). `npm run build`
 * compiles src/ with tsc into dist/src/ (tests and benchmarks import those modules) and then runs this script,
 * which bundles the compiled entry point `dist/src/cli.js` with esbuild into dist/agent/:
 *
 *   node scripts/bundle.ts [<tsc outDir, default dist>]    (Node ≥ 23.6 runs it with its type stripping)
 *
 * Why: one bundled module graph costs less memory than ~250 separate modules (RSS of the import, measured over
 * two full GCs: 93 → 77 MiB, V8 heap 17.5 → 12.8 MiB; the running agent of the footprint benchmark ~8 MiB of
 * RSS and ~10 MiB of V8 heap less; README.md, "Deploy"). The settings, each measured or needed:
 * - `splitting` + ESM: the agent's dynamic `import()`s stay lazy chunks — the telemetry pipeline
 *   (src/telemetry/exporters.ts, imported after the kubelet plugin registered) and the OTLP exporter (imported
 *   only with an OTLP endpoint); test/agent/compiled.test.ts checks which chunks a running agent loaded.
 * - `@kubernetes/client-node` stays external: the agent imports it only for a kubeconfig user with an `exec`
 *   credential plugin (src/k8s/kubeconfig.ts); bundled it would add a 17 MB chunk next to the same package in
 *   node_modules, which the image keeps (the SBOM lists it).
 * - `minify` with `keepNames`: minified identifiers alone would rename classes, and gpulet's errors take their
 *   `name` from the class (src/errors.ts `new.target.name`; pino logs `err.constructor.name`); with `keepNames`
 *   stack traces keep function names too. Minified + names against unminified + names: import RSS 77 against
 *   84.5 MiB; the running agent (footprint benchmark, production cadence) ~134 against ~136.5 MiB, heap after
 *   GC 28 against 30 MiB.
 * - Linked source maps (`*.js.map`, chained through tsc's maps to src/*.ts; no `sourcesContent`), read only when
 *   Node runs with `--enable-source-maps` (`NODE_OPTIONS=--enable-source-maps`, to debug a stack trace): on by
 *   default it would cost ~35 MiB of RSS in the running agent (V8 heap after GC 63 instead of 28 MiB).
 * - The banner defines `require` (from `createRequire`) for the CommonJS dependencies bundled into ESM
 *   (grpc-js, protobufjs, pino, systeminformation, proper-lockfile...): esbuild's ESM output calls it for their
 *   `require('node:…')` and for the optional modules systeminformation loads in a try block
 *   (osx-temperature-sensor, macOS only), which resolve from dist/agent/ as they would from node_modules.
 * - Dependencies built by another bundler (rolldown: the OTLP gRPC exporter base) load some packages at run time
 *   through their own `__require = createRequire(import.meta.url)`, which esbuild cannot follow: from the bundle
 *   it would load a second @grpc/grpc-js from node_modules, whose credentials the bundled client rejects
 *   (`instanceof`), so no OTLP export would ever succeed. {@link staticRequires} turns each such
 *   `__require("<package>")` into a static import of the bundled package (grpc-js is loaded at start anyway,
 *   by the kubelet plugin); test/agent/compiled.test.ts exports to a real OTLP receiver from the bundle and
 *   checks that nothing is loaded from node_modules.
 * - Left unfollowed, and unused by gpulet: pino's transports (thread-stream workers, `__dirname`), grpc-js's
 *   channelz and ORCA protos (`__dirname`, loaded only by the admin services and per-call metric recording).
 * - `import.meta.url` stays the chunk's own URL, dist/agent/<chunk>.js: the searches for the package root
 *   (src/version.ts: package.json; src/gpu/nvml/addon.ts: binding.gyp, then build/Release/gpulet_nvml.node;
 *   src/dra/kubelet/grpc-protos.ts and src/k8s/pod-resources.ts: proto/) walk up from there, as from dist/src/.
 * - `target: node22.19` (package.json `engines`). esbuild's table lacks some Unicode property names in regular
 *   expressions for node22 (commander, systeminformation) and rewrites those literals as `new RegExp(...)`, which
 *   behaves the same on Node (debug-level note, no warning). The build fails on any esbuild warning.
 */
import * as esbuild from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The bundle's directory, relative to tsc's outDir (`dist`). */
export const BUNDLE_DIR = 'agent';

/**
 * Entry points: output name → compiled module, relative to tsc's outDir. `cli` is the production command
 * (src/cli.ts); `main` (src/main.ts, the composition root, imported but not started) lets bench/rss-breakdown.ts
 * measure the bundle's module graph without starting the agent. Both share their chunks.
 */
export const BUNDLE_ENTRY_POINTS = { cli: 'src/cli.js', main: 'src/main.js' } as const;

/** Packages left to node_modules (see the module docs). */
export const BUNDLE_EXTERNAL = ['@kubernetes/client-node'] as const;

/** `__require("<package>")` as rolldown's runtime helper writes it (a bare specifier, not a relative path). */
const RUNTIME_REQUIRE = /\b__require\((["'])([^."'][^"']*)\1\)/g;

/**
 * esbuild plugin: in an ES module of node_modules, every `__require("<package>")` (a bundler's run-time
 * `createRequire`, see the module docs) becomes a namespace import of that package, which esbuild then bundles.
 */
export const staticRequires: esbuild.Plugin = {
  name: 'gpulet-static-requires',
  setup(build) {
    build.onLoad({ filter: /[\\/]node_modules[\\/].*\.mjs$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const packages = [...new Set([...source.matchAll(RUNTIME_REQUIRE)].map((m) => m[2]!))];
      if (packages.length === 0) return undefined;
      const imports = packages.map((pkg, i) => `import * as __gpuletRequired${i} from ${JSON.stringify(pkg)};\n`).join('');
      const contents = source.replace(RUNTIME_REQUIRE, (_match, _quote: string, pkg: string) => `__gpuletRequired${packages.indexOf(pkg)}`);
      return { contents: imports + contents, loader: 'js', resolveDir: path.dirname(args.path) };
    });
  },
};

/** Options of {@link bundleAgent}. */
export interface BundleOptions {
  /** tsc's output directory holding `src/cli.js` (default `dist`). */
  readonly from?: string;
  /** Where the bundle goes (default `<from>/agent`); it must sit two levels under the package root (see above). */
  readonly outdir?: string;
}

/**
 * Bundle the compiled agent (see the module docs) into `outdir`, emptied first, and return esbuild's metafile (which input went into which
 * output, and each output's static and dynamic imports).
 * @throws Error when esbuild fails or warns (a dynamic require or import it could not follow, say)
 */
export async function bundleAgent(options: BundleOptions = {}): Promise<esbuild.Metafile> {
  const from = options.from ?? 'dist';
  const outdir = options.outdir ?? path.join(from, BUNDLE_DIR);
  // Chunk names carry content hashes: a previous build's chunks would stay next to the new ones.
  rmSync(outdir, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: Object.fromEntries(Object.entries(BUNDLE_ENTRY_POINTS).map(([name, file]) => [name, path.join(from, file)])),
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node22.19',
    external: [...BUNDLE_EXTERNAL],
    banner: { js: "import { createRequire as __gpuletCreateRequire } from 'node:module'; const require = __gpuletCreateRequire(import.meta.url);" },
    minify: true,
    keepNames: true,
    sourcemap: 'linked',
    sourcesContent: false,
    plugins: [staticRequires],
    metafile: true,
    logLevel: 'silent',
  });
  const problems = [...result.errors, ...result.warnings];
  if (problems.length > 0) {
    const text = await esbuild.formatMessages(problems, { kind: 'warning' });
    throw new Error(`esbuild reported ${problems.length} problem(s) bundling ${from}:\n${text.join('\n')}`);
  }
  return result.metafile;
}

// Run as a script (`node scripts/bundle.ts`), not imported (test/agent/compiled.test.ts).
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const from = process.argv[2] ?? 'dist';
  const meta = await bundleAgent({ from });
  const outputs = Object.entries(meta.outputs).filter(([file]) => file.endsWith('.js'));
  const bytes = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
  process.stdout.write(`bundled ${path.join(from, BUNDLE_ENTRY_POINTS.cli)} → ${path.join(from, BUNDLE_DIR)}/: ${outputs.length} files, ${(bytes / 1048576).toFixed(1)} MiB\n`);
}
