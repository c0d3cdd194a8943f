/**
 * The production `gpulet` command: what bin/gpulet.js and the container run, bundled (`node dist/agent/cli.js`,
 * scripts/bundle.ts). It is the command of src/command.ts with nothing added: no development tool is reachable
 * from here, so `--kube-api=embedded` (the configuration default, kept for `npm start`) exits 2 saying to use
 * `npm start` or `--kube-api=in-cluster|kubeconfig`. `npm start` runs dev/start.ts, the same command with the embedded API
 * server injected.
 */
import { runMain } from './command.js';

runMain(process.argv.slice(2));
