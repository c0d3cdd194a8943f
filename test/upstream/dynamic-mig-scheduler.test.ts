/**
 * Dynamic MIG through the real scheduler (issue 12 item 5): on the upstream cluster of test/upstream/, gpulet (the
 * whole agent, mock `dgx-h100`, `--mig-mode dynamic,4=static,5=static --mig-enable`) is node-a's DRA driver. GPUs
 * 0–3 are dynamic H100s in MIG mode (counter sets and placement devices), GPUs 4 and 5 static full GPUs (MIG off),
 * GPUs 6 and 7 dynamic with MIG instances gpulet did not create (foreign: published as the static devices they
 * are). 200 randomised claims — MIG profiles by a CEL selector on `profile` in class mig.gpulet.dev, full GPUs in
 * class gpu.gpulet.dev: of the static GPUs 4 and 5, and of the dynamic GPUs 0–3 (consuming every counter of their
 * GPU; gpulet hands one out by turning the GPU's MIG mode off for the claim) — run as pods in waves: a batch is created, every pod waited for until it is Running
 * (allocated by the kube-scheduler's structured allocator from the published counters, prepared by gpulet through
 * the node agent's kubelet DRA manager) or Unschedulable with the scheduler's reason, some pods deleted at random
 * (unprepared, claims released by the controller-manager's garbage collector), and on. Proves:
 * - no allocation the scheduler makes fails in prepare: no `FailedPrepareDynamicResources` event (the node agent
 *   records the kubelet's event), `gpulet_dra_claim_errors_total` absent or 0 on gpulet's /metrics, every pod
 *   the scheduler did not refuse ends Running;
 * - at a checkpoint after each wave (everything settled), the MIG instances on the mock GPUs other than the
 *   foreign ones are exactly the placement devices allocated to claims (by name, GPU, profile and placement), and
 *   MIG mode is off (read from the mock GPU) on exactly the dynamic GPUs whose full GPU is allocated;
 * - after every pod is deleted, only the foreign instances are left on the GPUs, every dynamic GPU is in MIG mode
 *   again, and the published counter sets
 *   (and every published device) are again what they were before the first claim; the memory-slice counters of
 *   each dynamic GPU are 0 exactly on the slices the existing instances cover (read from the mock GPU).
 *
 * The PRNG seed is printed and in every failure message; rerun one with GPULET_TEST_SEED=<seed>. Skipped with a
 * notice only where Go is absent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreV1Api, ResourceV1Api, type V1CounterSet, type V1Pod, type V1ResourceSlice } from '@kubernetes/client-node';
import { GPU_MODELS } from '../../src/gpu/mock/index.js';
import type { MigDeviceInfo } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import type { Agent } from '../../src/main.js';
import { migDeviceName } from '../../src/model/devices.js';
import { installDocs } from '../helpers/manifests.js';
import { parsePrometheusText } from '../helpers/promtext.js';
import { BUILD_TIMEOUT_MS, buildCluster, clusterUnavailable, START_TIMEOUT_MS, startCluster, type UpstreamCluster } from '../helpers/upstream-cluster.js';
import { CDI_ANNOTATION, claimTemplate, createAll, deletePods, DRIVER, podWithTemplate, startGpulet, type RequestSpec } from '../helpers/upstream-pods.js';
import { GiveUp, waitFor } from '../helpers/wait.js';

const unavailable = clusterUnavailable();
if (unavailable !== undefined) console.warn(`SKIP: test/upstream/dynamic-mig-scheduler.test.ts: ${unavailable}`);

const NODE = 'node-a';
const MIG_MODE = 'dynamic,4=static,5=static';
const CLAIMS = 200;
const WAVE = 16;
const SEED = Number(process.env['GPULET_TEST_SEED'] ?? 0x12_0005);
/** Bound of the whole run (ends a hung run only). */
const TEST_TIMEOUT_MS = 900_000;
/** How long a wave may take to settle on a loaded 2-core machine. */
const SETTLE_TIMEOUT_MS = 180_000;

/** mulberry32: a small seeded PRNG, [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type PodState = 'running' | 'unschedulable' | 'pending';
function stateOf(p: V1Pod): PodState {
  if (p.status?.phase === 'Running' && p.metadata?.annotations?.[CDI_ANNOTATION] !== undefined) return 'running';
  const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
  if (c?.status === 'False' && c.reason === 'Unschedulable' && p.spec?.nodeName === undefined) return 'unschedulable';
  return 'pending';
}

describe.skipIf(unavailable !== undefined)('dynamic MIG through the real kube-scheduler: 200 randomised claims (test/upstream cluster)', () => {
  let cluster: UpstreamCluster;
  let agent: Agent | undefined;
  let stateDir: string;

  beforeAll(async () => {
    await buildCluster();
    cluster = await startCluster({ nodes: [NODE] });
    stateDir = await mkdtemp(path.join(tmpdir(), 'gpulet-migsched-'));
    agent = await startGpulet(cluster.kubeconfig, cluster.nodes.find((n) => n.name === NODE)!, stateDir, silentLogger(), [
      '--mock-machine', 'dgx-h100', '--mig-mode', MIG_MODE, '--mig-enable',
    ]);
    // The node agent's plugin watcher registers gpulet (NotifyRegistrationStatus registered=true) before any pod:
    // a prepare before that is the kubelet's "DRA driver ... is not registered", not gpulet's.
    await waitFor(() => agent!.plugin.registration().registered === true, { what: 'gpulet registered with the node agent', timeoutMs: 60_000 });
    await createAll(cluster.admin, installDocs().filter((d) => d.obj.kind === 'DeviceClass').map((d) => d.obj));
  }, BUILD_TIMEOUT_MS + START_TIMEOUT_MS);

  afterAll(async () => {
    await agent?.stop();
    await cluster?.stop();
    if (stateDir !== undefined) await rm(stateDir, { recursive: true, force: true });
  }, 120_000);

  it('allocates, prepares and releases them with no prepare failure, no leaked instance, and counters that agree with the GPUs', async () => {
    console.log(`dynamic-mig-scheduler: seed ${SEED} (GPULET_TEST_SEED)`);
    const at = `(seed ${SEED})`;
    const core = cluster.admin.makeApiClient(CoreV1Api);
    const resource = cluster.admin.makeApiClient(ResourceV1Api);
    const backend = agent!.backend;
    const mig = backend.mig;
    expect(mig, 'the mock backend manages MIG').toBeDefined();
    const gpus = backend.inventory().gpus;
    const dynamic = gpus.filter((g) => g.index !== 4 && g.index !== 5);
    expect(dynamic.every((g) => g.migEnabled), '--mig-enable turned MIG mode on for every dynamic GPU').toBe(true);
    const fullGpus = gpus.filter((g) => !g.migEnabled).map((g) => g.uuid);
    expect(fullGpus).toHaveLength(2);
    /** The dynamic GPUs whose full GPU is published (no foreign instance: GPUs 0–3). */
    const dynamicFull = dynamic.filter((g) => g.migDevices.length === 0);
    expect(dynamicFull.map((g) => g.index)).toEqual([0, 1, 2, 3]);
    /** Dynamic GPUs in MIG mode off, read from the mock GPU (its own mode, not gpulet's inventory cache). */
    const migOff = async (): Promise<string[]> =>
      (await Promise.all(dynamic.map(async (g) => ((await mig!.migMode(g.uuid)).current ? [] : [`gpu-${g.minor}`])))).flat().sort();

    /** Every MIG device on the mock GPUs, read from the GPU (not gpulet's inventory cache). */
    const instances = async (): Promise<MigDeviceInfo[]> => (await Promise.all(gpus.map((g) => mig!.listMigDevices(g.uuid)))).flat();
    const foreign = new Set((await instances()).map((m) => m.uuid));
    const foreignNames = new Set((await instances()).map(migDeviceName));
    expect(foreign.size, 'the foreign instances of GPUs 6 and 7').toBe(10);

    const listSlices = async (): Promise<V1ResourceSlice[]> => (await resource.listResourceSlice({ fieldSelector: `spec.nodeName=${NODE}` })).items;
    const devicesOf = (slices: readonly V1ResourceSlice[]) => new Map(slices.flatMap((s) => s.spec.devices ?? []).map((d) => [d.name, JSON.stringify(d)]));
    const countersOf = (slices: readonly V1ResourceSlice[]) =>
      new Map(slices.flatMap((s) => s.spec.sharedCounters ?? []).map((c: V1CounterSet) => [c.name, c.counters]));
    const before = await listSlices();
    expect(countersOf(before).size, 'one counter set per dynamic GPU').toBe(dynamic.length);

    // The requests: every H100 MIG profile (small ones more often), the full GPU of a static GPU (MIG mode off), and
    // the full GPU of a dynamic GPU in MIG mode (prepare turns its MIG mode off for the claim).
    const profiles = GPU_MODELS['h100-80gb'].migProfiles.map((p) => p.name);
    const weighted = [...profiles, ...profiles.filter((p) => p.startsWith('1g.')), '1g.10gb', '2g.20gb'];
    const requests = new Map<string, RequestSpec>();
    for (const p of profiles) {
      requests.set(`mig-${p.replaceAll('.', '').replace('+', '-')}`, { deviceClassName: 'mig.gpulet.dev', selectors: [`device.attributes['${DRIVER}'].profile == '${p}'`] });
    }
    requests.set('full', {
      deviceClassName: 'gpu.gpulet.dev',
      selectors: [`device.attributes['${DRIVER}'].uuid in [${fullGpus.map((u) => `'${u}'`).join(', ')}]`],
    });
    requests.set('full-dynamic', {
      deviceClassName: 'gpu.gpulet.dev',
      selectors: [`device.attributes['${DRIVER}'].uuid in [${dynamicFull.map((g) => `'${g.uuid}'`).join(', ')}]`],
    });
    const templateOf = (profile: string | undefined) => (profile === undefined ? 'full' : profile === 'dynamic' ? 'full-dynamic' : `mig-${profile.replaceAll('.', '').replace('+', '-')}`);
    await createAll(cluster.admin, [...requests].map(([name, req]) => claimTemplate(name, req)));

    const random = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const live = new Set<string>();
    let made = 0;
    let running = 0;
    let refused = 0;
    /** The templates of which a pod ran. */
    const ran = new Set<string>();
    /** The most instances gpulet had made at one checkpoint. */
    let mostInstances = 0;
    /** The most dynamic GPUs handed out whole (MIG mode off) at one checkpoint. */
    let mostMigOff = 0;

    const listPods = async () => (await core.listNamespacedPod({ namespace: 'default' })).items;
    /**
     * The node agent's FailedPrepareDynamicResources events that are gpulet's, and gpulet's claim errors. Left
     * out: the kubelet DRA manager's own read of the claim refused by the node authorizer before its graph has
     * the pod → claim edge (plugin/pkg/auth/authorizer/node: "no relationship found"): gpulet is not called yet,
     * and the kubelet retries, as the real one does on its next pod sync. Counted in `authorizerRaces`.
     */
    const authorizerRaces = new Set<string>();
    const prepareFailures = async (): Promise<string[]> => {
      const events = (await core.listNamespacedEvent({ namespace: 'default' })).items.filter((e) => {
        if (e.reason !== 'FailedPrepareDynamicResources') return false;
        if (/fetch ResourceClaim .* is forbidden: User "system:node:[^"]+" cannot get resource "resourceclaims".*no relationship found between node/.test(e.message ?? '')) {
          authorizerRaces.add(e.involvedObject.name ?? '');
          return false;
        }
        return true;
      });
      const text = await (await fetch(`${agent!.telemetry.url}/metrics`)).text();
      const errors = parsePrometheusText(text).samples.filter((s) => s.name === 'gpulet_dra_claim_errors_total' && s.value > 0);
      return [...events.map((e) => `${e.involvedObject.name}: ${e.message ?? ''}`), ...errors.map((s) => `gpulet_dra_claim_errors_total${JSON.stringify(s.labels)} ${s.value}`)];
    };
    /** Wait until every live pod is Running or Unschedulable; fail at once on a prepare failure. */
    const settle = async (what: string): Promise<V1Pod[]> =>
      waitFor(
        async () => {
          const failures = await prepareFailures();
          if (failures.length > 0) throw new GiveUp(`prepare failed ${at}: ${failures.join('; ')}`);
          const pods = (await listPods()).filter((p) => live.has(p.metadata!.name!));
          return pods.length === live.size && pods.every((p) => stateOf(p) !== 'pending') ? pods : undefined;
        },
        { what: `${what}: every pod Running or Unschedulable ${at}`, timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 500 },
      );
    /** Allocated devices of node-a's pool by name → claim, from the claims (the scheduler's answer). */
    const allocated = async (): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const c of (await resource.listNamespacedResourceClaim({ namespace: 'default' })).items) {
        for (const r of c.status?.allocation?.devices?.results ?? []) {
          expect(r.pool, `${c.metadata!.name!} ${at}`).toBe(NODE);
          expect(out.has(r.device), `device ${r.device} allocated twice ${at}`).toBe(false);
          out.set(r.device, c.metadata!.name!);
        }
      }
      return out;
    };
    /** The checkpoint: gpulet's own instances on the GPUs are exactly the allocated placement devices. */
    const checkpoint = async (wave: number): Promise<void> => {
      const own = await waitFor(
        async () => {
          const own = (await instances()).filter((m) => !foreign.has(m.uuid)).map(migDeviceName).sort();
          const placements = [...(await allocated()).keys()].filter((n) => /-mig-/.test(n) && !foreignNames.has(n)).sort();
          return JSON.stringify(own) === JSON.stringify(placements) ? own : undefined;
        },
        { what: `wave ${wave}: the MIG instances on the GPUs to equal the allocated placement devices ${at}`, timeoutMs: 60_000, intervalMs: 250 },
      );
      mostInstances = Math.max(mostInstances, own.length);
      // MIG mode is off on exactly the dynamic GPUs whose full GPU is allocated
      const off = await waitFor(
        async () => {
          const whole = [...(await allocated()).keys()].filter((n) => dynamicFull.some((g) => n === `gpu-${g.minor}`)).sort();
          const now = await migOff();
          return JSON.stringify(now) === JSON.stringify(whole) ? now : undefined;
        },
        { what: `wave ${wave}: MIG mode off on exactly the dynamic GPUs whose full GPU is allocated ${at}`, timeoutMs: 60_000, intervalMs: 250 },
      );
      mostMigOff = Math.max(mostMigOff, off.length);
    };

    const started = performance.now();
    for (let wave = 0; made < CLAIMS; wave++) {
      const batch: V1Pod[] = [];
      for (let i = 0; i < WAVE && made < CLAIMS; i++, made++) {
        const whole = random() < 0.2;
        const profile = whole ? (random() < 0.6 ? 'dynamic' : undefined) : pick(weighted);
        const name = `w${wave}-p${i}-${templateOf(profile)}`;
        batch.push(podWithTemplate(name, templateOf(profile)));
        live.add(name);
      }
      await createAll(cluster.admin, batch);
      const pods = await settle(`wave ${wave}`);
      for (const p of pods) {
        if (stateOf(p) === 'unschedulable') {
          // pkg/scheduler/framework/plugins/dynamicresources/dynamicresources.go Filter: "cannot allocate all claims".
          const c = p.status!.conditions!.find((x) => x.type === 'PodScheduled')!;
          expect(c.message, `${p.metadata!.name!} ${at}`).toContain('cannot allocate all claims');
        }
      }
      running += batch.filter((b) => stateOf(pods.find((p) => p.metadata!.name === b.metadata!.name)!) === 'running').length;
      for (const p of pods) if (stateOf(p) === 'running') ran.add(p.spec!.resourceClaims![0]!.resourceClaimTemplateName!);
      refused += batch.filter((b) => stateOf(pods.find((p) => p.metadata!.name === b.metadata!.name)!) === 'unschedulable').length;
      await checkpoint(wave);
      // Delete more than half, the unschedulable ones more often (they would wait for room forever).
      const gone = pods.filter((p) => random() < (stateOf(p) === 'unschedulable' ? 0.9 : 0.6)).map((p) => p.metadata!.name!);
      await deletePods(cluster.admin, gone);
      for (const n of gone) live.delete(n);
    }
    // Everything left must settle too (a pod the scheduler refused may have got room since), then go.
    await settle('the last pods');
    await checkpoint(-1);
    await deletePods(cluster.admin, [...live]);
    live.clear();
    // A template the random waves never got running (the scheduler's choices vary with timing: a 4g.40gb may find
    // no room in any wave) gets one pod alone on the emptied node, which must run.
    const alone = [...requests.keys()].filter((t) => !ran.has(t)).sort();
    for (const template of alone) {
      await waitFor(async () => ((await allocated()).size === 0 ? true : undefined), { what: `node-a emptied before ${template} alone ${at}`, timeoutMs: 60_000 });
      const name = `alone-${template}`;
      await createAll(cluster.admin, [podWithTemplate(name, template)]);
      live.add(name);
      const pod = (await settle(`${template} alone`)).find((p) => p.metadata!.name === name)!;
      expect(stateOf(pod), `${template} alone on the emptied node ${at}`).toBe('running');
      ran.add(pod.spec!.resourceClaims![0]!.resourceClaimTemplateName!);
      await checkpoint(-2);
      await deletePods(cluster.admin, [name]);
      live.delete(name);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(`dynamic-mig-scheduler: ${CLAIMS} claims, ${running} running at the end of their wave, ${refused} refused by the scheduler, ${authorizerRaces.size} pods retried after the node authorizer's race, at most ${mostInstances} instances and ${mostMigOff} dynamic GPUs handed out whole at a checkpoint, ${alone.length === 0 ? 'every template ran in a wave' : `run alone at the end: ${alone.join(', ')}`}, ${seconds.toFixed(0)} s`);
    expect(mostInstances, `gpulet made MIG instances ${at}`).toBeGreaterThan(0);
    expect(mostMigOff, `gpulet handed out full GPUs of dynamic GPUs ${at}`).toBeGreaterThan(0);
    expect([...ran].sort(), `a pod of every template ran (in a wave, or alone at the end): each MIG profile and both kinds of full GPU ${at}`).toEqual([...requests.keys()].sort());
    expect(await prepareFailures(), `no prepare failure ${at}`).toEqual([]);

    // No instance survives its claim: only the foreign ones are left on the GPUs.
    await waitFor(async () => (await instances()).every((m) => foreign.has(m.uuid)), { what: `only foreign instances left ${at}`, timeoutMs: 60_000 });
    expect(new Set((await instances()).map((m) => m.uuid))).toEqual(foreign);
    expect(await allocated()).toEqual(new Map());
    await waitFor(async () => (await migOff()).length === 0, { what: `every dynamic GPU in MIG mode again ${at}`, timeoutMs: 60_000 });

    // Counters and the GPUs agree: the published slices are again those of before the first claim ...
    const after = await waitFor(
      async () => {
        const now = await listSlices();
        return JSON.stringify([...countersOf(now)].sort()) === JSON.stringify([...countersOf(before)].sort()) ? now : undefined;
      },
      { what: `the counter sets as before the run ${at}`, timeoutMs: 60_000 },
    );
    expect(devicesOf(after)).toEqual(devicesOf(before));
    // ... and each dynamic GPU's memory-slice counters are 0 exactly where an instance on the GPU sits.
    const existing = await instances();
    for (const g of dynamic) {
      const set = countersOf(after).get(`gpu-${g.minor}-counter-set`);
      expect(set, `counter set of GPU ${g.index}`).toBeDefined();
      const covered = new Set(existing.filter((m) => m.parentUuid === g.uuid).flatMap((m) => Array.from({ length: m.placement.size }, (_, i) => m.placement.start + i)));
      for (let s = 0; s < 8; s++) expect(set![`memory-slice-${s}`]?.value, `GPU ${g.index} memory-slice-${s} ${at}`).toBe(covered.has(s) ? '0' : '1');
    }
  }, TEST_TIMEOUT_MS);
});
