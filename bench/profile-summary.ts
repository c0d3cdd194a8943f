/**
 * Where an agent's CPU goes, from a V8 CPU profile (`node --cpu-prof`; for the soak:
 * `BENCH_NODE_FLAGS="--max-semi-space-size=8 --cpu-prof --cpu-prof-dir=<dir>" npm run bench -- --soak=3m`, the
 * profile is written when the agent exits). Self time summed per owner of the code: an npm package
 * (`node_modules/<pkg>`), a gpulet directory (`dist/src/<dir>`), Node's own JavaScript (`node:`), or V8's
 * pseudo-frames (`(garbage collector)`, `(program)`, `(idle)`), in millicores over the profile's span. The
 * bundle the image runs (dist/agent/) has no per-package URLs: profile tsc's output for this attribution
 * (`BENCH_AGENT_CLI=dist/src/cli.js`).
 * Usage: `tsx bench/profile-summary.ts <file.cpuprofile> [skipSeconds]` (skip the start-up).
 */
import fs from 'node:fs';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The owner of a frame (see the file doc). */
export function ownerOf(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1] ?? url;
  const src = /\/dist\/src\/(?:([^/]+)\/)?/.exec(url);
  if (src !== null) return `gpulet src/${src[1] ?? ''}`;
  if (url.startsWith('node:')) return 'node: (Node internals)';
  return url;
}

/** Self time per owner, µs, from `skipUs` after the start. */
export function summarize(p: Profile, skipUs = 0): { owners: Map<string, number>; spanUs: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const owners = new Map<string, number>();
  let t = p.startTime;
  let spanUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t - p.startTime < skipUs) continue;
    spanUs += dt;
    const node = byId.get(p.samples[i] ?? -1);
    if (node === undefined) continue;
    const owner = ownerOf(node.callFrame);
    owners.set(owner, (owners.get(owner) ?? 0) + dt);
  }
  return { owners, spanUs };
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [skipSeconds]');
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const { owners, spanUs } = summarize(profile, Number(process.argv[3] ?? '0') * 1e6);
  const busy = [...owners].filter(([o]) => o !== '(idle)').reduce((a, [, us]) => a + us, 0);
  console.log(`span ${(spanUs / 1e6).toFixed(1)} s, busy ${(busy / 1e3).toFixed(0)} ms = ${((busy / spanUs) * 1000).toFixed(1)} millicores`);
  for (const [owner, us] of [...owners].sort((a, b) => b[1] - a[1])) {
    if (owner === '(idle)') continue;
    console.log(`${((us / spanUs) * 1000).toFixed(2).padStart(7)} millicores  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${owner}`);
  }
}
