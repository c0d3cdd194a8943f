import { defineConfig } from 'vitest/config';

/**
 * The unit tests that Stryker runs against each mutant (stryker.config.mjs, `npm run mutate`): pure tests of
 * the decision-making core, in-process, no agent, no sockets, no upstream cluster. With Stryker's `related`
 * (default on) a mutant runs only the files here that import its module; per-test coverage narrows it further.
 */
export default defineConfig({
  test: {
    include: [
      'test/dra/slices/build.test.ts',
      'test/dra/slices/build-checks.test.ts',
      'test/dra/slices/plan.test.ts',
      'test/dra/slices/semver.test.ts',
      'test/dra/slices/dynamic-mig.test.ts',
      'test/dra/slices/addressing-mode.test.ts',
      'test/dra/slices/taints.test.ts',
      'test/state/cdi.test.ts',
      'test/state/allocation.test.ts',
      'test/state/opaque-config.test.ts',
      'test/state/checkpoint.test.ts',
      'test/state/checkpoint-file.test.ts',
      'test/state/checkpoint-entry.test.ts',
      'test/state/checkpoint-mig.test.ts',
      'test/state/ownership.test.ts',
      'test/gpu/health.test.ts',
      'test/telemetry/attributes.test.ts',
      'test/telemetry/dcgm.test.ts',
      'test/telemetry/observe.test.ts',
      'test/model/*.test.ts',
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
