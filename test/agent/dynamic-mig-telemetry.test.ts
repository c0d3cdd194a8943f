/**
 * Dynamic MIG, telemetry follows the instances (issue 12 item 6): the real agent (mock `h100-80gb`, `--mig-mode
 * dynamic --mig-enable`) with a simulated kubelet and an OTLP gRPC receiver. Prepare of a placement device creates
 * a MIG instance: its `hw.*` and `DCGM_FI_*` series appear under the new MIG UUID, attributed to the claim and its
 * pod. Unprepare destroys it: from that answer on, `/metrics` has no series of that UUID, and the OTLP exports that
 * follow carry none.
 *
 * The sample interval is the maximum (an hour), so the readings of the new device can only come from the sample
 * the agent takes when its inventory changes, and the departed device's readings (still in the last sample) can
 * only leave because telemetry drops what the inventory no longer has, not because a periodic sample replaced it.
 * Independent facts: the new UUID is read from the mock GPU's own inventory (`agent.backend`), the claim and pod
 * from the API objects the test made; series are parsed by the strict exposition-format parser and the OTLP
 * protobuf decoder (test/helpers/promtext.ts, otlp-receiver.ts).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PromSample } from '../helpers/promtext.js';
import { allocatedClaim, removeDir, scrape, startHarness, tempDir, type Harness } from '../helpers/agent.js';
import { attrs, startOtlpReceiver, type OtlpReceiver, type OtlpRequest } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';

/** 2g.20gb (GI profile 14) at memory slice 2 of GPU 0 (NVIDIA's name `gpu-<minor>-mig-<profile>-<giProfileId>-<start>`). */
const DEVICE = 'gpu-0-mig-2g20gb-14-2';

let h: Harness;
let dir: string;
let receiver: OtlpReceiver;

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  dir = await tempDir();
  h = await startHarness({
    dir,
    extraArgs: [
      '--mock-machine', 'h100-80gb', '--mig-mode', 'dynamic', '--mig-enable', 'true', '--sample-interval', '3600000',
      '--dcgm-compat', 'true', '--otlp-endpoint', receiver.endpoint, '--otlp-export-interval', '200',
    ],
  });
});
afterAll(async () => {
  await h?.stop();
  await receiver?.close();
  await removeDir(dir);
});

/** MIG UUIDs on the mock GPU now (its inventory, not gpulet's checkpoint). */
function migUuids(): string[] {
  return h.agent.backend.inventory().gpus.flatMap((g) => g.migDevices.map((m) => m.uuid));
}
/** Every OTLP data point of the request whose `hw.id` is `uuid`, as metric name → attributes. */
function otlpPointsOf(req: OtlpRequest, uuid: string): { metric: string; attributes: Record<string, string> }[] {
  const out: { metric: string; attributes: Record<string, string> }[] = [];
  for (const rm of req.resourceMetrics) {
    for (const sm of rm.scopeMetrics) {
      for (const m of sm.metrics) {
        const points = [...(m.gauge?.dataPoints ?? []), ...(m.sum?.dataPoints ?? [])];
        for (const p of points) {
          const a = attrs(p.attributes);
          if (a['hw.id'] === uuid) out.push({ metric: m.name, attributes: a });
        }
      }
    }
  }
  return out;
}
const ofUuid = (samples: readonly PromSample[], uuid: string): PromSample[] =>
  samples.filter((s) => s.labels['hw_id'] === uuid || s.labels['UUID'] === uuid || s.labels['dra_mig_device_uuid'] === uuid);

describe('dynamic MIG: telemetry follows the instances prepare creates and unprepare destroys', () => {
  it('series of the new MIG UUID appear attributed to the claim, and leave /metrics and OTLP with the instance', async () => {
    expect(migUuids()).toEqual([]);
    const pod = { name: 'trainer', uid: randomUUID() };
    const ref = await allocatedClaim(h.api, 'mig-telemetry', [{ device: DEVICE }], { pod });
    const prepared = await h.kubelet.prepare([ref]);
    expect(prepared.claims[ref.uid]?.error).toBe('');
    const preparedAt = receiver.requests.length;
    const created = migUuids();
    expect(created).toHaveLength(1);
    const uuid = created[0]!;
    const claimAttrs = { 'gpulet.claim.name': 'mig-telemetry', 'gpulet.claim.namespace': 'default', 'gpulet.claim.uid': ref.uid, 'k8s.pod.name': 'trainer', 'k8s.pod.uid': pod.uid };

    // /metrics: hw.status at once (inventory), readings from the sample taken on the change; all with the claim.
    let samples: PromSample[] = [];
    await waitFor(async () => {
      samples = ofUuid(await scrape(h.agent), uuid);
      const names = new Set(samples.map((s) => s.name));
      return names.has('hw_status') && [...names].some((n) => n.startsWith('hw_gpu_memory')) && [...names].some((n) => n.startsWith('DCGM_FI_'));
    }, { what: `hw.* readings and DCGM series of ${uuid} on /metrics` });
    for (const s of samples.filter((x) => x.labels['hw_id'] === uuid)) {
      expect(s.labels, s.name).toMatchObject({ gpulet_claim_name: 'mig-telemetry', gpulet_claim_uid: ref.uid, k8s_pod_name: 'trainer', k8s_pod_uid: pod.uid });
    }
    for (const s of samples.filter((x) => x.name.startsWith('DCGM_FI_'))) {
      expect(s.labels, s.name).toMatchObject({ pod: 'trainer', namespace: 'default', dra_claim_name: 'mig-telemetry', dra_device_name: DEVICE, dra_mig_device_uuid: uuid, GPU_I_PROFILE: '2g.20gb' });
    }

    // OTLP: an export collected after the prepare answered (the one in flight then skipped: it may predate the
    // PrepareCompleted commit, when the new device was present but not yet the claim's) has readings of the new
    // device, all attributed to the claim.
    const afterPrepare = preparedAt + 1;
    let withDevice: OtlpRequest | undefined;
    await waitFor(() => {
      withDevice = receiver.requests.slice(afterPrepare).find((r) => otlpPointsOf(r, uuid).some((p) => p.metric === 'hw.gpu.memory.usage'));
      return withDevice !== undefined;
    }, { what: `an OTLP export with readings of ${uuid}` });
    for (const p of otlpPointsOf(withDevice!, uuid)) expect(p.attributes, p.metric).toMatchObject(claimAttrs);

    // Unprepare destroys the instance: from the answer on, no series of it on /metrics.
    const unprepared = await h.kubelet.unprepare([ref]);
    expect(unprepared.claims[ref.uid]?.error).toBe('');
    expect(migUuids()).toEqual([]);
    expect(ofUuid(await scrape(h.agent), uuid)).toEqual([]);
    // ... nor in any OTLP export that starts after it (the exports since are counted from here).
    const from = receiver.requests.length;
    await waitFor(() => receiver.requests.length >= from + 2, { what: 'two OTLP exports after the unprepare' });
    for (const r of receiver.requests.slice(from + 1)) expect(otlpPointsOf(r, uuid)).toEqual([]);
    // The GPU itself is still reported (telemetry did not lose the node's devices).
    const gpu = h.agent.backend.inventory().gpus[0]!.uuid;
    expect(ofUuid(await scrape(h.agent), gpu).some((s) => s.name === 'hw_status')).toBe(true);
  });
});
