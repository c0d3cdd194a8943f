/**
 * The probe's forged checkpoints against the claim state (wired as main wires it, real files, the mock dgx-h100
 * inventory): a file with a valid checksum but forged content is not trusted. CDI device IDs are recomputed
 * from the claim UID and the device name, env is re-checked on load (NVIDIA_VISIBLE_DEVICES=all refused), the
 * idempotent answer needs the request's namespace/name to equal the record's and the devices to be ours, and
 * entries under non-UUID keys are dropped with a warning and gone from the file after start-up.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger, type Logger } from '../../src/log.js';
import type { ClaimRef } from '../../src/model/types.js';
import { checksumOf, type CheckpointClaims } from '../../src/state/checkpoint.js';
import type { ClaimList } from '../../src/state/claim-source.js';
import { reconcileClaims } from '../../src/state/reconcile.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir } from '../helpers/claims.js';
import { claimRef } from '../helpers/names.js';

const POD = [{ resource: 'pods', name: 'p', uid: '5a4e3f2b-1c0d-4e9f-8a7b-6c5d4e3f2a1b' }];

/** MemoryClaimSource that lists too (a rebuild). */
class ListingSource extends MemoryClaimSource {
  async *listPages(): AsyncGenerator<ClaimList> {
    await Promise.resolve();
    yield this.listAll();
  }
}

/** A logger keeping warnings and errors, parsed. */
function capturingLogger(): { readonly logger: Logger; readonly lines: () => { level: number; msg: string }[] } {
  const out: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void out.push(line) });
  return { logger, lines: () => out.map((l) => JSON.parse(l) as { level: number; msg: string }) };
}

describe('a forged checkpoint is not trusted', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: ListingSource;
  const checkpointPath = () => join(dir, 'state', 'checkpoint.json');
  const specPath = (uid: string) => join(dir, 'cdi', `k8s.${DRIVER}-claim_${uid}.json`);
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    source = new ListingSource();
  });
  afterEach(() => cleanup());

  const state = (logger: Logger = silentLogger()) =>
    claimState({
      driverName: DRIVER, poolName: NODE, inventory: () => inventory, claimSource: source, cdiDir: join(dir, 'cdi'),
      checkpointPath: checkpointPath(), logger, readBootId: () => Promise.resolve('boot-1'),
    });
  /** A claim prepared as the kubelet would, then the store of a restarted agent over the same files. */
  const preparedThenRestarted = async (ref: ClaimRef, device = 'gpu-0') => {
    source.put(allocatedClaim(ref, [{ device }], { reservedFor: POD }));
    const first = state();
    await first.store.init();
    expect((await first.preparer.prepare([ref])).get(ref.uid)?.error).toBeUndefined();
  };
  /** Rewrite the checkpoint's claims with `edit`, with a valid checksum (what the probe did). */
  const forge = async (edit: (claims: Record<string, unknown>) => Record<string, unknown>) => {
    const doc = JSON.parse(await readFile(checkpointPath(), 'utf8')) as { claims: Record<string, unknown>; checksum: string };
    doc.claims = edit(doc.claims);
    doc.checksum = checksumOf(doc.claims as CheckpointClaims);
    await writeFile(checkpointPath(), JSON.stringify(doc));
  };
  type Entry = { devices: Record<string, unknown>[] } & Record<string, unknown>;
  const editEntry = (uid: string, edit: (e: Entry) => Entry) => forge((claims) => ({ ...claims, [uid]: edit(claims[uid] as Entry) }));
  const restart = async (logger: Logger = silentLogger()) => {
    const m = state(logger);
    const loaded = await m.store.init();
    const report = await reconcileClaims({ store: m.store, recovery: m.recovery, source, loaded, logger });
    return { m, report };
  };

  it('answers CDI IDs recomputed from the UID and device, never a forged ID, and never writes a forged env', async () => {
    const ref = newRef('train');
    await preparedThenRestarted(ref);
    await editEntry(ref.uid, (e) => ({
      ...e,
      configs: undefined, // the older shape, whose device env the probe used
      devices: e.devices.map((d) => ({ ...d, cdiDeviceIds: ['nvidia.com/gpu=all', `k8s.${DRIVER}/claim=../../x`], env: { NVIDIA_VISIBLE_DEVICES: 'all' } })),
    }));
    await rm(specPath(ref.uid)); // a reboot: the spec is rebuilt from the checkpoint
    const log = capturingLogger();
    const { m, report } = await restart(log.logger);
    expect(log.lines().some((l) => l.level === 40 && l.msg.startsWith(`checkpoint entry for claim "${ref.uid}" dropped: devices.0.`))).toBe(true);
    expect(report.rebuilt).toEqual([ref.uid]); // still allocated and reserved: prepared again from the API server
    const answer = (await m.preparer.prepare([ref])).get(ref.uid);
    expect(answer?.devices?.map((d) => d.cdiDeviceIds)).toEqual([[`k8s.${DRIVER}/claim=${ref.uid}-gpu-0`]]);
    const spec = await readFile(specPath(ref.uid), 'utf8');
    expect(spec).not.toContain('NVIDIA_VISIBLE_DEVICES=all');
    expect(spec).toContain('NVIDIA_VISIBLE_DEVICES=void');
  });

  it('refuses a forged NVIDIA_VISIBLE_DEVICES in a stored config, and the spec restored after a reboot has none', async () => {
    const ref = newRef('train');
    await preparedThenRestarted(ref);
    await editEntry(ref.uid, (e) => ({ ...e, configs: [{ devices: [], env: { NVIDIA_VISIBLE_DEVICES: 'all' } }] }));
    await rm(specPath(ref.uid));
    source.claims.clear(); // and the API server no longer has it: nothing comes back
    const log = capturingLogger();
    const { m } = await restart(log.logger);
    expect(log.lines().some((l) => l.msg.includes('configs.0.env.NVIDIA_VISIBLE_DEVICES: env name "NVIDIA_VISIBLE_DEVICES" is reserved by gpulet'))).toBe(true);
    expect(m.store.entries()[ref.uid]).toBeUndefined();
    await expect(readFile(specPath(ref.uid), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('answers "already prepared" only to the namespace/name recorded with the UID, else an error naming both', async () => {
    const ref = newRef('train', 'ml');
    await preparedThenRestarted(ref);
    const { m } = await restart();
    const impostor = claimRef({ namespace: 'other', name: 'thief', uid: ref.uid });
    const refused = (await m.preparer.prepare([impostor])).get(ref.uid);
    expect(refused?.devices).toBeUndefined();
    expect(refused?.error).toContain(`claim other/thief (uid ${ref.uid})`);
    expect(refused?.error).toContain(`records uid ${ref.uid} as claim ml/train, not other/thief`);
    // The recorded claim is untouched, and still answered.
    expect(m.store.entries()[ref.uid]?.state).toBe('PrepareCompleted');
    expect(await readFile(specPath(ref.uid), 'utf8')).toContain(ref.uid);
    expect((await m.preparer.prepare([ref])).get(ref.uid)?.devices?.map((d) => d.deviceName)).toEqual(['gpu-0']);
  });

  it('does not answer from a record whose devices are not ours (another pool, not in the inventory): it prepares afresh', async () => {
    for (const [field, value] of [['poolName', 'node-b'], ['deviceName', 'gpu-99']] as const) {
      const ref = newRef(`train-${field.toLowerCase()}`);
      await preparedThenRestarted(ref, 'gpu-2');
      await editEntry(ref.uid, (e) => ({
        ...e,
        devices: e.devices.map((d) => ({ ...d, [field]: value, cdiDeviceIds: [`k8s.${DRIVER}/claim=${ref.uid}-${field === 'deviceName' ? value : 'gpu-2'}`] })),
      }));
      const m = state();
      await m.store.init();
      expect(m.store.entries()[ref.uid]?.devices[0]?.[field]).toBe(value); // a well-formed record: kept
      source.gets = 0;
      const answer = (await m.preparer.prepare([ref])).get(ref.uid);
      expect(source.gets).toBe(1); // not answered from the record: read from the API server
      expect(answer?.devices?.map((d) => [d.poolName, d.deviceName])).toEqual([[NODE, 'gpu-2']]);
      expect(m.store.entries()[ref.uid]?.devices[0]).toMatchObject({ poolName: NODE, deviceName: 'gpu-2' });
    }
  });

  it('drops entries under keys that are not object UIDs with a warning, and they are gone from the file after start-up', async () => {
    const ref = newRef('keep');
    await preparedThenRestarted(ref);
    await forge((claims) => {
      const copy = JSON.parse(JSON.stringify(claims[ref.uid])) as Record<string, unknown>;
      return JSON.parse(`{"__proto__": ${JSON.stringify(copy)}, "not-a-uuid": ${JSON.stringify({ ...copy, uid: 'not-a-uuid' })}, "${ref.uid}": ${JSON.stringify(copy)}}`) as Record<string, unknown>;
    });
    const log = capturingLogger();
    const { m, report } = await restart(log.logger);
    const warned = log.lines().filter((l) => l.level === 40 && l.msg.startsWith('checkpoint entry for claim '));
    expect(warned.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^checkpoint entry for claim "__proto__" dropped: uid ".*" differs from its key$/),
      expect.stringMatching(/^checkpoint entry for claim "not-a-uuid" dropped: uid: must be a lower-case UUID/),
    ]);
    expect(report.errors).toEqual([]);
    expect(Object.keys(m.store.entries())).toEqual([ref.uid]);
    const saved = await readFile(checkpointPath(), 'utf8');
    expect(saved).not.toContain('__proto__');
    expect(saved).not.toContain('not-a-uuid');
    expect(Object.keys((JSON.parse(saved) as { claims: object }).claims)).toEqual([ref.uid]);
  });
});
