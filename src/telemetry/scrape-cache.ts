/**
 * One render of the `/metrics` body shared by every scrape that arrives while it is being made or shortly
 * after (single flight + a short time to live). A scrape costs one OTel collect, one serialisation and one
 * DCGM render (~5–15 ms and ~124 KB for 8 GPUs + 56 MIG devices); without sharing, N concurrent or
 * pipelined scrapes cost N renders and N copies of the body. The body is kept as one Buffer, which Node writes
 * to every socket without copying it.
 *
 * The readings behind the body change once per sample interval (1–5 s in practice), so a time to live of
 * about a second loses nothing a scraper could see.
 */

/** Counters of a {@link ScrapeCache}, for tests and benchmarks. */
export interface ScrapeCacheStats {
  /** Renders started. */
  readonly renders: number;
  /** Calls of `get()` answered without a render of their own (shared in-flight render or cached body). */
  readonly shared: number;
}

/** Options of {@link ScrapeCache}. */
export interface ScrapeCacheOptions {
  /** Produces the body. A rejection is passed to every caller waiting on that render; it is not cached. */
  readonly render: () => Promise<string>;
  /** How long a finished body is served again, ms (0: only callers during the render share it). */
  readonly ttlMs: number;
  /** Monotonic clock in ms (tests); default `performance.now`. */
  readonly now?: () => number;
}

/** Single-flight, time-bounded cache of the rendered `/metrics` body. */
export class ScrapeCache {
  private inFlight: Promise<Buffer> | undefined;
  private body: Buffer | undefined;
  private bodyAt = 0;
  private renders = 0;
  private shared = 0;
  private readonly now: () => number;

  /** @throws RangeError when `ttlMs` is negative or not finite. */
  constructor(private readonly options: ScrapeCacheOptions) {
    if (!Number.isFinite(options.ttlMs) || options.ttlMs < 0) {
      throw new RangeError(`scrape cache time to live must be a finite number of ms ≥ 0, got ${options.ttlMs}`);
    }
    this.now = options.now ?? (() => performance.now());
  }

  /** The current body: the cached one while fresh, else the render in flight, else a new render. */
  get(): Promise<Buffer> {
    if (this.body !== undefined && this.now() - this.bodyAt < this.options.ttlMs) {
      this.shared += 1;
      return Promise.resolve(this.body);
    }
    if (this.inFlight !== undefined) {
      this.shared += 1;
      return this.inFlight;
    }
    this.renders += 1;
    const run = this.options.render().then((text) => {
      const body = Buffer.from(text, 'utf8');
      this.body = body;
      this.bodyAt = this.now();
      return body;
    });
    this.inFlight = run;
    const clear = (): void => {
      if (this.inFlight === run) this.inFlight = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** Drop the cached body (the next `get()` renders). */
  invalidate(): void {
    this.body = undefined;
  }

  /** Renders and shared answers so far. */
  stats(): ScrapeCacheStats {
    return { renders: this.renders, shared: this.shared };
  }
}
