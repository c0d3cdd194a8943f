/**
 * Debian's real Prometheus (`/usr/bin/prometheus`) for tests: started on a free loopback port and a temp TSDB,
 * scraping the given targets every second; PromQL and label values over its HTTP API
 * (prometheus.io/docs/prometheus/latest/querying/api: `/api/v1/query`, `/api/v1/label/<name>/values`).
 * `havePrometheus` is false when it is not installed (tests skip with a notice, as the README says).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from './wait.js';

/** Where Debian's package installs it. */
export const PROMETHEUS = '/usr/bin/prometheus';
/** Whether the binary is there. */
export const havePrometheus = existsSync(PROMETHEUS);

/** One series of an instant query. */
export interface PromSeries {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** A running Prometheus. */
export interface Prometheus {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Instant query at now. @throws Error with Prometheus's message when the query is refused (syntax, types). */
  query(q: string): Promise<PromSeries[]>;
  /** Values of label `name` over the series matching `match` (a series selector), as Grafana's `label_values` asks them. */
  labelValues(name: string, match?: string): Promise<string[]>;
  /** The tail of Prometheus's own log (for a timeout message). */
  logTail(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves when it exited. Idempotent. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start Prometheus in `dir` (config and TSDB there) scraping `targets` (`host:port`, job `gpulet`) every second,
 * and wait until every target is up.
 */
export async function startPrometheus(dir: string, targets: readonly string[]): Promise<Prometheus> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: gpulet',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(path.join(dir, 'prometheus.yml'), config);
  let log = '';
  const child: ChildProcess = spawn(PROMETHEUS, [
    `--config.file=${path.join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as { status: string; data?: T; error?: string };
    if (body.status !== 'success' || body.data === undefined) throw new Error(`Prometheus ${decodeURIComponent(pathAndQuery)}: ${body.error ?? res.status}`);
    return body.data;
  };
  const logTail = (): string => `prometheus log:\n${log.slice(-3000)}`;
  let stopped: Promise<void> | undefined;
  const prom: Prometheus = {
    url,
    query: async (q) => (await api<{ result: PromSeries[] }>(`/api/v1/query?query=${encodeURIComponent(q)}`)).result,
    labelValues: (name, match) => api<string[]>(`/api/v1/label/${encodeURIComponent(name)}/values${match === undefined ? '' : `?match[]=${encodeURIComponent(match)}`}`),
    logTail,
    stop: () =>
      (stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      })()),
  };
  try {
    await waitFor(async () => {
      const up = await prom.query('up{job="gpulet"} == 1');
      return up.length === targets.length;
    }, { what: 'every target up', timeoutMs: 45_000, intervalMs: 250, detail: logTail });
  } catch (err) {
    await prom.stop();
    throw err;
  }
  return prom;
}
