/**
 * The kustomize overlay the README shows for serving `nvidia.com/gpu` with gpulet ("Extended resources"),
 * taken from the README itself and built with `kubectl kustomize` in a temp dir (its `resources` pointed at
 * this repository's daemonset/), so the tests check the documented patch, not a copy of it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify } from 'yaml';
import { DAEMONSET_DIR } from './manifests.js';
import { REPO_ROOT } from './repo.js';

/** kubectl, when installed (it builds kustomizations). */
export const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p));

/** The README's overlay kustomization (the yaml block that starts with its `# kustomization.yaml` comment). */
export function readmeOverlay(): Record<string, unknown> {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = /```yaml\n(\s*# kustomization\.yaml[^\n]*\n[\s\S]*?)```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md has no kustomization.yaml block');
  const indent = /^( *)/.exec(block)![1]!.length;
  return parseYaml(block.split('\n').map((l) => l.slice(indent)).join('\n')) as Record<string, unknown>;
}

/** Every object `kubectl kustomize` builds from the README's overlay over daemonset/. */
export function buildReadmeOverlay(kubectl: string): Array<{ kind: string; metadata: { name: string }; [k: string]: unknown }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpulet-overlay-'));
  try {
    const overlay = { ...readmeOverlay(), resources: [path.relative(dir, DAEMONSET_DIR)] };
    writeFileSync(path.join(dir, 'kustomization.yaml'), stringify(overlay));
    const out = execFileSync(kubectl, ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
    return parseAllDocuments(out).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
