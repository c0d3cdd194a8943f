/**
 * What both flows of `npm run demo` print (dev/demo.ts simulated, dev/demo-cluster.ts on the upstream cluster):
 * numbered steps, indented blocks, the node's ResourceSlices and the /metrics series of chosen GPUs.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ResourceV1Api } from '@kubernetes/client-node';

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let stepNo = 0;

/** Print a numbered step heading ("── 3. title"). */
export function step(title: string): void {
  stepNo += 1;
  console.log(`\n${bold(`── ${stepNo}. ${title}`)}`);
}

/** `text` with every line indented by three spaces. */
export const indent = (text: string): string => text.replace(/^/gm, '   ');

/** Print the final line. */
export function done(hint: string): void {
  console.log(`\n${bold('done.')} ${hint}`);
}

/** List and print the ResourceSlices of `nodeName` (`kubectl get resourceslices`): one line per device. */
export async function printSlices(kc: KubeConfig, nodeName: string): Promise<void> {
  const api = kc.makeApiClient(ResourceV1Api);
  const slices = await api.listResourceSlice({ fieldSelector: `spec.nodeName=${nodeName}` });
  for (const s of slices.items) {
    console.log(indent(`${s.metadata?.name ?? ''}  pool ${s.spec.pool.name} generation ${s.spec.pool.generation}, ${s.spec.devices?.length ?? 0} devices`));
    for (const d of s.spec.devices ?? []) {
      const a = d.attributes ?? {};
      const type = a['type']?.string ?? '';
      const what = type === 'mig' ? a['profile']?.string ?? '' : a['productName']?.string ?? '';
      const taints = (d.taints ?? []).map((t) => `${t.key}=${t.value ?? ''}:${t.effect}`).join(',');
      console.log(indent(`  ${d.name.padEnd(24)} ${type.padEnd(4)} ${what.padEnd(22)} memory ${String(d.capacity?.['memory']?.value ?? '')}${taints ? `  taints ${taints}` : ''}`));
    }
  }
}

/**
 * GET `<metricsUrl>/metrics` and print, for the devices with these UUIDs, one line per headline series with
 * the labels that say whose device it is (the pod and the claim holding it).
 */
export async function printMetrics(metricsUrl: string, uuids: readonly string[]): Promise<void> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text();
  const lines = text.split('\n').filter((l) => !l.startsWith('#') && uuids.some((u) => l.includes(u)) &&
    /^(hw_gpu_utilization\{.*general|hw_gpu_memory_usage|hw_power|hw_temperature\{.*hw_sensor_location="gpu")/.test(l));
  const label = (l: string, k: string) => new RegExp(`${k}="([^"]*)"`).exec(l)?.[1] ?? '';
  for (const l of lines) {
    const name = l.slice(0, l.indexOf('{'));
    console.log(indent(`${name.padEnd(20)} ${label(l, 'gpulet_dra_device_name').padEnd(6)} pod=${label(l, 'k8s_pod_name')} ` +
      `claim=${label(l, 'gpulet_claim_namespace')}/${label(l, 'gpulet_claim_name')}  ${l.slice(l.lastIndexOf(' ') + 1)}`));
  }
  console.log(indent(`(${text.split('\n').filter((l) => l && !l.startsWith('#')).length} series in all)`));
}
