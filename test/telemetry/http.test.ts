/**
 * The /metrics server under abuse (issue 9 item 1): a peer that pipelines thousands of scrapes and never
 * reads, many concurrent scrapes, a peer that stops reading mid-response. Each test drives real sockets on
 * loopback against `startHttpServer` with a counting body producer, and waits for events (socket close,
 * responses), never for time.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { startHttpServer, type HttpLimits, type HttpServerHandle } from '../../src/telemetry/http.js';
import { waitFor } from '../helpers/wait.js';

let server: HttpServerHandle | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await server?.close();
  server = undefined;
});

/** A body producer that counts calls and concurrent calls; `hold` keeps each call pending until released. */
function producer(body: string, hold = false) {
  const state = { calls: 0, inFlight: 0, maxInFlight: 0, release: [] as Array<() => void> };
  const metrics = async (): Promise<string> => {
    state.calls += 1;
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    if (hold) await new Promise<void>((resolve) => state.release.push(resolve));
    state.inFlight -= 1;
    return body;
  };
  return { state, metrics };
}

async function start(metrics: () => Promise<string>, limits?: Partial<HttpLimits>): Promise<HttpServerHandle> {
  server = await startHttpServer({
    host: '127.0.0.1', port: 0, metrics, readiness: () => ({ ready: true, reason: '' }), logger: silentLogger(),
    ...(limits === undefined ? {} : { limits }),
  });
  return server;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
}

const closed = (s: net.Socket): Promise<void> => (s.closed ? Promise.resolve() : new Promise((resolve) => s.once('close', () => resolve())));

/** Read from `s` until `count` complete HTTP responses arrived; resolves with their status lines in order. */
function readResponses(s: net.Socket, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const statuses: string[] = [];
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? '0');
        if (buf.length < end + 4 + length) return;
        statuses.push(head.split('\r\n')[0] ?? '');
        buf = buf.subarray(end + 4 + length);
        if (statuses.length === count) {
          s.off('data', onData);
          resolve(statuses);
          return;
        }
      }
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

async function get(port: number, path: string): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { connection: 'close' } });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

const BODY = `# a 128 KiB body, the size of a dgx-h100 scrape\n${'x'.repeat(128 * 1024)}\n`;
const GET_METRICS = 'GET /metrics HTTP/1.1\r\nHost: gpulet\r\n\r\n';

describe('/metrics server bounds', () => {
  it('a connection that pipelines 2,000 scrapes and never reads is closed after a few; nothing is rendered for the rest', async () => {
    const p = producer(BODY);
    const srv = await start(p.metrics);
    const attacker = await connect(srv.port);
    attacker.pause(); // never reads
    attacker.write(GET_METRICS.repeat(2_000));
    await closed(attacker);
    expect(srv.stats().socketsClosedForPipelining).toBe(1);
    expect(p.state.calls).toBeLessThanOrEqual(1);
    const health = await get(srv.port, '/healthz');
    expect(health.status).toBe(200);
  });

  it('pipelined requests within the bound are answered in order, one at a time per socket', async () => {
    const p = producer(BODY, true);
    const srv = await start(p.metrics);
    const client = await connect(srv.port);
    const answers = readResponses(client, 4);
    client.write(GET_METRICS + GET_METRICS + 'GET /healthz HTTP/1.1\r\nHost: gpulet\r\n\r\n' + GET_METRICS);
    // Release each held render as it is asked for: the next is asked only after the previous was answered.
    for (let released = 0; released < 3; ) {
      const next = p.state.release.shift();
      if (next === undefined) {
        await waitFor(() => p.state.release.length > 0, { what: 'the next held render', intervalMs: 5 });
        continue;
      }
      expect(p.state.inFlight).toBe(1);
      next();
      released += 1;
    }
    expect(await answers).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(p.state.maxInFlight).toBe(1);
    expect(srv.stats().socketsClosedForPipelining).toBe(0);
  });

  it('scrapes above the concurrency cap get 503 with Retry-After at once; the others are answered', async () => {
    const p = producer(BODY, true);
    const srv = await start(p.metrics, { maxConcurrentScrapes: 2 });
    const scrapes = Array.from({ length: 5 }, () => get(srv.port, '/metrics'));
    const settled: Array<{ status: number; retryAfter: string | null }> = [];
    const all = scrapes.map((s) => s.then((r) => settled.push(r)));
    // The three over the cap are answered while the two admitted ones are still held.
    await waitFor(() => settled.length >= 3 && p.state.release.length >= 2, { what: 'three 503s while two renders are held', intervalMs: 5 });
    expect(settled.map((r) => [r.status, r.retryAfter])).toEqual([[503, '1'], [503, '1'], [503, '1']]);
    expect(srv.stats()).toMatchObject({ scrapesInFlight: 2, scrapesRejected: 3 });
    for (const release of p.state.release.splice(0)) release();
    await Promise.all(all);
    expect(settled.map((r) => r.status).sort()).toEqual([200, 200, 503, 503, 503]);
    expect(srv.stats().scrapesInFlight).toBe(0);
  });

  it('a peer that stops reading mid-response is disconnected after the idle bound', async () => {
    const big = 'y'.repeat(32 * 1024 * 1024); // far more than the kernel's socket buffers hold
    const srv = await start(() => Promise.resolve(big), { socketIdleMs: 200 });
    const stalled = await connect(srv.port);
    stalled.pause();
    stalled.write(GET_METRICS);
    await waitFor(() => srv.stats().scrapesInFlight === 1, { what: 'the stalled scrape in flight', intervalMs: 5 });
    await waitFor(() => srv.stats().scrapesInFlight === 0, { what: 'the server giving up on the stalled response', intervalMs: 5 });
    stalled.resume(); // a paused socket sees the server's close only once it reads again
    stalled.on('error', () => undefined); // ECONNRESET: the server destroyed it with data unsent
    await closed(stalled);
    expect((await get(srv.port, '/healthz')).status).toBe(200);
  });

  it('HEAD /metrics answers the headers and no body', async () => {
    const srv = await start(() => Promise.resolve(BODY));
    const res = await fetch(`http://127.0.0.1:${srv.port}/metrics`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(BODY)));
    expect(await res.text()).toBe('');
  });

  it('rejects limits that are not positive integers', async () => {
    await expect(start(() => Promise.resolve(''), { maxConcurrentScrapes: 0 })).rejects.toThrow(/maxConcurrentScrapes/);
  });
});
