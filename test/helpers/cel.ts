/**
 * Test helpers that evaluate the CEL expressions of daemonset/ with a real CEL engine
 * (@marcbachmann/cel-js), in the environments Kubernetes gives them:
 * - DRA device selectors (DeviceClass, ResourceClaim requests): one variable `device` with `driver`,
 *   `attributes` and `capacity` grouped by domain (resource.k8s.io/v1 CELDeviceSelector docs), version
 *   attributes as semver values and capacities as quantities (Kubernetes CEL libraries `semver()` and
 *   `quantity()`; only the `compareTo` member the manifests use is provided);
 * - ValidatingAdmissionPolicy: `request`, `object`, `oldObject`, `variables`, with optional syntax
 *   (`[?key]`, `.?field`, `orValue`), as the API server enables it for admission policies.
 * The engine is not Kubernetes' cel-go: it proves the expressions parse and compute the intended result on
 * realistic inputs, not that the API server's type-checker accepts every construct.
 */
import { Environment } from '@marcbachmann/cel-js';

/** A Kubernetes resource.Quantity as an exact rational (num/den), e.g. `81559Mi`, `1`, `100m`, `1.5G`. */
export class Quantity {
  constructor(
    readonly num: bigint,
    readonly den: bigint,
  ) {}

  private static readonly SUFFIX: Record<string, [bigint, bigint]> = {
    '': [1n, 1n], n: [1n, 10n ** 9n], u: [1n, 10n ** 6n], m: [1n, 1000n],
    k: [1000n, 1n], M: [10n ** 6n, 1n], G: [10n ** 9n, 1n], T: [10n ** 12n, 1n], P: [10n ** 15n, 1n], E: [10n ** 18n, 1n],
    Ki: [1n << 10n, 1n], Mi: [1n << 20n, 1n], Gi: [1n << 30n, 1n], Ti: [1n << 40n, 1n], Pi: [1n << 50n, 1n], Ei: [1n << 60n, 1n],
  };

  /** Parse the Kubernetes quantity grammar (signed decimal, then a binary-SI, decimal-SI or exponent suffix). */
  static parse(text: string): Quantity {
    const m = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/.exec(text);
    if (!m) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(text)}`);
    const [, sign, number, suffix = ''] = m;
    const [int = '', frac = ''] = number!.split('.');
    let num = BigInt(`${int}${frac}` || '0') * (sign === '-' ? -1n : 1n);
    let den = 10n ** BigInt(frac.length);
    if (/^[eE]/.test(suffix)) {
      const exp = Number(suffix.slice(1));
      if (exp >= 0) num *= 10n ** BigInt(exp);
      else den *= 10n ** BigInt(-exp);
    } else {
      const [mul, div] = Quantity.SUFFIX[suffix]!;
      num *= mul;
      den *= div;
    }
    return new Quantity(num, den);
  }

  /** -1, 0 or 1, as Kubernetes' `Quantity.compareTo`. */
  compareTo(other: Quantity): bigint {
    const a = this.num * other.den;
    const b = other.num * this.den;
    return a < b ? -1n : a > b ? 1n : 0n;
  }
}

/** A strict semver 2.0.0 version, as Kubernetes' CEL `semver()` type. */
export class Semver {
  constructor(
    readonly core: readonly [bigint, bigint, bigint],
    readonly pre: readonly string[],
  ) {}

  static parse(text: string): Semver {
    const m = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$/.exec(text);
    if (!m) throw new Error(`not a semver 2.0.0 version: ${JSON.stringify(text)}`);
    return new Semver([BigInt(m[1]!), BigInt(m[2]!), BigInt(m[3]!)], m[4] ? m[4].split('.') : []);
  }

  /** Precedence per semver.org §11: core numbers, then a pre-release sorts before the release. */
  compareTo(other: Semver): bigint {
    for (let i = 0; i < 3; i++) {
      if (this.core[i]! !== other.core[i]!) return this.core[i]! < other.core[i]! ? -1n : 1n;
    }
    if (this.pre.length === 0 || other.pre.length === 0) {
      return this.pre.length === other.pre.length ? 0n : this.pre.length === 0 ? 1n : -1n;
    }
    for (let i = 0; i < Math.min(this.pre.length, other.pre.length); i++) {
      const a = this.pre[i]!;
      const b = other.pre[i]!;
      if (a === b) continue;
      const an = /^\d+$/.test(a);
      const bn = /^\d+$/.test(b);
      if (an && bn) return BigInt(a) < BigInt(b) ? -1n : 1n;
      if (an !== bn) return an ? -1n : 1n;
      return a < b ? -1n : 1n;
    }
    return BigInt(Math.sign(this.pre.length - other.pre.length));
  }
}

/** CEL environment of DRA device selectors (`device`, `quantity()`, `semver()`, `compareTo`). */
export function deviceSelectorEnv(): Environment {
  return new Environment({ unlistedVariablesAreDyn: true })
    .registerType('Quantity', Quantity)
    .registerType('Semver', Semver)
    .registerFunction('quantity(string): Quantity', (s: string) => Quantity.parse(s))
    .registerFunction('semver(string): Semver', (s: string) => Semver.parse(s))
    .registerFunction({
      name: 'compareTo', receiverType: 'Quantity', returnType: 'int',
      params: [{ name: 'other', type: 'Quantity' }],
      handler: (a: Quantity, b: Quantity) => a.compareTo(b),
    })
    .registerFunction({
      name: 'compareTo', receiverType: 'Semver', returnType: 'int',
      params: [{ name: 'other', type: 'Semver' }],
      handler: (a: Semver, b: Semver) => a.compareTo(b),
    });
}

/** The CEL `device` value of a published device: attributes and capacities grouped by domain. */
export interface CelDevice {
  driver: string;
  attributes: Record<string, Record<string, string | boolean | bigint | Semver>>;
  capacity: Record<string, Record<string, Quantity>>;
  allowMultipleAllocations: boolean;
}

/** Split a qualified name: `resource.kubernetes.io/pciBusID` → [domain, name]; unqualified → the driver's domain. */
function splitQualified(key: string, driver: string): [string, string] {
  const i = key.indexOf('/');
  return i < 0 ? [driver, key] : [key.slice(0, i), key.slice(i + 1)];
}

/**
 * A device as it travels on the wire (resource.k8s.io/v1 Device, the fields selectors see). client-node's
 * V1Device is assignable to it (its TypeScript name for `int` is `_int`; on the wire and in YAML it is `int`).
 */
export interface WireDevice {
  name: string;
  attributes?: Record<string, { string?: string; bool?: boolean; int?: number; _int?: number; version?: string }>;
  capacity?: Record<string, { value: string }>;
  allowMultipleAllocations?: boolean;
}

/** Build the CEL input of a selector for `device` of `driver` (resource.k8s.io/v1 CELDeviceSelector docs). */
export function celDevice(driver: string, device: WireDevice): CelDevice {
  const out: CelDevice = { driver, attributes: {}, capacity: {}, allowMultipleAllocations: device.allowMultipleAllocations ?? false };
  for (const [key, attr] of Object.entries(device.attributes ?? {})) {
    const [domain, name] = splitQualified(key, driver);
    const int = attr.int ?? attr._int;
    const value = attr.string ?? attr.bool ?? (int !== undefined ? BigInt(int) : attr.version !== undefined ? Semver.parse(attr.version) : undefined);
    if (value === undefined) throw new Error(`device ${device.name}: attribute ${key} has no supported value`);
    (out.attributes[domain] ??= {})[name] = value;
  }
  for (const [key, cap] of Object.entries(device.capacity ?? {})) {
    const [domain, name] = splitQualified(key, driver);
    (out.capacity[domain] ??= {})[name] = Quantity.parse(String(cap.value));
  }
  return out;
}

/**
 * Evaluate a selector against a device. Returns true/false; throws (like the scheduler, for which an error
 * aborts allocation) when the expression errors, e.g. names an attribute the device lacks, or does not
 * return a bool.
 */
export function selects(env: Environment, expression: string, device: CelDevice): boolean {
  const result: unknown = env.evaluate(expression, { device });
  if (typeof result !== 'boolean') throw new Error(`selector ${expression} returned ${String(result)}, not a bool`);
  return result;
}

// ---------- ValidatingAdmissionPolicy ----------

/** The parts of an admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy spec the evaluator reads. */
export interface PolicySpec {
  matchConditions?: Array<{ name: string; expression: string }>;
  variables?: Array<{ name: string; expression: string }>;
  validations: Array<{ expression: string; message?: string; messageExpression?: string; reason?: string }>;
}

/** An admission request as CEL sees it (`request`), the parts the policy reads. */
export interface AdmissionRequest {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: { username: string; extra?: Record<string, string[]> };
}

/** Outcome: whether the policy applied (match conditions) and, if so, the messages of failed validations. */
export interface AdmissionResult {
  applies: boolean;
  denied: string[];
}

/**
 * Evaluate a policy the way the API server does for one request: match conditions (all must be true),
 * variables in order (each sees the earlier ones as `variables.<name>`), then every validation; a false
 * validation contributes its messageExpression (or message). A CEL error throws (failurePolicy decides then).
 */
export function admit(spec: PolicySpec, request: AdmissionRequest, object: unknown, oldObject: unknown): AdmissionResult {
  const env = new Environment({ unlistedVariablesAreDyn: true, enableOptionalTypes: true });
  const variables: Record<string, unknown> = {};
  const ctx = { request, object: object ?? null, oldObject: oldObject ?? null, variables };
  for (const mc of spec.matchConditions ?? []) {
    if (env.evaluate(mc.expression, ctx) !== true) return { applies: false, denied: [] };
  }
  for (const v of spec.variables ?? []) variables[v.name] = env.evaluate(v.expression, ctx);
  const denied: string[] = [];
  for (const val of spec.validations) {
    const ok: unknown = env.evaluate(val.expression, ctx);
    if (typeof ok !== 'boolean') throw new Error(`validation ${val.expression} returned ${String(ok)}, not a bool`);
    if (!ok) denied.push(val.messageExpression ? String(env.evaluate(val.messageExpression, ctx)) : (val.message ?? val.expression));
  }
  return { applies: true, denied };
}
