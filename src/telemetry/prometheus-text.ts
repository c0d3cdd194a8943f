/**
 * The Prometheus text (exposition format 0.0.4) of the own series (metric-data.ts), written directly instead of
 * through `PrometheusSerializer` of `@opentelemetry/exporter-prometheus` 0.301 — byte for byte what that
 * serializer writes for the same `MetricData` with gpulet's settings (no prefix, no timestamps, scope labels,
 * no resource constant labels), without the `target_info` family, which the SDK's own serialization carries
 * (test/telemetry/prometheus-text.test.ts compares the two).
 *
 * Why: the serializer sanitises every label name with a regular expression and escapes every label value with
 * three, for every data point of every scrape (~2,000 points with 56 owned MIG devices). Here the label block of
 * an attribute set is written once and cached per attributes object (a WeakMap: observe.ts and the accounting keep
 * one object per series while its device and owners do not change, see attribute-key.ts), so a scrape writes
 * names, cached labels and numbers.
 *
 * The serializer's rules (PrometheusSerializer.ts): metric name = `escapeString(name)` with `[^a-zA-Z0-9_]` → `_`
 * and runs of `_` folded, `_` prefixed to a leading digit, `_total` appended to a monotonic sum; `# HELP` (the
 * description, `\` and newline escaped, "description missing" when empty), `# UNIT` when the unit is not empty,
 * `# TYPE` (`counter` for a monotonic sum, else `gauge`); a point is `name{labels} value` with the point's
 * attributes, then `otel_scope_name`, `otel_scope_version` (when set); a label value is the string, or the JSON of
 * a non-string, with `\`, newline and `"` escaped; values `+Inf`, `-Inf`, else JavaScript's number text.
 */
import type { Attributes } from '@opentelemetry/api';
import { DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import { escapeLabelValue as escapeText } from './dcgm.js';
import type { InstrumentationScope } from './own-metrics.js';

function escapeString(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** The text format's label-value escaping (dcgm.ts's) of the value, or of its JSON when it is not a string. */
function escapeLabelValue(value: Attributes[string]): string {
  return escapeText(typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
}

function sanitizeName(name: string): string {
  return name.replace(/[^a-z0-9_]/gi, '_').replace(/_{2,}/g, '_');
}

/** `name="value"` pairs of an attribute set, comma-separated, cached per attributes object. */
const labelCache = new WeakMap<Attributes, string>();

function labelsOf(attributes: Attributes): string {
  let labels = labelCache.get(attributes);
  if (labels === undefined) {
    labels = '';
    for (const [key, value] of Object.entries(attributes)) {
      labels += `${labels.length > 0 ? ',' : ''}${sanitizeName(key)}="${escapeLabelValue(value)}"`;
    }
    labelCache.set(attributes, labels);
  }
  return labels;
}

function valueText(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return `${value}`;
}

/** The Prometheus name of a metric, or undefined where the serializer drops it (an empty or `_` name). */
function prometheusName(metric: MetricData): string | undefined {
  let name = sanitizeName(escapeString(metric.descriptor.name));
  if (name === '' || name === '_') return undefined;
  const first = name.charAt(0);
  if (first >= '0' && first <= '9') name = `_${name}`;
  if (!name.endsWith('_total') && metric.dataPointType === DataPointType.SUM && metric.isMonotonic) name += '_total';
  return name;
}

/**
 * The text of `metrics` (gauges and sums; other point types are skipped) under `scope`: each metric as one family,
 * in order, each ending with a newline; '' for none. Metric names must be distinct (the own instruments' are).
 */
export function renderOwnMetrics(metrics: readonly MetricData[], scope: InstrumentationScope): string {
  const scopeLabels = `otel_scope_name="${escapeLabelValue(scope.name)}"${scope.schemaUrl ? `,otel_scope_schema_url="${escapeLabelValue(scope.schemaUrl)}"` : ''}${scope.version ? `,otel_scope_version="${escapeLabelValue(scope.version)}"` : ''}`;
  let out = '';
  for (const metric of metrics) {
    if (metric.dataPointType !== DataPointType.GAUGE && metric.dataPointType !== DataPointType.SUM) continue;
    const name = prometheusName(metric);
    if (name === undefined) continue;
    const { description, unit } = metric.descriptor;
    out += `# HELP ${name} ${escapeString(description || 'description missing')}\n`;
    if (unit) out += `# UNIT ${name} ${escapeString(unit)}\n`;
    out += `# TYPE ${name} ${metric.dataPointType === DataPointType.SUM && metric.isMonotonic ? 'counter' : 'gauge'}\n`;
    for (const point of metric.dataPoints) {
      const labels = labelsOf(point.attributes);
      out += `${name}{${labels}${labels.length > 0 ? ',' : ''}${scopeLabels}} ${valueText(point.value)}\n`;
    }
  }
  return out;
}
