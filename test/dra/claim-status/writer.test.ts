/**
 * The claim status writer (src/dra/claim-status/writer.ts) and the preparer decorator (preparer.ts), driven by
 * a fake client: what is written and when nothing is, retries of transient failures with backoff, bounded,
 * giving up at once on a refusal retrying cannot fix, latest change wins, a claim gone or re-created
 * forgotten, stop drops what is pending; the kubelet's answers pass through unchanged and only successes are
 * reported.
 */
import { describe, expect, it } from 'vitest';
import type { DeviceStatusEntry } from '../../../src/dra/claim-status/build.js';
import type { ClaimStatusClient } from '../../../src/dra/claim-status/client.js';
import { withClaimStatus } from '../../../src/dra/claim-status/preparer.js';
import { ClaimStatusWriter } from '../../../src/dra/claim-status/writer.js';
import { ApiError } from '../../../src/errors.js';
import { buildMockInventory, machineSpecByName } from '../../../src/gpu/mock/index.js';
import { silentLogger } from '../../../src/log.js';
import type { DnsLabel, DnsSubdomain, ObjectUid } from '../../../src/model/names.js';
import type { ClaimPreparer, ClaimRef, PrepareResult, UnprepareResult } from '../../../src/model/types.js';

const DRIVER = 'gpu.gpulet.dev';
const NODE = 'node-a';
const REF: ClaimRef = { namespace: 'ml' as DnsLabel, name: 'train' as DnsSubdomain, uid: '3f2a6c1e-8d4b-4e7a-9c0f-1b2d3e4f5a6b' as ObjectUid };
const inventory = buildMockInventory(machineSpecByName('dgx-h100'), NODE);

/** An API server of one claim: applies are recorded and stored as server-side apply would store them. */
class FakeApi implements ClaimStatusClient {
  devices: readonly DeviceStatusEntry[] | undefined;
  readonly applies: Array<readonly DeviceStatusEntry[]> = [];
  /** Errors the next applies throw, in order. */
  failures: Error[] = [];
  /** Applies wait for this, when set. */
  hold: Promise<void> | undefined;

  async apply(_ref: ClaimRef, entries: readonly DeviceStatusEntry[]): Promise<void> {
    this.applies.push(entries);
    await this.hold;
    const failure = this.failures.shift();
    if (failure !== undefined) throw failure;
    this.devices = structuredClone(entries);
  }
}

function writerFor(api: FakeApi, maxAttempts = 4): ClaimStatusWriter {
  return new ClaimStatusWriter({
    client: api,
    driverName: DRIVER,
    nodeName: NODE,
    inventory: () => inventory,
    logger: silentLogger(),
    maxAttempts,
    backoff: { initialMs: 1, maxMs: 5 },
  });
}

describe('ClaimStatusWriter', () => {
  it('writes the entries of a prepared claim once: a second prepare (a second pod) writes nothing', async () => {
    const api = new FakeApi();
    const w = writerFor(api);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    expect(api.applies.map((a) => a.map((e) => e.device))).toEqual([['gpu-0']]);
    expect(api.devices?.[0]?.data.uuid).toBe(inventory.gpus.find((g) => g.minor === 0)?.uuid);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    expect(api.applies).toHaveLength(1);
  });

  it('removes the entries at unprepare (an apply of none), and writes them again at the next prepare', async () => {
    const api = new FakeApi();
    const w = writerFor(api);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-1' }]);
    await w.idle();
    w.unprepared(REF);
    await w.idle();
    expect(api.devices).toEqual([]);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-1' }]);
    await w.idle();
    expect(api.applies.map((a) => a.length)).toEqual([1, 0, 1]);
  });

  it('latest change wins: a prepare still queued when its claim is unprepared is never written', async () => {
    const api = new FakeApi();
    let release!: () => void;
    api.hold = new Promise<void>((r) => (release = r));
    const BUSY: ClaimRef = { ...REF, name: 'busy' as DnsSubdomain, uid: '5f2a6c1e-8d4b-4e7a-9c0f-1b2d3e4f5a6b' as ObjectUid };
    const w = writerFor(api);
    w.prepared(BUSY, [{ poolName: NODE, deviceName: 'gpu-0' }]); // in flight, held
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-1' }]); // queued behind it
    w.unprepared(REF); // replaces the queued prepare
    release();
    await w.idle();
    expect(api.applies.map((a) => a.map((e) => e.device))).toEqual([['gpu-0'], []]);
  });

  it('retries a transient failure with backoff and succeeds', async () => {
    const api = new FakeApi();
    api.failures = [new ApiError('HTTP 500', 500), new ApiError('unreachable')];
    const w = writerFor(api);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    expect(api.applies).toHaveLength(3);
    expect(api.devices).toHaveLength(1);
  });

  it('gives up after maxAttempts transient failures, and at once on a refusal retrying cannot fix or a claim gone', async () => {
    const api = new FakeApi();
    api.failures = Array.from({ length: 10 }, () => new ApiError('HTTP 503', 503));
    const w = writerFor(api, 3);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    expect(api.applies).toHaveLength(3);
    for (const status of [403, 422, 404, 409]) {
      const refused = new FakeApi();
      refused.failures = [new ApiError(`HTTP ${status}`, status)];
      const w2 = writerFor(refused);
      w2.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
      await w2.idle();
      expect(refused.applies, `HTTP ${status}`).toHaveLength(1);
    }
  });

  it('a claim gone or re-created (404, 409) is forgotten: its next prepare writes again', async () => {
    const api = new FakeApi();
    const w = writerFor(api);
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    api.failures = [new ApiError('HTTP 404', 404)];
    w.unprepared(REF);
    await w.idle();
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    await w.idle();
    expect(api.applies.map((a) => a.length)).toEqual([1, 0, 1]);
  });

  it('stop drops a change waiting for its retry, and takes no more', async () => {
    const api = new FakeApi();
    api.failures = [new ApiError('HTTP 500', 500)];
    const w = new ClaimStatusWriter({ client: api, driverName: DRIVER, nodeName: NODE, inventory: () => inventory, logger: silentLogger(), backoff: { initialMs: 60_000, maxMs: 60_000 } });
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-0' }]);
    // The first attempt fails and waits for its retry (up to a minute); stop does not wait for it.
    await expect.poll(() => api.applies.length).toBe(1);
    await w.stop();
    await w.idle();
    w.prepared(REF, [{ poolName: NODE, deviceName: 'gpu-1' }]);
    await w.idle();
    expect(api.applies).toHaveLength(1);
  });
});

describe('withClaimStatus', () => {
  const A = REF;
  const B: ClaimRef = { ...REF, name: 'other' as DnsSubdomain, uid: '4f2a6c1e-8d4b-4e7a-9c0f-1b2d3e4f5a6b' as ObjectUid };
  const device = { requestNames: ['gpu'], poolName: NODE, deviceName: 'gpu-0', cdiDeviceIds: ['k8s.gpu.gpulet.dev/claim=x-gpu-0'] };
  const inner: ClaimPreparer = {
    prepare: () => Promise.resolve(new Map<string, PrepareResult>([[A.uid, { devices: [device] }], [B.uid, { error: 'no' }]])),
    unprepare: () => Promise.resolve(new Map<string, UnprepareResult>([[A.uid, {}], [B.uid, { error: 'no' }]])),
  };

  it("answers the kubelet with the inner preparer's answers, reporting only successes, each claim once", async () => {
    const seen: string[] = [];
    const p = withClaimStatus(inner, {
      prepared: (ref, devices) => seen.push(`prepared ${ref.name} ${devices.map((d) => d.deviceName).join(',')}`),
      unprepared: (ref) => seen.push(`unprepared ${ref.name}`),
    });
    expect(await p.prepare([A, B, A])).toEqual(await inner.prepare([A, B]));
    expect(await p.unprepare([A, B])).toEqual(await inner.unprepare([A, B]));
    expect(seen).toEqual(['prepared train gpu-0', 'unprepared train']);
  });
});
