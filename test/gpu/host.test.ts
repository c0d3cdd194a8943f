/**
 * Host facts (src/gpu/host.ts): read through systeminformation, checked against node:os; mapped to the
 * attribute names and enum values the OpenTelemetry semantic-conventions package exports.
 */
import os from 'node:os';
import {
  ATTR_HOST_ARCH,
  ATTR_HOST_CPU_MODEL_NAME,
  ATTR_HOST_CPU_VENDOR_ID,
  ATTR_HOST_NAME,
  ATTR_OS_DESCRIPTION,
  ATTR_OS_NAME,
  ATTR_OS_TYPE,
  ATTR_OS_VERSION,
  HOST_ARCH_VALUE_AMD64,
  HOST_ARCH_VALUE_ARM64,
  OS_TYPE_VALUE_LINUX,
  OS_TYPE_VALUE_WINDOWS,
} from '@opentelemetry/semantic-conventions/incubating';
import { describe, expect, it } from 'vitest';
import { getHostFacts, hostFactsFromNodeOs, hostResourceAttributes, type HostFacts, type HostFactsSource } from '../../src/gpu/host.js';

describe('getHostFacts', () => {
  it('reads this host via systeminformation, agreeing with node:os', async () => {
    const f = await getHostFacts();
    expect(f.source).toBe('systeminformation');
    expect(f.hostName).toBe(os.hostname());
    expect(f.kernelVersion).toBe(os.release());
    expect(f.platform).toBe(process.platform);
    expect(f.arch).toBe(process.arch);
    expect(f.memoryBytes).toBe(os.totalmem());
    expect(f.cpuCores).toBe(os.cpus().length);
    expect(f.cpuPhysicalCores).toBeGreaterThan(0);
    expect(f.cpuPhysicalCores).toBeLessThanOrEqual(f.cpuCores);
    expect(f.cpuModelName.length).toBeGreaterThan(0);
    expect(f.osDescription.length).toBeGreaterThan(0);
  });

  it('falls back to node:os when systeminformation rejects', async () => {
    const failing: HostFactsSource = {
      osInfo: () => Promise.reject(new Error('no /etc/os-release')),
      cpu: () => Promise.reject(new Error('x')),
      mem: () => Promise.reject(new Error('x')),
    };
    const f = await getHostFacts(failing);
    expect(f).toEqual(hostFactsFromNodeOs());
    expect(f.source).toBe('node:os');
    expect(f.memoryBytes).toBe(os.totalmem());
  });

  it('falls back to node:os when systeminformation hangs', async () => {
    const never = <T>(): Promise<T> => new Promise<T>(() => undefined);
    const f = await getHostFacts({ osInfo: never, cpu: never, mem: never }, 50);
    expect(f.source).toBe('node:os');
  });

  it('fills blanks from node:os and prefixes the manufacturer to a bare brand', async () => {
    const src: HostFactsSource = {
      osInfo: () => Promise.resolve({ hostname: '', platform: 'linux', distro: 'Ubuntu', release: '24.04.1 LTS', codename: 'noble', kernel: '6.8.0-45-generic', arch: 'x64' }),
      cpu: () => Promise.resolve({ manufacturer: 'AMD', brand: 'EPYC 9654 96-Core Processor', vendor: 'AuthenticAMD', family: '25', model: '17', stepping: '1', cores: 0, physicalCores: 96 }),
      mem: () => Promise.resolve({ total: 2 * 1024 ** 4 }),
    };
    const f = await getHostFacts(src);
    expect(f).toMatchObject({
      hostName: os.hostname(), osDescription: 'Ubuntu 24.04.1 LTS (noble)', kernelVersion: '6.8.0-45-generic',
      cpuModelName: 'AMD EPYC 9654 96-Core Processor', cpuVendorId: 'AuthenticAMD', cpuCores: os.availableParallelism(),
      memoryBytes: 2 * 1024 ** 4, source: 'systeminformation',
    });
  });
});

describe('hostResourceAttributes', () => {
  const facts: HostFacts = {
    hostName: 'gpu-node-7', platform: 'linux', osName: 'Ubuntu', osDescription: 'Ubuntu 24.04.1 LTS (noble)',
    kernelVersion: '6.8.0-45-generic', arch: 'x64', cpuManufacturer: 'Intel',
    cpuModelName: 'Intel Xeon Platinum 8480C', cpuVendorId: 'GenuineIntel', cpuFamily: '6', cpuModelId: '143',
    cpuStepping: '8', cpuCores: 224, cpuPhysicalCores: 112, memoryBytes: 2 * 1024 ** 4, source: 'systeminformation',
  };

  it('uses the semantic-convention attribute names and enum values', () => {
    const a = hostResourceAttributes(facts);
    expect(a[ATTR_HOST_NAME]).toBe('gpu-node-7');
    expect(a[ATTR_HOST_ARCH]).toBe(HOST_ARCH_VALUE_AMD64);
    expect(a[ATTR_OS_TYPE]).toBe(OS_TYPE_VALUE_LINUX);
    expect(a[ATTR_OS_NAME]).toBe('Ubuntu');
    expect(a[ATTR_OS_DESCRIPTION]).toBe('Ubuntu 24.04.1 LTS (noble)');
    expect(a[ATTR_OS_VERSION]).toBe('6.8.0-45-generic');
    expect(a[ATTR_HOST_CPU_MODEL_NAME]).toBe('Intel Xeon Platinum 8480C');
    expect(a[ATTR_HOST_CPU_VENDOR_ID]).toBe('GenuineIntel');
    expect(hostResourceAttributes({ ...facts, arch: 'arm64' })[ATTR_HOST_ARCH]).toBe(HOST_ARCH_VALUE_ARM64);
    expect(hostResourceAttributes({ ...facts, platform: 'win32' })[ATTR_OS_TYPE]).toBe(OS_TYPE_VALUE_WINDOWS);
  });

  it('omits unknown (empty) values rather than emitting empty strings', () => {
    const a = hostResourceAttributes({ ...facts, cpuVendorId: '', cpuFamily: '', cpuModelId: '', cpuStepping: '' });
    expect(Object.keys(a).sort()).toEqual(
      ['host.arch', 'host.cpu.model.name', 'host.name', 'os.description', 'os.name', 'os.type', 'os.version'],
    );
    for (const v of Object.values(hostResourceAttributes(hostFactsFromNodeOs()))) expect(v).not.toBe('');
  });
});
