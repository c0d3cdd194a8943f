/**
 * `npm start`: the gpulet command (src/command.ts, the same flags, environment variables, defaults and exit
 * codes as the production `gpulet`) with the development tool the production command lacks injected: the
 * embedded API server (dev/embedded.ts) that the default `--kube-api=embedded` runs against. With the defaults:
 * a mock dgx-h100, the embedded API server, and everything under ./.gpulet/.
 */
import { runMain } from '../src/command.js';
import { embeddedApiProvider } from './embedded.js';

runMain(process.argv.slice(2), { embeddedApi: embeddedApiProvider });
