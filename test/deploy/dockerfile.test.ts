/**
 * The Dockerfile, read as the builder would (no Docker engine here): what it copies exists and is not
 * excluded by .dockerignore, the runtime stage gets the layout the code looks for at run time (addon next
 * to binding.gyp, kubelet protos, the bundle), the entry is the bundle scripts/bundle.ts builds from the compiled
 * src/cli.ts and the one `bin/gpulet.js` runs, the Node major
 * matches the one the project is developed and tested with, and nothing is installed in the runtime stage;
 * the build stage produces the CycloneDX SBOM with the project's `npm run sbom` and the image carries it
 * where its label says (the SBOM's content is checked in security-sbom.test.ts). No development tool ships:
 * dev/ is neither copied into a stage nor compiled, and the entry point's module graph stays inside src/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { BUNDLE_DIR, BUNDLE_ENTRY_POINTS } from '../../scripts/bundle.js';
import { REPO_ROOT } from '../helpers/manifests.js';

interface Instruction { op: string; args: string }
interface Stage { from: string; name: string | undefined; instructions: Instruction[] }

/** Parse a Dockerfile into stages of instructions (line continuations joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const stages: Stage[] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: f![1]!, name: f![2], instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push({ op, args });
    }
  }
  return stages;
}

/** `COPY [--from=x] src... dest` → sources, destination and the stage copied from. */
function copyArgs(args: string): { from: string | undefined; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
  const rest = words.filter((w) => !w.startsWith('--'));
  return { from, sources: rest.slice(0, -1), dest: rest[rest.length - 1]! };
}

/** .dockerignore matching for the pattern forms used here: exact names, directory prefixes, `*.ext`. */
function ignoredBy(patterns: readonly string[], p: string): boolean {
  const clean = p.replace(/\/+$/, '').replace(/^\.\//, '');
  return patterns.some((pat) => {
    if (pat.startsWith('*.')) return clean.endsWith(pat.slice(1));
    return clean === pat || clean.startsWith(`${pat}/`);
  });
}

const dockerfile = parseDockerfile(readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
const build = dockerfile[0]!;
const runtime = dockerfile[dockerfile.length - 1]!;
const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; bin: Record<string, string>; scripts: Record<string, string> };

/** A file of the module graph (absolute path) and the specifiers it imports that the graph could not follow. */
interface GraphResult { readonly files: string[]; readonly unresolved: string[] }

/**
 * The module graph of `entry` (a .ts file) as the compiled program loads it: static imports, re-exports and
 * `import()` calls, followed through relative specifiers (`./x.js` → `./x.ts`). Package imports are not
 * followed (node_modules is not ours); a relative specifier with no file behind it, or an `import()` whose
 * argument is not a string literal (it could load anything), is reported in `unresolved`.
 */
function moduleGraph(entry: string): GraphResult {
  const files = new Set<string>();
  const unresolved: string[] = [];
  const visit = (file: string): void => {
    if (files.has(file)) return;
    files.add(file);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    const follow = (specifier: string): void => {
      if (!specifier.startsWith('.')) return;
      const target = path.resolve(path.dirname(file), specifier).replace(/\.js$/, '.ts');
      if (existsSync(target)) visit(target);
      else unresolved.push(`${path.relative(REPO_ROOT, file)}: ${specifier}`);
    };
    const walk = (node: ts.Node): void => {
      if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        follow(node.moduleSpecifier.text);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const arg = node.arguments[0];
        if (arg !== undefined && ts.isStringLiteralLike(arg)) follow(arg.text);
        else unresolved.push(`${path.relative(REPO_ROOT, file)}: import(${arg?.getText(source) ?? ''})`);
      }
      ts.forEachChild(node, walk);
    };
    walk(source);
  };
  visit(path.resolve(REPO_ROOT, entry));
  return { files: [...files].map((f) => path.relative(REPO_ROOT, f)).sort(), unresolved };
}

/** The ENTRYPOINT's script: the first argument after `node` that is not a node flag (`dist/agent/cli.js`). */
function entryScript(): string {
  const entry = runtime.instructions.filter((i) => i.op === 'ENTRYPOINT').pop();
  return (JSON.parse(entry!.args) as string[]).slice(1).find((a) => !a.startsWith('--'))!;
}

/**
 * The TypeScript source the image's entry is built from: the bundle `<outDir>/<BUNDLE_DIR>/cli.js` is esbuild's
 * output for the compiled `<outDir>/<BUNDLE_ENTRY_POINTS.cli>`, which tsc emits from `<rootDir>/src/cli.ts`
 * (tsconfig.json: rootDir ".", outDir "dist").
 */
function entrySource(script: string): string {
  const tsBase = JSON.parse(readFileSync(path.join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
  const { outDir, rootDir } = tsBase.compilerOptions;
  expect(path.normalize(script)).toBe(path.join(outDir, BUNDLE_DIR, 'cli.js'));
  return path.join(rootDir, path.relative(outDir, path.join(outDir, BUNDLE_ENTRY_POINTS.cli))).replace(/\.js$/, '.ts');
}

/** `LABEL k="v" k2=v2 ...` of a stage → map. */
function labels(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of stage.instructions.filter((x) => x.op === 'LABEL')) {
    for (const m of i.args.matchAll(/([\w.-]+)=(?:"((?:[^"\\]|\\.)*)"|(\S+))/g)) out[m[1]!] = m[2] ?? m[3] ?? '';
  }
  return out;
}

describe('Dockerfile', () => {
  it('is a two-stage build: full bookworm image to build, slim image to run, same Node major as the project', () => {
    expect(dockerfile).toHaveLength(2);
    const nodeMajor = /(\d+)/.exec(pkg.devDependencies['node'] ?? '')?.[1];
    expect(nodeMajor).toBeDefined();
    expect(build.from).toBe(`node:${nodeMajor}-bookworm`);
    expect(runtime.from).toBe(`node:${nodeMajor}-bookworm-slim`);
  });

  it('copies into the build only files that exist and that .dockerignore lets through', () => {
    const sources = dockerfile.flatMap((s) => s.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args)).filter((c) => c.from === undefined).flatMap((c) => c.sources));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) {
      expect(existsSync(path.join(REPO_ROOT, src)), `${src} exists`).toBe(true);
      expect(ignoredBy(ignore, src), `${src} not in .dockerignore`).toBe(false);
    }
  });

  it('keeps host builds out of the context (they would shadow the image-built addon and node_modules)', () => {
    for (const p of ['node_modules', 'build', 'dist', '.git']) expect(ignoredBy(ignore, p), p).toBe(true);
  });

  it('installs, builds the addon and the TypeScript, then prunes dev dependencies, in that order', () => {
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    const steps = [/npm ci\b/, /node-gyp(\.js)?"? rebuild/, /npm run build\b/, /npm prune --omit=dev/];
    const at = steps.map((re) => runs.search(re));
    expect(at.every((i) => i >= 0), String(at)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('installs nothing in the runtime stage', () => {
    const runs = runtime.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).not.toMatch(/npm (install|ci|i)\b|yarn|pnpm|apt-get install/);
  });

  it('gives the runtime the layout the code expects: addon under build/Release next to binding.gyp, protos, the bundle, production node_modules', () => {
    const copies = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args));
    const dests = copies.map((c) => c.dest.replace(/^\.\//, '').replace(/\/$/, ''));
    // binding.gyp names the addon target; src/gpu/nvml/addon.ts finds the root by binding.gyp.
    const gyp = JSON.parse(readFileSync(path.join(REPO_ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '')) as { targets: Array<{ target_name: string }> };
    const addon = `build/Release/${gyp.targets[0]!.target_name}.node`;
    expect(dests).toEqual(expect.arrayContaining(['binding.gyp', addon, 'proto', path.posix.join('dist', BUNDLE_DIR), 'node_modules', 'package.json']));
    // The bundle, copied from the build stage's dist/ to the same place (its upward searches find /app).
    expect(copies.find((c) => c.dest.replace(/^\.\//, '') === path.posix.join('dist', BUNDLE_DIR))?.sources).toEqual([`/src/dist/${BUNDLE_DIR}`]);
    // node_modules comes from the build stage, after `npm prune --omit=dev`.
    expect(copies.find((c) => c.dest.replace(/^\.\//, '') === 'node_modules')?.from).toBe(build.name);
  });

  it('starts the bundle that `npm run build` makes from src/cli.ts, the entry point bin/gpulet.js runs, in exec form', () => {
    const entry = runtime.instructions.filter((i) => i.op === 'ENTRYPOINT').pop();
    const argv = JSON.parse(entry!.args) as string[];
    expect(argv[0]).toBe('node');
    // node's own flags (V8 heap sizing) come before the script; nothing after it but the agent's arguments.
    const flags = argv.slice(1, argv.findIndex((a, i) => i > 0 && !a.startsWith('--')));
    expect(flags.every((f) => /^--[a-z-]+(=\S+)?$/.test(f)), flags.join(' ')).toBe(true);
    const script = argv[1 + flags.length]!;
    const binFile = path.join(REPO_ROOT, Object.values(pkg.bin)[0]!);
    const imported = /import\(['"]([^'"]+)['"]\)/.exec(readFileSync(binFile, 'utf8'))?.[1];
    expect(path.normalize(path.join(path.dirname(Object.values(pkg.bin)[0]!), imported!))).toBe(path.normalize(script));
    // dist/agent/cli.js is bundled from dist/src/cli.js, emitted from src/cli.ts: the build compiles, then bundles.
    const tsBuild = JSON.parse(readFileSync(path.join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const source = entrySource(script);
    expect(existsSync(path.join(REPO_ROOT, source)), source).toBe(true);
    expect(tsBuild.include.some((dir) => source.startsWith(`${dir}/`))).toBe(true);
    expect(pkg.scripts['build']).toMatch(/^tsc -p tsconfig\.build\.json && node scripts\/bundle\.ts$/);
    // The build stage copies scripts/ (the bundler).
    expect(build.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args)).some((c) => c.sources.includes('scripts/'))).toBe(true);
  });

  it('ships no development tool: dev/ is copied into neither stage and kept out of the build context', () => {
    const isDev = (p: string): boolean => /^(\.\/)?dev(\/|$)/.test(p) || /^\/src\/dev(\/|$)/.test(p);
    for (const stage of dockerfile) {
      for (const copy of stage.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args))) {
        expect(copy.sources.filter(isDev), `${stage.name ?? stage.from}: COPY ${copy.sources.join(' ')}`).toEqual([]);
        // A copy of the whole context or of the build stage's root would bring dev/ along.
        expect(copy.sources.filter((s) => ['.', './', '/src', '/src/'].includes(s)), `${stage.name ?? stage.from}: COPY ${copy.sources.join(' ')}`).toEqual([]);
      }
    }
    expect(ignoredBy(ignore, 'dev'), 'dev in .dockerignore').toBe(true);
    expect(pkg.scripts['build'], 'the build script copies nothing from dev/').not.toMatch(/\bdev\//);
  });

  it('compiles src/ alone: the build program holds no file outside src/, and the entry imports only src/ modules', () => {
    const tsBuild = JSON.parse(readFileSync(path.join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(tsBuild.include).toEqual(['src']);
    // Every file `npm run build` would compile (the compiler resolves imports, so a dev/ import would be listed).
    const tsc = path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const listed = execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--listFilesOnly'], { cwd: REPO_ROOT, encoding: 'utf8' })
      .split('\n').filter((f) => f !== '' && !f.includes('/node_modules/')).map((f) => path.relative(REPO_ROOT, f));
    expect(listed.length).toBeGreaterThan(20);
    expect(listed.filter((f) => !f.startsWith('src/'))).toEqual([]);
    // What the entry point loads at run time, dynamic imports included (what esbuild bundles: the same graph).
    const graph = moduleGraph(entrySource(entryScript()));
    expect(graph.unresolved).toEqual([]);
    expect(graph.files).toContain('src/main.ts');
    expect(graph.files.filter((f) => !f.startsWith('src/'))).toEqual([]);
    expect(graph.files.filter((f) => !listed.includes(f))).toEqual([]);
  });

  it('builds the CycloneDX SBOM with `npm run sbom` after installing, and ships it where its label points', () => {
    expect(pkg.scripts['sbom']).toBe('bash scripts/sbom.sh');
    expect(readFileSync(path.join(REPO_ROOT, 'scripts/sbom.sh'), 'utf8')).toMatch(/npm sbom\b.*--sbom-format cyclonedx/);
    const runs = build.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs.search(/npm run sbom\b/)).toBeGreaterThan(runs.search(/npm ci\b/));
    const copy = runtime.instructions.filter((i) => i.op === 'COPY').map((i) => copyArgs(i.args)).find((c) => c.sources.some((s) => s.endsWith('sbom.cdx.json')));
    expect(copy?.from).toBe(build.name);
    expect(copy?.sources).toEqual(['/src/dist/sbom.cdx.json']); // the script's default output, in WORKDIR /src
    expect(build.instructions.find((i) => i.op === 'WORKDIR')?.args).toBe('/src');
    const workdir = runtime.instructions.filter((i) => i.op === 'WORKDIR').pop()?.args ?? '/';
    const label = labels(runtime)['dev.gpulet.sbom.path'];
    expect(label).toBe(path.posix.join(workdir, copy!.dest));
  });
});
