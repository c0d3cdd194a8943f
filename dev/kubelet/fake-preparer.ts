/**
 * An in-memory {@link ClaimPreparer} for the demo and tests: records every call, prepares each claim with
 * the devices `devicesFor(claim)` returns, and can be told to reject (to exercise error paths).
 * Idempotent like the real one: unpreparing an unknown claim succeeds.
 */
import type { ClaimPreparer, ClaimRef, PreparedDevice, PrepareResult, UnprepareResult } from '../../src/model/types.js';

/** One recorded call. */
export interface PreparerCall {
  readonly op: 'prepare' | 'unprepare';
  readonly claims: readonly ClaimRef[];
}

/** Options of {@link InMemoryPreparer}. */
export interface InMemoryPreparerOptions {
  /** Devices for a claim; default one `gpu-0` device in pool `node-a` with a CDI ID naming the claim. */
  readonly devicesFor?: (claim: ClaimRef) => readonly PreparedDevice[];
  /** Per-claim error for prepare (e.g. "not allocated"); undefined = prepare it. */
  readonly errorFor?: (claim: ClaimRef) => string | undefined;
}

/** Records calls and keeps the prepared set in memory. */
export class InMemoryPreparer implements ClaimPreparer {
  readonly calls: PreparerCall[] = [];
  readonly prepared = new Map<string, readonly PreparedDevice[]>();
  /** When set, the next calls reject with this error (the plugin must turn it into per-claim errors). */
  rejectWith: Error | undefined;

  constructor(private readonly opts: InMemoryPreparerOptions = {}) {}

  prepare(claims: readonly ClaimRef[]): Promise<Map<string, PrepareResult>> {
    this.calls.push({ op: 'prepare', claims: [...claims] });
    if (this.rejectWith) return Promise.reject(this.rejectWith);
    const out = new Map<string, PrepareResult>();
    for (const c of claims) {
      const error = this.opts.errorFor?.(c);
      if (error !== undefined) {
        out.set(c.uid, { error });
        continue;
      }
      const devices = this.prepared.get(c.uid) ?? this.devicesFor(c);
      this.prepared.set(c.uid, devices);
      out.set(c.uid, { devices });
    }
    return Promise.resolve(out);
  }

  unprepare(claims: readonly ClaimRef[]): Promise<Map<string, UnprepareResult>> {
    this.calls.push({ op: 'unprepare', claims: [...claims] });
    if (this.rejectWith) return Promise.reject(this.rejectWith);
    const out = new Map<string, UnprepareResult>();
    for (const c of claims) {
      this.prepared.delete(c.uid);
      out.set(c.uid, {});
    }
    return Promise.resolve(out);
  }

  private devicesFor(c: ClaimRef): readonly PreparedDevice[] {
    if (this.opts.devicesFor) return this.opts.devicesFor(c);
    return [
      {
        requestNames: ['gpu'],
        poolName: 'node-a',
        deviceName: 'gpu-0',
        cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${c.uid}-gpu-0`],
      },
    ];
  }
}
