/**
 * The layers of src/ that eslint.config.js enforces, proven on the real config through ESLint's Node API: a
 * small source placed (by `filePath`, never written) in each layer, with one import each, is linted with the
 * repository's config; every forbidden import — static, re-export, `import type`, `import()` and
 * `import('…').T` — must be reported by the layer rules, and every allowed one must not. Then the same rules
 * on the real src/ tree report nothing (what `npm run lint` checks too, with the typed rules).
 *
 * The rules: src/gpu imports nothing of src/model, src/dra, src/state, src/telemetry, src/k8s or the composition
 * root; src/model imports only src/gpu/types.ts and itself; src/telemetry imports neither src/dra nor src/state;
 * src/userspace imports only itself and the shared leaves; src/dra/slices and src/dra/kubelet never import each
 * other; src/dra/claim-status imports neither src/state, src/telemetry, src/dra/kubelet nor src/dra/slices;
 * nothing in src/ imports dev/, test/ or bench/.
 */
import path from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/repo.js';

/** The rules that implement the layers (the typed rules are left out: they need a type-checked program). */
const LAYER_RULES = new Set(['no-restricted-imports', 'no-restricted-syntax']);

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({
    cwd: REPO_ROOT,
    overrideConfigFile: path.join(REPO_ROOT, 'eslint.config.js'),
    // Sources linted here exist only in memory: parse them without the project service.
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
    ruleFilter: ({ ruleId }) => LAYER_RULES.has(ruleId),
  });
});

/** Messages of the layer rules for `source` placed at `file` (relative to the repository root). */
async function layerMessages(file: string, source: string): Promise<Array<{ ruleId: string | null; message: string }>> {
  const [result] = await eslint.lintText(`${source}\n`, { filePath: path.join(REPO_ROOT, file) });
  expect(result, `${file} is linted (not ignored)`).toBeDefined();
  expect(result!.messages.filter((m) => m.fatal === true), `${file} parses`).toEqual([]);
  return result!.messages.map((m) => ({ ruleId: m.ruleId, message: m.message }));
}

/** [file the source is placed at, source, what the message must say]. */
type Forbidden = readonly [string, string, RegExp];
/** [file, source]. */
type Allowed = readonly [string, string];

const FORBIDDEN: readonly Forbidden[] = [
  // src/gpu: the bottom layer.
  ['src/gpu/x.ts', "import type { ClaimRef } from '../model/types.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/nvml/x.ts', "import { startKubeletPlugin } from '../../dra/kubelet/plugin.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/mock/x.ts', "import { SlicePublisher } from '../../dra/slices/publisher.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/x.ts', "import { ClaimManager } from '../state/claims.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/x.ts', "export { startTelemetry } from '../telemetry/exporters.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/x.ts', "import { loadKubeConfig } from '../k8s/kubeconfig.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/x.ts', "import { startAgent } from '../main.js';", /src\/gpu is the bottom layer/],
  ['src/gpu/nvml/x.ts', "export const m = (): Promise<unknown> => import('../../model/devices.js');", /src\/gpu is the bottom layer/],
  // src/model: only src/gpu/types and itself.
  ['src/model/x.ts', "import { HealthTracker } from '../gpu/health.js';", /src\/model .* imports only src\/gpu\/types\.ts/],
  ['src/model/x.ts', "import { ConfigError } from '../errors.js';", /src\/model .* imports only src\/gpu\/types\.ts/],
  ['src/model/x.ts', "import type { Telemetry } from '../telemetry/exporters.js';", /src\/model .* imports only src\/gpu\/types\.ts/],
  ['src/model/x.ts', "import { createMockBackend } from '../gpu/mock/index.js';", /src\/model .* imports only src\/gpu\/types\.ts/],
  // src/telemetry: no DRA driver, no claim state.
  ['src/telemetry/x.ts', "import { startKubeletPlugin } from '../dra/kubelet/plugin.js';", /src\/telemetry imports neither/],
  ['src/telemetry/x.ts', "import { buildResourceSlices } from '../dra/slices/build.js';", /src\/telemetry imports neither/],
  ['src/telemetry/x.ts', "import type { ClaimManager } from '../state/claims.js';", /src\/telemetry imports neither/],
  ['src/telemetry/x.ts', "type P = import('../dra/kubelet/plugin.js').KubeletPlugin;", /src\/telemetry imports neither/],
  // src/userspace: only itself and the shared leaves; the claim state uses it, not the reverse.
  ['src/userspace/x.ts', "import { buildCdiSpec } from '../state/cdi.js';", /src\/userspace .* imports only itself/],
  ['src/userspace/x.ts', "import type { Inventory } from '../gpu/types.js';", /src\/userspace .* imports only itself/],
  ['src/userspace/x.ts', "import type { AllocatableDevice } from '../model/devices.js';", /src\/userspace .* imports only itself/],
  ['src/userspace/x.ts', "const m = await import('../main.js');", /src\/userspace .* imports only itself/],
  // src/dra/slices and src/dra/kubelet: neither imports the other.
  ['src/dra/slices/x.ts', "import { startKubeletPlugin } from '../kubelet/plugin.js';", /src\/dra\/slices .* never imports src\/dra\/kubelet/],
  ['src/dra/kubelet/x.ts', "import { buildResourceSlices } from '../slices/build.js';", /src\/dra\/kubelet .* never imports src\/dra\/slices/],
  ['src/dra/kubelet/x.ts', "export * from '../slices/plan.js';", /src\/dra\/kubelet .* never imports src\/dra\/slices/],
  // src/dra/claim-status: none of the claim state, telemetry, the kubelet plugin, the publisher.
  ['src/dra/claim-status/x.ts', "import { Preparer } from '../../state/preparer.js';", /src\/dra\/claim-status .* imports neither src\/state/],
  ['src/dra/claim-status/x.ts', "import { startKubeletPlugin } from '../kubelet/plugin.js';", /src\/dra\/claim-status .* imports neither src\/state/],
  ['src/dra/claim-status/x.ts', "import type { SliceSpec } from '../slices/build.js';", /src\/dra\/claim-status .* imports neither src\/state/],
  ['src/dra/claim-status/x.ts', "type T = import('../../telemetry/exporters.js').Telemetry;", /src\/dra\/claim-status .* imports neither src\/state/],
  // Nothing in src/ imports dev/, test/ or bench/ — also from inside a layer, and dynamically.
  ['src/main.ts', "const { startEmbeddedApi } = await import('../dev/embedded.js');", /src\/ never imports dev\//],
  ['src/cli.ts', "import { embeddedApiProvider } from '../dev/embedded.js';", /src\/ never imports dev\//],
  ['src/x.ts', "export { REPO_ROOT } from '../test/helpers/repo.js';", /src\/ never imports dev\//],
  ['src/x.ts', "type E = import('../dev/embedded.js').EmbeddedApi;", /src\/ never imports dev\//],
  ['src/state/x.ts', "import { startApiServer } from '../../dev/apiserver/server.js';", /src\/ never imports dev\//],
  ['src/gpu/nvml/x.ts', "import '../../../bench/stats.js';", /src\/ never imports dev\//],
  ['src/model/x.ts', "import type { KubeObject } from '../../dev/apiserver/types.js';", /src\/ never imports dev\//],
];

const ALLOWED: readonly Allowed[] = [
  ['src/gpu/x.ts', "import type { Config } from '../config.js';"],
  ['src/gpu/mock/x.ts', "import type { GpuBackend } from '../types.js';"],
  ['src/gpu/nvml/x.ts', "import { BackendError } from '../../errors.js';"],
  ['src/gpu/x.ts', "import { backoffDelay } from '../util/backoff.js';"],
  ['src/gpu/nvml/x.ts', "import { NvmlError } from './nvml-error.js';"],
  ['src/model/x.ts', "import type { GpuInfo } from '../gpu/types.js';"],
  ['src/model/x.ts', "import { deviceName } from './devices.js';"],
  ['src/model/x.ts', "import { z } from 'zod';"],
  ['src/telemetry/x.ts', "import { deviceName } from '../model/devices.js';"],
  ['src/telemetry/x.ts', "import { HealthTracker } from '../gpu/health.js';"],
  ['src/dra/slices/x.ts', "import { deviceName } from '../../model/devices.js';"],
  ['src/dra/kubelet/x.ts', "import type { ClaimRef } from '../../model/types.js';"],
  ['src/dra/kubelet/x.ts', "import { registrationSocket } from './sockets.js';"],
  ['src/dra/claim-status/x.ts', "import { devicesByName } from '../../model/devices.js';"],
  ['src/dra/claim-status/x.ts', "import type { Inventory } from '../../gpu/types.js';"],
  ['src/main.ts', "import { withClaimStatus } from './dra/claim-status/preparer.js';"],
  ['src/main.ts', "import { SlicePublisher } from './dra/slices/publisher.js';"],
  ['src/main.ts', "const { loadKubeConfig } = await import('./k8s/kubeconfig.js');"],
  ['src/cli.ts', "import { runMain } from './command.js';"],
  ['src/userspace/x.ts', "import { CdiError } from '../errors.js';"],
  ['src/userspace/x.ts', "import type { DriverUserspaceMode } from '../config.js';"],
  ['src/state/x.ts', "import type { UserspaceEdits } from '../userspace/edits.js';"],
  // Outside src/ the layers do not apply: dev/ and tests use src/ and dev/ freely.
  ['dev/x.ts', "import { startAgent } from '../src/main.js';\nimport { startApiServer } from './apiserver/server.js';"],
  ['test/x.ts', "import { embeddedApiProvider } from '../dev/embedded.js';"],
];

describe('layers of src/ (eslint.config.js)', () => {
  it.each(FORBIDDEN)('%s: %s is reported', async (file, source, says) => {
    const messages = await layerMessages(file, source);
    expect(messages.length, 'reported').toBeGreaterThan(0);
    expect(messages.map((m) => m.message).filter((m) => says.test(m)), JSON.stringify(messages)).toHaveLength(1);
  });

  it.each(ALLOWED)('%s: %s is allowed', async (file, source) => {
    expect(await layerMessages(file, source)).toEqual([]);
  });

  it('the real src/ tree keeps to them', async () => {
    const results = await eslint.lintFiles(['src/**/*.ts']);
    expect(results.length).toBeGreaterThan(50);
    const reported = results.flatMap((r) => r.messages.map((m) => `${path.relative(REPO_ROOT, r.filePath)}:${m.line}: ${m.message}`));
    expect(reported).toEqual([]);
  });
});
