/**
 * Label and field selectors, parsed and matched (pure). Grammar from apimachinery `pkg/labels/selector.go` and
 * `pkg/fields/selector.go`: comma-separated requirements; labels support `k`, `!k`, `k=v`, `k==v`, `k!=v`,
 * `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`; fields support `f=v`, `f==v`, `f!=v`.
 * Parse functions throw `StatusError` 400 BadRequest on bad syntax or an unsupported field.
 */
import { badRequest } from './status.js';

type LabelOp = 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin' | 'gt' | 'lt';

/** One label requirement. */
export interface LabelRequirement {
  readonly key: string;
  readonly op: LabelOp;
  readonly values: readonly string[];
}

/** One field requirement (`field` is a dotted path such as `spec.nodeName`). */
export interface FieldRequirement {
  readonly field: string;
  readonly op: 'eq' | 'neq';
  readonly value: string;
}

/** Split on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

const SET_RE = /^([^\s!=<>(),]+)\s+(in|notin)\s*\(([^)]*)\)$/;
const CMP_RE = /^([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s!=<>(),]*)$/;
const KEY_RE = /^(!?)\s*([^\s!=<>(),]+)$/;

/** Parse a `labelSelector` query value ('' = everything). */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  return splitTopLevel(selector).map((term) => {
    const set = SET_RE.exec(term);
    if (set) {
      const values = (set[3] ?? '').split(',').map((v) => v.trim()).filter((v) => v !== '');
      return { key: set[1] ?? '', op: set[2] === 'in' ? 'in' : 'notin', values };
    }
    const cmp = CMP_RE.exec(term);
    if (cmp) {
      const opText = cmp[2];
      const op: LabelOp = opText === '!=' ? 'neq' : opText === '>' ? 'gt' : opText === '<' ? 'lt' : 'eq';
      const value = cmp[3] ?? '';
      if ((op === 'gt' || op === 'lt') && !/^-?\d+$/.test(value)) {
        throw badRequest(`unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: ${term}`);
      }
      return { key: cmp[1] ?? '', op, values: [value] };
    }
    const key = KEY_RE.exec(term);
    if (key) return { key: key[2] ?? '', op: key[1] === '!' ? 'notexists' : 'exists', values: [] };
    throw badRequest(`unable to parse requirement: invalid label selector term "${term}"`);
  });
}

/** Whether `labels` satisfy every requirement. */
export function matchLabels(reqs: readonly LabelRequirement[], labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'eq':
        return has && v === r.values[0];
      case 'neq':
        return !has || v !== r.values[0];
      case 'in':
        return has && v !== undefined && r.values.includes(v);
      case 'notin':
        return !has || v === undefined || !r.values.includes(v);
      case 'gt':
      case 'lt': {
        if (!has || v === undefined || !/^-?\d+$/.test(v)) return false;
        const n = Number(v);
        const bound = Number(r.values[0]);
        return r.op === 'gt' ? n > bound : n < bound;
      }
    }
    return false;
  });
}

/**
 * Parse a `fieldSelector` query value ('' = everything).
 * @param supported field paths allowed besides `metadata.name` and `metadata.namespace`
 */
export function parseFieldSelector(selector: string, supported: readonly string[]): FieldRequirement[] {
  return splitTopLevel(selector).map((term) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid field selector: "${term}"`);
    const field = (m[1] ?? '').trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !supported.includes(field)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    return { field, op: m[2] === '!=' ? 'neq' : 'eq', value: (m[3] ?? '').trim() };
  });
}

/** The string form of a field at a dotted path (booleans and numbers stringified; absent = ''). */
export function fieldValue(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'number' || typeof cur === 'boolean') return String(cur);
  return '';
}

/** Whether `obj` satisfies every field requirement. */
export function matchFields(reqs: readonly FieldRequirement[], obj: unknown): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.op === 'eq'));
}
