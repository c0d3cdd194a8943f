/**
 * Per-claim accounting across an agent kill, with the real CLI (mock backend) against an API server that
 * outlives it and a simulated kubelet: prepare a claim, let the agent record its usage in the checkpoint (the
 * checksum verified independently) and count a few seconds, SIGKILL the agent, start a new one on the same state.
 * Proves: the new agent continues the claim's totals from the checkpoint — its device-seconds on /metrics cover
 * the whole time since the recorded sample, the killed agent's seconds and the gap included, not a fresh start;
 * at the kubelet's unprepare one final info log line carries the totals, one scrape carries the final series,
 * and then the series are gone. (The mock GPU dies with the agent process, so its energy counter starts again and
 * the gap's energy is not measurable here; the unit test test/telemetry/accounting.test.ts proves the energy over
 * a gap with a GPU that outlives the accumulator.)
 */
import { rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { tempDir } from '../helpers/agent.js';
import { allocateClaim, bootIdFile, killGroup, kubeletFor, spawnAgent, stopAgent, verifiedCheckpoint, NODE, type AgentRun } from '../helpers/crash-harness.js';
import { parsePrometheusText, type PromSample } from '../helpers/promtext.js';
import { waitFor } from '../helpers/wait.js';

let server: EmbeddedApiServer;
let dir: string;
const runs: AgentRun[] = [];

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await tempDir('gpulet-accounting-');
  await writeFile(bootIdFile(dir), 'boot-1\n');
});
afterAll(async () => {
  for (const r of runs) killGroup(r);
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

/** The /metrics URL of a run, from its "serving /metrics" log line. */
function metricsUrl(run: AgentRun): string {
  const line = run.stderr().split('\n').find((l) => l.includes('telemetry: serving /metrics'));
  const port = (JSON.parse(line ?? '{}') as { port?: number }).port;
  if (port === undefined) throw new Error('no "serving /metrics" line');
  return `http://127.0.0.1:${port}/metrics`;
}

async function claimSeries(run: AgentRun, uid: string): Promise<PromSample[]> {
  const text = await (await fetch(metricsUrl(run))).text();
  return parsePrometheusText(text).samples.filter((s) => s.name.startsWith('gpulet_claim_') && s.labels['gpulet_claim_uid'] === uid);
}

const valueOf = (samples: readonly PromSample[], name: string): number | undefined => samples.find((s) => s.name === name)?.value;

interface RecordedUsage {
  readonly lastSampleMs: number;
  readonly deviceSeconds: number;
  readonly baselines: readonly { readonly uuid: string; readonly energyMillijoules: number }[];
}

describe('per-claim accounting across an agent kill', () => {
  it('the restarted agent continues the claim\'s totals from the checkpoint; unprepare logs and exports the final ones once', async () => {
    const claim = allocateClaim(server, 'acct', ['gpu-0']);
    const first = await spawnAgent({ dir, server });
    runs.push(first);
    const kubelet = await kubeletFor(dir);
    const prepared = await kubelet.prepare([claim]);
    expect(prepared.claims[claim.uid]?.error).toBe('');

    // The new claim's baselines are recorded at once (verified checkpoint, independent checksum).
    const recorded = await waitFor(async () => {
      const cp = await verifiedCheckpoint(dir);
      return (cp?.claims[claim.uid] as { usage?: RecordedUsage } | undefined)?.usage;
    }, { what: 'the claim\'s usage in the checkpoint' });
    expect(recorded.baselines.map((b) => b.uuid)).toHaveLength(1);
    // The first agent counts a few seconds of holding, then dies without a word.
    await waitFor(async () => (valueOf(await claimSeries(first, claim.uid), 'gpulet_claim_device_time_total') ?? 0) >= 2, { what: '2 device-seconds counted' });
    killGroup(first);
    await first.exited;
    const killedAtMs = Date.now();
    await kubelet.stop();

    const second = await spawnAgent({ dir, server });
    runs.push(second);
    expect(second.stderr()).toContain('continuing the claim from its recorded usage');
    // Everything since the recorded sample is counted: the killed agent's seconds and the gap.
    const gapS = (killedAtMs - recorded.lastSampleMs) / 1000;
    const continued = await waitFor(async () => {
      const series = await claimSeries(second, claim.uid);
      return valueOf(series, 'gpulet_claim_device_time_total') !== undefined ? series : undefined;
    }, { what: 'the claim\'s series on the new agent' });
    expect(valueOf(continued, 'gpulet_claim_device_time_total')).toBeGreaterThanOrEqual(recorded.deviceSeconds + gapS);
    expect(valueOf(continued, 'gpulet_claim_energy_total')).toBeGreaterThanOrEqual(0);
    expect(continued.find((s) => s.name === 'gpulet_claim_device_time_total')?.labels).toMatchObject({
      k8s_namespace_name: 'default', gpulet_claim_name: 'acct', gpulet_claim_uid: claim.uid, k8s_pod_name: 'acct-pod',
    });

    // The kubelet's unprepare: one final info line with the totals, the final series once, then none.
    const kubelet2 = await kubeletFor(dir);
    const before = valueOf(await claimSeries(second, claim.uid), 'gpulet_claim_device_time_total') ?? 0;
    const un = await kubelet2.unprepare([claim]);
    expect(un.claims[claim.uid]?.error).toBe('');
    const finalLine = await waitFor(() => second.stderr().split('\n').find((l) => l.includes('final totals')), { what: 'the final totals log line' });
    const final = JSON.parse(finalLine) as { level: number; claimUid: string; claim: string; deviceSeconds: number; energyJoules?: number };
    expect(final).toMatchObject({ level: 30, claimUid: claim.uid, claim: 'default/acct' });
    expect(final.deviceSeconds).toBeGreaterThanOrEqual(before);
    expect(second.stderr().split('\n').filter((l) => l.includes('final totals'))).toHaveLength(1);
    await waitFor(async () => (await claimSeries(second, claim.uid)).length === 0, { what: 'the claim\'s series gone from /metrics' });
    await kubelet2.stop();
    expect(await stopAgent(second)).toBe(0);
  });
});
