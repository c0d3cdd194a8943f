/**
 * Branded names and references for tests: a literal goes through the same rules (src/model/names.ts,
 * src/model/claim-ref.ts) a flag, a kubelet request or an API value does where it enters gpulet, so a test
 * cannot hand a component a name or reference the agent would have refused.
 * @throws ZodError naming the field and the rule when the literal breaks it.
 */
import { randomUUID } from 'node:crypto';
import { objectRefSchema } from '../../src/model/claim-ref.js';
import {
  dnsSubdomainSchema, driverNameSchema, objectUidSchema, poolNameSchema, type DnsSubdomain, type DriverName, type ObjectUid, type PoolName,
} from '../../src/model/names.js';
import type { ClaimRef, PodRef } from '../../src/model/types.js';

/** A checked DRA driver name, e.g. `driverName('gpu.gpulet.dev')`. */
export const driverName = (s: string): DriverName => driverNameSchema.parse(s);
/** A checked node name (DNS subdomain). */
export const nodeName = (s: string): DnsSubdomain => dnsSubdomainSchema.parse(s);
/** A checked pool name. */
export const poolName = (s: string): PoolName => poolNameSchema.parse(s);
/** A checked object UID (a lower-case UUID); a fresh random one when `s` is omitted. */
export const objectUid = (s: string = randomUUID()): ObjectUid => objectUidSchema.parse(s);

/** What {@link claimRef} and {@link podRef} take: `uid` defaults to a fresh random UUID. */
export interface RefLiteral {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

/** A checked claim reference, e.g. `claimRef({ namespace: 'ml', name: 'train' })` (random UUID). */
export const claimRef = (r: RefLiteral): ClaimRef => objectRefSchema.parse({ namespace: r.namespace, name: r.name, uid: r.uid ?? randomUUID() });
/** A checked pod reference (the namespace is its claim's). */
export const podRef = (r: RefLiteral): PodRef => objectRefSchema.parse({ namespace: r.namespace, name: r.name, uid: r.uid ?? randomUUID() });
