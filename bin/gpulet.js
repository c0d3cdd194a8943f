#!/usr/bin/env node
// The `gpulet` command: runs the agent's bundle, as the container image does (npm run build emits dist/agent/).
import('../dist/agent/cli.js').catch((err) => {
  process.stderr.write(`gpulet: cannot load dist/agent/cli.js (run "npm run build"): ${err.message}\n`);
  process.exit(1);
});
