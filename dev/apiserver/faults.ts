/**
 * Fault injection (pure bookkeeping): rules matched against each request in the order added; a matched rule
 * with `times` left is consumed. The server applies the returned rule (tell `arrived`, delay, wait for
 * `holdUntil`, then drop or a Status answer).
 */
import type { FaultRule } from './types.js';

interface ActiveRule {
  readonly rule: FaultRule;
  remaining: number;
}

/** The set of active fault rules. */
export class FaultSet {
  private readonly rules: ActiveRule[] = [];

  /** Add a rule; returns its remover. Rejects `times` < 1 and a `status` outside 100..599 (RangeError). */
  add(rule: FaultRule): () => void {
    if (rule.times !== undefined && (!Number.isInteger(rule.times) || rule.times < 1)) {
      throw new RangeError(`fault rule times must be a positive integer, got ${rule.times}`);
    }
    if (rule.status !== undefined && (!Number.isInteger(rule.status) || rule.status < 100 || rule.status > 599)) {
      throw new RangeError(`fault rule status must be an HTTP status code, got ${rule.status}`);
    }
    const active: ActiveRule = { rule, remaining: rule.times ?? Number.POSITIVE_INFINITY };
    this.rules.push(active);
    return () => {
      const i = this.rules.indexOf(active);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  /** The first rule matching this request (consuming one of its `times`), or undefined. */
  take(method: string, path: string): FaultRule | undefined {
    for (const active of this.rules) {
      const { rule } = active;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method.toUpperCase()) continue;
      if (rule.pathIncludes !== undefined && !path.includes(rule.pathIncludes)) continue;
      active.remaining -= 1;
      if (active.remaining <= 0) this.rules.splice(this.rules.indexOf(active), 1);
      return rule;
    }
    return undefined;
  }
}
