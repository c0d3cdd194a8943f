/**
 * A seamless rolling update (DaemonSet maxSurge 1): two whole agents (`startAgent`, configured by the CLI
 * parser) with different `--pod-uid`s share ONE state dir (checkpoint) and CDI dir and one API server, and
 * the kubelet calls either over its pod-UID-suffixed DRA socket (docs/contracts.md §2; real grpc-js clients).
 * Concurrent prepares of different claims through both instances, many rounds, then unprepares through the
 * other instance, then a restart of one instance while the other keeps preparing. Proves, with the checkpoint
 * checksum recomputed independently: every claim is recorded exactly once as PrepareCompleted, every CDI spec
 * on disk belongs to a recorded claim and every recorded claim has its spec, and the restarted instance's
 * reconciliation (orphan sweep included) deletes nothing of a live claim. Without the state lock (and the
 * re-read of the checkpoint under it) the two in-memory images overwrite each other's entries.
 */
import { randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer } from '../../dev/apiserver/server.js';
import { dialUnix, unaryCall } from '../../dev/kubelet/grpc-client.js';
import { loadConfig, type Config } from '../../src/config.js';
import { loadKubeletServices, type WirePrepareResponse, type WireUnprepareResponse } from '../../src/dra/kubelet/grpc-protos.js';
import type { ClaimRef } from '../../src/model/types.js';
import { silentLogger } from '../../src/log.js';
import { startAgent, type Agent } from '../../src/main.js';
import { agentArgs, tempDir } from '../helpers/agent.js';
import { allocateClaim, expectedCdiIds, NODE, specUids, tempFiles, verifiedCheckpoint } from '../helpers/crash-harness.js';
import { waitFor } from '../helpers/wait.js';

const services = loadKubeletServices();
const ROUNDS = 12;
const DEVICES = ['gpu-0', 'gpu-1', 'gpu-2', 'gpu-3', 'gpu-4', 'gpu-5'];

/** One agent instance and a kubelet-side gRPC client on its DRA socket. */
interface Instance {
  readonly podUid: string;
  agent: Agent;
  client: grpc.Client;
}

let server: EmbeddedApiServer;
let dir: string;
let kubeconfig: string;
const instances: Instance[] = [];

function configFor(podUid: string): Config {
  return loadConfig(agentArgs(dir, ['--pod-uid', podUid, '--kube-api', 'kubeconfig', '--kubeconfig', kubeconfig]), {}, dir);
}

async function start(podUid: string): Promise<Instance> {
  const agent = await startAgent(configFor(podUid), silentLogger());
  return { podUid, agent, client: dialUnix(agent.plugin.draSocket) };
}

async function stop(i: Instance): Promise<void> {
  i.client.close();
  await i.agent.stop();
}

const wire = (refs: readonly ClaimRef[]) => ({ claims: refs.map((c) => ({ namespace: c.namespace, name: c.name, uid: c.uid })) });
const prepare = (i: Instance, refs: readonly ClaimRef[]): Promise<WirePrepareResponse> =>
  unaryCall(i.client, services.dra.v1.NodePrepareResources, wire(refs), 45_000);
const unprepare = (i: Instance, refs: readonly ClaimRef[]): Promise<WireUnprepareResponse> =>
  unaryCall(i.client, services.dra.v1.NodeUnprepareResources, wire(refs), 45_000);

/** Every prepared claim answered without error and with its expected CDI IDs. */
function expectPrepared(res: WirePrepareResponse, refs: readonly ClaimRef[], devices: (ref: ClaimRef) => readonly string[]): void {
  for (const ref of refs) {
    const r = res.claims[ref.uid];
    expect(r?.error, `${ref.name}`).toBe('');
    expect(r?.devices.flatMap((d) => d.cdi_device_ids)).toEqual(expectedCdiIds(ref, devices(ref)));
  }
}

/** The state on disk: checkpoint (checksum verified) = exactly `live`, all PrepareCompleted; specs = `live`. */
async function expectState(live: ReadonlyMap<string, ClaimRef>): Promise<void> {
  // The accounting records a claim just prepared in the checkpoint after the answer (src/telemetry/accounting.ts):
  // that write's temp file may be there for a moment. A temp file left behind would never go.
  await waitFor(async () => (await tempFiles(dir)).length === 0, { what: 'no temp file in the state and CDI dirs', detail: () => 'a temp file was left behind' });
  const cp = await verifiedCheckpoint(dir);
  const entries = Object.values(cp?.claims ?? {});
  expect(entries.map((e) => e.uid).sort()).toEqual([...live.keys()].sort());
  for (const e of entries) {
    expect(e.state, e.name).toBe('PrepareCompleted');
    expect(e.name).toBe(live.get(e.uid)?.name);
  }
  expect(new Set(entries.map((e) => e.name)).size).toBe(entries.length); // no claim recorded twice
  expect(await specUids(dir)).toEqual([...live.keys()].sort());
}

beforeAll(async () => {
  server = await startApiServer({ nodes: [NODE] });
  dir = await tempDir('gpulet-two-');
  kubeconfig = join(dir, 'api.kubeconfig');
  await writeFile(kubeconfig, server.kubeconfig(), { mode: 0o600 });
  instances.push(await start(randomUUID()), await start(randomUUID()));
});

afterAll(async () => {
  for (const i of instances.splice(0)) await stop(i).catch(() => undefined);
  await server?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('two instances on one state dir (rolling update)', () => {
  const live = new Map<string, ClaimRef>();
  const devicesOf = new Map<string, readonly string[]>();
  const claim = (name: string, n: number): ClaimRef => {
    const devices = [DEVICES[n % DEVICES.length]!];
    const ref = allocateClaim(server, name, devices);
    devicesOf.set(ref.uid, devices);
    return ref;
  };
  const devices = (ref: ClaimRef) => devicesOf.get(ref.uid) ?? [];

  it('both serve on their own pod-UID-suffixed sockets in one plugins dir', () => {
    const [a, b] = instances;
    expect(a!.agent.plugin.draSocket).toContain(a!.podUid);
    expect(b!.agent.plugin.draSocket).toContain(b!.podUid);
    expect(a!.agent.config.checkpointPath).toBe(b!.agent.config.checkpointPath);
    expect(a!.agent.config.cdiDir).toBe(b!.agent.config.cdiDir);
  });

  it('concurrent prepares of different claims through both instances: each claim recorded once, with its spec', async () => {
    const [a, b] = instances;
    for (let round = 0; round < ROUNDS; round++) {
      const viaA = [claim(`a-${round}-0`, round), claim(`a-${round}-1`, round + 1)];
      const viaB = [claim(`b-${round}`, round + 2)];
      const [ra, rb] = await Promise.all([prepare(a!, viaA), prepare(b!, viaB)]);
      expectPrepared(ra, viaA, devices);
      expectPrepared(rb, viaB, devices);
      for (const r of [...viaA, ...viaB]) live.set(r.uid, r);
    }
    await expectState(live);
    // Idempotent across instances: B answers A's claim from the shared checkpoint without a second GET.
    const first = [...live.values()][0]!;
    server.clearRequests();
    expectPrepared(await prepare(b!, [first]), [first], devices);
    expect(server.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/resourceclaims/${first.name}`))).toEqual([]);
  });

  it('unprepare through the other instance removes spec and entry, while the other prepares', async () => {
    const [a, b] = instances;
    const byA = [...live.values()].filter((r) => r.name.startsWith('b-'));
    const byB = [...live.values()].filter((r) => r.name.startsWith('a-') && r.name.endsWith('-0'));
    const fresh = [claim('c-0', 0), claim('c-1', 1)];
    const [ua, ub, pa] = await Promise.all([unprepare(a!, byA), unprepare(b!, byB), prepare(a!, fresh)]);
    for (const r of byA) expect(ua.claims[r.uid]?.error).toBe('');
    for (const r of byB) expect(ub.claims[r.uid]?.error).toBe('');
    expectPrepared(pa, fresh, devices);
    for (const r of [...byA, ...byB]) live.delete(r.uid);
    for (const r of fresh) live.set(r.uid, r);
    await expectState(live);
  });

  it('a restart of either instance (reconcile and orphan sweep) deletes nothing of a live claim, while the other prepares', async () => {
    for (const idx of [0, 1]) {
      const restarting = instances[idx]!;
      const other = instances[1 - idx]!;
      await stop(restarting);
      const during = Array.from({ length: 6 }, (_, n) => claim(`r${idx}-${n}`, n));
      // The other instance prepares one claim at a time while the restarted one reconciles.
      const preparing = (async () => {
        for (const ref of during) expectPrepared(await prepare(other, [ref]), [ref], devices);
      })();
      const restarted = await start(restarting.podUid);
      instances[idx] = restarted;
      await preparing;
      for (const r of during) live.set(r.uid, r);
      await expectState(live);
      // The restarted instance serves the claims the other one prepared (idempotent, same CDI IDs).
      const some = [during[0]!, [...live.values()][0]!];
      expectPrepared(await prepare(restarted, some), some, devices);
    }
    await expectState(live);
  });
});
