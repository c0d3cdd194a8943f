import { describe, expect, it } from 'vitest';
import { parseGpuConfig } from '../../src/state/opaque-config.js';

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
