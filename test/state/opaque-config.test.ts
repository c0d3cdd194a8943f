import { describe, expect, it } from 'vitest';
import { gpuEnvSchema, parseGpuConfig } from '../../src/state/opaque-config.js';

const header = { apiVersion: 'gpulet.dev/v1', kind: 'GpuConfig' };

describe('GpuConfig env values', () => {
  it('accepts any string a process environment can hold', () => {
    expect(parseGpuConfig({ ...header, env: { A: 'x=y', B: 'multi\nline', C: 'ñ😀' } })).toEqual({ env: { A: 'x=y', B: 'multi\nline', C: 'ñ😀' } });
  });
  it('rejects a NUL, which execve cannot pass, naming the variable', () => {
    const r = parseGpuConfig({ ...header, env: { BAD: 'a\0b' } });
    expect(r).toHaveProperty('error');
    expect((r as { error: string }).error).toMatch(/BAD.*NUL/);
  });
});

describe('GpuConfig errors: the first problem, named', () => {
  const error = (parameters: unknown) => (parseGpuConfig(parameters) as { error?: string }).error;
  const json = (text: string): unknown => JSON.parse(text);

  it('accepts the config without env, and with an empty one', () => {
    expect(parseGpuConfig(header)).toEqual({ env: {} });
    expect(parseGpuConfig({ ...header, env: {} })).toEqual({ env: {} });
  });

  it('names what is wrong with the document', () => {
    expect(error(null)).toBe('parameters must be a JSON object, got null');
    expect(error([header])).toBe('parameters must be a JSON object, got an array');
    expect(error('GpuConfig')).toBe('parameters must be a JSON object, got string');
    expect(error({ ...header, env: { A: 'x'.repeat(10 * 1024) } })).toMatch(/^parameters are 10\d{3} bytes, more than the 10240-byte limit$/);
    // unknown keys are reported before a wrong apiVersion/kind
    expect(error({ apiVersion: 'v9', sharing: {}, extra: 1 })).toBe('unknown field(s) "sharing", "extra"; allowed: apiVersion, kind, env');
    expect(error({ apiVersion: 'gpulet.dev/v1' })).toBe('apiVersion/kind must be "gpulet.dev/v1"/"GpuConfig", got "gpulet.dev/v1"/null');
    expect(error({ kind: 'GpuConfig', env: 1 })).toBe('apiVersion/kind must be "gpulet.dev/v1"/"GpuConfig", got null/"GpuConfig"');
    expect(error({ ...header, env: [] })).toBe('env must be an object of name → string value');
    expect(error({ ...header, env: null })).toBe('env must be an object of name → string value');
  });

  it('names the first bad env entry, in key order, its name checked before its value', () => {
    expect(error({ ...header, env: { OK: 'v', 'bad-name': 1, B: 2 } })).toBe('env name "bad-name" is not a valid variable name');
    expect(error({ ...header, env: { OK: 'v', B: 2, 'bad-name': 1 } })).toBe('env B must be a string, got number');
    expect(error({ ...header, env: { GPULET_DEVICE_GPU_0: 'x' } })).toBe('env name "GPULET_DEVICE_GPU_0" is reserved by gpulet');
    expect(error({ ...header, env: { A: null } })).toBe('env A must be a string, got object');
    expect(error({ ...header, env: { A: 'a\0' } })).toBe('env A must not contain a NUL character');
    // JSON.parse makes `__proto__` an own key: it is reported, never skipped or assigned to the prototype.
    expect(error(json('{"apiVersion": "gpulet.dev/v1", "kind": "GpuConfig", "env": {"__proto__": "x"}}'))).toBe('env name "__proto__" is reserved by gpulet');
  });

  it('answers env as own properties of a plain object', () => {
    const parsed = parseGpuConfig(json('{"apiVersion": "gpulet.dev/v1", "kind": "GpuConfig", "env": {"constructor": "c", "toString": "t"}}'));
    expect(parsed).toEqual({ env: { constructor: 'c', toString: 't' } });
    expect(Object.getPrototypeOf((parsed as { env: object }).env)).toBe(Object.prototype);
  });

  it('refuses parameters that cannot be serialised (a BigInt, a cycle) instead of throwing', () => {
    expect(error({ ...header, env: { A: 1n } })).toBe('parameters are not serialisable JSON');
    const cyclic: Record<string, unknown> = { ...header };
    cyclic['self'] = cyclic;
    expect(error(cyclic)).toBe('parameters are not serialisable JSON');
  });
});

describe('gpuEnvSchema (also what the checkpoint re-checks)', () => {
  it('says what it got instead of an object', () => {
    for (const [input, got] of [[[], 'an array'], [null, 'null'], ['x', 'string'], [1, 'number']] as const) {
      const r = gpuEnvSchema.safeParse(input);
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toBe(`expected an object, received ${got}`);
    }
    expect(gpuEnvSchema.parse(JSON.parse('{"A": "1", "B": ""}'))).toEqual({ A: '1', B: '' });
  });
});
