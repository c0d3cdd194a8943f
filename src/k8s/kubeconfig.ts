/**
 * Loading the Kubernetes client configuration for the three API modes (see `Config.kubeApi`).
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../errors.js';

/**
 * Build a `KubeConfig` from in-cluster service-account credentials, a kubeconfig file, or kubeconfig YAML
 * (the embedded API server's).
 * @throws ConfigError when the source cannot be read, naming it and what to check.
 */
export function loadKubeConfig(
  source: { mode: 'in-cluster' } | { mode: 'kubeconfig'; path: string } | { mode: 'yaml'; yaml: string },
): KubeConfig {
  const kc = new KubeConfig();
  try {
    switch (source.mode) {
      case 'in-cluster':
        if (!process.env['KUBERNETES_SERVICE_HOST']) {
          throw new Error('KUBERNETES_SERVICE_HOST is not set: not running in a pod; use --kube-api=kubeconfig');
        }
        kc.loadFromCluster();
        break;
      case 'kubeconfig':
        kc.loadFromFile(source.path);
        break;
      case 'yaml':
        kc.loadFromString(source.yaml);
        break;
    }
  } catch (err: unknown) {
    throw new ConfigError(`cannot load the Kubernetes client configuration (${source.mode}): ${errorMessage(err)}`, {
      cause: err,
    });
  }
  if (!kc.getCurrentCluster()) {
    throw new ConfigError(`the Kubernetes client configuration (${source.mode}) has no current cluster`);
  }
  return kc;
}
