/**
 * The repository stands alone (issue 8): a clone with nothing beside it has everything its code, tests and
 * documents refer to. Every tracked file (`git ls-files`; binary files and package-lock.json skipped) is checked
 * for paths that leave the repository, absolute paths of a developer's machine, citations of the design notes
 * that lived outside the repository, and relative Markdown links that do not resolve inside it (the checker and
 * its rules: test/helpers/self-contained.ts).
 *
 * The checker is first run on small in-memory samples, one per kind of violation plus legitimate node paths and
 * links, so a clean result on the tree cannot come from a checker that finds nothing. The samples are assembled
 * from pieces so that this file does not contain what it looks for.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/repo.js';
import { findViolations, isBinary, markdownLinkTargets, type RepoFile, type Violation } from '../helpers/self-contained.js';

/** Files whose content is not the project's words: generated lock data. */
const SKIPPED = new Set(['package-lock.json']);

/** Tracked files of the repository (root-relative, `/`-separated), from git itself. */
function trackedFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return out.split('\0').filter((f) => f !== '');
}

/** Every tracked path and every directory above one: what a clone of the repository contains. */
function pathsIn(files: readonly string[]): Set<string> {
  const all = new Set<string>(['.']);
  for (const f of files) {
    all.add(f);
    for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) all.add(d);
  }
  return all;
}

const kinds = (vs: readonly Violation[]): string[] => vs.map((v) => `${v.kind} ${v.file}:${v.line} ${v.text}`);

// Pieces of the samples.
const UP = '..';
const SHARED = ['sha', 'red'].join('');
const slash = (...parts: string[]): string => parts.join('/');
const NOTES = (name: string): string => `${name.toUpperCase()}.md`;

describe('the self-containment checker on samples', () => {
  const exists = (p: string): boolean => ['README.md', 'docs', 'docs/contracts.md', 'src/main.ts'].includes(p);
  const check = (file: string, text: string): Violation[] => findViolations([{ path: file, text }], exists);

  it('flags a path to a folder beside the repository, however many levels up', () => {
    expect(kinds(check('a.ts', `const dir = '${slash(UP, SHARED, 'reference')}';`))).toEqual([
      `outside a.ts:1 ${slash(UP, SHARED)}`,
      `outside a.ts:1 ${slash(SHARED, 'reference')}`,
    ]);
    expect(check('b.ts', `x\n// see ${slash(UP, UP, SHARED)}/x`).map((v) => [v.kind, v.line])).toEqual([['outside', 2]]);
    expect(check('c.md', `data in ${slash(SHARED, 'reference')}/metrics.md`).map((v) => v.kind)).toEqual(['outside']);
  });

  it('flags absolute paths of a developer machine', () => {
    for (const root of ['work', 'home', 'Users', 'root']) {
      const p = `/${root}/someone/gpulet`;
      expect(kinds(check('d.ts', `const p = '${p}';`)), p).toEqual([`machine d.ts:1 /${root}/`]);
    }
  });

  it('does not flag the runtime paths of a Kubernetes node, URLs or relative paths', () => {
    const text = [
      '/var/lib/kubelet/plugins_registry/gpu.gpulet.dev-reg.sock',
      '/var/lib/kubelet/plugins/gpu.gpulet.dev/dra.sock',
      '/var/run/cdi/k8s.gpu.gpulet.dev-claim_x.json and /etc/cdi',
      '/dev/nvidia0 /dev/nvidiactl /dev/nvidia-caps/nvidia-cap12',
      '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1',
      '/proc/devices /proc/self/maps /sys/bus/pci/devices /run/nvidia/driver',
      'https://example.com/home/page and https://example.com/work/',
      'my-dir/work/x, docs/contracts.md, test/reference/metrics.md',
    ].join('\n');
    expect(check('ok.ts', text)).toEqual([]);
  });

  it('flags citations of the design notes that were never in the repository', () => {
    expect(kinds(check('e.ts', `// rules: ${NOTES('contracts')} §4, layout: ${NOTES('design')}`))).toEqual([
      `citation e.ts:1 ${NOTES('contracts')}`,
      `citation e.ts:1 ${NOTES('design')}`,
    ]);
  });

  it('flags relative Markdown links that do not resolve, or resolve outside the repository', () => {
    const md = [
      '[ok](README.md) [ok dir](docs/) [ok anchor](docs/contracts.md#4-resourceslice) ![img](src/main.ts)',
      '[web](https://example.com/missing.md) [mail](mailto:a@b.c) [here](#section)',
      '[missing](docs/nothing.md)',
      `[escape](${slash(UP, 'elsewhere.md')})`,
      '[ref]: docs/gone.md',
      '`[in code](docs/nope.md)` and',
      '```',
      '[in a fence](docs/nope.md)',
      '```',
    ].join('\n');
    expect(kinds(check('notes.md', md))).toEqual([
      'link notes.md:3 docs/nothing.md',
      `outside-link notes.md:4 ${slash(UP, 'elsewhere.md')}`,
      'link notes.md:5 docs/gone.md',
    ]);
  });

  it('resolves links relative to the file, and root-relative ones from the repository root', () => {
    expect(check('docs/x.md', '[c](contracts.md) [r](../README.md) [abs](/src/main.ts)')).toEqual([]);
    expect(kinds(check('docs/x.md', '[bad](README.md)'))).toEqual(['link docs/x.md:1 README.md']);
    expect(kinds(check('docs/x.md', `[out](${slash(UP, UP, 'x.md')})`))).toEqual([`outside-link docs/x.md:1 ${slash(UP, UP, 'x.md')}`]);
    expect(markdownLinkTargets('[a](<with space.md> "title") [b](c.md \'t\')').map((l) => l.target)).toEqual(['with space.md', 'c.md']);
  });

  it('checks links only in Markdown files', () => {
    expect(check('code.ts', '// [missing](docs/nothing.md)')).toEqual([]);
  });
});

describe('the repository', () => {
  const tracked = trackedFiles();
  const present = pathsIn(tracked);
  const files: RepoFile[] = [];
  for (const f of tracked) {
    if (SKIPPED.has(f)) continue;
    const abs = path.join(REPO_ROOT, f);
    if (!existsSync(abs)) continue; // deleted in the work tree, not yet committed: not part of the tree
    const bytes = readFileSync(abs);
    if (isBinary(bytes)) continue;
    files.push({ path: f, text: bytes.toString('utf8') });
  }

  it('has files to check (git lists the tree, Markdown among it)', () => {
    expect(files.map((f) => f.path)).toEqual(expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/contracts.md', 'test/reference/README.md']));
    expect(files.length).toBeGreaterThan(100);
  });

  it('refers to nothing outside itself: no sibling folders, no machine paths, no outside notes, no broken links', () => {
    expect(kinds(findViolations(files, (p) => present.has(p)))).toEqual([]);
  });
});
