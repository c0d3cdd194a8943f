/**
 * `--mig-mode` / GPULET_MIG_MODE: the syntax of src/model/mig-mode.ts, the precedence (UUID over index over the
 * default), and the option through the real configuration loader (flag over environment, default static).
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { formatMigMode, MAX_MIG_MODE_LENGTH, migModeOf, parseMigMode, unmatchedOverrides, type MigModeConfig } from '../../src/model/mig-mode.js';

const U0 = 'GPU-8a2f0000-1111-2222-3333-444455556666';
const U1 = 'GPU-77d10000-1111-2222-3333-444455556666';
const gpus = [{ uuid: U0, index: 0 }, { uuid: U1, index: 1 }, { uuid: 'GPU-00000003-1111-2222-3333-444455556666', index: 3 }];

function parsed(v: string): MigModeConfig {
  const r = parseMigMode(v);
  if (!r.ok) throw new Error(r.problem);
  return r.config;
}

describe('parseMigMode', () => {
  it('takes a default and per-GPU overrides by UUID (any case) or NVML index', () => {
    expect(parsed('static')).toEqual({ default: 'static', overrides: [] });
    const c = parsed(` dynamic , ${U0.toUpperCase().replace('GPU', 'GPU')}=static,3=static`);
    expect(c.default).toBe('dynamic');
    expect(gpus.map((g) => migModeOf(c, g))).toEqual(['static', 'dynamic', 'static']);
    expect(gpus.map((g) => migModeOf(parsed('1=dynamic'), g))).toEqual(['static', 'dynamic', 'static']);
  });

  it('lets a UUID override win over an index override of the same GPU', () => {
    expect(migModeOf(parsed(`0=dynamic,${U0}=static`), gpus[0]!)).toBe('static');
  });

  it.each([
    ['', 'empty entry'],
    ['dynamic,static', 'default mode twice'],
    ['partitioned', 'not a mode'],
    ['0=on', 'is not static or dynamic'],
    ['GPU-1=dynamic', 'neither a GPU UUID'],
    ['0=dynamic,0=static', 'names GPU 0 twice'],
    ['x'.repeat(MAX_MIG_MODE_LENGTH + 1), 'at most 4096'],
  ])('refuses %j (%s)', (value, problem) => {
    const r = parseMigMode(value);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toContain(problem);
  });

  it('reports overrides naming no GPU of the node, and prints the option back', () => {
    const c = parsed(`dynamic,${U1}=static,7=static`);
    expect(unmatchedOverrides(c, gpus)).toEqual(['7']);
    expect(formatMigMode(c)).toBe(`dynamic,${U1.toLowerCase()}=static,7=static`);
  });
});

describe('--mig-mode through loadConfig', () => {
  it('defaults to static; GPULET_MIG_MODE sets it; the flag wins', () => {
    expect(loadConfig([], {}).migMode).toEqual({ default: 'static', overrides: [] });
    expect(loadConfig([], { GPULET_MIG_MODE: 'dynamic' }).migMode.default).toBe('dynamic');
    expect(loadConfig(['--mig-mode', '2=dynamic'], { GPULET_MIG_MODE: 'dynamic' }).migMode).toEqual({ default: 'static', overrides: [{ gpu: { index: 2 }, mode: 'dynamic' }] });
  });

  it('is a ConfigError naming the option and the problem', () => {
    expect(() => loadConfig(['--mig-mode', 'dynamic,GPU-x=static'], {})).toThrow(ConfigError);
    expect(() => loadConfig(['--mig-mode', 'dynamic,GPU-x=static'], {})).toThrow(/--mig-mode = "dynamic,GPU-x=static": entry "GPU-x=static"/);
  });
});
