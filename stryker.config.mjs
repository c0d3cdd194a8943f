// Mutation testing of the decision-making core (`npm run mutate`, docs/testing.md). Stryker mutates the modules
// below and runs the unit tests of vitest.mutate.config.ts against each mutant; a mutant no test kills is a
// behaviour no test pins. Iterate on one file: `npm run mutate -- --mutate src/state/cdi.ts`.
// Reports and the incremental file are under reports/mutation/ (gitignored).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutate.config.ts' },
  mutate: [
    'src/dra/slices/build.ts',
    'src/dra/slices/plan.ts',
    'src/dra/slices/limits.ts',
    'src/dra/slices/semver.ts',
    'src/state/allocation.ts',
    'src/state/cdi.ts',
    'src/state/checkpoint.ts',
    'src/state/checkpoint-entry.ts',
    'src/state/checkpoint-file.ts',
    'src/gpu/health.ts',
    'src/state/ownership.ts',
    'src/telemetry/attributes.ts',
    'src/model/mig-counters.ts',
    'src/model/mig-placements.ts',
    'src/model/placement-devices.ts',
    'src/state/opaque-config.ts',
    'src/model/names.ts',
    'src/model/claim-ref.ts',
  ],
  // The sandbox is a copy of the repository less these (build/ is a symlink to the native addon's build).
  ignorePatterns: ['/build', '/dist', '/.gpulet', '/test/upstream', '/test/fixtures/build', '/native', '/bench', '/reports'],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 20_000,
  timeoutFactor: 3,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'html', 'json', 'progress'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true, reportMutants: true },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  thresholds: { high: 90, low: 80, break: null },
};
