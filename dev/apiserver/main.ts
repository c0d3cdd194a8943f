/**
 * Standalone embedded API server, for debugging: `npx tsx dev/apiserver/main.ts [--port N] [--kubeconfig PATH]
 * [--node NAME ...]`. Prints the URL and the kubeconfig path, then serves until SIGINT/SIGTERM.
 * Use it with `kubectl --kubeconfig <path> get resourceslices`.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { startApiServer } from './server.js';

const program = new Command()
  .name('embedded-apiserver')
  .description('Start the gpulet embedded Kubernetes API server (development only).')
  .option('--host <host>', 'listen address', '127.0.0.1')
  .option('--port <port>', 'listen port (0 = a free port)', '0')
  .option('--kubeconfig <path>', 'where to write the kubeconfig', join(process.cwd(), '.gpulet', 'kubeconfig'))
  .option('--node <name...>', 'Node objects to create', [])
  .parse();

const opts = program.opts<{ host: string; port: string; kubeconfig: string; node: string[] }>();
const port = Number(opts.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port must be an integer in 0..65535, got ${opts.port}`);
  process.exit(2);
}
const server = await startApiServer({ host: opts.host, port, kubeconfigPath: opts.kubeconfig, nodes: opts.node });
console.log(`embedded API server listening on ${server.url}`);
console.log(`kubeconfig: ${opts.kubeconfig}`);
console.log(`try: kubectl --kubeconfig ${opts.kubeconfig} get nodes`);
const stop = (): void => {
  void server.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
