/**
 * Test helpers for daemonset/: load the manifests and validate them against Kubernetes' own schemas.
 *
 * Three independent validators, each for what it is good at:
 * - resource.k8s.io/v1 objects: ajv over the official OpenAPI v3 document of Kubernetes 1.35
 *   (test/reference/resource.k8s.io-v1.openapi-1.35.json), the schema found by its
 *   `x-kubernetes-group-version-kind`, with unknown fields rejected as the API server's strict field
 *   validation (`kubectl apply --validate=strict`) does;
 * - every other kind: `kubernetes-models` (schemas generated from the Kubernetes OpenAPI): required fields,
 *   types, enums, formats. It accepts unknown fields, hence:
 * - unknown-field check for every kind: the field lists of `@kubernetes/client-node`'s generated models
 *   (`attributeTypeMap`, Kubernetes 1.36 OpenAPI), walked recursively.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import * as k8s from '@kubernetes/client-node';
import { ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { ConfigMap, Namespace, Pod, Service, ServiceAccount } from 'kubernetes-models/v1';
import { parseAllDocuments } from 'yaml';
import { REFERENCE_DIR } from './reference.js';

import { REPO_ROOT } from './repo.js';

export { REPO_ROOT };
export const DAEMONSET_DIR = path.join(REPO_ROOT, 'daemonset');
export const EXAMPLES_DIR = path.join(DAEMONSET_DIR, 'examples');
/** The upstream reference artefacts: `test/reference/` (see test/helpers/reference.ts). */
export { REFERENCE_DIR };
export const RESOURCE_OPENAPI = path.join(REFERENCE_DIR, 'resource.k8s.io-v1.openapi-1.35.json');

/** A Kubernetes object as parsed from YAML. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

/** One YAML document of a manifest file. */
export interface ManifestDoc {
  /** Path relative to the repository root, e.g. `daemonset/07-daemonset.yaml`. */
  readonly file: string;
  readonly obj: K8sObject;
}

/** The `.yaml` files directly in `dir`, sorted by name. */
export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** Parse every document of a multi-document YAML file; throws on YAML errors or empty documents. */
export function loadDocs(file: string): ManifestDoc[] {
  const rel = path.relative(REPO_ROOT, file);
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`${rel} document ${i}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const obj: unknown = doc.toJS();
    if (typeof obj !== 'object' || obj === null) throw new Error(`${rel} document ${i} is empty`);
    return { file: rel, obj: obj as K8sObject };
  });
}

/** The install manifests: every numbered `daemonset/NN-*.yaml` (not kustomization.yaml, not examples/). */
export function installDocs(): ManifestDoc[] {
  return yamlFiles(DAEMONSET_DIR)
    .filter((f) => /^\d\d-/.test(path.basename(f)))
    .flatMap(loadDocs);
}

/** The Kubernetes objects of daemonset/examples/. */
export function exampleDocs(): ManifestDoc[] {
  return yamlFiles(EXAMPLES_DIR).flatMap(loadDocs);
}

/** The single object of `kind` (and `name`, when given) among `docs`; throws when not exactly one. */
export function findOne<T = K8sObject>(docs: readonly ManifestDoc[], kind: string, name?: string): T {
  const hits = docs.filter((d) => d.obj.kind === kind && (name === undefined || d.obj.metadata.name === name));
  if (hits.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${hits.length}`);
  return hits[0]!.obj as T;
}

// ---------- resource.k8s.io/v1: the official OpenAPI document ----------

interface OpenApiDoc {
  components: { schemas: Record<string, Record<string, unknown>> };
}

/** Deep copy of a schema tree where every object schema with `properties` rejects unknown properties. */
function strictify(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictify);
  if (typeof node !== 'object' || node === null) return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) out[k] = k === 'properties' ? mapValues(v, strictify) : strictify(v);
  if ('properties' in out && !('additionalProperties' in out)) out['additionalProperties'] = false;
  return out;
}

function mapValues(obj: unknown, fn: (v: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj as Record<string, unknown>).map(([k, v]) => [k, fn(v)]));
}

let resourceValidators: Map<string, ValidateFunction> | undefined;

/** Validators for resource.k8s.io/v1 kinds, keyed by kind. */
export function resourceK8sIoValidators(): Map<string, ValidateFunction> {
  if (resourceValidators) return resourceValidators;
  const doc = JSON.parse(readFileSync(RESOURCE_OPENAPI, 'utf8')) as OpenApiDoc;
  const strictDoc = { $id: 'k8s-resource-v1', components: { schemas: mapValues(doc.components.schemas, strictify) } };
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false, logger: false });
  ajv.addSchema(strictDoc);
  const out = new Map<string, ValidateFunction>();
  for (const [key, schema] of Object.entries(doc.components.schemas)) {
    const gvks = (schema['x-kubernetes-group-version-kind'] ?? []) as Array<{ group: string; version: string; kind: string }>;
    const gvk = gvks.find((g) => g.group === 'resource.k8s.io' && g.version === 'v1');
    if (gvk) out.set(gvk.kind, ajv.compile({ $ref: `k8s-resource-v1#/components/schemas/${key}` }));
  }
  resourceValidators = out;
  return out;
}

// ---------- other kinds: kubernetes-models ----------

type ModelClass = new (data: never) => { validate(): void };

/** `kubernetes-models` classes for the kinds daemonset/ uses, keyed by `apiVersion kind`. */
const MODELS: Record<string, ModelClass> = {
  'v1 Namespace': Namespace,
  'v1 ServiceAccount': ServiceAccount,
  'v1 Service': Service,
  'v1 ConfigMap': ConfigMap,
  'v1 Pod': Pod,
  'apps/v1 DaemonSet': DaemonSet,
  'apps/v1 Deployment': Deployment,
  'networking.k8s.io/v1 NetworkPolicy': NetworkPolicy,
  'rbac.authorization.k8s.io/v1 ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1 ClusterRoleBinding': ClusterRoleBinding,
  'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy': ValidatingAdmissionPolicy,
  'admissionregistration.k8s.io/v1 ValidatingAdmissionPolicyBinding': ValidatingAdmissionPolicyBinding,
};

// ---------- unknown fields: @kubernetes/client-node model field lists ----------

type AttributeTypeMap = Array<{ name: string; baseName: string; type: string }>;

function modelAttributes(typeName: string): AttributeTypeMap | undefined {
  const cls = (k8s as unknown as Record<string, unknown>)[typeName] as { getAttributeTypeMap?: () => AttributeTypeMap } | undefined;
  return typeof cls?.getAttributeTypeMap === 'function' ? cls.getAttributeTypeMap() : undefined;
}

/** Paths of fields the Kubernetes type `typeName` does not define, e.g. `spec.template.spec.containers[0].imag`. */
export function unknownFields(value: unknown, typeName: string, at = ''): string[] {
  if (value === null || value === undefined) return [];
  const arrayOf = /^Array<(.+)>$/.exec(typeName);
  if (arrayOf) {
    return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(v, arrayOf[1]!, `${at}[${i}]`)) : [];
  }
  const mapOf = /^\{ \[key: string\]: (.+); \}$/.exec(typeName);
  if (mapOf) {
    return typeof value === 'object' ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, mapOf[1]!, `${at}.${k}`)) : [];
  }
  const attrs = modelAttributes(typeName);
  if (!attrs || typeof value !== 'object' || Array.isArray(value)) return [];
  const byName = new Map(attrs.map((a) => [a.baseName, a.type]));
  return Object.entries(value).flatMap(([k, v]) => {
    const t = byName.get(k);
    const here = at === '' ? k : `${at}.${k}`;
    return t === undefined ? [here] : unknownFields(v, t, here);
  });
}

/** client-node model name for apiVersion/kind, e.g. `apps/v1` DaemonSet → `V1DaemonSet`. */
export function clientNodeModel(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop() ?? apiVersion;
  return `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
}

/**
 * Validate one object against the schemas above. Returns the problems found ([] = valid).
 * An object of a kind no validator knows is a problem too (nothing goes unchecked).
 */
export function validateObject(obj: K8sObject): string[] {
  const problems: string[] = [];
  if (obj.apiVersion === 'resource.k8s.io/v1') {
    const validate = resourceK8sIoValidators().get(obj.kind);
    if (!validate) return [`no resource.k8s.io/v1 schema for kind ${obj.kind}`];
    if (!validate(obj)) problems.push(...(validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
  } else {
    const Model = MODELS[`${obj.apiVersion} ${obj.kind}`];
    if (!Model) return [`no kubernetes-models class registered for ${obj.apiVersion} ${obj.kind}`];
    try {
      new Model(obj as never).validate();
    } catch (err: unknown) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  const modelName = clientNodeModel(obj.apiVersion, obj.kind);
  if (!modelAttributes(modelName)) return [...problems, `@kubernetes/client-node has no model ${modelName}`];
  problems.push(...unknownFields(obj, modelName).map((p) => `unknown field ${p}`));
  return problems;
}
