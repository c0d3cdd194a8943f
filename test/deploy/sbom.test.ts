/**
 * The SBOM the build produces (`npm run sbom`, run by the Dockerfile's build stage and shipped in the
 * image), generated into a temp file through the script's SBOM_OUT override and checked against
 * independent facts:
 * - CycloneDX JSON as the CycloneDX 1.5 specification lays it out (`bomFormat` "CycloneDX", `specVersion`,
 *   `serialNumber` an RFC 4122 URN, `metadata.component` the application itself, components with
 *   `pkg:npm/` package URLs, a dependency graph whose refs all resolve);
 * - its components are exactly the production packages of package-lock.json (npm marks a lock entry
 *   `dev: true` only when nothing but dev dependencies reaches it), at the locked versions: nothing that
 *   ships is missing (npm/cli#7909: `npm sbom --omit dev` on the full tree drops production packages that a
 *   dev package also uses, e.g. `yaml` here), and nothing dev-only (vitest, eslint, typescript, tsx) is in.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../helpers/agent.js';
import { REPO_ROOT } from '../helpers/manifests.js';

interface Component {
  'bom-ref': string;
  type: string;
  name: string;
  version: string;
  purl?: string;
  properties?: Array<{ name: string; value: string }>;
}
interface Bom {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  version: number;
  metadata: { component: Component; tools?: unknown };
  components: Component[];
  dependencies?: Array<{ ref: string; dependsOn?: string[] }>;
}
interface LockEntry { version?: string; dev?: boolean; link?: boolean }

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  name: string; version: string; scripts: Record<string, string>; dependencies: Record<string, string>; devDependencies: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };

/** `name@version` of every production package in package-lock.json (install path → package name). */
function lockedProduction(): Set<string> {
  const out = new Set<string>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev === true || entry.link === true) continue;
    out.add(`${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${entry.version}`);
  }
  return out;
}

let dir: string;
let bom: Bom;

beforeAll(async () => {
  dir = await tempDir('gpulet-sbom-');
  const out = join(dir, 'sbom.cdx.json');
  execFileSync('npm', ['run', '--silent', 'sbom'], {
    cwd: REPO_ROOT, env: { ...process.env, SBOM_OUT: out }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 240_000,
  });
  bom = JSON.parse(readFileSync(out, 'utf8')) as Bom;
}, 300_000);

afterAll(() => removeDir(dir));

describe('npm run sbom', () => {
  it('is defined, writes dist/sbom.cdx.json by default, and uses npm sbom in CycloneDX format', () => {
    expect(pkg.scripts['sbom']).toBe('bash scripts/sbom.sh');
    const script = readFileSync(join(REPO_ROOT, 'scripts/sbom.sh'), 'utf8');
    expect(script).toMatch(/npm sbom\b[^;&|]*--sbom-format[ =]cyclonedx/);
    expect(script).toContain('dist/sbom.cdx.json');
  });

  it('produces a CycloneDX 1.x JSON BOM describing the gpulet application', () => {
    expect(bom.bomFormat).toBe('CycloneDX');
    expect(bom.specVersion).toMatch(/^1\.\d+$/);
    expect(bom.serialNumber).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(bom.version).toBeGreaterThanOrEqual(1);
    expect(bom.metadata.component).toMatchObject({ type: 'application', name: pkg.name, version: pkg.version });
  });

  it('lists every component with an npm package URL, and a dependency graph whose refs resolve', () => {
    const refs = new Set(bom.components.map((c) => c['bom-ref']));
    expect(refs.size).toBe(bom.components.length);
    for (const c of bom.components) {
      expect(c.purl, c['bom-ref']).toMatch(/^pkg:npm\/(%40[^/]+\/)?[^@/]+@[^@]+$/);
      expect(decodeURIComponent(c.purl!)).toBe(`pkg:npm/${c.name}@${c.version}`);
    }
    refs.add(bom.metadata.component['bom-ref']);
    const dangling = (bom.dependencies ?? []).flatMap((d) => [d.ref, ...(d.dependsOn ?? [])]).filter((r) => !refs.has(r));
    expect(dangling).toEqual([]);
  });

  it('holds exactly the production packages of package-lock.json, at the locked versions', () => {
    const listed = new Set(bom.components.map((c) => `${c.name}@${c.version}`));
    const expected = lockedProduction();
    expect([...expected].filter((p) => !listed.has(p)), 'shipped but missing from the SBOM').toEqual([]);
    expect([...listed].filter((p) => !expected.has(p)), 'in the SBOM but not shipped').toEqual([]);
    for (const name of ['@grpc/grpc-js', '@kubernetes/client-node', ...Object.keys(pkg.dependencies)]) {
      expect(bom.components.some((c) => c.name === name), name).toBe(true);
    }
  });

  it('contains no dev-only package', () => {
    const names = new Set(bom.components.map((c) => c.name));
    for (const dev of ['vitest', 'eslint', 'typescript', 'tsx', 'kubernetes-models', '@marcbachmann/cel-js']) {
      expect(pkg.devDependencies[dev], `${dev} is a devDependency`).toBeDefined();
      expect(names.has(dev), dev).toBe(false);
    }
    expect(bom.components.filter((c) => c.properties?.some((p) => p.name === 'cdx:npm:package:development'))).toEqual([]);
  });
});
