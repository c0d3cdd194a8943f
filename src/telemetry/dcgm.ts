/**
 * dcgm-exporter-compatible series (`DCGM_FI_*`) in the Prometheus text exposition format 0.0.4, so that
 * existing dashboards keep working. Pure: a function of the latest sample, the inventory, ownership and
 * health. Appended by our HTTP server after the OTel Prometheus exporter's output.
 *
 * Labels follow dcgm-exporter (NVIDIA/dcgm-exporter `internal/pkg/rendermetrics/render_metrics.go`, GPU
 * template; `internal/pkg/collector/gpu_collector.go` `toMetric`; the DRA example in the Kubernetes docs
 * "Resource allocation API for DRA"): `gpu` (NVML index), `UUID`, `pci_bus_id` (NVML form
 * `00000000:18:00.0`), `device` (`nvidia<minor>`), `modelName`, `Hostname` and its lower-case twin `hostname`
 * (newer dcgm-exporter templates write `hostname`; both are emitted so queries of either kind match), and
 * `DCGM_FI_DRIVER_VERSION` (a `label` field of `etc/dcp-metrics-included.csv`: dcgm-exporter puts label
 * fields on every series); a MIG device is reported on its parent's labels plus `GPU_I_PROFILE`, `GPU_I_ID`; a
 * held device adds `namespace`, `pod`, `container` (each container of the pod that uses the claim, one series
 * per container, when {@link DcgmInput.containersOf} knows them: main passes the kubelet pod-resources client's,
 * src/k8s/pod-resources.ts), `dra_claim_name`,
 * `dra_claim_namespace`, `dra_driver_name`, `dra_pool_name`, `dra_device_name` and, for MIG, `dra_mig_profile`,
 * `dra_mig_device_uuid`. `DCGM_FI_DEV_XID_ERRORS` carries `err_code` (the XID) and `err_msg` (its text,
 * xid-messages.ts), and is 0 (`err_code="0"`, `err_msg="No Error"`) for a GPU that had no XID, as DCGM
 * reports the field before any XID (a MIG device has it once an XID was attributed to it). `# TYPE` is dcgm-exporter's (`etc/dcp-metrics-included.csv`).
 */
import type { DeviceOwner, PodRef } from '../model/types.js';
import type { Sample } from '../gpu/types.js';
import type { DeviceIdentity } from './attributes.js';
import { convert, DCGM_ONLY_SERIES, INSTRUMENTS, readGpm, readSeries, type DcgmSeries, type SampleField } from './instruments.js';
import { xidMessage } from './xid-messages.js';

/** Input of {@link renderDcgm}. */
export interface DcgmInput {
  readonly sample: Sample | undefined;
  readonly identities: ReadonlyMap<string, DeviceIdentity>;
  readonly owners: ReadonlyMap<string, readonly DeviceOwner[]>;
  /** Last XID of a device (`HealthTracker.lastXid`). */
  readonly lastXid: (uuid: string) => number | undefined;
  /** `Hostname` and `hostname` labels (the node name). */
  readonly hostname: string;
  /** `dra_driver_name`, e.g. `gpu.gpulet.dev`. */
  readonly driverName: string;
  /** `dra_pool_name` (the node name for a node-local driver). */
  readonly poolName: string;
  /** The containers of `pod` that use the claim `claimName` (`container` labels); undefined or absent: unknown, no label. */
  readonly containersOf?: (pod: PodRef, claimName: string) => readonly string[] | undefined;
}

type Labels = [string, string][];

/** NVML's PCI bus ID form: 8-digit domain, upper-case hex (`0000:3b:00.0` → `00000000:3B:00.0`). */
export function nvmlBusId(sysfsBusId: string): string {
  const m = /^([0-9a-fA-F]{1,8}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/.exec(sysfsBusId);
  if (m === null) return sysfsBusId;
  return `${m[1]!.padStart(8, '0')}:${m[2]}:${m[3]}.${m[4]}`.toUpperCase();
}

/** Escape a label value (text format 0.0.4: backslash, double quote, line feed). */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function deviceLabels(id: DeviceIdentity, hostname: string): Labels {
  const labels: Labels = [
    ['gpu', String(id.gpu.index)],
    ['UUID', id.gpu.uuid],
    ['pci_bus_id', nvmlBusId(id.gpu.pci.busId)],
    ['device', `nvidia${id.gpu.minor}`],
    ['modelName', id.gpu.productName],
  ];
  if (id.mig !== undefined) labels.push(['GPU_I_PROFILE', id.mig.profile], ['GPU_I_ID', String(id.mig.gpuInstanceId)]);
  labels.push(['Hostname', hostname], ['hostname', hostname]);
  const driverVersion = id.attributes['hw.driver_version'];
  if (driverVersion !== undefined && driverVersion !== '') labels.push(['DCGM_FI_DRIVER_VERSION', driverVersion]);
  return labels;
}

function ownerLabelSets(id: DeviceIdentity, owners: readonly DeviceOwner[] | undefined, input: DcgmInput): Labels[] {
  const base = deviceLabels(id, input.hostname);
  if (owners === undefined || owners.length === 0) return [base];
  const out: Labels[] = [];
  for (const owner of owners) {
    const dra: Labels = [
      ['dra_claim_name', owner.claim.name],
      ['dra_claim_namespace', owner.claim.namespace],
      ['dra_device_name', owner.deviceName],
      ['dra_driver_name', input.driverName],
      ['dra_pool_name', input.poolName],
    ];
    if (id.mig !== undefined) dra.push(['dra_mig_profile', id.mig.profile], ['dra_mig_device_uuid', id.uuid]);
    if (owner.pods.length === 0) {
      out.push([...base, ...dra, ['namespace', owner.claim.namespace], ['pod', '']]);
      continue;
    }
    for (const pod of owner.pods) {
      const podLabels: Labels = [...base, ...dra, ['namespace', pod.namespace], ['pod', pod.name]];
      const containers = input.containersOf?.(pod, owner.claim.name) ?? [];
      if (containers.length === 0) out.push(podLabels);
      for (const container of containers) out.push([...podLabels, ['container', container]]);
    }
  }
  return out;
}

/** `k="v",...` of `labels`, values escaped. */
function labelText(labels: Labels): string {
  return labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
}

/** One family: metadata, the value of each device (undefined = no sample line), and labels of that value. */
interface Family {
  readonly series: DcgmSeries;
  readonly value: (uuid: string) => number | undefined;
  readonly extraLabels?: (value: number) => Labels;
}

function families(input: DcgmInput): Family[] {
  const byUuid = new Map((input.sample?.devices ?? []).map((d) => [d.uuid, d]));
  const fromField = (field: SampleField, conversion: DcgmSeries['convert'], minus?: SampleField) => (uuid: string) => {
    const d = byUuid.get(uuid);
    if (d === undefined) return undefined;
    const value = readSeries(d, { from: 'sample', field }, conversion);
    const less = minus === undefined ? undefined : readSeries(d, { from: 'sample', field: minus }, conversion);
    return value === undefined || less === undefined ? value : value - less;
  };
  const out: Family[] = [];
  for (const spec of INSTRUMENTS) {
    for (const series of spec.series) {
      if (series.dcgm === undefined) continue;
      const source = series.source;
      if (source.from === 'gpm') {
        const conversion = series.dcgm.convert;
        out.push({
          series: series.dcgm,
          value: (uuid) => {
            const d = byUuid.get(uuid);
            const v = d === undefined ? undefined : readGpm(d, source.field);
            return v === undefined ? undefined : convert(v, conversion);
          },
        });
        continue;
      }
      if (source.from !== 'sample') continue;
      out.push({ series: series.dcgm, value: fromField(source.field, series.dcgm.convert, series.dcgm.minus) });
    }
  }
  for (const extra of DCGM_ONLY_SERIES) out.push({ series: extra, value: fromField(extra.field, extra.convert) });
  out.push({
    series: { name: 'DCGM_FI_DEV_XID_ERRORS', type: 'gauge', help: 'Value of the last XID error encountered.', convert: 'identity' },
    // DCGM reports the field of a GPU (0) before any XID; dcgm-exporter labels it err_code / err_msg
    // (gpu_collector.go). A MIG device has the series only once an XID was attributed to it.
    value: (uuid) => {
      const xid = input.lastXid(uuid);
      if (xid !== undefined) return convert(xid, 'identity');
      return input.identities.get(uuid)?.kind === 'gpu' ? 0 : undefined;
    },
    extraLabels: (xid) => [['err_code', String(xid)], ['err_msg', xidMessage(xid)]],
  });
  return out;
}

/**
 * Render every `DCGM_FI_*` family with at least one value, each with `# HELP` and `# TYPE`, one line per
 * device (per holder, for a held device). Devices missing from the inventory are skipped (no labels).
 */
export function renderDcgm(input: DcgmInput): string {
  // The label text of each device's series (one per holder), written once per render and used by every
  // family: the labels do not depend on the family.
  const labelTexts = new Map<string, string[]>();
  for (const [uuid, id] of input.identities) labelTexts.set(uuid, ownerLabelSets(id, input.owners.get(uuid), input).map(labelText));
  let text = '';
  for (const family of families(input)) {
    let lines = '';
    const name = family.series.name;
    for (const uuid of input.identities.keys()) {
      const value = family.value(uuid);
      if (value === undefined) continue;
      const extraLabels = family.extraLabels?.(value);
      const extra = extraLabels === undefined || extraLabels.length === 0 ? '' : labelText(extraLabels);
      const formatted = formatValue(value);
      for (const labels of labelTexts.get(uuid) ?? []) {
        const body = labels === '' ? extra : extra === '' ? labels : `${labels},${extra}`;
        lines += `${name}{${body}} ${formatted}\n`;
      }
    }
    if (lines === '') continue;
    const help = family.series.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    text += `# HELP ${family.series.name} ${help}\n# TYPE ${family.series.name} ${family.series.type}\n${lines}`;
  }
  return text;
}
