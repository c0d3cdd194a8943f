/**
 * The protos in proto/ must be wire-compatible with upstream kubernetes/kubelet. The table below is
 * transcribed by hand from the upstream files (kubernetes/kubernetes staging/src/k8s.io/kubelet/pkg/apis/
 * pluginregistration/v1, dra/v1 (+ PR #134520 share_id = 5), dra/v1beta1, dra-health/v1alpha1 api.proto
 * and api.pb.go; dra-health/v1 of k8s.io/kubelet v0.37.2: the v1alpha1 messages in package `v1`) and is compared with what @grpc/proto-loader actually loads, and protoc must compile
 * every file.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_FILES, loadKubeletServices, protoRoot } from '../../src/dra/kubelet/grpc-protos.js';

/** Marks a map field (its entry type's name is a loader detail; checked separately). */
const MAP = '<map entry>';
type Field = [name: string, number: number, type: string, label: 'opt' | 'rep', typeName?: string];

const DRA_MESSAGES: Record<string, Field[]> = {
  NodePrepareResourcesRequest: [['claims', 1, 'TYPE_MESSAGE', 'rep', 'Claim']],
  NodePrepareResourcesResponse: [['claims', 1, 'TYPE_MESSAGE', 'rep', MAP]],
  NodePrepareResourceResponse: [
    ['devices', 1, 'TYPE_MESSAGE', 'rep', 'Device'],
    ['error', 2, 'TYPE_STRING', 'opt'],
  ],
  NodeUnprepareResourcesRequest: [['claims', 1, 'TYPE_MESSAGE', 'rep', 'Claim']],
  NodeUnprepareResourcesResponse: [['claims', 1, 'TYPE_MESSAGE', 'rep', MAP]],
  NodeUnprepareResourceResponse: [['error', 1, 'TYPE_STRING', 'opt']],
  Claim: [
    ['namespace', 1, 'TYPE_STRING', 'opt'],
    ['uid', 2, 'TYPE_STRING', 'opt'],
    ['name', 3, 'TYPE_STRING', 'opt'],
  ],
};
const DEVICE_V1BETA1: Field[] = [
  ['request_names', 1, 'TYPE_STRING', 'rep'],
  ['pool_name', 2, 'TYPE_STRING', 'opt'],
  ['device_name', 3, 'TYPE_STRING', 'opt'],
  ['cdi_device_ids', 4, 'TYPE_STRING', 'rep'],
];
const DEVICE_V1: Field[] = [...DEVICE_V1BETA1, ['share_id', 5, 'TYPE_STRING', 'opt']];

const HEALTH_MESSAGES: Record<string, Field[]> = {
  NodeWatchResourcesRequest: [],
  DeviceIdentifier: [
    ['pool_name', 1, 'TYPE_STRING', 'opt'],
    ['device_name', 2, 'TYPE_STRING', 'opt'],
  ],
  DeviceHealth: [
    ['device', 1, 'TYPE_MESSAGE', 'opt', 'DeviceIdentifier'],
    ['health', 2, 'TYPE_ENUM', 'opt', 'HealthStatus'],
    ['last_updated_time', 3, 'TYPE_INT64', 'opt'],
    ['health_check_timeout_seconds', 4, 'TYPE_INT64', 'opt'],
    ['message', 5, 'TYPE_STRING', 'opt'],
  ],
  NodeWatchResourcesResponse: [['devices', 1, 'TYPE_MESSAGE', 'rep', 'DeviceHealth']],
};

const UPSTREAM: Record<string, Field[]> = {
  'pluginregistration.PluginInfo': [
    ['type', 1, 'TYPE_STRING', 'opt'],
    ['name', 2, 'TYPE_STRING', 'opt'],
    ['endpoint', 3, 'TYPE_STRING', 'opt'],
    ['supported_versions', 4, 'TYPE_STRING', 'rep'],
  ],
  'pluginregistration.RegistrationStatus': [
    ['plugin_registered', 1, 'TYPE_BOOL', 'opt'],
    ['error', 2, 'TYPE_STRING', 'opt'],
  ],
  'pluginregistration.RegistrationStatusResponse': [],
  'pluginregistration.InfoRequest': [],
  ...Object.fromEntries(Object.entries(DRA_MESSAGES).map(([m, f]) => [`k8s.io.kubelet.pkg.apis.dra.v1.${m}`, f])),
  ...Object.fromEntries(Object.entries(DRA_MESSAGES).map(([m, f]) => [`k8s.io.kubelet.pkg.apis.dra.v1beta1.${m}`, f])),
  'k8s.io.kubelet.pkg.apis.dra.v1.Device': DEVICE_V1,
  'k8s.io.kubelet.pkg.apis.dra.v1beta1.Device': DEVICE_V1BETA1,
  ...Object.fromEntries(Object.entries(HEALTH_MESSAGES).map(([m, f]) => [`v1alpha1.${m}`, f])),
  ...Object.fromEntries(Object.entries(HEALTH_MESSAGES).map(([m, f]) => [`v1.${m}`, f])),
};

/** Service full name → method → [request, response, server streaming]. */
const SERVICES: Record<string, Record<string, [string, string, boolean]>> = {
  'pluginregistration.Registration': {
    GetInfo: ['InfoRequest', 'PluginInfo', false],
    NotifyRegistrationStatus: ['RegistrationStatus', 'RegistrationStatusResponse', false],
  },
  'k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin': {
    NodePrepareResources: ['NodePrepareResourcesRequest', 'NodePrepareResourcesResponse', false],
    NodeUnprepareResources: ['NodeUnprepareResourcesRequest', 'NodeUnprepareResourcesResponse', false],
  },
  'k8s.io.kubelet.pkg.apis.dra.v1beta1.DRAPlugin': {
    NodePrepareResources: ['NodePrepareResourcesRequest', 'NodePrepareResourcesResponse', false],
    NodeUnprepareResources: ['NodeUnprepareResourcesRequest', 'NodeUnprepareResourcesResponse', false],
  },
  'v1alpha1.DRAResourceHealth': {
    NodeWatchResources: ['NodeWatchResourcesRequest', 'NodeWatchResourcesResponse', true],
  },
  'v1.DRAResourceHealth': {
    NodeWatchResources: ['NodeWatchResourcesRequest', 'NodeWatchResourcesResponse', true],
  },
};

interface FieldDesc {
  name: string;
  number: number;
  type: string;
  label: string;
  typeName: string;
}
interface MessageDesc {
  field: FieldDesc[];
  nestedType: { name: string; field: FieldDesc[]; options: { mapEntry?: boolean } | null }[];
  oneofDecl: { name: string }[];
}

const def = loadKubeletServices().packageDefinition;
function message(name: string): MessageDesc {
  const d = def[name];
  expect(d, name).toBeDefined();
  return (d as unknown as { type: MessageDesc }).type;
}

describe('kubelet protos match upstream', () => {
  it.each(Object.entries(UPSTREAM))('%s has the upstream fields', (name, fields) => {
    const got = message(name).field.map((f): Field => {
      const row: Field = [f.name, f.number, f.type, f.label === 'LABEL_REPEATED' ? 'rep' : 'opt'];
      const isMap = message(name).nestedType.some((n) => n.name === f.typeName && n.options?.mapEntry === true);
      if (f.typeName) row.push(isMap ? MAP : f.typeName);
      return row;
    });
    expect(got).toEqual(fields);
  });

  it('map fields are map<string, ...> entries keyed by claim UID', () => {
    for (const pkg of ['k8s.io.kubelet.pkg.apis.dra.v1', 'k8s.io.kubelet.pkg.apis.dra.v1beta1']) {
      for (const [msg, value] of [
        ['NodePrepareResourcesResponse', 'NodePrepareResourceResponse'],
        ['NodeUnprepareResourcesResponse', 'NodeUnprepareResourceResponse'],
      ] as const) {
        const m = message(`${pkg}.${msg}`);
        const entry = m.nestedType.find((n) => n.name === m.field[0]?.typeName);
        expect(entry?.options?.mapEntry).toBe(true);
        expect(entry?.field.map((f) => [f.name, f.number, f.type, f.typeName])).toEqual([
          ['key', 1, 'TYPE_STRING', ''],
          ['value', 2, 'TYPE_MESSAGE', value],
        ]);
      }
    }
  });

  it('v1 share_id is a proto3 optional (has presence); v1beta1 has no share_id', () => {
    expect(message('k8s.io.kubelet.pkg.apis.dra.v1.Device').oneofDecl.map((o) => o.name)).toEqual(['_share_id']);
    const dra = loadKubeletServices().dra;
    const enc = (v: 'v1' | 'v1beta1', shareId: string | undefined): Buffer =>
      dra[v].NodePrepareResources.responseSerialize({
        claims: {
          u: {
            devices: [{ request_names: [], pool_name: 'p', device_name: 'd', cdi_device_ids: [], ...(shareId === undefined ? {} : { share_id: shareId }) }],
            error: '',
          },
        },
      });
    const decode = (b: Buffer) => dra.v1.NodePrepareResources.responseDeserialize(b).claims['u']?.devices[0];
    expect(decode(enc('v1', undefined))).not.toHaveProperty('share_id');
    expect(decode(enc('v1', ''))).toHaveProperty('share_id', ''); // set-but-empty survives: presence
    expect(decode(enc('v1', 's-1'))).toHaveProperty('share_id', 's-1');
    expect(decode(enc('v1beta1', 's-1'))).not.toHaveProperty('share_id');
  });

  it.each(['v1alpha1', 'v1'])('%s.HealthStatus enum is UNKNOWN=0, HEALTHY=1, UNHEALTHY=2', (pkg) => {
    const e = def[`${pkg}.HealthStatus`] as unknown as { type: { value: { name: string; number: number }[] } };
    expect(e.type.value.map((v) => [v.name, v.number])).toEqual([
      ['UNKNOWN', 0],
      ['HEALTHY', 1],
      ['UNHEALTHY', 2],
    ]);
  });

  it.each(Object.entries(SERVICES))('service %s has the upstream methods and paths', (svc, methods) => {
    const s = def[svc] as unknown as Record<string, { path: string; requestType: { type: { name: string } }; responseType: { type: { name: string } }; responseStream: boolean; requestStream: boolean }>;
    expect(Object.keys(s).sort()).toEqual(Object.keys(methods).sort());
    for (const [m, [req, res, stream]] of Object.entries(methods)) {
      const md = s[m];
      expect(md?.path).toBe(`/${svc}/${m}`);
      expect(md?.requestType.type.name).toBe(req);
      expect(md?.responseType.type.name).toBe(res);
      expect(md?.responseStream).toBe(stream);
      expect(md?.requestStream).toBe(false);
    }
  });

  it('carries no gogoproto options or imports (loadable without them)', () => {
    for (const f of Object.values(PROTO_FILES)) {
      const loaded = protoLoader.loadSync(f, { includeDirs: [protoRoot()] });
      expect(Object.keys(loaded).length).toBeGreaterThan(0);
      const text = readFileSync(path.join(protoRoot(), f), 'utf8');
      expect(text).not.toMatch(/^\s*(import\s|option\s*\(gogoproto)/m);
    }
  });

  it.each(Object.values(PROTO_FILES))('protoc compiles %s', (f) => {
    expect(() =>
      execFileSync('protoc', [`-I${protoRoot()}`, '--descriptor_set_out=/dev/null', path.join(protoRoot(), f)], {
        stdio: 'pipe',
      }),
    ).not.toThrow();
  });
});
