/**
 * A minimal keep-alive HTTP GET for scraping `/metrics` the way Prometheus does (one persistent connection,
 * whole body read). Lighter than `fetch`, so client overhead stays small next to the server's time.
 */
import http from 'node:http';

/** A scrape client bound to one keep-alive connection pool. `close()` drops idle sockets. */
export interface ScrapeClient {
  /**
   * GET `url` and read the whole body.
   * @returns status code and body (UTF-8)
   * @throws Error on a connection failure or after `timeoutMs` (default 10 s, Prometheus' default scrape timeout)
   */
  get(url: string, timeoutMs?: number): Promise<{ status: number; body: string }>;
  close(): void;
}

/** Create a scrape client with one keep-alive socket. */
export function createScrapeClient(): ScrapeClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  return {
    get: (url, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const req = http.get(url, { agent, headers: { accept: 'text/plain' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
        req.on('error', reject);
      }),
    close: () => agent.destroy(),
  };
}

/** Series in a Prometheus text body: non-empty lines that are not `#` comments. */
export function countSeries(body: string): { total: number; dcgm: number } {
  let total = 0;
  let dcgm = 0;
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    total += 1;
    if (line.startsWith('DCGM_')) dcgm += 1;
  }
  return { total, dcgm };
}
