#!/usr/bin/env node
// The `gpulet` command: runs the compiled agent (npm run build emits dist/).
import('../dist/src/cli.js').catch((err) => {
  process.stderr.write(`gpulet: cannot load dist/src/cli.js (run "npm run build"): ${err.message}\n`);
  process.exit(1);
});
