/**
 * OTLP export failures are logged (bounded) and counted: the unit (ExportFailureLog with a fake clock) and the
 * whole path — the real OTel OTLP gRPC exporter and PeriodicExportingMetricReader against a real gRPC receiver that
 * answers PERMISSION_DENIED, then accepts again.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { HealthTracker } from '../../src/gpu/health.js';
import { createMockBackend } from '../../src/gpu/mock/index.js';
import { ExportFailureLog } from '../../src/telemetry/export-failures.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/exporters.js';
import { recordingLogger } from '../helpers/log.js';
import { driverName, poolName } from '../helpers/names.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';

const WARN = 40;
const INFO = 30;

describe('ExportFailureLog', () => {
  it('warns on the first failure, then at most once per repeat interval with the count, and says when exports recover', () => {
    const rec = recordingLogger();
    let now = 1_000_000;
    const log = new ExportFailureLog({ logger: rec.logger, endpoint: 'http://collector:4317', repeatMs: 60_000, now: () => now });
    log.record(true);
    expect(rec.records).toHaveLength(0);

    log.record(false, new Error('7 PERMISSION_DENIED: no'));
    expect(rec.records).toHaveLength(1);
    expect(rec.records[0]).toMatchObject({ level: WARN, endpoint: 'http://collector:4317', error: '7 PERMISSION_DENIED: no', failedInARow: 1, failedSinceLastWarning: 1 });
    for (let i = 0; i < 5; i++) {
      now += 10_000;
      log.record(false, new Error('again'));
    }
    expect(rec.records).toHaveLength(1); // 50 s after the warning: quiet
    now += 10_000; // 60 s
    log.record(false, 'a string error');
    expect(rec.records).toHaveLength(2);
    expect(rec.records[1]).toMatchObject({ level: WARN, error: 'a string error', failedInARow: 7, failedSinceLastWarning: 6 });

    log.record(true);
    expect(rec.records[2]).toMatchObject({ level: INFO, msg: 'telemetry: OTLP export recovered', failedExports: 7 });
    log.record(true);
    expect(rec.records).toHaveLength(3);

    log.record(false);
    expect(rec.records[3]).toMatchObject({ level: WARN, error: 'unknown error', failedInARow: 1, failedSinceLastWarning: 1 });
    expect(log.failures()).toBe(8);
  });
});

describe('OTLP export to a collector that refuses', () => {
  let receiver: OtlpReceiver | undefined;
  let telemetry: Telemetry | undefined;
  afterEach(async () => {
    await telemetry?.shutdown();
    await receiver?.close();
  });

  it('logs the gRPC error, counts gpulet.telemetry.otlp.export.failures, and logs the recovery', async () => {
    let refusing = true;
    receiver = await startOtlpReceiver({ reject: () => (refusing ? { code: grpc.status.PERMISSION_DENIED, details: 'tenant has no write permission' } : undefined) });
    const backend = createMockBackend({ machine: 'h100-80gb', nodeName: 'otlp-refused' });
    await backend.init();
    const rec = recordingLogger();
    telemetry = await startTelemetry({
      backend, ownership: { owners: () => new Map() }, health: new HealthTracker(backend.inventory()), nodeName: 'otlp-refused', serviceVersion: '0.1.0',
      sampleIntervalMs: 200, metricsHost: '127.0.0.1', metricsPort: 0, otlp: { endpoint: receiver.endpoint, intervalMs: 1_000, timeoutMs: 1_000 },
      dcgmCompat: false, logger: rec.logger, driverName: driverName('gpu.gpulet.dev'), poolName: poolName('otlp-refused'),
    });

    const [warning] = await rec.waitForMessage('OTLP export failed', { timeoutMs: 20_000 });
    expect(warning).toMatchObject({ level: WARN, component: 'telemetry', endpoint: receiver.endpoint, failedInARow: 1 });
    expect(String(warning!['error'])).toContain('tenant has no write permission');
    expect(receiver.requests.length).toBeGreaterThan(0); // the exporter reached the receiver: the refusal is the receiver's

    const url = telemetry.url;
    const failures = await waitFor(async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const m = /^gpulet_telemetry_otlp_export_failures_total\{[^}]*\} (\d+)/m.exec(text);
      return m !== null && Number(m[1]) >= 1 ? Number(m[1]) : undefined;
    }, { timeoutMs: 20_000, what: 'gpulet_telemetry_otlp_export_failures_total ≥ 1 on /metrics' });
    expect(failures).toBeGreaterThanOrEqual(1);

    refusing = false;
    const [recovered] = await rec.waitForMessage('OTLP export recovered', { timeoutMs: 20_000 });
    expect(recovered).toMatchObject({ level: INFO, endpoint: receiver.endpoint });
    expect(Number(recovered!['failedExports'])).toBeGreaterThanOrEqual(1);
    await backend.shutdown();
  }, 60_000);
});
