/**
 * What Grafana does with a dashboard's Prometheus queries, for tests that run them on a real Prometheus:
 * read the panels' targets and the template variables (from a dashboard JSON model, or from the transcription
 * of NVIDIA's dashboard in test/reference/dcgm-exporter/dashboard-12239.md), resolve `label_values(...)`
 * variables the way Grafana's Prometheus data source does (`/api/v1/label/<label>/values?match[]=<selector>`),
 * and interpolate them. A multi-value variable set to "All" (no `customAllValue`) becomes the regex alternation
 * of its values, each escaped for a PromQL regex (Grafana's `prometheusSpecialRegexEscape`). The built-in range
 * variables get fixed values fit for a Prometheus that scrapes every second.
 */
import { readFileSync } from 'node:fs';
import type { Prometheus } from './prometheus.js';
import { reference } from './reference.js';

/** One query of a panel. */
export interface PanelQuery {
  readonly panelId: number;
  readonly title: string;
  readonly refId: string;
  readonly expr: string;
}

/** A template variable. */
export interface TemplateVariable {
  readonly name: string;
  readonly type: string;
  readonly query: string;
  readonly includeAll: boolean;
  readonly multi: boolean;
}

/** A dashboard as the tests need it. */
export interface DashboardQueries {
  readonly queries: readonly PanelQuery[];
  readonly variables: readonly TemplateVariable[];
}

/** Grafana's built-in interval variables, as these tests set them (scrape interval 1 s). */
export const BUILTIN_VARIABLES: Readonly<Record<string, string>> = { __rate_interval: '1m', __interval: '15s', __range: '5m' };

interface JsonPanel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly targets?: readonly { readonly refId?: string; readonly expr?: string }[];
  readonly panels?: readonly JsonPanel[];
}

/** Every panel of a Grafana JSON model, rows' nested panels included (a collapsed row keeps them inside). */
export function allPanels(model: { readonly panels?: readonly JsonPanel[] }): JsonPanel[] {
  return (model.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** A variable's query: a string, or (newer Grafana) an object with the string in `query`. */
function queryText(q: unknown): string {
  if (typeof q === 'string') return q;
  const inner = typeof q === 'object' && q !== null ? (q as { query?: unknown }).query : undefined;
  return typeof inner === 'string' ? inner : '';
}

/** Queries and variables of a Grafana JSON model. */
export function fromModel(model: unknown): DashboardQueries {
  const m = model as { panels?: JsonPanel[]; templating?: { list?: { name: string; type: string; query?: unknown; includeAll?: boolean; multi?: boolean }[] } };
  const queries = allPanels(m).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panelId: p.id ?? -1, title: p.title ?? '', refId: t.refId ?? '', expr: t.expr ?? '' })),
  );
  const variables = (m.templating?.list ?? []).map((v) => ({
    name: v.name,
    type: v.type,
    query: queryText(v.query),
    includeAll: v.includeAll === true,
    multi: v.multi === true,
  }));
  return { queries, variables };
}

/** The queries and variables of NVIDIA's dashboard 12239, from its transcription (test/reference/dcgm-exporter). */
export function nvidiaDashboard(): DashboardQueries {
  const text = readFileSync(reference('dcgm-exporter', 'dashboard-12239.md'), 'utf8');
  const queries: PanelQuery[] = [];
  const variables: TemplateVariable[] = [];
  for (const line of text.split('\n')) {
    const panel = /^\| (\d+) \| ([^|]+) \| (\w+) \| `(.+)` \|$/.exec(line);
    if (panel !== null) queries.push({ panelId: Number(panel[1]), title: panel[2]!.trim(), refId: 'A', expr: panel[4]! });
    const variable = /^\| (\w+) \| (\w+) \| (true|false) \| (true|false) \| `(.+)` \|$/.exec(line);
    if (variable !== null) variables.push({ name: variable[1]!, type: variable[2]!, includeAll: variable[3] === 'true', multi: variable[4] === 'true', query: variable[5]! });
  }
  return { queries, variables };
}

/** Grafana's `prometheusSpecialRegexEscape`: a value made literal inside a PromQL regex string. */
export function regexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/** Replace `$name`, `${name}` and `[[name]]` by their values; unknown names are left as they are. */
export function interpolate(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a?: string, b?: string, c?: string) => values[(a ?? b ?? c)!] ?? whole);
}

/**
 * Resolve the query variables in order (a later one may use an earlier one), each set to "All" when it allows
 * it (else to its first value). `label_values(label)` and `label_values(selector, label)` are supported.
 * @throws Error naming the variable when its query has another form or finds no value (a dashboard whose
 *   variable is empty shows nothing).
 */
export async function resolveVariables(variables: readonly TemplateVariable[], prom: Prometheus): Promise<Record<string, string>> {
  const values: Record<string, string> = { ...BUILTIN_VARIABLES };
  for (const v of variables) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((?:(.+),\s*)?(\w+)\)$/.exec(v.query.trim());
    if (m === null) throw new Error(`variable ${v.name}: unsupported query ${v.query}`);
    const selector = m[1] === undefined ? undefined : interpolate(m[1], values);
    const found = await prom.labelValues(m[2]!, selector);
    if (found.length === 0) throw new Error(`variable ${v.name}: ${v.query} found no value`);
    values[v.name] = v.includeAll ? `(${found.map(regexEscape).join('|')})` : regexEscape(found[0]!);
  }
  return values;
}
