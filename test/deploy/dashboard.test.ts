/**
 * `dashboards/gpulet.json` is a Grafana dashboard JSON model Grafana can import (the fields of the dashboard JSON
 * model, grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model): a title, a uid,
 * a numeric `schemaVersion`, a `datasource` template variable of type `prometheus` that every panel and target
 * uses, `node`, `gpu` and `namespace` query variables, panels with unique ids and a grid position inside the
 * 24-column grid, and targets with unique `refId`s and a PromQL `expr` that Debian's `promtool` accepts (every
 * expression checked as a recording rule, template variables replaced as Grafana would). That every query also
 * returns data from a running agent is test/agent/dashboards.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allPanels, BUILTIN_VARIABLES, fromModel, interpolate } from '../helpers/grafana.js';
import { REPO_ROOT } from '../helpers/repo.js';

const PROMTOOL = '/usr/bin/promtool';
if (!existsSync(PROMTOOL)) console.warn(`NOTICE: ${PROMTOOL} not found: skipping the PromQL syntax check of the dashboard (CI installs prometheus)`);

interface Model {
  title?: unknown;
  uid?: unknown;
  schemaVersion?: unknown;
  templating?: { list?: { name: string; type: string; query?: unknown; datasource?: unknown; includeAll?: boolean; multi?: boolean }[] };
  panels?: { id?: number; type?: string; title?: string; gridPos?: { x: number; y: number; w: number; h: number }; datasource?: unknown; targets?: { refId?: string; expr?: string; datasource?: unknown }[]; panels?: never[] }[];
}

const FILE = path.join(REPO_ROOT, 'dashboards', 'gpulet.json');
const model = JSON.parse(readFileSync(FILE, 'utf8')) as Model;
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };

describe('dashboards/gpulet.json', () => {
  it('has a title, a uid and a schema version', () => {
    expect(typeof model.title).toBe('string');
    expect(model.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    expect(typeof model.schemaVersion).toBe('number');
  });

  it('has a Prometheus data source variable and node, gpu and namespace variables that use it', () => {
    const vars = model.templating?.list ?? [];
    expect(vars.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['node', 'gpu', 'namespace']) {
      const v = vars.find((x) => x.name === name);
      expect(v, name).toMatchObject({ type: 'query', datasource: DATASOURCE, includeAll: true, multi: true });
      expect(fromModel(model).variables.find((x) => x.name === name)?.query, name).toMatch(/^label_values\(/);
    }
  });

  it('gives every panel a unique id and a place in the 24-column grid', () => {
    const panels = allPanels(model);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const p of model.panels ?? []) {
      const g = p.gridPos!;
      expect(g.x + g.w, p.title).toBeLessThanOrEqual(24);
      expect(g.w * g.h, p.title).toBeGreaterThan(0);
    }
  });

  it('gives every panel but a row targets on the data source variable, with unique refIds and an expr', () => {
    const panels = (model.panels ?? []).filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(20);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual(DATASOURCE);
      const targets = p.targets ?? [];
      expect(targets.length, p.title).toBeGreaterThan(0);
      expect(new Set(targets.map((t) => t.refId)).size, p.title).toBe(targets.length);
      for (const t of targets) {
        expect(t.datasource, p.title).toEqual(DATASOURCE);
        expect(t.expr, p.title).toMatch(/\S/);
      }
    }
  });

  it('filters every query by the node variable, and the queries of the Claims row by namespace', () => {
    for (const q of fromModel(model).queries) expect(q.expr, q.title).toContain('$node');
    // The panels of a row follow it in `panels` up to the next row (rows not collapsed).
    let row = '';
    let claimQueries = 0;
    for (const p of model.panels ?? []) {
      if (p.type === 'row') {
        row = p.title ?? '';
        continue;
      }
      if (row !== 'Claims') continue;
      for (const t of p.targets ?? []) {
        expect(t.expr, p.title).toContain('$namespace');
        claimQueries++;
      }
    }
    expect(claimQueries).toBeGreaterThanOrEqual(6);
  });

  it.skipIf(!existsSync(PROMTOOL))('has only expressions promtool accepts (as recording rules)', async () => {
    const values = { ...BUILTIN_VARIABLES, node: '(node-a|node-b)', gpu: '(0|1)', namespace: '(ml|team\\\\.a)' };
    const rules = fromModel(model).queries.map((q, i) => `      - record: dashboard:q${i}\n        expr: ${JSON.stringify(interpolate(q.expr, values))}`);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-dash-rules-'));
    try {
      const file = path.join(dir, 'rules.yml');
      await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
      const out = execFileSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8' });
      expect(out).toContain(`${rules.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
