/**
 * The claim state (store, preparer, ownership view; wired as main wires them) end to end over real files
 * (temp dirs) with an in-memory ClaimSource and the mock dgx-h100
 * inventory: the prepare/unprepare contract of docs/contracts.md §2 — idempotence, per-claim errors, nothing left
 * behind by a failed claim, serialization, and ownership for telemetry.
 */
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Inventory } from '../../src/gpu/types.js';
import { silentLogger } from '../../src/log.js';
import { CheckpointStore } from '../../src/state/checkpoint-file.js';
import { allocatedClaim, claimState, dgxInventory, DRIVER, MemoryClaimSource, newRef, NODE, tempDir, type ClaimStateOptions } from '../helpers/claims.js';

const exists = (p: string) => access(p).then(() => true, () => false);
const specPath = (cdiDir: string, uid: string) => join(cdiDir, `k8s.gpu.gpulet.dev-claim_${uid}.json`);

const POD_UID = '9e8d7c6b-5a49-4382-b1a0-f9e8d7c6b5a4';

describe('claim state: prepare, unprepare, ownership', () => {
  let inventory: Inventory;
  let dir: string;
  let cleanup: () => Promise<void>;
  let source: MemoryClaimSource;
  let cdiDir: string;
  let checkpointPath: string;
  beforeAll(async () => {
    inventory = await dgxInventory();
  });
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir());
    source = new MemoryClaimSource();
    cdiDir = join(dir, 'cdi');
    checkpointPath = join(dir, 'state', 'checkpoint.json');
  });
  afterEach(() => cleanup());

  const manager = async (over: Partial<ClaimStateOptions> = {}, init = true) => {
    const m = claimState({
      driverName: DRIVER,
      poolName: NODE,
      inventory: () => inventory,
      claimSource: source,
      cdiDir,
      checkpointPath,
      logger: silentLogger(),
      readBootId: () => Promise.resolve('boot-1'),
      ...over,
    });
    if (init) await m.store.init();
    return m;
  };
  const checkpointClaims = async () => JSON.parse(await readFile(checkpointPath, 'utf8')).claims as Record<string, { state: string }>;

  it('prepares: CDI spec + checkpoint entry; second prepare is idempotent; unprepare removes both', async () => {
    const ref = newRef();
    source.put(allocatedClaim(ref, [{ request: 'gpu', device: 'gpu-0' }, { request: 'mig/small', device: 'gpu-7-mig-1g10gb-19-2' }], {
      reservedFor: [{ resource: 'pods', name: 'trainer', uid: POD_UID }],
    }));
    const m = await manager();
    const first = await m.preparer.prepare([ref]);
    const result = first.get(ref.uid)!;
    expect(result.error).toBeUndefined();
    expect(result.devices).toEqual([
      { requestNames: ['gpu'], poolName: NODE, deviceName: 'gpu-0', cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${ref.uid}-gpu-0`] },
      {
        requestNames: ['mig'],
        poolName: NODE,
        deviceName: 'gpu-7-mig-1g10gb-19-2',
        cdiDeviceIds: [`k8s.gpu.gpulet.dev/claim=${ref.uid}-gpu-7-mig-1g10gb-19-2`],
      },
    ]);
    const spec = JSON.parse(await readFile(specPath(cdiDir, ref.uid), 'utf8'));
    expect(spec.devices.map((d: { name: string }) => d.name)).toEqual([`${ref.uid}-gpu-0`, `${ref.uid}-gpu-7-mig-1g10gb-19-2`]);
    expect((await checkpointClaims())[ref.uid]?.state).toBe('PrepareCompleted');

    // ownership for telemetry
    const gpu0 = inventory.gpus.find((g) => g.minor === 0)!;
    expect(m.ownership.owners().get(gpu0.uuid)).toEqual([{ claim: ref, pods: [{ namespace: 'ml', name: 'trainer', uid: POD_UID }], deviceName: 'gpu-0', uuid: gpu0.uuid }]);
    expect(m.ownership.prepared().map((p) => p.claim.uid)).toEqual([ref.uid]);

    // idempotent: same answer without another API read
    const gets = source.gets;
    expect((await m.preparer.prepare([ref])).get(ref.uid)).toEqual(result);
    expect(source.gets).toBe(gets);

    // a restarted agent answers from the checkpoint
    const restarted = await manager();
    expect((await restarted.preparer.prepare([ref])).get(ref.uid)).toEqual(result);
    expect(source.gets).toBe(gets);

    const un = await restarted.preparer.unprepare([ref]);
    expect(un.get(ref.uid)).toEqual({});
    expect(await exists(specPath(cdiDir, ref.uid))).toBe(false);
    expect(await checkpointClaims()).toEqual({});
    expect(restarted.ownership.owners().size).toBe(0);
  });

  it('rewrites a missing CDI spec of a completed claim (e.g. /var/run/cdi emptied by a reboot)', async () => {
    const ref = newRef();
    source.put(allocatedClaim(ref, [{ device: 'gpu-1' }]));
    const m = await manager();
    const first = await m.preparer.prepare([ref]);
    await rm(specPath(cdiDir, ref.uid));
    expect((await m.preparer.prepare([ref])).get(ref.uid)).toEqual(first.get(ref.uid));
    expect(await exists(specPath(cdiDir, ref.uid))).toBe(true);
  });

  it('loads the checkpoint before the first batch even without init(), so no recorded claim is dropped', async () => {
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }]));
    await (await manager()).preparer.prepare([a]);
    const lazy = await manager({}, false);
    expect((await lazy.preparer.prepare([b])).get(b.uid)!.error).toBeUndefined();
    expect(Object.keys(await checkpointClaims()).sort()).toEqual([a.uid, b.uid].sort());
  });

  it('unprepare of an unknown claim succeeds; empty lists give empty maps', async () => {
    const m = await manager();
    const ref = newRef();
    expect((await m.preparer.unprepare([ref])).get(ref.uid)).toEqual({});
    // A reference whose UID is not a lower-case UUID never reaches the preparer: the kubelet plugin refuses it
    // where it enters (test/dra/kubelet/plugin.test.ts), and the type says so.
    // @ts-expect-error a plain string is not an ObjectUid
    const unchecked: Parameters<typeof m.preparer.unprepare>[0] = [{ ...ref, uid: 'not-a-uuid' }];
    expect(unchecked).toHaveLength(1);
    expect((await m.preparer.prepare([])).size).toBe(0);
    expect((await m.preparer.unprepare([])).size).toBe(0);
  });

  it('prepares a duplicated UID once and answers its key', async () => {
    const ref = newRef();
    source.put(allocatedClaim(ref, [{ device: 'gpu-2' }]));
    const m = await manager();
    const out = await m.preparer.prepare([ref, ref, ref]);
    expect([...out.keys()]).toEqual([ref.uid]);
    expect(out.get(ref.uid)!.devices).toHaveLength(1);
    expect(source.gets).toBe(1);
  });

  it('fails one claim without failing others, and leaves nothing behind for the failed one', async () => {
    const good = newRef('good');
    const unknownDevice = newRef('bad-device');
    const missing = newRef('missing');
    // The API server's claim under the kubelet's name has a uid that is not an object UID: refused where it is read.
    const odd = newRef('odd');
    source.put(allocatedClaim(good, [{ device: 'gpu-3' }]));
    source.put(allocatedClaim(unknownDevice, [{ device: 'gpu-99' }]));
    source.put(allocatedClaim({ ...odd, uid: '../../evil' }, [{ device: 'gpu-5' }]));
    const m = await manager();
    const out = await m.preparer.prepare([unknownDevice, good, missing, odd]);
    expect(out.size).toBe(4);
    expect(out.get(good.uid)!.error).toBeUndefined();
    expect(out.get(unknownDevice.uid)!.error).toMatch(new RegExp(`claim ml/bad-device \\(uid ${unknownDevice.uid}\\): .*unknown device "gpu-99"`));
    expect(out.get(missing.uid)!.error).toMatch(/claim ml\/missing .*cannot read the ResourceClaim: .*not found/);
    expect(out.get(odd.uid)!.error).toBe(
      `claim ml/odd (uid ${odd.uid}): cannot read the ResourceClaim: resourceclaim "ml/odd" (uid "../../evil") from the API server is unusable: ` +
        'metadata.uid is not a claim UID: must be a lower-case UUID (8-4-4-4-12 hex digits) as the API server issues it, got "../../evil"',
    );
    expect(await readdir(cdiDir)).toEqual([`k8s.gpu.gpulet.dev-claim_${good.uid}.json`]);
    expect(Object.keys(await checkpointClaims())).toEqual([good.uid]);
  });

  it('reports an unwritable CDI dir per claim, naming the dir, and rolls the claim back', async () => {
    const blocker = join(dir, 'not-a-dir');
    await writeFile(blocker, 'x');
    const badCdi = join(blocker, 'cdi');
    const ref = newRef();
    source.put(allocatedClaim(ref, [{ device: 'gpu-4' }]));
    const m = await manager({ cdiDir: badCdi });
    const out = await m.preparer.prepare([ref]);
    expect(out.get(ref.uid)!.error).toContain(`claim ml/train-gpu (uid ${ref.uid})`);
    expect(out.get(ref.uid)!.error).toContain(`cannot create CDI spec dir ${badCdi}`);
    expect(out.get(ref.uid)!.error).toContain('check that the path is a directory');
    expect(await checkpointClaims()).toEqual({});
    expect(m.ownership.prepared()).toEqual([]);
  });

  it('a spec that cannot be written fails only its claim; the others of the batch succeed', async () => {
    const a = newRef('a');
    const b = newRef('b');
    source.put(allocatedClaim(a, [{ device: 'gpu-0' }]));
    source.put(allocatedClaim(b, [{ device: 'gpu-1' }]));
    // a directory squatting on b's spec path makes the rename fail for b alone
    await mkdir(specPath(cdiDir, b.uid), { recursive: true });
    const m = await manager();
    const out = await m.preparer.prepare([b, a]);
    expect(out.get(b.uid)!.error).toContain(`cannot write CDI spec ${specPath(cdiDir, b.uid)}`);
    expect(out.get(b.uid)!.error).toContain(`claim ml/b (uid ${b.uid})`);
    expect(out.get(a.uid)!.error).toBeUndefined();
    expect(Object.keys(await checkpointClaims())).toEqual([a.uid]);
    expect(m.ownership.owners().size).toBe(1);
  });

  it('rejects a changed UID and rolls back an earlier PrepareStarted entry left by a crash', async () => {
    const ref = newRef();
    source.put(allocatedClaim({ ...ref, uid: '11111111-2222-4333-8444-555555555555' }, [{ device: 'gpu-5' }]));
    // a crash after PrepareStarted: entry present, spec present
    await new CheckpointStore({ path: checkpointPath, readBootId: () => Promise.resolve('boot-0') }).save({
      [ref.uid]: { ...ref, state: 'PrepareStarted', devices: [], pods: [], configs: [] },
    });
    const m = await manager();
    const out = await m.preparer.prepare([ref]);
    expect(out.get(ref.uid)!.error).toContain('UID mismatch');
    expect(await checkpointClaims()).toEqual({});
  });

  it('serializes concurrent batches', async () => {
    const refs = Array.from({ length: 4 }, (_, i) => newRef(`c${i}`));
    for (const [i, r] of refs.entries()) source.put(allocatedClaim(r, [{ device: `gpu-${i}` }]));
    const m = await manager();
    const outs = await Promise.all([m.preparer.prepare(refs.slice(0, 2)), m.preparer.unprepare([refs[0]!]), m.preparer.prepare(refs.slice(2))]);
    expect(outs[0].get(refs[0]!.uid)!.error).toBeUndefined();
    expect(outs[1].get(refs[0]!.uid)).toEqual({});
    // the unprepare ran after the first prepare batch completed, so claim 0 is gone and the rest remain
    expect(Object.keys(await checkpointClaims()).sort()).toEqual([refs[1]!.uid, refs[2]!.uid, refs[3]!.uid].sort());
    expect((await readdir(cdiDir)).length).toBe(3);
  });

  it('in mock mode creates the stand-in files the spec points at', async () => {
    const devRoot = join(dir, 'dev');
    const ref = newRef();
    source.put(allocatedClaim(ref, [{ device: 'gpu-6-mig-3g40gb-9-0' }]));
    const m = await manager({ devRoot });
    expect((await m.preparer.prepare([ref])).get(ref.uid)!.error).toBeUndefined();
    const spec = JSON.parse(await readFile(specPath(cdiDir, ref.uid), 'utf8'));
    const nodes = [...spec.containerEdits.deviceNodes, ...spec.devices[0].containerEdits.deviceNodes];
    for (const n of nodes) {
      expect(n.hostPath.startsWith(`${devRoot}/`)).toBe(true);
      expect(await exists(n.hostPath)).toBe(true);
    }
  });

  it('moves a corrupt checkpoint aside at init, reports it through the hook, and starts empty', async () => {
    const lost: string[] = [];
    await manager(); // creates nothing yet
    await mkdir(join(dir, 'state'), { recursive: true });
    await writeFile(checkpointPath, '{"apiVersion": "gpulet.dev/v1", "kind": "Checkpoint", "claims": {');
    const m = await manager({ onCheckpointLost: (e) => void lost.push(e.message) });
    expect(lost).toHaveLength(1);
    expect(lost[0]).toContain('moved aside');
    expect(m.ownership.prepared()).toEqual([]);
    expect((await readdir(join(dir, 'state'))).some((f) => f.startsWith('checkpoint.json.corrupt-'))).toBe(true);
  });
});
