/**
 * CDI spec builder against independent facts: the official CDI JSON schema (test/reference/cdi-schema, draft-07,
 * validated with ajv), the kubelet's qualified-name parser rules (kubernetes pkg/kubelet/cm/dra/cdi.go,
 * re-implemented here from that source), the CDI library's minimum-version rules (specs-go/version.go), and
 * the mig-minors lines NVIDIA's DRA driver quotes from /proc/driver/nvidia-caps/mig-minors.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocatableDevices, type AllocatableDevice } from '../../src/model/devices.js';
import { CdiError } from '../../src/errors.js';
import {
  buildCdiSpec,
  cdiDeviceId,
  cdiSpecFileName,
  cdiVendor,
  CDI_CLAIM_CLASS,
  hostPaths,
  migCapMinors,
  MOCK_DEVICE_MAJORS,
  requiredCdiVersion,
  type CdiSpec,
} from '../../src/state/cdi.js';
import { nvidiaMajors, parseCharacterMajors } from '../../src/state/proc-devices.js';
import { DRIVER, dgxInventory } from '../helpers/claims.js';
import { reference } from '../helpers/reference.js';

const SCHEMA_DIR = reference('cdi-schema');

function cdiValidator(): ValidateFunction {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema(JSON.parse(readFileSync(`${SCHEMA_DIR}/defs.json`, 'utf8')) as object, 'defs.json');
  return ajv.compile(JSON.parse(readFileSync(`${SCHEMA_DIR}/schema.json`, 'utf8')) as object);
}

// --- kubelet parser (pkg/kubelet/cm/dra/cdi.go parseQualifiedName), transcribed for an independent check.
const isLetter = (c: string): boolean => /^[A-Za-z]$/.test(c);
const isAlnum = (c: string): boolean => /^[A-Za-z0-9]$/.test(c);
function kubeletParse(id: string): { vendor: string; cls: string; name: string } {
  if (id === '' || id.startsWith('/')) throw new Error('unqualified');
  const eq = id.indexOf('=');
  if (eq <= 0 || eq === id.length - 1) throw new Error('unqualified');
  const kind = id.slice(0, eq);
  const name = id.slice(eq + 1);
  const slash = kind.indexOf('/');
  if (slash <= 0 || slash === kind.length - 1) throw new Error('missing vendor/class');
  const vendor = kind.slice(0, slash);
  const cls = kind.slice(slash + 1);
  const inner = (s: string, extra: string): boolean => [...s.slice(1, -1)].every((c) => isAlnum(c) || extra.includes(c));
  if (!isLetter(vendor[0]!) || !inner(vendor, '_-.') || !isAlnum(vendor.at(-1)!)) throw new Error(`bad vendor ${vendor}`);
  if (!isLetter(cls[0]!) || !inner(cls, '_-') || !isAlnum(cls.at(-1)!)) throw new Error(`bad class ${cls}`);
  if (!isAlnum(name[0]!) || (name.length > 1 && (!inner(name, '_-.:') || !isAlnum(name.at(-1)!)))) throw new Error(`bad name ${name}`);
  return { vendor, cls, name };
}

describe('buildCdiSpec', () => {
  let devices: AllocatableDevice[];
  let validate: ValidateFunction;
  const uid = '6f1c2a9e-0b7d-4c3e-9a1f-2b3c4d5e6f70';
  beforeAll(async () => {
    devices = allocatableDevices(await dgxInventory());
    validate = cdiValidator();
  });
  const gpu = (name: string): AllocatableDevice => devices.find((d) => d.name === name)!;

  it('validates against the official CDI schema for a full GPU, a MIG device, and mock host paths', () => {
    const specs: CdiSpec[] = [
      buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-0') }] }),
      buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-6-mig-1g10gb-19-6') }], majors: { nvidiaUvm: 508, nvidiaCaps: 509 } }),
      buildCdiSpec({
        driverName: DRIVER,
        claimUid: uid,
        devices: [{ device: gpu('gpu-1'), env: { FOO: 'bar' } }, { device: gpu('gpu-7-mig-1g10gb-19-3') }],
        devRoot: '/tmp/gpulet-dev',
      }),
    ];
    for (const spec of specs) {
      expect(validate(spec), JSON.stringify(validate.errors)).toBe(true);
    }
    // The schema really checks: a device without containerEdits is rejected.
    expect(validate({ cdiVersion: '0.5.0', kind: 'a.b/c', devices: [{ name: 'x' }] })).toBe(false);
  });

  it('emits the full-GPU device as in the worked example, spec-level control nodes, and the CDI kind', () => {
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-3') }], majors: { nvidiaUvm: 508 } });
    expect(spec.kind).toBe('k8s.gpu.gpulet.dev/claim');
    expect(spec.devices).toHaveLength(1);
    const dev = spec.devices[0]!;
    expect(dev.name).toBe(`${uid}-gpu-3`);
    expect(dev.containerEdits.deviceNodes).toEqual([{ path: '/dev/nvidia3', type: 'c', major: 195, minor: 3 }]);
    expect(dev.containerEdits.env).toEqual([`GPULET_DEVICE_GPU_3=${gpu('gpu-3').uuid}`]);
    expect(spec.containerEdits?.deviceNodes).toEqual([
      { path: '/dev/nvidiactl', type: 'c', major: 195, minor: 255 },
      { path: '/dev/nvidia-uvm', type: 'c', major: 508, minor: 0 },
      { path: '/dev/nvidia-uvm-tools', type: 'c', major: 508, minor: 1 },
    ]);
    expect(spec.containerEdits?.env).toEqual(['NVIDIA_VISIBLE_DEVICES=void']);
  });

  it('leaves dynamic-major nodes path-only when the major is unknown (runtime stats the host node)', () => {
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-6-mig-3g40gb-9-0') }] });
    expect(spec.containerEdits?.deviceNodes).toContainEqual({ path: '/dev/nvidia-uvm' });
    expect(spec.devices[0]!.containerEdits.deviceNodes).toContainEqual({ path: '/dev/nvidia-caps/nvidia-cap' + migCapMinors(6, 1, 0).gi });
  });

  it('gives MIG devices the parent GPU node and GI/CI capability nodes', () => {
    const mig = gpu('gpu-6-mig-2g20gb-14-4');
    if (mig.kind !== 'mig') throw new Error('fixture');
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: mig }], majors: { nvidiaUvm: 508, nvidiaCaps: 509 } });
    const caps = migCapMinors(6, mig.mig.gpuInstanceId, mig.mig.computeInstanceId);
    expect(spec.devices[0]!.containerEdits.deviceNodes).toEqual([
      { path: '/dev/nvidia6', type: 'c', major: 195, minor: 6 },
      { path: `/dev/nvidia-caps/nvidia-cap${caps.gi}`, type: 'c', major: 509, minor: caps.gi },
      { path: `/dev/nvidia-caps/nvidia-cap${caps.ci}`, type: 'c', major: 509, minor: caps.ci },
    ]);
  });

  it('computes MIG capability minors as the mig-minors lines NVIDIA quotes', () => {
    // "gpu0/gi0/access 3", "gpu0/gi0/ci0/access 4", "gpu0/gi0/ci2/access 6",
    // "gpu3/gi3/ci3/access 439", "gpu6/gi11/ci5/access 918", "gpu6/gi11/ci7/access 920"
    expect(migCapMinors(0, 0, 0)).toEqual({ gi: 3, ci: 4 });
    expect(migCapMinors(0, 0, 2).ci).toBe(6);
    expect(migCapMinors(3, 3, 3).ci).toBe(439);
    expect(migCapMinors(6, 11, 5).ci).toBe(918);
    expect(migCapMinors(6, 11, 7).ci).toBe(920);
  });

  it('gives every device its own env variable so multi-device claims keep all UUIDs', () => {
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-0') }, { device: gpu('gpu-1') }] });
    const names = spec.devices.flatMap((d) => d.containerEdits.env ?? []).map((e) => e.split('=')[0]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('produces CDI IDs and device names the kubelet parser accepts', () => {
    const vendor = cdiVendor(DRIVER);
    for (const d of devices) {
      const id = cdiDeviceId(vendor, CDI_CLAIM_CLASS, uid, d.name);
      expect(kubeletParse(id)).toEqual({ vendor: 'k8s.gpu.gpulet.dev', cls: 'claim', name: `${uid}-${d.name}` });
    }
    // The transcription itself rejects what the kubelet rejects.
    expect(() => kubeletParse('k8s.gpu.gpulet.dev/cl.aim=x')).toThrow();
    expect(() => kubeletParse('1vendor/claim=x')).toThrow();
    expect(() => kubeletParse('vendor/claim=x/y')).toThrow();
  });

  it('emits the lowest cdiVersion by the CDI library rules', () => {
    const letterUid = 'a1b2c3d4-0000-4000-8000-000000000000';
    const digitUid = '1a2b3c4d-0000-4000-8000-000000000000';
    expect(buildCdiSpec({ driverName: DRIVER, claimUid: letterUid, devices: [{ device: gpu('gpu-0') }] }).cdiVersion).toBe('0.3.0');
    // device name starting with a digit needs 0.5.0
    expect(buildCdiSpec({ driverName: DRIVER, claimUid: digitUid, devices: [{ device: gpu('gpu-0') }] }).cdiVersion).toBe('0.5.0');
    // hostPath needs 0.5.0
    expect(buildCdiSpec({ driverName: DRIVER, claimUid: letterUid, devices: [{ device: gpu('gpu-0') }], devRoot: '/d' }).cdiVersion).toBe('0.5.0');
  });

  it('points every node at a stand-in under devRoot with explicit type/major/minor', () => {
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-7-mig-1g10gb-19-0') }], devRoot: '/tmp/dev/' });
    const nodes = [...(spec.containerEdits?.deviceNodes ?? []), ...spec.devices[0]!.containerEdits.deviceNodes!];
    for (const n of nodes) {
      expect(n.hostPath).toBe(`/tmp/dev/${n.path.split('/').at(-1)}`);
      expect(n.type).toBe('c');
      expect(typeof n.major).toBe('number');
      expect(typeof n.minor).toBe('number');
    }
    expect(nodes.find((n) => n.path === '/dev/nvidia-uvm')?.major).toBe(MOCK_DEVICE_MAJORS.nvidiaUvm);
    expect(hostPaths(spec)).toHaveLength(nodes.length);
  });

  it('refuses a driver name whose CDI vendor the CDI parser rejects (letter first, alphanumeric last, [A-Za-z0-9_.-])', () => {
    const build = (driverName: string) => () => buildCdiSpec({ driverName, claimUid: uid, devices: [{ device: gpu('gpu-0') }] });
    expect(build('gpu_x.example-1.com')).not.toThrow();
    for (const bad of ['gpu.', 'gpu-', 'x/abc', 'abc/', 'a b']) {
      expect(build(bad), bad).toThrow(CdiError);
    }
    expect(build('gpu.')).toThrow(`driver name "gpu." gives CDI vendor "k8s.gpu.", which CDI parsers reject`);
    expect(build('x/abc')).toThrow(/^driver name "x\/abc" gives CDI vendor "k8s.x\/abc", which CDI parsers reject$/);
  });

  it('says what is wrong with the claim', () => {
    expect(() => buildCdiSpec({ driverName: DRIVER, claimUid: 'ABC', devices: [{ device: gpu('gpu-0') }] })).toThrow(
      /^claim uid "ABC" is not a lower-case UUID$/,
    );
    expect(() => buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [] })).toThrow(new CdiError(`claim ${uid}: no devices to put in a CDI spec`));
    expect(() => cdiSpecFileName('k8s.gpu.gpulet.dev', 'claim', '../x')).toThrow(
      /^claim uid "..\/x" is not a lower-case UUID; refusing to use it in a CDI spec file name$/,
    );
  });

  it('joins devRoot and the node name with one slash, however many devRoot ends with', () => {
    const spec = buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-0') }], devRoot: '/tmp/dev//' });
    expect(spec.devices[0]!.containerEdits.deviceNodes![0]!.hostPath).toBe('/tmp/dev/nvidia0');
  });

  it('adds the userspace mounts and hooks at spec level, each only when there is one', () => {
    const mount = { hostPath: '/usr/lib/libcuda.so.1', containerPath: '/usr/lib/libcuda.so.1', options: ['ro', 'nosuid', 'nodev', 'bind'] };
    const hook = { hookName: 'createContainer' as const, path: '/usr/bin/nvidia-cdi-hook', args: ['nvidia-cdi-hook', 'update-ldcache'] };
    const edits = (mounts: (typeof mount)[], hooks: (typeof hook)[]) =>
      buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-0') }], userspace: { mounts, hooks } }).containerEdits!;
    expect(edits([mount], [hook])).toMatchObject({ mounts: [mount], hooks: [hook] });
    expect(edits([mount], [])).not.toHaveProperty('hooks');
    expect(edits([mount], [])).toHaveProperty('mounts', [mount]);
    expect(edits([], [hook])).not.toHaveProperty('mounts');
    expect(edits([], [hook])).toHaveProperty('hooks', [hook]);
    expect(validate({ ...buildCdiSpec({ driverName: DRIVER, claimUid: uid, devices: [{ device: gpu('gpu-0') }], userspace: { mounts: [mount], hooks: [hook] } }) }), JSON.stringify(validate.errors)).toBe(true);
  });

  it('needs 0.5.0 for a hostPath or a digit-first device name anywhere in the spec (specs-go/version.go)', () => {
    const node = { path: '/dev/nvidia0' };
    const spec = (devices: CdiSpec['devices'], containerEdits?: CdiSpec['containerEdits']): Omit<CdiSpec, 'cdiVersion'> => ({
      kind: 'k8s.gpu.gpulet.dev/claim', devices, ...(containerEdits ? { containerEdits } : {}),
    });
    expect(requiredCdiVersion(spec([{ name: 'a', containerEdits: { deviceNodes: [node] } }]))).toBe('0.3.0');
    expect(requiredCdiVersion(spec([{ name: 'a', containerEdits: {} }, { name: 'b', containerEdits: { deviceNodes: [node, { ...node, hostPath: '/x' }] } }]))).toBe('0.5.0');
    expect(requiredCdiVersion(spec([{ name: 'a', containerEdits: {} }], { deviceNodes: [{ ...node, hostPath: '/x' }] }))).toBe('0.5.0');
    expect(requiredCdiVersion(spec([{ name: 'a', containerEdits: {} }, { name: '1', containerEdits: {} }]))).toBe('0.5.0');
    // hostPaths: only the nodes that have one, each once
    expect(hostPaths({ cdiVersion: '0.5.0', ...spec([{ name: 'a', containerEdits: { deviceNodes: [node, { ...node, hostPath: '/x' }] } }, { name: 'b', containerEdits: { deviceNodes: [{ ...node, hostPath: '/x' }] } }]) })).toEqual(['/x']);
    expect(hostPaths({ cdiVersion: '0.3.0', ...spec([{ name: 'a', containerEdits: { env: ['A=1'] } }]) })).toEqual([]);
  });

  it('rejects UIDs that are not lower-case UUIDs before they reach a file name', () => {
    expect(cdiSpecFileName('k8s.gpu.gpulet.dev', 'claim', uid)).toBe(`k8s.gpu.gpulet.dev-claim_${uid}.json`);
    for (const bad of ['../../etc/passwd', `${uid}/x`, uid.toUpperCase(), '', 'abc']) {
      expect(() => cdiSpecFileName('k8s.gpu.gpulet.dev', 'claim', bad)).toThrow(CdiError);
      expect(() => buildCdiSpec({ driverName: DRIVER, claimUid: bad, devices: [{ device: gpu('gpu-0') }] })).toThrow(CdiError);
    }
  });
});

describe('/proc/devices parsing', () => {
  const text = [
    'Character devices:',
    '  1 mem',
    '195 nvidia',
    '195 nvidia-modeset',
    '236 nvidia-caps',
    '510 nvidia-uvm',
    '',
    'Block devices:',
    '  8 sd',
    '237 nvidia-uvm',
  ].join('\n');

  it('reads character majors only', () => {
    expect(parseCharacterMajors(text).get('nvidia')).toBe(195);
    expect(nvidiaMajors(text)).toEqual({ nvidiaUvm: 510, nvidiaCaps: 236 });
    expect(nvidiaMajors('Character devices:\n  1 mem\n')).toEqual({});
  });
});
