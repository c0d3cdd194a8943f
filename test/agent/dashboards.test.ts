/**
 * Dashboards against the real thing (issue 13, items 2 and 4): Debian's Prometheus scrapes a running agent
 * (mock dgx-h100, the kubelet simulator, claims prepared over the real DRA socket as the kubelet does), and
 * every query of
 * - NVIDIA's DCGM dashboard (grafana.com 12239; queries transcribed in test/reference/dcgm-exporter/), and
 * - gpulet's own dashboard (`dashboards/gpulet.json`)
 * returns series once its template variables are resolved as Grafana resolves them (test/helpers/grafana.ts).
 * Every query is required: a query that finds nothing fails its test, naming the panel.
 *
 * The cluster state the queries see: claim `trainer` (namespace `team-a`) holds the whole GPU `gpu-0` for pod
 * `trainer-0`, claim `server` (`team-b`) the MIG device `gpu-7-mig-1g10gb-19-0` for pod `server-0`, and a prepare of
 * a claim that does not exist failed (so the claim-error panel has its error).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allocatedClaim, removeDir, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { fromModel, interpolate, nvidiaDashboard, resolveVariables, type DashboardQueries } from '../helpers/grafana.js';
import { claimRef } from '../helpers/names.js';
import { havePrometheus, PROMETHEUS, startPrometheus, type Prometheus } from '../helpers/prometheus.js';
import { REPO_ROOT } from '../helpers/repo.js';
import { waitFor } from '../helpers/wait.js';

if (!havePrometheus) console.warn(`NOTICE: ${PROMETHEUS} not found: skipping the dashboard tests (CI installs it)`);

const OURS: DashboardQueries = fromModel(JSON.parse(readFileSync(path.join(REPO_ROOT, 'dashboards', 'gpulet.json'), 'utf8')));
const NVIDIA: DashboardQueries = nvidiaDashboard();
/** How long one query may take to find data once the agent's series are all in Prometheus. */
const QUERY_WAIT_MS = 8_000;

let dir: string | undefined;
let h: Harness | undefined;
let prom: Prometheus | undefined;
let oursVars: Record<string, string> = {};
let nvidiaVars: Record<string, string> = {};

/** Wait until `expr` returns at least one series; the series. */
async function data(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  return waitFor(async () => {
    const r = await prom!.query(expr);
    return r.length > 0 ? r : undefined;
  }, { what: `series for ${expr}`, timeoutMs: QUERY_WAIT_MS, intervalMs: 500, detail: () => prom!.logTail() });
}

describe.skipIf(!havePrometheus)('dashboards on Prometheus scraping a running agent with claims', () => {
  beforeAll(async () => {
    dir = await tempDir('gpulet-dash-');
    h = await startHarness({ dir: path.join(dir, 'agent'), extraArgs: ['--sample-interval', '500'] });
    for (const name of ['team-a', 'team-b']) await h.core.createNamespace({ body: { metadata: { name } } });
    const trainer = await allocatedClaim(h.api, 'trainer', [{ device: 'gpu-0' }], { namespace: 'team-a', pod: { name: 'trainer-0', uid: randomUUID() } });
    const server = await allocatedClaim(h.api, 'server', [{ device: 'gpu-7-mig-1g10gb-19-0' }], { namespace: 'team-b', pod: { name: 'server-0', uid: randomUUID() } });
    const ok = await h.kubelet.prepare([trainer, server]);
    for (const ref of [trainer, server]) expect(ok.claims[ref.uid]?.error, ref.name).toBe('');
    const missing = claimRef({ namespace: 'team-a', name: 'never-created' });
    expect((await h.kubelet.prepare([missing])).claims[missing.uid]?.error).not.toBe('');
    prom = await startPrometheus(dir, [`127.0.0.1:${h.agent.telemetry.port}`]);
    // Rates and increases need two scrapes of every series; the claims' series must be in.
    await waitFor(async () => (await prom!.query('count_over_time(hw_gpu_memory_usage{k8s_namespace_name="team-b"}[1m]) >= 3')).length > 0, {
      what: 'three scrapes of the claimed devices', timeoutMs: 45_000, intervalMs: 250, detail: () => prom!.logTail(),
    });
    nvidiaVars = await resolveVariables(NVIDIA.variables, prom);
    oursVars = await resolveVariables(OURS.variables, prom);
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    await h?.stop();
    await removeDir(dir);
  });

  describe('NVIDIA DCGM Exporter Dashboard (grafana.com 12239)', () => {
    it('resolves its variables to this node and its 8 GPUs', () => {
      expect(nvidiaVars['Hostname']).toBe('(e2e-node)');
      expect(nvidiaVars['gpu']?.split('|')).toHaveLength(8);
    });

    it.each(NVIDIA.queries.map((q) => [`panel ${q.panelId} "${q.title}"`, q] as const))('%s returns series', async (_, q) => {
      const series = await data(interpolate(q.expr, nvidiaVars));
      expect(series.length).toBeGreaterThan(0);
    });

    it('shows one temperature per GPU', async () => {
      const q = NVIDIA.queries.find((x) => x.title === 'GPU Temperature')!;
      expect(new Set((await data(interpolate(q.expr, nvidiaVars))).map((s) => s.metric['gpu']))).toEqual(new Set(['0', '1', '2', '3', '4', '5', '6', '7']));
    });
  });

  describe('gpulet dashboard (dashboards/gpulet.json)', () => {
    it('resolves node, gpu and namespace to this node, its GPUs and the claims\' namespaces', () => {
      expect(oursVars['node']).toBe('(e2e-node)');
      expect(oursVars['gpu']?.split('|')).toHaveLength(8);
      expect(oursVars['namespace']).toBe('(team-a|team-b)');
    });

    it.each(OURS.queries.map((q) => [`panel ${q.panelId} "${q.title}" ${q.refId}`, q] as const))('%s returns series', async (_, q) => {
      const series = await data(interpolate(q.expr, oursVars));
      expect(series.length).toBeGreaterThan(0);
    });

    it('lists the pods holding devices with their claims', async () => {
      const q = OURS.queries.find((x) => x.title === 'Devices held by pod')!;
      const rows = (await data(interpolate(q.expr, oursVars))).map((s) => [s.metric['k8s_namespace_name'], s.metric['k8s_pod_name'], s.metric['gpulet_claim_name'], s.value[1]]);
      expect(rows.sort()).toEqual([['team-a', 'trainer-0', 'trainer', '1'], ['team-b', 'server-0', 'server', '1']]);
    });

    it('counts the failed prepare as a claim error', async () => {
      const q = OURS.queries.find((x) => x.title.startsWith('Claim errors'))!;
      const rows = await data(interpolate(q.expr, oursVars));
      expect(rows.map((s) => [s.metric['operation'], s.metric['error_type']])).toContainEqual(['NodePrepareResources', 'prepare_devices']);
    });
  });
});
