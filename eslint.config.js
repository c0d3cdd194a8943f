// ESLint flat config: typed rules that catch the bugs an agent must not have, and the layers of src/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// ---- Layers of src/: who may import whom (proven by test/repo/layers.test.ts) ----
// Checked on import specifiers as written. src/ uses relative specifiers only (no path aliases), so from a file
// at any depth "(../)+X/" is src/X/ (no directory inside a layer is named like another layer). Static imports,
// re-exports and `import type` go through no-restricted-imports; `import()` and `import('…').T` types, which
// that rule does not see, through no-restricted-syntax with the same patterns.
const UP = String.raw`^(?:\.\./)+`;
/** Everything in src/: the agent ships without dev/, test/ and bench/ (the image has no dev/). */
const SRC_RULES = [
  {
    regex: UP + String.raw`(?:dev|test|bench)/`,
    message:
      'src/ never imports dev/, test/ or bench/: the agent ships without them. Inject a development tool from ' +
      'dev/ instead (as dev/start.ts injects the embedded API server through src/k8s/embedded-api.ts).',
  },
];
/** Per layer, on top of SRC_RULES. The layers' globs do not overlap. */
const LAYERS = [
  {
    files: ['src/gpu/**'],
    rules: [
      {
        regex: UP + String.raw`(?:model|dra|state|telemetry|k8s)/|` + UP + String.raw`(?:main|cli|command)\.js$`,
        message:
          'src/gpu is the bottom layer (GPU backends, inventory, health): it imports nothing of src/model, src/dra, ' +
          'src/state, src/telemetry, src/k8s or the composition root; only itself and the shared leaves (errors, ' +
          'log, config, util).',
      },
    ],
  },
  {
    // src/model is flat: "../" leaves it.
    files: ['src/model/**'],
    rules: [
      {
        regex: String.raw`^\.\./(?!gpu/types\.js$)`,
        message: 'src/model (the device model every pipeline shares) imports only src/gpu/types.ts and itself.',
      },
    ],
  },
  {
    files: ['src/userspace/**'],
    rules: [
      {
        regex: UP + String.raw`(?:gpu|model|dra|state|telemetry|k8s)/|` + UP + String.raw`(?:main|cli|command)\.js$`,
        message:
          "src/userspace (the driver's userspace for containers: ld cache, driver files, the toolkit's spec) imports " +
          'only itself and the shared leaves (errors, log, config, util): the claim state (src/state) uses it, not the reverse.',
      },
    ],
  },
  {
    files: ['src/telemetry/**'],
    rules: [
      {
        regex: UP + String.raw`(?:dra|state)/`,
        message:
          'src/telemetry imports neither the DRA driver (src/dra/kubelet, src/dra/slices) nor src/state: it reads ' +
          'the device model (src/model) and gets claim ownership injected.',
      },
    ],
  },
  {
    files: ['src/dra/slices/**'],
    rules: [
      {
        regex: UP + String.raw`(?:dra/)?kubelet/`,
        message: 'src/dra/slices (the ResourceSlice publisher) never imports src/dra/kubelet (the kubelet plugin): they share src/model.',
      },
    ],
  },
  {
    files: ['src/dra/kubelet/**'],
    rules: [
      {
        regex: UP + String.raw`(?:dra/)?slices/`,
        message: 'src/dra/kubelet (the kubelet plugin) never imports src/dra/slices (the ResourceSlice publisher): they share src/model.',
      },
    ],
  },
  {
    files: ['src/dra/claim-status/**'],
    rules: [
      {
        regex: UP + String.raw`(?:state|telemetry)/|` + UP + String.raw`(?:dra/)?(?:kubelet|slices)/`,
        message:
          "src/dra/claim-status (the claims' status.devices) imports neither src/state, src/telemetry, src/dra/kubelet " +
          'nor src/dra/slices: it wraps the ClaimPreparer port of src/model/types.ts and reads the inventory.',
      },
    ],
  },
];

/**
 * The two rules enforcing `restrictions` ({ regex, message }[]). esquery regex literals cannot contain "/",
 * so the selectors spell it \x2F.
 */
function importRules(restrictions) {
  const literal = (regex) => `/${regex.replaceAll('/', String.raw`\x2F`)}/`;
  return {
    'no-restricted-imports': ['error', { patterns: restrictions.map(({ regex, message }) => ({ regex, message })) }],
    'no-restricted-syntax': [
      'error',
      ...restrictions.flatMap(({ regex, message }) => [
        { selector: `ImportExpression[source.value=${literal(regex)}]`, message },
        { selector: `TSImportType[argument.literal.value=${literal(regex)}]`, message },
      ]),
    ],
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', '.gpulet/**', 'native/**', 'bin/**', 'eslint.config.js', 'stryker.config.mjs', '.stryker-tmp/**', 'reports/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/main.ts', 'src/cli.ts', 'dev/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  { files: ['src/**'], rules: importRules(SRC_RULES) },
  ...LAYERS.map((layer) => ({ files: layer.files, rules: importRules([...SRC_RULES, ...layer.rules]) })),
  {
    files: ['test/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
