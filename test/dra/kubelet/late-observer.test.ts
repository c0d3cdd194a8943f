/**
 * LateDraObserver (src/dra/kubelet/late-observer.ts) in front of the real DRA operation metrics
 * (src/telemetry/dra-metrics.ts on an OTel MeterProvider): calls observed before the metrics exist are replayed
 * so the counters, durations and in-flight gauge read as if the metrics had been there; past the bound the
 * backlog is dropped without leaving the in-flight gauge wrong.
 */
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { LateDraObserver } from '../../../src/dra/kubelet/late-observer.js';
import { DRA_METRICS, DraMetrics } from '../../../src/telemetry/dra-metrics.js';
import { driverName } from '../../helpers/names.js';

class PullReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** The real metrics on a pull reader, and a read of one metric's points as `attributes JSON → value`. */
function realMetrics() {
  const reader = new PullReader();
  const provider = new MeterProvider({ readers: [reader] });
  const dra = new DraMetrics(provider.getMeter('gpulet'), { driverName: driverName('gpu.gpulet.dev'), kindOf: () => undefined });
  const read = async (name: string): Promise<Record<string, unknown>> => {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
    return Object.fromEntries(
      (metric?.dataPoints ?? []).map((p) => [JSON.stringify(p.attributes), typeof p.value === 'number' ? p.value : (p.value as { count: number }).count]),
    );
  };
  return { dra, read, provider };
}

describe('LateDraObserver', () => {
  it('replays the calls observed before the metrics existed, then forwards', async () => {
    const direct = realMetrics();
    const late = realMetrics();
    const observer = new LateDraObserver();
    const calls = (o: { started: LateDraObserver['started']; claimFailed: LateDraObserver['claimFailed']; finished: LateDraObserver['finished'] }) => {
      o.started('NodePrepareResources');
      o.claimFailed('NodePrepareResources', 'prepare_devices');
      o.finished('NodePrepareResources', 0.02, false);
      o.started('NodeUnprepareResources'); // still in flight when the metrics attach
    };
    calls(direct.dra);
    calls(observer);
    observer.attach(late.dra);
    expect(Object.values(await direct.read(DRA_METRICS.requests))).toContain(1); // the reference saw the call
    expect(Object.values(await direct.read(DRA_METRICS.active))).toContain(1); // and the unprepare in flight
    for (const name of [DRA_METRICS.requests, DRA_METRICS.claimErrors, DRA_METRICS.active, DRA_METRICS.duration]) {
      expect(await late.read(name), name).toEqual(await direct.read(name));
    }
    direct.dra.finished('NodeUnprepareResources', 0.01, true);
    observer.finished('NodeUnprepareResources', 0.01, true);
    expect(await late.read(DRA_METRICS.active)).toEqual(await direct.read(DRA_METRICS.active));
    expect(observer.droppedEvents()).toBe(0);
    await direct.provider.shutdown();
    await late.provider.shutdown();
  });

  it('drops the backlog past its bound and swallows the ends of the calls whose start it dropped', async () => {
    const late = realMetrics();
    const observer = new LateDraObserver(3);
    observer.started('NodePrepareResources'); // a
    observer.started('NodePrepareResources'); // b
    observer.finished('NodePrepareResources', 0.01, true); // one of them
    observer.started('NodeUnprepareResources'); // the 4th event: the backlog overflows
    observer.started('NodePrepareResources'); // c, dropped as well (no target yet)
    observer.attach(late.dra);
    expect(observer.droppedEvents()).toBe(5);
    observer.started('NodePrepareResources'); // d, seen
    for (let i = 0; i < 3; i++) observer.finished('NodePrepareResources', 0.01, true); // ends of a-or-b, c (dropped), d
    observer.finished('NodeUnprepareResources', 0.01, true); // dropped start: dropped end
    const active = await late.read(DRA_METRICS.active);
    expect(Object.values(active).every((v) => v === 0)).toBe(true);
    expect(observer.droppedEvents()).toBe(8);
    await late.provider.shutdown();
  });
});
