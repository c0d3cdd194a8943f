/**
 * Server-side printing (`meta.k8s.io/v1` `Table`, what `kubectl get` asks for with `Accept: ...;as=Table`).
 * Columns follow kubernetes `pkg/printers/internalversion/printers.go` (ResourceSlice: Name, Node, Driver, Pool,
 * Age; ResourceClaim: Name, State, Age with `resourceClaimState`; Node: Name, Status, Roles, Age, Version; ...).
 */
import type { KubeObject } from './types.js';
import type { ResourceDef } from './resources.js';

interface Column {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'date';
  readonly format: string;
  readonly description: string;
  readonly priority: number;
  readonly cell: (o: KubeObject, now: Date) => string | number;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function rec(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** Human duration as `kubectl` prints ages (apimachinery `util/duration.HumanDuration`, simplified). */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 > 0 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return `${h}h${m % 60 > 0 ? `${m % 60}m` : ''}`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return `${d}d${h % 24 > 0 ? `${h % 24}h` : ''}`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

/** `resourceClaimState` from upstream printers: deleted / pending / allocated[,reserved|,deallocating]. */
export function resourceClaimState(claim: KubeObject): string {
  const states: string[] = [];
  const deleting = claim.metadata['deletionTimestamp'] !== undefined;
  const status = rec(claim['status']);
  if (deleting) states.push('deleted');
  if (status['allocation'] === undefined || status['allocation'] === null) {
    if (!deleting) states.push('pending');
  } else {
    states.push('allocated');
    const reserved = status['reservedFor'];
    if (Array.isArray(reserved) && reserved.length > 0) states.push('reserved');
    else if (deleting) states.push('deallocating');
  }
  return states.join(',');
}

const NAME: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  priority: 0,
  cell: (o) => o.metadata.name ?? '',
};
const AGE: Column = {
  name: 'Age',
  type: 'string',
  format: '',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  priority: 0,
  cell: (o, now) => {
    const t = Date.parse(o.metadata.creationTimestamp ?? '');
    return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
  },
};

function col(name: string, description: string, cell: Column['cell'], priority = 0): Column {
  return { name, type: 'string', format: '', description, priority, cell };
}

function nodeReady(o: KubeObject): string {
  const conds = rec(o['status'])['conditions'];
  const ready = Array.isArray(conds) ? conds.map(rec).find((c) => c['type'] === 'Ready') : undefined;
  const base = ready?.['status'] === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
  return rec(o['spec'])['unschedulable'] === true ? `${base},SchedulingDisabled` : base;
}

function podReady(o: KubeObject): string {
  const containers = rec(o['spec'])['containers'];
  const statuses = rec(o['status'])['containerStatuses'];
  const total = Array.isArray(containers) ? containers.length : 0;
  const ready = Array.isArray(statuses) ? statuses.map(rec).filter((s) => s['ready'] === true).length : 0;
  return `${ready}/${total}`;
}

const COLUMNS: Record<string, readonly Column[]> = {
  resourceslices: [
    NAME,
    col('Node', 'NodeName identifies the node which provides the resources in this pool.', (o) => str(rec(o['spec'])['nodeName'])),
    col('Driver', 'Driver identifies the DRA driver providing the capacity information.', (o) => str(rec(o['spec'])['driver'])),
    col('Pool', 'Pool describes the pool that this ResourceSlice belongs to.', (o) => str(rec(rec(o['spec'])['pool'])['name'])),
    AGE,
  ],
  resourceclaims: [NAME, col('State', 'A summary of the current state (allocated, pending, reserved, etc.).', resourceClaimState), AGE],
  nodes: [
    NAME,
    col('Status', 'The status of the node', nodeReady),
    col('Roles', 'The roles of the node', () => '<none>'),
    AGE,
    col('Version', 'Kubelet Version reported by the node.', (o) => str(rec(rec(o['status'])['nodeInfo'])['kubeletVersion'])),
  ],
  namespaces: [NAME, col('Status', 'The status of the namespace', (o) => str(rec(o['status'])['phase'])), AGE],
  pods: [
    NAME,
    col('Ready', 'The aggregate readiness state of this pod for accepting traffic.', podReady),
    col('Status', 'The aggregate status of the containers in this pod.', (o) => str(rec(o['status'])['phase'])),
    { ...col('Restarts', 'The number of times the containers in this pod have been restarted.', () => 0), type: 'integer' },
    AGE,
    col('Node', 'The name of the node this pod is scheduled on.', (o) => str(rec(o['spec'])['nodeName']) || '<none>', 1),
  ],
};

/** What a row carries as `object` (`includeObject` query parameter: None, Object, Metadata (default)). */
export type IncludeObject = 'None' | 'Object' | 'Metadata';

/**
 * Render objects as a `meta.k8s.io/v1` `Table` (`columnDefinitions`, `rows[].cells`, `rows[].object`).
 * @param listMeta the list's metadata (`resourceVersion`, `continue`, ...; a single object's resourceVersion;
 *   `{}` in watch events)
 */
export function toTable(def: ResourceDef, objects: readonly KubeObject[], listMeta: Readonly<Record<string, unknown>>, include: IncludeObject, now = new Date()): Record<string, unknown> {
  const columns = COLUMNS[def.plural] ?? [NAME, AGE];
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: columns.map(({ cell: _c, ...c }) => c),
    rows: objects.map((o) => {
      const row: Record<string, unknown> = { cells: columns.map((c) => c.cell(o, now)) };
      if (include === 'Object') row['object'] = o;
      else if (include === 'Metadata') row['object'] = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
      return row;
    }),
  };
}

/** Whether an `Accept` header asks for a Table (`application/json;as=Table;v=v1;g=meta.k8s.io`). */
export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}
