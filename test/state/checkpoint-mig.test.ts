/**
 * Dynamic MIG's checkpoint additions (src/state/checkpoint-entry.ts): the states `PrepareMigCreating` and
 * `UnprepareStarted` and a device's `mig` record load; a record out of its bounds drops that entry alone with the
 * field named; an entry of the older shape (no `mig`, the two older states) loads unchanged.
 */
import { describe, expect, it } from 'vitest';
import { decodeEntry } from '../../src/state/checkpoint-entry.js';

const UID = '6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const DEVICE = 'gpu-0-mig-1g10gb-19-3';
const entry = (state: string, mig?: unknown) => ({
  namespace: 'ml',
  name: 'c',
  uid: UID,
  state,
  devices: [{ requestNames: ['gpu'], poolName: 'node-a', deviceName: DEVICE, uuid: '', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${UID}-${DEVICE}`], ...(mig === undefined ? {} : { mig }) }],
  pods: [],
  configs: [],
});
const MIG = { gpuUuid: 'GPU-1', giProfileId: 19, start: 3, size: 1 };

describe('checkpoint entry: dynamic MIG', () => {
  it.each(['PrepareMigCreating', 'PrepareStarted', 'PrepareCompleted', 'UnprepareStarted'])('%s with a mig record loads as written', (state) => {
    const withId = { ...MIG, gpuInstanceId: 10 };
    expect(decodeEntry(UID, entry(state, withId))).toEqual({ entry: entry(state, withId) });
    expect(decodeEntry(UID, entry(state, MIG))).toEqual({ entry: entry(state, MIG) });
  });
  it('the older shape (no mig) loads unchanged', () => {
    expect(decodeEntry(UID, entry('PrepareCompleted'))).toEqual({ entry: entry('PrepareCompleted') });
  });
  it.each([
    [{ ...MIG, gpuUuid: '' }, 'devices.0.mig.gpuUuid'],
    [{ ...MIG, start: -1 }, 'devices.0.mig.start'],
    [{ ...MIG, size: 0 }, 'devices.0.mig.size'],
    [{ ...MIG, gpuInstanceId: 1.5 }, 'devices.0.mig.gpuInstanceId'],
    [{ ...MIG, giProfileId: '19' }, 'devices.0.mig.giProfileId'],
  ])('a bad mig record %j drops the entry naming %s', (mig, field) => {
    const out = decodeEntry(UID, entry('PrepareCompleted', mig));
    expect('problem' in out && out.problem.startsWith(`${field}:`)).toBe(true);
  });
  it('an unknown state is refused', () => {
    const out = decodeEntry(UID, entry('Preparing'));
    expect('problem' in out && out.problem.startsWith('state:')).toBe(true);
  });
});
