/**
 * Facts about the host (not the GPUs): name, OS, CPU, memory. Read with the `systeminformation` package,
 * falling back to `node:os` when it fails or is slow; never rejects. `hostResourceAttributes()` maps the
 * facts to OpenTelemetry resource attributes (semantic conventions `host.*` / `os.*`, as exported by
 * `@opentelemetry/semantic-conventions/incubating`: ATTR_HOST_NAME, ATTR_HOST_ARCH, ATTR_OS_TYPE, ...).
 */
import os from 'node:os';
import si from 'systeminformation';
import { withTimeout } from '../util/timeout.js';

/** What gpulet knows about its host. */
export interface HostFacts {
  /** Host name (`hostname`). */
  readonly hostName: string;
  /** Node.js platform name (`process.platform` style), e.g. `linux`. */
  readonly platform: string;
  /** OS / distribution name, e.g. `Debian GNU/Linux`. */
  readonly osName: string;
  /** Human-readable OS description, e.g. `Debian GNU/Linux 13 (trixie)`. */
  readonly osDescription: string;
  /** Kernel release (`uname -r`), e.g. `6.12.38+deb13-amd64`. */
  readonly kernelVersion: string;
  /** CPU architecture as Node.js names it (`process.arch`), e.g. `x64`, `arm64`. */
  readonly arch: string;
  /** CPU manufacturer, e.g. `Intel`, `AMD`. Empty when unknown. */
  readonly cpuManufacturer: string;
  /** CPU model designation, e.g. `Intel(R) Xeon(R) Platinum 8480C`. */
  readonly cpuModelName: string;
  /** CPUID vendor string, e.g. `GenuineIntel`; empty when unknown. */
  readonly cpuVendorId: string;
  /** CPU family / model / stepping numbers as strings; empty when unknown. */
  readonly cpuFamily: string;
  readonly cpuModelId: string;
  readonly cpuStepping: string;
  /** Logical CPUs. */
  readonly cpuCores: number;
  /** Physical cores (equals `cpuCores` when unknown). */
  readonly cpuPhysicalCores: number;
  /** Total physical memory, bytes. */
  readonly memoryBytes: number;
  /** Where the facts came from. */
  readonly source: 'systeminformation' | 'node:os';
}

/** The `systeminformation` calls used, injectable for tests. */
export interface HostFactsSource {
  osInfo(): Promise<Pick<si.Systeminformation.OsData, 'hostname' | 'platform' | 'distro' | 'release' | 'codename' | 'kernel' | 'arch'>>;
  cpu(): Promise<Pick<si.Systeminformation.CpuData, 'manufacturer' | 'brand' | 'vendor' | 'family' | 'model' | 'stepping' | 'cores' | 'physicalCores'>>;
  mem(): Promise<Pick<si.Systeminformation.MemData, 'total'>>;
}

const SYSTEMINFORMATION: HostFactsSource = { osInfo: () => si.osInfo(), cpu: () => si.cpu(), mem: () => si.mem() };

/** Facts from `node:os` alone: the fallback. Pure apart from reading `node:os`. */
export function hostFactsFromNodeOs(): HostFacts {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? '';
  return {
    hostName: os.hostname(),
    platform: process.platform,
    osName: os.type(),
    osDescription: `${os.type()} ${os.release()}`,
    kernelVersion: os.release(),
    arch: process.arch,
    cpuManufacturer: /intel/i.test(model) ? 'Intel' : /amd/i.test(model) ? 'AMD' : '',
    cpuModelName: model,
    cpuVendorId: '',
    cpuFamily: '',
    cpuModelId: '',
    cpuStepping: '',
    cpuCores: os.availableParallelism(),
    cpuPhysicalCores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    source: 'node:os',
  };
}

/**
 * Read the host facts. Never rejects: on any failure (or after `timeoutMs`, default 5000) the facts come
 * from `node:os` (`source: 'node:os'`).
 */
export async function getHostFacts(
  source: HostFactsSource = SYSTEMINFORMATION,
  timeoutMs = 5000,
): Promise<HostFacts> {
  try {
    const [o, c, m] = await withTimeout(Promise.all([source.osInfo(), source.cpu(), source.mem()]), timeoutMs, () => {
      throw new Error(`timed out after ${timeoutMs} ms`);
    });
    const fallback = hostFactsFromNodeOs();
    const brand = c.brand.trim();
    const modelName = brand === '' || brand.toLowerCase().includes(c.manufacturer.toLowerCase())
      ? brand
      : `${c.manufacturer} ${brand}`.trim();
    const description = [o.distro, o.release].filter((s) => s !== '').join(' ') + (o.codename ? ` (${o.codename})` : '');
    return {
      hostName: o.hostname || fallback.hostName,
      platform: o.platform || fallback.platform,
      osName: o.distro || fallback.osName,
      osDescription: description.trim() || fallback.osDescription,
      kernelVersion: o.kernel || fallback.kernelVersion,
      arch: process.arch,
      cpuManufacturer: c.manufacturer,
      cpuModelName: modelName || fallback.cpuModelName,
      cpuVendorId: c.vendor,
      cpuFamily: c.family,
      cpuModelId: c.model,
      cpuStepping: c.stepping,
      cpuCores: c.cores > 0 ? c.cores : fallback.cpuCores,
      cpuPhysicalCores: c.physicalCores > 0 ? c.physicalCores : fallback.cpuPhysicalCores,
      memoryBytes: m.total > 0 ? m.total : fallback.memoryBytes,
      source: 'systeminformation',
    };
  } catch {
    return hostFactsFromNodeOs();
  }
}

/** Node.js `process.arch` → OTel `host.arch` enum value (semconv HOST_ARCH_VALUE_*); unknown values pass through. */
const OTEL_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm32',
  ia32: 'x86',
  ppc: 'ppc32',
  ppc64: 'ppc64',
  s390x: 's390x',
};

/** Node.js platform → OTel `os.type` enum value (semconv OS_TYPE_VALUE_*); unknown values pass through. */
const OTEL_OS_TYPE: Readonly<Record<string, string>> = {
  linux: 'linux',
  darwin: 'darwin',
  win32: 'windows',
  freebsd: 'freebsd',
  openbsd: 'openbsd',
  netbsd: 'netbsd',
  sunos: 'solaris',
  aix: 'aix',
};

/**
 * OpenTelemetry resource attributes for the host. Pure. Keys: `host.name`, `host.arch`, `os.type`, `os.name`,
 * `os.description`, `os.version` (kernel release, as OTel JS's OS detector sets it), `host.cpu.model.name`,
 * and, when known, `host.cpu.vendor.id`, `host.cpu.family`, `host.cpu.model.id`, `host.cpu.stepping`.
 * Memory and core counts have no resource attribute in the semantic conventions and are not mapped.
 */
export function hostResourceAttributes(facts: HostFacts): Record<string, string> {
  const attrs: Record<string, string> = {
    'host.name': facts.hostName,
    'host.arch': OTEL_ARCH[facts.arch] ?? facts.arch,
    'os.type': OTEL_OS_TYPE[facts.platform] ?? facts.platform,
    'os.name': facts.osName,
    'os.description': facts.osDescription,
    'os.version': facts.kernelVersion,
    'host.cpu.model.name': facts.cpuModelName,
  };
  const optional: [string, string][] = [
    ['host.cpu.vendor.id', facts.cpuVendorId],
    ['host.cpu.family', facts.cpuFamily],
    ['host.cpu.model.id', facts.cpuModelId],
    ['host.cpu.stepping', facts.cpuStepping],
  ];
  for (const [k, v] of optional) if (v !== '') attrs[k] = v;
  for (const [k, v] of Object.entries(attrs)) if (v === '') delete attrs[k];
  return attrs;
}
