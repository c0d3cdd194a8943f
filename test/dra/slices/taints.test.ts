/**
 * Device taints from health conditions, named as NVIDIA's DRA driver names them (kubernetes-sigs/
 * dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/device_health.go: TaintKeyXID = DriverName + "/xid" with the XID
 * as value, NoSchedule or None for xidsToSkip; TaintKeyGPULost NoSchedule; TaintKeyUnmonitored None), checked
 * against the resource.k8s.io/v1 schema and the validation the builder shares with the API server's limits.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { APPLICATION_XIDS, HealthTracker } from '../../../src/gpu/health.js';
import { buildResourceSlices, validateDevice } from '../../../src/dra/slices/build.js';
import { DEVICE_TAINT_EFFECTS, taintsByUuid, taintsFor } from '../../../src/dra/slices/taints.js';
import { poolNameOf } from '../../../src/model/names.js';
import { driverName, nodeName } from '../../helpers/names.js';
import { exampleInventory } from '../../helpers/slices.js';
import { reference } from '../../helpers/reference.js';

const DRIVER = driverName('gpu.gpulet.dev');
const T = Date.UTC(2026, 11, 4, 12, 0, 0, 999);
const AT = new Date(Date.UTC(2026, 11, 4, 12, 0, 0));

describe('device taints', () => {
  it('a fatal XID: <driver>/xid=<xid>:NoSchedule, or NoExecute when chosen', () => {
    const c = { xid: { xid: 79, fatal: true, sinceMs: T, lastMs: T } };
    expect(taintsFor(DRIVER, c)).toEqual([{ key: 'gpu.gpulet.dev/xid', value: '79', effect: 'NoSchedule', timeAdded: AT }]);
    expect(taintsFor(DRIVER, c, 'NoExecute')).toEqual([{ key: 'gpu.gpulet.dev/xid', value: '79', effect: 'NoExecute', timeAdded: AT }]);
  });

  it('an application XID (NVIDIA xidsToSkip) is informational: effect None, whatever the fault effect', () => {
    const t = new HealthTracker(exampleInventory(), { now: () => T });
    const uuid = exampleInventory().gpus[0]!.uuid;
    for (const xid of APPLICATION_XIDS) {
      t.record({ kind: 'xid', uuid, xid, timestampMs: T, message: `xid ${xid}` });
      expect(taintsFor(DRIVER, t.conditions(uuid), 'NoExecute')).toEqual([{ key: 'gpu.gpulet.dev/xid', value: String(xid), effect: 'None', timeAdded: AT }]);
    }
  });

  it('gpu-lost (no value, fault effect) and unmonitored (no value, None), in a fixed order', () => {
    const c = { xid: { xid: 48, fatal: true, sinceMs: T, lastMs: T }, lost: { sinceMs: T }, unmonitored: { sinceMs: T } };
    expect(taintsFor(DRIVER, c, 'NoExecute')).toEqual([
      { key: 'gpu.gpulet.dev/xid', value: '48', effect: 'NoExecute', timeAdded: AT },
      { key: 'gpu.gpulet.dev/gpu-lost', effect: 'NoExecute', timeAdded: AT },
      { key: 'gpu.gpulet.dev/unmonitored', effect: 'None', timeAdded: AT },
    ]);
    expect(taintsFor(DRIVER, { degraded: { sinceMs: T, lastMs: T } })).toEqual([]);
  });

  it('only the effects resource.k8s.io/v1 defines, and valid keys and values on a built slice', () => {
    const schema = JSON.parse(readFileSync(reference('resource.k8s.io-v1.openapi-1.35.json'), 'utf8')) as {
      components: { schemas: Record<string, { properties?: Record<string, { description?: string }> }> };
    };
    const effect = schema.components.schemas['io.k8s.api.resource.v1.DeviceTaint']?.properties?.['effect'];
    // "Valid effects are None, NoSchedule and NoExecute." (the field's description; no enum in the document)
    const sentence = /Valid effects are ([^.]+)\./.exec(effect?.description ?? '')?.[1] ?? '';
    expect([...DEVICE_TAINT_EFFECTS].sort()).toEqual(sentence.split(/, | and /).sort());
    const inv = exampleInventory();
    const uuid = inv.gpus[0]!.uuid;
    const taints = taintsByUuid(DRIVER, new Map([[uuid, { xid: { xid: 119, fatal: true, sinceMs: T, lastMs: T }, lost: { sinceMs: T }, unmonitored: { sinceMs: T } }]]));
    const node = nodeName('node-a');
    const [slice] = buildResourceSlices({ driverName: DRIVER, nodeName: node, poolName: poolNameOf(node), inventory: inv, generation: 1, taints });
    const device = slice!.spec.devices[0]!;
    expect(device.taints?.map((t) => t.key)).toEqual(['gpu.gpulet.dev/xid', 'gpu.gpulet.dev/gpu-lost', 'gpu.gpulet.dev/unmonitored']);
    expect(() => validateDevice(device)).not.toThrow();
  });
});
