/**
 * A {@link DraCallObserver} whose target is attached later. The agent starts the kubelet plugin before the
 * telemetry (src/main.ts: the registration socket then does not wait for the OpenTelemetry modules to load, the
 * host facts and the first sample), so the kubelet may call before the DRA operation metrics exist. Calls
 * observed until then are kept, in order, and replayed when the target is attached: the counters, the call
 * durations and the in-flight gauge then read as if the metrics had been there from the start.
 *
 * Bounded: at most `maxPending` events are kept (default 10,000; the kubelet sends a few calls in the tenth of a
 * second this covers). Past that the backlog is dropped and nothing more is kept until the target is attached;
 * the calls whose start was dropped are remembered per operation, and their `finished` is swallowed too, so the
 * in-flight gauge stays right and the request counters only under-count.
 */
import type { DraCallObserver, DraClaimErrorReason, DraOperation } from './grpc-dra-service.js';

type Event =
  | { readonly kind: 'started'; readonly operation: DraOperation }
  | { readonly kind: 'claimFailed'; readonly operation: DraOperation; readonly reason: DraClaimErrorReason }
  | { readonly kind: 'finished'; readonly operation: DraOperation; readonly seconds: number; readonly ok: boolean };

function deliver(target: DraCallObserver, e: Event): void {
  if (e.kind === 'started') target.started(e.operation);
  else if (e.kind === 'claimFailed') target.claimFailed(e.operation, e.reason);
  else target.finished(e.operation, e.seconds, e.ok);
}

/** Observer that forwards to a target attached later (see file doc). */
export class LateDraObserver implements DraCallObserver {
  private target: DraCallObserver | undefined;
  /** Kept events; undefined once the backlog overflowed (until a target is attached). */
  private pending: Event[] | undefined = [];
  /** Calls in flight whose `started` was dropped, per operation. */
  private readonly unseen = new Map<DraOperation, number>();
  private dropped = 0;

  /** @param maxPending events kept before a target is attached (a positive integer). */
  constructor(private readonly maxPending = 10_000) {}

  readonly started = (operation: DraOperation): void => this.forward({ kind: 'started', operation });
  readonly claimFailed = (operation: DraOperation, reason: DraClaimErrorReason): void => this.forward({ kind: 'claimFailed', operation, reason });
  readonly finished = (operation: DraOperation, seconds: number, ok: boolean): void => this.forward({ kind: 'finished', operation, seconds, ok });

  /** Attach the target and replay what was kept (once; a later call only replaces the target). */
  attach(target: DraCallObserver): void {
    this.target = target;
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const e of pending) deliver(target, e);
  }

  /** Events dropped because more than `maxPending` arrived before a target. */
  droppedEvents(): number {
    return this.dropped;
  }

  private forward(e: Event): void {
    const unseen = this.unseen.get(e.operation) ?? 0;
    if (e.kind === 'finished' && unseen > 0 && (this.target !== undefined || this.pending === undefined)) {
      this.unseen.set(e.operation, unseen - 1); // its start was dropped: drop its end too
      this.dropped += 1;
      return;
    }
    if (this.target !== undefined) return deliver(this.target, e);
    if (this.pending !== undefined && this.pending.length < this.maxPending) {
      this.pending.push(e);
      return;
    }
    // Overflow: drop the backlog (and this event), remembering the calls it leaves in flight.
    const dropping = [...(this.pending ?? []), e];
    this.pending = undefined;
    this.dropped += dropping.length;
    for (const d of dropping) {
      if (d.kind === 'started') this.unseen.set(d.operation, (this.unseen.get(d.operation) ?? 0) + 1);
      else if (d.kind === 'finished') this.unseen.set(d.operation, Math.max(0, (this.unseen.get(d.operation) ?? 0) - 1));
    }
  }
}
