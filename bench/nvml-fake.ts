/**
 * Fake-NVML plumbing of the NVML benchmarks (nvml.ts, nvml-scale.ts): one fake machine per MachineSpec, the
 * NVML backend (real addon) opened on it in this process, and the plain C programs run on it as children.
 *
 * The fake libnvidia-ml (test/fixtures/fake-nvml/) reads its machine once per process, at the first
 * successful `nvmlInit_v2`. To open several machines in one process, each machine gets its own copy of the
 * library file: `dlopen()` of a different file (another inode) is a separate load with its own state, and
 * the addon opens it `RTLD_LOCAL`.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { createMockBackend, type MachineSpec } from '../src/gpu/mock/index.js';
import { createNvmlBackend, type NvmlBackend } from '../src/gpu/nvml/index.js';
import type { Inventory } from '../src/gpu/types.js';
import { buildFakeNvmlArtifacts, writeFakeMachine, type FakeMachineFiles, type FakeNvmlBuild } from '../test/helpers/fake-nvml.js';

const run = promisify(execFile);

/** A fake machine on disk: its own copy of the fake library, its machine and (empty) fault files. */
export interface FakeMachine {
  /** Label, e.g. `dgx-h100` or `16 GPUs, MIG on`. */
  readonly label: string;
  readonly spec: MachineSpec;
  /** The mock inventory of `spec` (what the fake serves). */
  readonly inventory: Inventory;
  /** This machine's copy of the fake `libnvidia-ml.so.1`. */
  readonly library: string;
  readonly files: FakeMachineFiles;
  /** The shared build (sample-loop, driver). */
  readonly build: FakeNvmlBuild;
}

/** Result line of `sample-loop LIB N` (test/fixtures/fake-nvml/sample-loop.c). */
export interface SampleLoopResult {
  readonly samples: number;
  readonly gpus: number;
  readonly migDevices: number;
  /** NVML calls per full sample. */
  readonly callsPerSample: number;
  /** Mean µs per full sample over the run. */
  readonly usPerSample: number;
}

/**
 * Write `spec` as a fake machine under `dir` (created), with a private copy of the fake library.
 * @param nodeName seeds the mock identities (UUIDs, serials)
 * @throws ConfigError for an invalid spec; Error when the fake cannot be built (needs cc and libcjson-dev)
 */
export async function writeFakeMachineFor(dir: string, label: string, spec: MachineSpec, nodeName: string): Promise<FakeMachine> {
  const build = await buildFakeNvmlArtifacts();
  const mock = createMockBackend({ machine: spec, nodeName });
  await mock.init();
  const inventory = mock.inventory();
  await mock.shutdown();
  await mkdir(dir, { recursive: true });
  const files = await writeFakeMachine(dir, inventory);
  const library = path.join(dir, 'libnvidia-ml.so.1');
  await copyFile(build.library, library);
  return { label, spec, inventory, library, files, build };
}

/**
 * Open and init the NVML backend (the real addon) on `m`. The fake reads `FAKE_NVML_MACHINE` /
 * `FAKE_NVML_FAULTS` from this process's environment during `nvmlInit_v2`, so they are set for the init and
 * restored afterwards. PCIe roots come from the inventory (no sysfs needed).
 * @throws BackendError when init fails (e.g. the addon is not built: `npm run build:native`)
 */
export async function openNvmlOnFake(m: FakeMachine): Promise<NvmlBackend> {
  const roots = new Map(m.inventory.gpus.map((g) => [g.pci.busId, g.pci.pcieRoot]));
  const backend = createNvmlBackend({ library: m.library, pcieRoot: (busId) => roots.get(busId) });
  const saved = { machine: process.env['FAKE_NVML_MACHINE'], faults: process.env['FAKE_NVML_FAULTS'] };
  process.env['FAKE_NVML_MACHINE'] = m.files.env.FAKE_NVML_MACHINE;
  process.env['FAKE_NVML_FAULTS'] = m.files.env.FAKE_NVML_FAULTS;
  try {
    await backend.init();
  } catch (err) {
    await backend.shutdown();
    throw err;
  } finally {
    restoreEnv('FAKE_NVML_MACHINE', saved.machine);
    restoreEnv('FAKE_NVML_FAULTS', saved.faults);
  }
  return backend;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

function parseJsonLine(stdout: string, what: string): Record<string, unknown> {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    const v: unknown = JSON.parse(line);
    if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new Error(`${what} printed ${JSON.stringify(stdout.slice(0, 200))}, not one JSON object`);
}

function num(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}: "${key}" is not a number in ${JSON.stringify(o)}`);
  return v;
}

/**
 * Run the plain C loop: `sample-loop <lib> <samples>` on `m` in a child process.
 * @throws Error with the program's stderr when it fails
 */
export async function runSampleLoop(m: FakeMachine, samples: number): Promise<SampleLoopResult> {
  const what = `sample-loop on ${m.label}`;
  const { stdout } = await run(m.build.sampleLoop, [m.library, String(samples)], { env: { ...process.env, ...m.files.env } });
  const o = parseJsonLine(stdout, what);
  return {
    samples: num(o, 'samples', what),
    gpus: num(o, 'gpus', what),
    migDevices: num(o, 'migDevices', what),
    callsPerSample: num(o, 'callsPerSample', what),
    usPerSample: num(o, 'usPerSample', what),
  };
}

/**
 * Build bench/nvml-floor.c into `dir` with the system C compiler.
 * @returns the program path, or undefined (with the reason) when there is no working `cc`
 */
export async function buildFloorProgram(dir: string): Promise<{ path?: string; error?: string }> {
  const out = path.join(dir, 'nvml-floor');
  try {
    await run(process.env['CC'] ?? 'cc', ['-std=gnu11', '-O2', '-Wall', '-o', out, path.join(import.meta.dirname, 'nvml-floor.c'), '-ldl']);
    return { path: out };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { error: (e.stderr ?? e.message).trim().split('\n')[0] ?? 'cc failed' };
  }
}

/**
 * The fake's per-call floor: ns per `nvmlDeviceGetCount_v2` (lock, stat() of the fault file, fault look-ups).
 * @throws Error with the program's stderr when it fails
 */
export async function runFloor(program: string, m: FakeMachine, calls: number): Promise<number> {
  const what = `nvml-floor on ${m.label}`;
  const { stdout } = await run(program, [m.library, String(calls)], { env: { ...process.env, ...m.files.env } });
  return num(parseJsonLine(stdout, what), 'nsPerCall', what);
}
