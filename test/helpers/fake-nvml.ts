/**
 * Shared test helper for the fake libnvidia-ml (test/fixtures/fake-nvml/): builds it with the system C
 * compiler (cached under test/fixtures/build/fake-nvml/, rebuilt when a source is newer than the library)
 * and writes the machine and fault files that drive it.
 *
 * The fake reads two environment variables in the process that dlopen()s it:
 * - `FAKE_NVML_MACHINE`: a serialized {@link Inventory} (`buildMockInventory(spec, node)` from
 *   src/gpu/mock), plus `fakeNvml.models[productName]` simulation facts written here from `GPU_MODELS`;
 * - `FAKE_NVML_FAULTS`: a {@link FakeNvmlFaults} JSON file, re-read whenever it changes.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GPU_MODELS } from '../../src/gpu/mock/index.js';
import type { Inventory } from '../../src/gpu/types.js';
import { REPO_ROOT as REPO } from './repo.js';

const run = promisify(execFile);
const SOURCES = path.join(REPO, 'test/fixtures/fake-nvml');
const ABI_HEADERS = [path.join(REPO, 'native/nvml_abi.h'), path.join(REPO, 'native/nvml_abi_calls.h')];

/** Where the fake and its helper programs are built (gitignored). */
export const FAKE_NVML_BUILD_DIR = path.join(REPO, 'test/fixtures/build/fake-nvml');

/** Paths of the built artefacts. */
export interface FakeNvmlBuild {
  /** The fake `libnvidia-ml.so.1` (dlopen() it, or pass it to the addon's library-path option). */
  readonly library: string;
  /** The same fake without the `nvmlDeviceGetAddressingMode` symbol, as NVIDIA's libraries before it (Debian's 535). */
  readonly libraryWithoutAddressingMode: string;
  /** The same fake without the GPM calls (`nvmlGpm*`), as NVIDIA's libraries before GPM. */
  readonly libraryWithoutGpm: string;
  /** `sample-loop LIB N`: N full samples of every GPU and MIG device in plain C; prints one JSON line. */
  readonly sampleLoop: string;
  /** `driver LIB SCENARIO ...`: the integration tests' C driver (see driver.c). */
  readonly driver: string;
}

/** Faults injected into the fake (FAKE_NVML_FAULTS file). Function names are the versioned NVML names. */
export interface FakeNvmlFaults {
  /** By device UUID (GPU or MIG) or `*`: functions that return NVML_ERROR_NOT_SUPPORTED (3). A name
   * `field:<id>` makes that nvmlDeviceGetFieldValues entry NOT_SUPPORTED. */
  readonly notSupported?: Readonly<Record<string, readonly string[]>>;
  /** GPU UUIDs whose every call (also on their MIG devices) returns NVML_ERROR_GPU_IS_LOST (15). */
  readonly lost?: readonly string[];
  /** Function name → delay in milliseconds before it returns. */
  readonly slowMs?: Readonly<Record<string, number>>;
  /** Events delivered once per event set that registered the type on the device before the fake saw them.
   * `data` is the XID number for `xid`. A MIG UUID is delivered on the parent with its GI/CI IDs. */
  readonly events?: readonly {
    readonly seq: number;
    readonly uuid: string;
    readonly type: 'xid' | 'dbe' | 'sbe' | 'unavailable';
    readonly data?: number;
  }[];
  /** nvmlInit_v2 fails with this NVML return code (e.g. 9, NVML_ERROR_DRIVER_NOT_LOADED). */
  readonly initError?: number;
  /**
   * Function name → NVML return code every call of it returns (after the lost / notSupported checks). E.g.
   * `{ nvmlGpuInstanceCreateComputeInstance: 23 }`: a MIG creation that fails half-way (the GPU instance is
   * made, its compute instance is not), so the caller's rollback is exercised.
   */
  readonly fail?: Readonly<Record<string, number>>;
  /** MIG device (or GPU) UUIDs with processes running: nvmlComputeInstanceDestroy answers NVML_ERROR_IN_USE (19). */
  readonly inUse?: readonly string[];
}

/** Files written by {@link writeFakeMachine} and the environment that points the fake at them. */
export interface FakeMachineFiles {
  readonly machinePath: string;
  readonly faultsPath: string;
  /** `{ FAKE_NVML_MACHINE, FAKE_NVML_FAULTS }`: merge into a child's env, or into process.env before init. */
  readonly env: Readonly<Record<'FAKE_NVML_MACHINE' | 'FAKE_NVML_FAULTS', string>>;
}

async function newestSourceMtime(): Promise<number> {
  const files = (await readdir(SOURCES)).map((f) => path.join(SOURCES, f));
  const times = await Promise.all([...files, ...ABI_HEADERS].map(async (f) => (await stat(f)).mtimeMs));
  return Math.max(...times);
}

async function mtimeOrZero(file: string): Promise<number> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return 0;
  }
}

let building: Promise<FakeNvmlBuild> | undefined;

/**
 * Build (or reuse) the fake library and its helper programs.
 * @returns the artefact paths; the library is `FakeNvmlBuild.library`.
 * @throws Error with the compiler output when the build fails (e.g. libcjson-dev is not installed).
 */
export function buildFakeNvmlArtifacts(): Promise<FakeNvmlBuild> {
  building ??= (async () => {
    const out: FakeNvmlBuild = {
      library: path.join(FAKE_NVML_BUILD_DIR, 'libnvidia-ml.so.1'),
      libraryWithoutAddressingMode: path.join(FAKE_NVML_BUILD_DIR, 'no-addressing-mode', 'libnvidia-ml.so.1'),
      libraryWithoutGpm: path.join(FAKE_NVML_BUILD_DIR, 'no-gpm', 'libnvidia-ml.so.1'),
      sampleLoop: path.join(FAKE_NVML_BUILD_DIR, 'sample-loop'),
      driver: path.join(FAKE_NVML_BUILD_DIR, 'driver'),
    };
    const built = Math.min(...(await Promise.all(Object.values(out).map(mtimeOrZero))));
    if (built > 0 && built >= (await newestSourceMtime())) return out;
    await mkdir(FAKE_NVML_BUILD_DIR, { recursive: true });
    try {
      await run('sh', [path.join(SOURCES, 'build.sh'), FAKE_NVML_BUILD_DIR]);
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(
        `building the fake libnvidia-ml failed (needs cc and Debian's libcjson-dev): ${e.stderr ?? e.message}`,
        { cause: err },
      );
    }
    return out;
  })();
  building.catch(() => {
    building = undefined;
  });
  return building;
}

/** Build (or reuse) the fake; resolves to the path of its `libnvidia-ml.so.1`. */
export async function buildFakeNvml(): Promise<string> {
  return (await buildFakeNvmlArtifacts()).library;
}

/** Simulation facts and MIG profile tables of the mock's GPU models, keyed by product name. */
function modelFacts(): Record<string, unknown> {
  const models: Record<string, unknown> = {};
  for (const m of Object.values(GPU_MODELS)) {
    models[m.productName] = {
      reservedMiB: m.reservedMiB,
      idlePowerW: m.idlePowerW,
      smClockIdleMhz: m.smClockIdleMhz,
      smClockMaxMhz: m.smClockMaxMhz,
      memoryClockMhz: m.memoryClockMhz,
      pcieBytesPerSecond: m.pcieBytesPerSecond,
      migProfiles: m.migProfiles,
    };
  }
  return models;
}

/** Write `faults` to `faultsPath` atomically (temp file + rename), so the fake never reads half a file. */
export async function writeFakeFaults(faultsPath: string, faults: FakeNvmlFaults): Promise<void> {
  const tmp = `${faultsPath}.${process.pid}.${randomUUID()}.tmp`;
  await writeFile(tmp, JSON.stringify(faults));
  await rename(tmp, faultsPath);
}

/**
 * Write `dir/machine.json` (the inventory + model facts) and `dir/faults.json` (`faults`, default none).
 * @param inventory e.g. `buildMockInventory(machineSpecByName('dgx-h100'), 'node-a')`.
 */
export async function writeFakeMachine(dir: string, inventory: Inventory, faults: FakeNvmlFaults = {}): Promise<FakeMachineFiles> {
  const machinePath = path.join(dir, 'machine.json');
  const faultsPath = path.join(dir, 'faults.json');
  await writeFile(machinePath, JSON.stringify({ ...inventory, fakeNvml: { models: modelFacts() } }));
  await writeFakeFaults(faultsPath, faults);
  return { machinePath, faultsPath, env: { FAKE_NVML_MACHINE: machinePath, FAKE_NVML_FAULTS: faultsPath } };
}
