/**
 * The whole agent (`startAgent`, `--kube-api kubeconfig`) against an API server of the test's own
 * (`startApiServer`) with a fault schedule (409, 429, 500, latency, dropped connections) on the ResourceSlice
 * paths and the ResourceClaim GET path, the kubelet simulated over the real DRA socket. Proves:
 * - ResourceSlices converge (same devices as before the faults) once the faults stop;
 * - the request rate the server saw during a 5 s HTTP 500 outage stays bounded (capped exponential backoff
 *   with jitter, no busy loop): at most 5 slice requests in any second of it;
 * - prepares during the outage get per-claim errors naming the HTTP status, and succeed afterwards;
 * - no unhandled promise rejection anywhere in the process.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type EmbeddedApiServer, type RequestRecord } from '../../dev/apiserver/server.js';
import type { ClaimRef } from '../../src/model/types.js';
import { allocatedClaim, DRIVER, removeDir, startHarness, type Harness } from '../helpers/agent.js';
import { waitFor } from '../helpers/wait.js';

const SLICES = '/apis/resource.k8s.io/v1/resourceslices';
const CLAIMS = '/resourceclaims/';
const OUTAGE_MS = 5_000;
/** Failed slice requests the outage lasts for at least (the first attempt and two backoff retries). */
const MIN_RETRIES = 3;

let server: EmbeddedApiServer;
let h: Harness;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

/** Device names our driver publishes for the node, from the server's store (sorted). */
function publishedDevices(): string[] {
  return server
    .list('resource.k8s.io/v1', 'ResourceSlice')
    .filter((s) => (s['spec'] as { driver?: string } | undefined)?.driver === DRIVER)
    .flatMap((s) => ((s['spec'] as { devices?: { name: string }[] }).devices ?? []).map((d) => d.name))
    .sort();
}

/** Delete every slice of ours directly in the store (as a restarting kubelet does) and make the agent notice. */
function wipeSlices(): void {
  for (const s of server.list('resource.k8s.io/v1', 'ResourceSlice')) server.delete('resource.k8s.io/v1', 'ResourceSlice', undefined, s.metadata.name ?? '');
  h.agent.publisher.republish();
}

/** Requests to the slice paths in [from, to). */
const sliceRequests = (from: number, to: number): RequestRecord[] =>
  server.requests.filter((r) => r.path.startsWith(SLICES) && r.timestampMs >= from && r.timestampMs < to);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = await startApiServer({ nodes: ['e2e-node'] });
  h = await startHarness({ server });
});

afterAll(async () => {
  await h?.stop();
  await server?.close();
  await removeDir(h?.dir);
  process.off('unhandledRejection', onUnhandled);
});

describe('API server fault schedule', () => {
  let devices: string[];
  const claim = (name: string): Promise<ClaimRef> => allocatedClaim(h.api, name, [{ device: 'gpu-0' }], { pod: { name: `${name}-pod`, uid: randomUUID() } });

  it('transient faults (409, 429, dropped connection, latency): slices converge, prepares name the status then succeed', async () => {
    devices = publishedDevices();
    expect(devices.length).toBeGreaterThan(0);
    const ref = await claim('transient');

    const removers = [
      server.injectFault({ pathIncludes: SLICES, status: 409, times: 1 }),
      server.injectFault({ pathIncludes: SLICES, status: 429, times: 1 }),
      server.injectFault({ pathIncludes: SLICES, drop: true, times: 1 }),
      server.injectFault({ pathIncludes: SLICES, delayMs: 300, times: 2 }),
      server.injectFault({ method: 'GET', pathIncludes: CLAIMS, status: 429, times: 1 }),
    ];
    wipeSlices();
    const during = await h.kubelet.prepare([ref]);
    expect(during.claims[ref.uid]?.error).toMatch(new RegExp(`claim default/transient \\(uid ${ref.uid}\\): .*HTTP 429`));
    const after = await h.kubelet.prepare([ref]);
    expect(after.claims[ref.uid]?.error).toBe('');
    expect(after.claims[ref.uid]?.devices.map((d) => d.device_name)).toEqual(['gpu-0']);

    await waitFor(() => publishedDevices().join() === devices.join(), { what: 'slices to converge after transient faults' });
    await h.agent.publisher.whenSynced();
    const statuses = new Set(server.requests.filter((r) => r.path.startsWith(SLICES)).map((r) => r.status));
    expect(statuses).toContain(409); // the faults were really served
    expect(statuses).toContain(429);
    for (const remove of removers) remove();
  });

  it('a 5 s HTTP 500 outage: bounded request rate, per-claim errors naming 500, convergence and success after', async () => {
    const ref = await claim('outage');
    const start = Date.now();
    const removers = [
      server.injectFault({ pathIncludes: SLICES, status: 500 }),
      server.injectFault({ method: 'GET', pathIncludes: CLAIMS, status: 500 }),
    ];
    wipeSlices();
    const during = await h.kubelet.prepare([ref]);
    expect(during.claims[ref.uid]?.error).toMatch(new RegExp(`claim default/outage \\(uid ${ref.uid}\\): .*HTTP 500`));
    expect(during.claims[ref.uid]?.devices ?? []).toEqual([]);
    // The outage lasts OUTAGE_MS (the window the rate is measured over) and until the agent has retried at least
    // MIN_RETRIES times: on a loaded machine the window stretches, it never holds fewer retries.
    await waitFor(() => Date.now() >= start + OUTAGE_MS && sliceRequests(start, Infinity).length >= MIN_RETRIES, {
      what: `${MIN_RETRIES} failed slice requests and ${OUTAGE_MS} ms of outage`,
      timeoutMs: OUTAGE_MS + 30_000,
    });
    for (const remove of removers) remove();
    const end = Date.now();

    // The server saw retries (the agent kept trying), never more than 5 in any second of the outage. (An upper
    // bound on a rate: a slow machine spreads the retries out, it cannot squeeze them together.)
    const seen = sliceRequests(start, end);
    expect(seen.length).toBeGreaterThanOrEqual(MIN_RETRIES);
    expect(seen.every((r) => r.status === 500)).toBe(true);
    for (let t = start; t < end; t += 1000) {
      expect(sliceRequests(t, t + 1000).length, `slice requests in second ${(t - start) / 1000} of the outage`).toBeLessThanOrEqual(5);
    }
    expect(seen.length / ((end - start) / 1000)).toBeLessThanOrEqual(5);
    expect(h.agent.publisher.stats().consecutiveFailures).toBeGreaterThan(0);

    await waitFor(() => publishedDevices().join() === devices.join(), { what: 'slices to converge after the outage' });
    await h.agent.publisher.whenSynced();
    const after = await h.kubelet.prepare([ref]);
    expect(after.claims[ref.uid]?.error).toBe('');
    expect(after.claims[ref.uid]?.devices.map((d) => d.device_name)).toEqual(['gpu-0']);
  }, 90_000);

  it('no unhandled promise rejection', () => {
    expect(unhandled).toEqual([]);
  });
});
