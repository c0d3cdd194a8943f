/**
 * Branded names for tests: a literal goes through the same rules (src/model/names.ts) a flag or API value does
 * where it enters gpulet, so a test cannot hand a component a name the agent would have refused.
 * @throws ZodError naming the rule when the literal breaks it.
 */
import { dnsSubdomainSchema, driverNameSchema, poolNameSchema, type DnsSubdomain, type DriverName, type PoolName } from '../../src/model/names.js';

/** A checked DRA driver name, e.g. `driverName('gpu.gpulet.dev')`. */
export const driverName = (s: string): DriverName => driverNameSchema.parse(s);
/** A checked node name (DNS subdomain). */
export const nodeName = (s: string): DnsSubdomain => dnsSubdomainSchema.parse(s);
/** A checked pool name. */
export const poolName = (s: string): PoolName => poolNameSchema.parse(s);
