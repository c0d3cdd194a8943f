/**
 * The object store (in memory, no I/O): objects per resource, one cluster-wide `resourceVersion` counter bumped
 * on every write, UIDs, `generateName`, `generation`, optimistic concurrency, and the event history watches replay.
 * Semantics follow the real API server's generic registry (`apiserver/pkg/registry/generic/registry/store.go`):
 * a no-op update writes nothing; `generation` is bumped when anything outside `metadata`/`status` changes.
 * Methods throw `StatusError` (404 NotFound, 409 AlreadyExists/Conflict, 410 Gone, 422 Invalid).
 */
import { randomUUID, randomInt } from 'node:crypto';
import type { KubeObject } from './types.js';
import { RESOURCES, apiVersionOf, type ResourceDef } from './resources.js';
import { StatusError, invalid, notFound } from './status.js';
import { validateMetadata } from './validate.js';
import { validateResourceSpec } from './validate-resource.js';
import { applyDefaults } from './defaults.js';
import { canonicalJson, omit } from './patch.js';

/** A change, as watches see it. `previous` is the object before a MODIFIED (for selector transitions). */
export interface StoreEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: KubeObject;
  readonly previous?: KubeObject;
  /** Numeric resourceVersion of this change. */
  readonly rv: number;
  readonly resource: ResourceDef;
}

/** Optimistic-concurrency preconditions of a delete (`DeleteOptions.preconditions`). */
export interface Preconditions {
  readonly uid?: string;
  readonly resourceVersion?: string;
}

const HISTORY_LIMIT = 10_000;
/** Characters of generated name suffixes (apimachinery `util/rand` alphanums: no vowels, no confusables). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';
/** `generateName` is truncated so name + 5-char suffix fits a DNS label (apiserver `names.SimpleNameGenerator`). */
const MAX_GENERATE_NAME = 58;

function keyOf(def: ResourceDef): string {
  return `${def.group}/${def.plural}`;
}

function objKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

/** RFC 3339 timestamp, second precision (the API's `metav1.Time` wire form). */
export function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** JSON of everything but metadata and status: what `generation` tracks. */
function specOf(obj: KubeObject): string {
  return canonicalJson(omit(obj, ['metadata', 'status', 'apiVersion', 'kind']));
}

function withoutRv(obj: KubeObject): string {
  return canonicalJson({ ...obj, metadata: omit(obj.metadata, ['resourceVersion']) });
}

/** In-memory object store with watch fan-out. */
export class ObjectStore {
  private rv = 1000;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: StoreEvent[] = [];
  /** Highest resourceVersion no longer in `history` (watches from before it get 410 Gone). */
  private compactedRv = 1000;
  private readonly listeners = new Set<(ev: StoreEvent) => void>();

  /** Current resourceVersion of the whole store (what a list reports). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  private bucket(def: ResourceDef): Map<string, KubeObject> {
    let b = this.objects.get(keyOf(def));
    if (!b) {
      b = new Map();
      this.objects.set(keyOf(def), b);
    }
    return b;
  }

  private emit(ev: StoreEvent): void {
    this.history.push(ev);
    if (this.history.length > HISTORY_LIMIT) {
      const dropped = this.history.splice(0, this.history.length - HISTORY_LIMIT);
      this.compactedRv = dropped[dropped.length - 1]?.rv ?? this.compactedRv;
    }
    for (const l of [...this.listeners]) l(ev);
  }

  private requireNamespace(def: ResourceDef, namespace: string | undefined): void {
    if (!def.namespaced) return;
    const nsDef = RESOURCES.find((r) => r.kind === 'Namespace');
    if (namespace === undefined || namespace === '') {
      throw new StatusError(400, 'BadRequest', `${def.plural} is namespaced: a namespace is required`);
    }
    if (nsDef && !this.bucket(nsDef).has(objKey(undefined, namespace))) throw notFound('', 'namespaces', namespace);
  }

  /**
   * Create an object: fills name (from `generateName`), uid, creationTimestamp, resourceVersion, generation 1.
   * @param keepStatus keep a given `status` (direct store access); HTTP creates drop it for kinds with a status
   *   subresource other than Node, as upstream strategies do
   * @param dryRun validate and return the would-be object without storing it (`?dryRun=All`)
   */
  create(def: ResourceDef, input: KubeObject, keepStatus = true, dryRun = false): KubeObject {
    const obj = structuredClone(input);
    obj.apiVersion = apiVersionOf(def);
    obj.kind = def.kind;
    const meta = obj.metadata;
    if (!def.namespaced) delete meta.namespace;
    this.requireNamespace(def, meta.namespace);
    const bucket = this.bucket(def);
    if ((meta.name === undefined || meta.name === '') && typeof meta.generateName === 'string' && meta.generateName !== '') {
      const prefix = meta.generateName.slice(0, MAX_GENERATE_NAME);
      do {
        meta.name = prefix + Array.from({ length: 5 }, () => ALPHANUMS[randomInt(ALPHANUMS.length)]).join('');
      } while (bucket.has(objKey(meta.namespace, meta.name)));
    }
    applyDefaults(def.kind, obj);
    const causes = [...validateMetadata(meta, def.nameIsLabel), ...validateResourceSpec(def.kind, obj)];
    if (causes.length > 0) throw invalid(def.kind, def.group, meta.name ?? '', causes);
    const name = meta.name ?? '';
    if (bucket.has(objKey(meta.namespace, name))) {
      const what = def.group === '' ? def.plural : `${def.plural}.${def.group}`;
      throw new StatusError(409, 'AlreadyExists', `${what} "${name}" already exists`, { name, group: def.group, kind: def.plural });
    }
    // Upstream create strategies reset status, except Node's ("Nodes allow *all* fields, including status, to be set on create").
    if (!keepStatus && def.statusSubresource && def.kind !== 'Node') delete obj['status'];
    // A ResourceClaim's status is a struct, not a pointer: the real server always answers `status: {}`.
    if (def.kind === 'ResourceClaim' && obj['status'] === undefined) obj['status'] = {};
    if (def.kind === 'Namespace') obj['status'] = { phase: 'Active' };
    if (def.kind === 'Pod' && obj['status'] === undefined) obj['status'] = { phase: 'Pending' };
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(new Date());
    if (def.generation) meta.generation = 1;
    else delete meta.generation;
    delete meta['deletionTimestamp'];
    if (dryRun) return obj;
    meta.resourceVersion = String(++this.rv);
    bucket.set(objKey(meta.namespace, name), obj);
    this.emit({ type: 'ADDED', object: structuredClone(obj), rv: this.rv, resource: def });
    return structuredClone(obj);
  }

  /** The object, or undefined. */
  get(def: ResourceDef, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(def).get(objKey(def.namespaced ? namespace : undefined, name));
    return o === undefined ? undefined : structuredClone(o);
  }

  /** The object or 404 NotFound. */
  mustGet(def: ResourceDef, namespace: string | undefined, name: string): KubeObject {
    const o = this.get(def, namespace, name);
    if (!o) throw notFound(def.group, def.plural, name);
    return o;
  }

  /**
   * All objects of a resource (in one namespace when given) that pass `filter`, in key order (`<namespace>/<name>`, bytewise).
   * The filter runs on the stored objects before they are copied, so a selective LIST costs what it returns.
   */
  list(def: ResourceDef, namespace?: string, filter?: (o: KubeObject) => boolean): KubeObject[] {
    const out: KubeObject[] = [];
    for (const o of this.bucket(def).values()) {
      if (namespace !== undefined && def.namespaced && o.metadata.namespace !== namespace) continue;
      if (filter && !filter(o)) continue;
      out.push(structuredClone(o));
    }
    // Byte order of the keys, as etcd lists them (not locale order: "a-b" < "a.b" < "ab").
    const key = (o: KubeObject): string => objKey(o.metadata.namespace, o.metadata.name ?? '');
    return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  }

  private conflict(def: ResourceDef, name: string): StatusError {
    const what = def.group === '' ? def.plural : `${def.plural}.${def.group}`;
    return new StatusError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${what} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      { name, group: def.group, kind: def.plural },
    );
  }

  /**
   * Update an object (PUT semantics). `subresource` 'status' changes only `status`; otherwise `status` is kept
   * from the stored object when the resource has a status subresource. A given `metadata.resourceVersion` must
   * match (409 Conflict). A no-op writes nothing and returns the stored object; so does `dryRun`.
   */
  update(def: ResourceDef, input: KubeObject, subresource?: 'status', dryRun = false): KubeObject {
    const name = input.metadata.name ?? '';
    const namespace = def.namespaced ? input.metadata.namespace : undefined;
    const cur = this.mustGet(def, namespace, name);
    const rv = input.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== cur.metadata.resourceVersion) throw this.conflict(def, name);
    let next: KubeObject;
    if (subresource === 'status') {
      next = structuredClone(cur);
      if (input['status'] === undefined) delete next['status'];
      else next['status'] = structuredClone(input['status']);
      // A status write records its field manager's ownership too (server-side apply of a status: apply.ts).
      if (input.metadata['managedFields'] !== undefined) next.metadata['managedFields'] = structuredClone(input.metadata['managedFields']);
    } else {
      next = structuredClone(input);
      next.apiVersion = cur.apiVersion;
      next.kind = cur.kind;
      applyDefaults(def.kind, next);
      const causes = [...validateMetadata(next.metadata, def.nameIsLabel), ...validateResourceSpec(def.kind, next, cur)];
      if (causes.length > 0) throw invalid(def.kind, def.group, name, causes);
      const nextMeta: Record<string, unknown> = next.metadata;
      for (const k of ['uid', 'creationTimestamp', 'namespace', 'generation', 'deletionTimestamp']) {
        if (cur.metadata[k] === undefined) delete nextMeta[k];
        else nextMeta[k] = cur.metadata[k];
      }
      if (!def.namespaced) delete next.metadata.namespace;
      if (def.statusSubresource) {
        if (cur['status'] === undefined) delete next['status'];
        else next['status'] = cur['status'];
      }
      if (def.immutableSpec && canonicalJson(next['spec']) !== canonicalJson(cur['spec'])) {
        throw invalid(def.kind, def.group, name, [{ reason: 'FieldValueInvalid', message: 'Invalid value: field is immutable', field: 'spec' }]);
      }
      if (def.generation && specOf(next) !== specOf(cur)) next.metadata.generation = (cur.metadata.generation ?? 0) + 1;
    }
    if (cur.metadata.resourceVersion !== undefined) next.metadata.resourceVersion = cur.metadata.resourceVersion;
    if (withoutRv(next) === withoutRv(cur)) return cur;
    if (dryRun) return next;
    next.metadata.resourceVersion = String(++this.rv);
    this.bucket(def).set(objKey(namespace, name), next);
    this.emit({ type: 'MODIFIED', object: structuredClone(next), previous: cur, rv: this.rv, resource: def });
    return structuredClone(next);
  }

  /** Delete an object (immediately: no finalizers), checking preconditions (409 Conflict); returns it. */
  delete(def: ResourceDef, namespace: string | undefined, name: string, pre: Preconditions = {}, dryRun = false): KubeObject {
    const ns = def.namespaced ? namespace : undefined;
    const cur = this.mustGet(def, ns, name);
    // Worded as apiserver `pkg/registry/rest/delete.go` BeforeDelete: a Conflict on `<Kind>.<group>`.
    const what = def.group === '' ? def.kind : `${def.kind}.${def.group}`;
    const conflict = (why: string): StatusError =>
      new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${what} "${name}": ${why}`, { name, group: def.group, kind: def.kind });
    if (pre.uid !== undefined && pre.uid !== cur.metadata.uid) {
      throw conflict(`the UID in the precondition (${pre.uid}) does not match the UID in record (${cur.metadata.uid ?? ''}). The object might have been deleted and then recreated`);
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== cur.metadata.resourceVersion) {
      throw conflict(`the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${cur.metadata.resourceVersion ?? ''}). The object might have been modified`);
    }
    if (dryRun) return cur;
    if (def.kind === 'Namespace') {
      for (const r of RESOURCES.filter((d) => d.namespaced)) {
        for (const o of this.list(r, name)) this.delete(r, name, o.metadata.name ?? '');
      }
    }
    this.bucket(def).delete(objKey(ns, name));
    cur.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', object: structuredClone(cur), rv: this.rv, resource: def });
    return cur;
  }

  /**
   * Subscribe to changes of one resource after resourceVersion `since` (history replayed first, synchronously).
   * Returns the unsubscribe function. Throws 410 Gone when `since` is older than the kept history.
   */
  watch(def: ResourceDef, since: number, listener: (ev: StoreEvent) => void): () => void {
    if (since < this.compactedRv) {
      throw new StatusError(410, 'Gone', `too old resource version: ${since} (${this.compactedRv})`);
    }
    const own = (ev: StoreEvent): void => {
      if (ev.resource === def) listener(ev);
    };
    for (const ev of this.history) if (ev.rv > since) own(ev);
    this.listeners.add(own);
    return () => {
      this.listeners.delete(own);
    };
  }
}
