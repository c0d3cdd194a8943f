/**
 * ABI check: gpulet's own `native/nvml_abi.h` against NVIDIA's official `nvml.h` (Debian libnvidia-ml-dev,
 * installed by .ci/run). The list of checked items is parsed from our header, so every struct, field,
 * enum constant, macro and function typedef it declares is checked; items newer than the official header
 * (tagged `@since`) are reported, not silently skipped. The addressing-mode declarations (newer than Debian's
 * 11.8 header) are checked against an excerpt of NVIDIA's nvml.h 13.5.37 in test/reference/nvml/, included
 * after the official header.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { factsProgram, parseFacts } from '../fixtures/nvml-abi/facts-program.js';
import { parseAbiHeader, type HeaderModel } from '../fixtures/nvml-abi/header-model.js';
import { reference } from '../helpers/reference.js';
import { REPO_ROOT as REPO } from '../helpers/repo.js';

const run = promisify(execFile);
const OUR_HEADER = path.join(REPO, 'native/nvml_abi.h');
const OUR_CALLS_HEADER = path.join(REPO, 'native/nvml_abi_calls.h');

/**
 * Our declarations as one self-contained text: nvml_abi.h with its `#include "nvml_abi_calls.h"` replaced by
 * that file's body (between its begin/end markers), so the parser sees every declaration and a mutated copy
 * compiles on its own.
 */
async function ourHeaderText(): Promise<string> {
  const [abi, calls] = await Promise.all([readFile(OUR_HEADER, 'utf8'), readFile(OUR_CALLS_HEADER, 'utf8')]);
  const body = /\/\* gpulet-abi-calls-begin \*\/\n([\s\S]*?)\/\* gpulet-abi-calls-end \*\//.exec(calls)?.[1];
  const include = '#include "nvml_abi_calls.h"';
  if (body === undefined || !abi.includes(include)) throw new Error('native/nvml_abi.h / nvml_abi_calls.h: layout markers missing');
  return abi.replace(include, body);
}
const OFFICIAL_HEADER = '/usr/include/nvml.h';
/** Flag that makes the official side also include NVIDIA's addressing-mode excerpt (13.5.37). */
const SUPPLEMENT = `-DGPULET_OFFICIAL_SUPPLEMENT="${reference('nvml', 'nvml-13.5.37-addressing-mode.h')}"`;
/** The second excerpt: NVIDIA's nvmlGpmMigSampleGet (13.5.37), absent from 11.8. */
const SUPPLEMENT_GPM = `-DGPULET_OFFICIAL_SUPPLEMENT_2="${reference('nvml', 'nvml-13.5.37-gpm-mig.h')}"`;
const haveOfficial = existsSync(OFFICIAL_HEADER);

if (!haveOfficial) {
  console.warn(
    `SKIP nvml-abi: ${OFFICIAL_HEADER} is absent; install Debian's libnvidia-ml-dev (contrib/non-free; .ci/run does)`,
  );
}

async function compileAndRun(dir: string, source: string, name: string, flags: readonly string[]): Promise<string> {
  const bin = path.join(dir, name);
  await run('cc', ['-std=gnu11', '-Wall', '-Werror', ...flags, source, '-o', bin]);
  return (await run(bin)).stdout;
}

describe('native/nvml_abi.h parses completely', () => {
  it('every construct of the header is recognised by the check generator', async () => {
    const model = parseAbiHeader(await ourHeaderText());
    expect(model.unparsed).toEqual([]);
    // The brief's mandatory items are present (the parser found them, so the comparison covers them).
    for (const t of ['nvmlPciInfo_t', 'nvmlMemory_v2_t', 'nvmlFieldValue_t', 'nvmlGpuInstanceProfileInfo_v2_t', 'nvmlEventData_t']) {
      expect(model.aggregates.map((a) => a.name)).toContain(t);
    }
    expect(model.defines).toEqual(expect.arrayContaining(['nvmlMemory_v2', 'nvmlGpuInstanceProfileInfo_v2']));
    // Every symbol of the resolution table has a typedef, and every typedef is in the table.
    const typed = new Set(model.functions.map((f) => f.symbol));
    expect(model.xmacroSymbols.filter((s) => !typed.has(s))).toEqual([]);
    expect([...typed].filter((s) => !model.xmacroSymbols.includes(s))).toEqual([]);
  });

  it('compiles as C99 and C++ without warnings', async () => {
    await run('cc', ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Werror', '-fsyntax-only', '-x', 'c', OUR_HEADER]);
    await run('g++', ['-Wall', '-Wextra', '-pedantic', '-Werror', '-fsyntax-only', '-x', 'c++', OUR_HEADER]);
    await run('cc', ['-std=c99', '-Wall', '-Wextra', '-pedantic', '-Werror', '-fsyntax-only', '-x', 'c', OUR_CALLS_HEADER]);
  });
});

describe.skipIf(!haveOfficial)('native/nvml_abi.h matches NVIDIA nvml.h', () => {
  let dir = '';
  let model: HeaderModel;
  let ours = new Map<string, string>();
  let official = new Map<string, string>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gpulet-nvml-abi-'));
    model = parseAbiHeader(await ourHeaderText());
    const src = path.join(dir, 'facts.c');
    await writeFile(src, factsProgram(model));
    ours = parseFacts(await compileAndRun(dir, src, 'ours', ['-I', path.dirname(OUR_HEADER)]));
    official = parseFacts(await compileAndRun(dir, src, 'official', ['-DGPULET_OFFICIAL', SUPPLEMENT, SUPPLEMENT_GPM]));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('both programs report the same set of items', () => {
    expect([...official.keys()].filter((k) => !k.startsWith('fn-via:')).sort()).toEqual([...ours.keys()].sort());
    expect(ours.size).toBeGreaterThan(300);
  });

  it('every struct size, alignment, field offset/size/type and enum size equals the official one', () => {
    const keys = [...ours.keys()].filter((k) => /^(sizeof|alignof|offset|fsize|ftype):/.test(k));
    expect(keys.length).toBeGreaterThan(150);
    const diff = keys.filter((k) => official.get(k) !== ours.get(k)).map((k) => `${k}: ours ${ours.get(k)} official ${official.get(k)}`);
    expect(diff).toEqual([]);
    for (const k of keys.filter((x) => x.startsWith('ftype:'))) expect(ours.get(k), k).toBe('1');
  });

  it('every enum constant and #define (incl. versioned-struct version words) has the official value and width', () => {
    const keys = [...ours.keys()].filter((k) => /^(define|enumconst):/.test(k));
    const checked = keys.filter((k) => official.get(k) !== 'absent');
    const diff = checked.filter((k) => official.get(k) !== ours.get(k)).map((k) => `${k}: ours ${ours.get(k)} official ${official.get(k)}`);
    expect(diff).toEqual([]);
    // The version words themselves, recomputed independently: sizeof | version << 24.
    expect(official.get('define:nvmlMemory_v2')).toBe(`${(2 << 24) | 40}/4`);
    expect(official.get('define:nvmlGpuInstanceProfileInfo_v2')).toBe(`${(2 << 24) | 152}/4`);
  });

  it('the addressing-mode ABI (newer than 11.8) is checked against NVIDIA\'s 13.5.37 declarations, not skipped', () => {
    const keys = [
      'sizeof:nvmlDeviceAddressingModeType_t', 'sizeof:nvmlDeviceAddressingMode_v1_t', 'offset:nvmlDeviceAddressingMode_v1_t.value',
      'define:nvmlDeviceAddressingMode_v1', 'enumconst:NVML_DEVICE_ADDRESSING_MODE_NONE', 'enumconst:NVML_DEVICE_ADDRESSING_MODE_HMM',
      'enumconst:NVML_DEVICE_ADDRESSING_MODE_ATS', 'fn:nvmlDeviceGetAddressingMode',
    ];
    expect(keys.map((k) => [k, official.get(k)])).toEqual(keys.map((k) => [k, ours.get(k)]));
    expect(keys.filter((k) => official.get(k) === 'absent' || official.get(k) === undefined)).toEqual([]);
    // Independently: the version word is sizeof (two unsigned ints, 8) | 1 << 24; HMM = 1, ATS = 2 (nvml.h).
    expect(official.get('define:nvmlDeviceAddressingMode_v1')).toBe(`${(1 << 24) | 8}/4`);
    expect([official.get('enumconst:NVML_DEVICE_ADDRESSING_MODE_HMM'), official.get('enumconst:NVML_DEVICE_ADDRESSING_MODE_ATS')]).toEqual(['1', '2']);
    expect(official.get('fn:nvmlDeviceGetVbiosVersion')).toBe('1');
  });

  it('the GPM ABI is checked against NVIDIA\'s declarations, nested metricInfo and nvmlGpmMigSampleGet included', () => {
    const keys = [
      'sizeof:nvmlGpmMetric_t', 'offset:nvmlGpmMetric_t.value', 'offset:nvmlGpmMetric_t.metricInfo.unit', 'ftype:nvmlGpmMetric_t.metricInfo.longName',
      'sizeof:nvmlGpmMetricsGet_t', 'offset:nvmlGpmMetricsGet_t.metrics', 'sizeof:nvmlGpmSupport_t', 'define:NVML_GPM_METRICS_GET_VERSION',
      'define:NVML_GPM_SUPPORT_VERSION', 'enumconst:NVML_GPM_METRIC_ANY_TENSOR_UTIL', 'enumconst:NVML_GPM_METRIC_NVLINK_TOTAL_TX_PER_SEC',
      'fn:nvmlGpmSampleGet', 'fn:nvmlGpmMigSampleGet', 'fn:nvmlGpmMetricsGet', 'fn:nvmlGpmQueryDeviceSupport',
    ];
    expect(keys.map((k) => [k, official.get(k)])).toEqual(keys.map((k) => [k, ours.get(k)]));
    expect(keys.filter((k) => official.get(k) === 'absent' || official.get(k) === undefined)).toEqual([]);
    // Independently (nvml.h 13.5.37): a metric is 4 + 4 + 8 + 3 pointers = 40 bytes on LP64; the struct holds
    // 11.8's NVML_GPM_METRIC_MAX (98) of them after two ints and two sample handles.
    expect(official.get('sizeof:nvmlGpmMetric_t')).toBe('40');
    expect(official.get('sizeof:nvmlGpmMetricsGet_t')).toBe(String(8 + 16 + 98 * 40));
  });

  it('items absent from the official header are exactly the ones tagged @since (reported)', () => {
    const absent = [...ours.keys()].filter((k) => official.get(k) === 'absent');
    const untagged = absent.filter((k) => model.tags.get(k.slice(k.indexOf(':') + 1))?.since === undefined);
    expect(untagged).toEqual([]);
    const since = (k: string): string => model.tags.get(k.slice(k.indexOf(':') + 1))?.since ?? '?';
    console.info(
      `nvml-abi: ${absent.length} item(s) not checkable against this nvml.h (newer API):\n` +
        absent.map((k) => `  ${k} (@since ${since(k)})`).join('\n'),
    );
  });

  it('every function typedef is type-compatible with the official prototype', () => {
    const fns = model.functions.map((f) => `fn:${f.symbol}`);
    expect(fns.length).toBeGreaterThanOrEqual(50);
    const bad = fns.filter((k) => ours.get(k) !== '1' || official.get(k) !== '1');
    expect(bad).toEqual([]);
    const via = [...official.entries()].filter(([k]) => k.startsWith('fn-via:'));
    if (via.length > 0) {
      console.info(`nvml-abi: checked through their documented same-signature predecessor: ${via.map(([k, v]) => `${k.slice(7)} as ${v}`).join(', ')}`);
    }
  });

  it('the check is sensitive: a deliberately wrong layout or prototype is detected', async () => {
    // Mutate our header (field order, a constant, a prototype) and show the comparison would fail.
    const text = await ourHeaderText();
    const mutated = text
      .replace('  unsigned long long reserved;\n  unsigned long long free;', '  unsigned long long free;\n  unsigned int reserved;')
      .replace('NVML_ERROR_GPU_IS_LOST = 15', 'NVML_ERROR_GPU_IS_LOST = 16')
      .replace('(*nvmlDeviceGetPowerUsage_fn)(nvmlDevice_t device, unsigned int *power)', '(*nvmlDeviceGetPowerUsage_fn)(nvmlDevice_t device, int *power)');
    expect(mutated).not.toBe(text);
    const mdir = path.join(dir, 'mut');
    await run('mkdir', ['-p', mdir]);
    await writeFile(path.join(mdir, 'nvml_abi.h'), mutated);
    const mmodel = parseAbiHeader(mutated);
    const src = path.join(mdir, 'facts.c');
    await writeFile(src, factsProgram(mmodel));
    const mine = parseFacts(await compileAndRun(mdir, src, 'ours', ['-I', mdir]));
    const theirs = parseFacts(await compileAndRun(mdir, src, 'official', ['-DGPULET_OFFICIAL', SUPPLEMENT, SUPPLEMENT_GPM]));
    const differs = (k: string): boolean => mine.get(k) !== theirs.get(k);
    expect(differs('offset:nvmlMemory_v2_t.free')).toBe(true);
    expect(differs('fsize:nvmlMemory_v2_t.reserved')).toBe(true);
    expect(theirs.get('ftype:nvmlMemory_v2_t.reserved')).toBe('0');
    expect(differs('enumconst:NVML_ERROR_GPU_IS_LOST')).toBe(true);
    expect(theirs.get('fn:nvmlDeviceGetPowerUsage')).toBe('0');
  });
});
