import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseListenAddress } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

const cwd = '/srv/gpulet';

describe('config', () => {
  it('defaults to the embedded development setup under ./.gpulet', () => {
    const c = loadConfig([], { NODE_NAME: 'node-a' }, cwd);
    expect(c.nodeName).toBe('node-a');
    expect(c.backend).toBe('mock');
    expect(c.mockMachine).toBe('dgx-h100');
    expect(c.kubeApi).toBe('embedded');
    expect(c.driverName).toBe('gpu.gpulet.dev');
    expect(c.stateDir).toBe(path.join(cwd, '.gpulet'));
    expect(c.pluginRegistryDir).toBe(path.join(cwd, '.gpulet/plugins_registry'));
    expect(c.pluginsDir).toBe(path.join(cwd, '.gpulet/plugins'));
    expect(c.cdiDir).toBe(path.join(cwd, '.gpulet/cdi'));
    expect(c.devRoot).toBe(path.join(cwd, '.gpulet/dev'));
    expect(c.checkpointPath).toBe(path.join(cwd, '.gpulet/checkpoint.json'));
    expect(c.metricsAddress).toEqual({ host: '0.0.0.0', port: 9400 });
    expect(c.dcgmCompat).toBe(true);
    expect(c.otlpEndpoint).toBeUndefined();
    expect(c.otlpExportIntervalMs).toBe(60_000);
    expect(c.sampleIntervalMs).toBe(5_000);
    expect(c.cleanupIntervalMs).toBe(600_000);
    expect(c.shutdownTimeoutMs).toBe(10_000);
  });

  it("reads the kubelet's pod-resources socket at its default path unless told another, or \"\" (not read)", () => {
    expect(loadConfig([], { NODE_NAME: 'n' }, cwd).podResourcesSocket).toBe('/var/lib/kubelet/pod-resources/kubelet.sock');
    expect(loadConfig(['--pod-resources-socket', 'k/pr.sock'], { NODE_NAME: 'n' }, cwd).podResourcesSocket).toBe(path.join(cwd, 'k/pr.sock'));
    expect(loadConfig([], { NODE_NAME: 'n', GPULET_POD_RESOURCES_SOCKET: '' }, cwd).podResourcesSocket).toBeUndefined();
  });

  it('decides the pool name once: the node name', () => {
    expect(loadConfig([], { NODE_NAME: 'node-a' }, cwd).poolName).toBe('node-a');
    expect(loadConfig(['--node-name', 'rack-1.example.com'], {}, cwd).poolName).toBe('rack-1.example.com');
  });

  it('takes the DaemonSet environment', () => {
    const c = loadConfig(
      [],
      {
        NODE_NAME: 'gpu-node-7',
        POD_UID: '0b6f3c2e-1c7a-4d0e-9f43-1a2b3c4d5e6f',
        GPULET_BACKEND: 'nvml',
        GPULET_KUBE_API: 'in-cluster',
        GPULET_STATE_DIR: '/var/lib/gpulet',
        GPULET_PLUGIN_REGISTRY_DIR: '/var/lib/kubelet/plugins_registry',
        GPULET_PLUGINS_DIR: '/var/lib/kubelet/plugins',
        GPULET_CDI_DIR: '/var/run/cdi',
        GPULET_METRICS_ADDRESS: ':9400',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4317',
      },
      cwd,
    );
    expect(c.backend).toBe('nvml');
    expect(c.devRoot).toBeUndefined();
    expect(c.podUid).toBe('0b6f3c2e-1c7a-4d0e-9f43-1a2b3c4d5e6f');
    expect(c.cdiDir).toBe('/var/run/cdi');
    expect(c.checkpointPath).toBe('/var/lib/gpulet/checkpoint.json');
    expect(c.otlpEndpoint).toBe('http://otel-collector:4317');
    expect(c.metricsAddress).toEqual({ host: '0.0.0.0', port: 9400 });
  });

  it('lets flags win over the environment', () => {
    const c = loadConfig(['--node-name', 'flag-node', '--metrics-address', '127.0.0.1:0'], { NODE_NAME: 'env-node' }, cwd);
    expect(c.nodeName).toBe('flag-node');
    expect(c.metricsAddress).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it.each([
    [['--backend', 'cuda'], /backend/],
    [['--driver-name', 'Not_A_DNS_Name'], /--driver-name/],
    [['--node-name', 'UPPER'], /--node-name/],
    [['--pod-uid', '../../etc'], /--pod-uid/],
    // A pod UID is an object UID as the API server issues it: a lower-case UUID, nothing shorter or upper-case.
    [['--pod-uid', 'abc'], /--pod-uid.*lower-case UUID/],
    [['--pod-uid', '0B6F3C2E-1C7A-4D0E-9F43-1A2B3C4D5E6F'], /--pod-uid.*lower-case UUID/],
    [['--driver-name', 'x'.repeat(64)], /--driver-name.*at most 63/],
    [['--sample-interval', '99'], /--sample-interval/],
    [['--embedded-api-port', '65536'], /--embedded-api-port/],
    [['--sample-interval', 'fast'], /--sample-interval/],
    [['--otlp-endpoint', 'not a url'], /--otlp-endpoint/],
    [['--kube-api', 'kubeconfig'], /--kubeconfig/],
    [['--metrics-address', 'host:99999'], /--metrics-address/],
    [['--no-such-flag'], /unknown option/],
  ])('rejects %j with a ConfigError naming the option', (argv, re) => {
    expect(() => loadConfig(argv, { NODE_NAME: 'n' }, cwd)).toThrow(ConfigError);
    expect(() => loadConfig(argv, { NODE_NAME: 'n' }, cwd)).toThrow(re);
  });

  it('takes the device taint effect and the health recovery interval (flag or GPULET_* variable)', () => {
    const d = loadConfig([], { NODE_NAME: 'node-a' }, cwd);
    expect(d.deviceTaintEffect).toBe('NoSchedule');
    expect(d.healthRecoveryMs).toBe(0);
    const e = loadConfig([], { NODE_NAME: 'node-a', GPULET_DEVICE_TAINT_EFFECT: 'NoExecute', GPULET_HEALTH_RECOVERY_INTERVAL: '600000' }, cwd);
    expect(e.deviceTaintEffect).toBe('NoExecute');
    expect(e.healthRecoveryMs).toBe(600_000);
    const f = loadConfig(['--device-taint-effect', 'NoSchedule', '--health-recovery-interval', '1000'], { NODE_NAME: 'node-a', GPULET_DEVICE_TAINT_EFFECT: 'NoExecute' }, cwd);
    expect(f.deviceTaintEffect).toBe('NoSchedule');
    expect(f.healthRecoveryMs).toBe(1000);
    // None would hide faults; PreferNoSchedule is not a device taint effect (resource.k8s.io/v1 DeviceTaintEffect).
    for (const bad of ['None', 'PreferNoSchedule']) {
      expect(() => loadConfig(['--device-taint-effect', bad], { NODE_NAME: 'node-a' }, cwd)).toThrow(ConfigError);
    }
    expect(() => loadConfig(['--health-recovery-interval', '-1'], { NODE_NAME: 'node-a' }, cwd)).toThrow(/--health-recovery-interval/);
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress('9400', 'x')).toEqual({ host: '0.0.0.0', port: 9400 });
    expect(parseListenAddress('[::1]:80', 'x')).toEqual({ host: '::1', port: 80 });
    expect(() => parseListenAddress('nope', 'x')).toThrow(ConfigError);
  });

  it('decides where the driver userspace comes from: auto with nvml, none with mock, unless set', () => {
    const cwd = '/work';
    expect(loadConfig([], {}, cwd).driverUserspace).toBe('none');
    const nvml = loadConfig(['--backend', 'nvml'], {}, cwd);
    expect(nvml.driverUserspace).toBe('auto');
    expect(nvml.nvidiaDriverRoot).toBe('/');
    expect(nvml.containerDriverRoot).toBe('/');
    expect(nvml.nvidiaCdiHookPath).toBeUndefined();
    const operator = loadConfig(['--backend', 'nvml'], {
      GPULET_DRIVER_USERSPACE: 'discover', NVIDIA_DRIVER_ROOT: '/run/nvidia/driver', CONTAINER_DRIVER_ROOT: '/driver-root',
      NVIDIA_CDI_HOOK_PATH: '/usr/local/nvidia/toolkit/nvidia-cdi-hook',
    }, cwd);
    expect(operator).toMatchObject({
      driverUserspace: 'discover', nvidiaDriverRoot: '/run/nvidia/driver', containerDriverRoot: '/driver-root',
      nvidiaCdiHookPath: '/usr/local/nvidia/toolkit/nvidia-cdi-hook',
    });
    expect(loadConfig(['--nvidia-driver-root', '/run/nvidia/driver'], {}, cwd).containerDriverRoot).toBe('/run/nvidia/driver');
    expect(loadConfig(['--driver-userspace', 'toolkit'], {}, cwd).driverUserspace).toBe('toolkit');
    expect(() => loadConfig(['--driver-userspace', 'everything'], {}, cwd)).toThrow(ConfigError);
    expect(() => loadConfig(['--nvidia-driver-root', 'run/nvidia/driver'], {}, cwd)).toThrow(/--nvidia-driver-root .*absolute host path/);
  });
});

describe('--mig-enable and the mock MIG state file', () => {
  const cwd = '/srv/gpulet';
  it('is off by default; the flag and GPULET_MIG_ENABLE turn it on; the mock keeps its MIG state in the state dir', () => {
    const c = loadConfig([], { NODE_NAME: 'node-a' }, cwd);
    expect(c.migEnable).toBe(false);
    expect(c.mockMigStateFile).toBe(path.join(c.stateDir, 'mock-mig-state.json'));
    expect(loadConfig(['--mig-enable'], { NODE_NAME: 'node-a' }, cwd).migEnable).toBe(true);
    expect(loadConfig([], { NODE_NAME: 'node-a', GPULET_MIG_ENABLE: 'true' }, cwd).migEnable).toBe(true);
    expect(loadConfig(['--backend', 'nvml'], { NODE_NAME: 'node-a' }, cwd).mockMigStateFile).toBeUndefined();
  });
  it('refuses a value that is not a boolean', () => {
    expect(() => loadConfig([], { NODE_NAME: 'node-a', GPULET_MIG_ENABLE: 'yes please' }, cwd)).toThrow(ConfigError);
  });
});
