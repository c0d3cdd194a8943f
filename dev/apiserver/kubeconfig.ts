/**
 * Kubeconfig for the embedded server (pure). Plain `http://` with `insecure-skip-tls-verify: true`: kubectl
 * accepts it, and @kubernetes/client-node 2.x accepts an `http:` server only when `skipTLSVerify` is set
 * (`KubeConfig.createAgent`: "HTTP protocol is not allowed when skipTLSVerify is not set or false").
 * The user is a dummy bearer token (the embedded server does not authenticate).
 */
import { stringify } from 'yaml';

/** Names used in the generated kubeconfig. */
export const KUBECONFIG_NAMES = { cluster: 'gpulet-embedded', user: 'gpulet-dev', context: 'gpulet-embedded' } as const;

/** Kubeconfig YAML (`apiVersion: v1`, `kind: Config`) for `serverUrl` with default namespace `default`. */
export function buildKubeconfig(serverUrl: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: KUBECONFIG_NAMES.cluster, cluster: { server: serverUrl, 'insecure-skip-tls-verify': true } }],
    users: [{ name: KUBECONFIG_NAMES.user, user: { token: 'gpulet-embedded-dev-token' } }],
    contexts: [
      { name: KUBECONFIG_NAMES.context, context: { cluster: KUBECONFIG_NAMES.cluster, user: KUBECONFIG_NAMES.user, namespace: 'default' } },
    ],
    'current-context': KUBECONFIG_NAMES.context,
    preferences: {},
  });
}
