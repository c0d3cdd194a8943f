/**
 * Test helpers of the claim state machine: the claim state's parts wired as main wires them, a mock
 * inventory, ResourceClaim builders, an in-memory ClaimSource and temp dirs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMockBackend } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { ApiError } from '../../src/errors.js';
import { ClaimOps, type ClaimOpsOptions } from '../../src/state/claim-ops.js';
import type { ClaimRef } from '../../src/model/types.js';
import { claimFromApi, claimsFromApi, type ApiClaim, type ClaimList, type ClaimSource, type RawResourceClaim } from '../../src/state/claim-source.js';
import { ClaimStore, type ClaimStoreOptions } from '../../src/state/claim-store.js';
import { OwnershipView } from '../../src/state/ownership.js';
import { Preparer } from '../../src/state/preparer.js';
import { ClaimRecovery } from '../../src/state/recovery.js';
import { claimRef } from './names.js';

export const DRIVER = 'gpu.gpulet.dev';
export const NODE = 'node-a';

/** Options of {@link claimState}: the store's and the steps' (one logger for all). */
export type ClaimStateOptions = ClaimStoreOptions & Omit<ClaimOpsOptions, 'store'>;

/** The parts of the claim state, as src/main.ts builds them. */
export interface ClaimState {
  readonly store: ClaimStore;
  readonly ops: ClaimOps;
  readonly preparer: Preparer;
  readonly recovery: ClaimRecovery;
  readonly ownership: OwnershipView;
}

/** Build the claim state's parts on one store, as src/main.ts does (nothing is loaded: call `store.init()`). */
export function claimState(options: ClaimStateOptions): ClaimState {
  const store = new ClaimStore(options);
  const ops = new ClaimOps({ ...options, store });
  return {
    store,
    ops,
    preparer: new Preparer({ store, ops }),
    recovery: new ClaimRecovery({ store, ops, logger: options.logger }),
    ownership: new OwnershipView(store),
  };
}

/** Inventory of the mock `dgx-h100` (6 full H100s gpu-0..5, MIG on gpu-6 and gpu-7). */
export async function dgxInventory(nodeName = NODE): Promise<Inventory> {
  const backend = createMockBackend({ machine: 'dgx-h100', nodeName });
  await backend.init();
  const inv = backend.inventory();
  await backend.shutdown();
  return inv;
}

/** One allocation result. */
export interface ResultSpec {
  request?: string;
  driver?: string;
  pool?: string;
  device: string;
  shareID?: string;
}

/**
 * A resource.k8s.io/v1 ResourceClaim JSON allocated to the given results, as the API server would answer it
 * (nothing checked: `ref` may be any strings, for a test of what enters). {@link checkedClaim} checks it.
 */
export function allocatedClaim(
  ref: { namespace: string; name: string; uid: string },
  results: ResultSpec[],
  extra: { config?: unknown[]; reservedFor?: unknown[] } = {},
): RawResourceClaim & { apiVersion: string; kind: string } {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceClaim',
    metadata: { namespace: ref.namespace, name: ref.name, uid: ref.uid },
    status: {
      allocation: {
        devices: {
          results: results.map((r) => ({
            request: r.request ?? 'gpu',
            driver: r.driver ?? DRIVER,
            pool: r.pool ?? NODE,
            device: r.device,
            ...(r.shareID !== undefined ? { shareID: r.shareID } : {}),
          })),
          ...(extra.config !== undefined ? { config: extra.config } : {}),
        },
      },
      ...(extra.reservedFor !== undefined ? { reservedFor: extra.reservedFor } : {}),
    },
  };
}

/** A claim as read from the API server: `raw` through the entry check (`claimFromApi`), which throws on bad metadata. */
export const checkedClaim = (raw: RawResourceClaim): ApiClaim => claimFromApi(raw);

/** A fresh claim reference with a random (lower-case UUID) uid, checked (test/helpers/names.ts). */
export function newRef(name = 'train-gpu', namespace = 'ml'): ClaimRef {
  return claimRef({ namespace, name });
}

/**
 * In-memory ClaimSource holding claims as the API server would answer them (unchecked JSON). Missing claims
 * answer like the API server's 404; what it returns went through the entry check (`claimFromApi`,
 * `claimsFromApi`), as KubeClaimSource's answers do.
 */
export class MemoryClaimSource implements ClaimSource {
  readonly claims = new Map<string, RawResourceClaim>();
  gets = 0;
  put(claim: RawResourceClaim): void {
    this.claims.set(`${claim.metadata?.namespace}/${claim.metadata?.name}`, claim);
  }
  get(namespace: string, name: string): Promise<ApiClaim> {
    this.gets++;
    const c = this.claims.get(`${namespace}/${name}`);
    if (c === undefined) return Promise.reject(new ApiError(`resourceclaim ${namespace}/${name} not found (HTTP 404)`, 404));
    return new Promise((resolve) => resolve(claimFromApi(structuredClone(c)))); // a throw rejects it
  }
  /** Every claim held, checked as KubeClaimSource's list checks them. */
  listAll(): ClaimList {
    return claimsFromApi([...this.claims.values()].map((c) => structuredClone(c)));
  }
}

/** A temp dir under os.tmpdir(), and its cleanup. */
export async function tempDir(prefix = 'gpulet-state-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
