/**
 * A strict parser of the Prometheus text exposition format 0.0.4 (prometheus.io/docs/instrumenting/
 * exposition_formats), for tests. Throws on any line that is not valid, on a `# TYPE` given twice or after
 * the family's samples, and on a family whose samples are not contiguous.
 */
export interface PromSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

export interface PromParse {
  readonly samples: PromSample[];
  readonly types: Map<string, string>;
  readonly help: Map<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const VALUE = '(?:[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?|[-+]?Inf|NaN)';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (${VALUE})(?: (-?\\d+))?$`);
const LABEL_RE = new RegExp(`^(${LABEL})="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"(,|$)`);
const TYPE_RE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const HELP_RE = new RegExp(`^# HELP (${NAME}) (.*)$`);

function unescape(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseLabels(body: string, lineNo: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = body;
  while (rest.length > 0) {
    const m = LABEL_RE.exec(rest);
    if (m === null) throw new Error(`line ${lineNo}: bad labels at "${rest}"`);
    if (m[1]! in labels) throw new Error(`line ${lineNo}: duplicate label ${m[1]}`);
    labels[m[1]!] = unescape(m[2]!);
    rest = rest.slice(m[0].length);
  }
  return labels;
}

function family(name: string, types: Map<string, string>): string {
  for (const suffix of ['_total', '_bucket', '_sum', '_count', '_created']) {
    if (name.endsWith(suffix) && types.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return name;
}

export function parsePrometheusText(text: string): PromParse {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const seenFamilies = new Set<string>();
  let current: string | undefined;
  text.split('\n').forEach((line, i) => {
    const lineNo = i + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const t = TYPE_RE.exec(line);
      if (t !== null) {
        if (types.has(t[1]!)) throw new Error(`line ${lineNo}: second TYPE for ${t[1]}`);
        if (seenFamilies.has(t[1]!)) throw new Error(`line ${lineNo}: TYPE after samples of ${t[1]}`);
        types.set(t[1]!, t[2]!);
        return;
      }
      const h = HELP_RE.exec(line);
      if (h !== null) help.set(h[1]!, h[2]!);
      else if (line.startsWith('# HELP') || line.startsWith('# TYPE')) throw new Error(`line ${lineNo}: bad metadata "${line}"`);
      return;
    }
    const m = SAMPLE_RE.exec(line);
    if (m === null) throw new Error(`line ${lineNo}: bad sample line "${line}"`);
    const fam = family(m[1]!, types);
    if (fam !== current) {
      if (seenFamilies.has(fam)) throw new Error(`line ${lineNo}: samples of ${fam} are not contiguous`);
      seenFamilies.add(fam);
      current = fam;
    }
    const raw = m[3]!;
    const value = raw.endsWith('Inf') ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw);
    samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', lineNo), value });
  });
  return { samples, types, help };
}
