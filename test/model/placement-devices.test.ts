/**
 * The prepare-time device lookup of dynamic MIG (src/model/placement-devices.ts): a dynamic GPU's possible
 * placements resolve by their published names (NVIDIA's `gpu-<minor>-mig-<profile>-<giProfileId>-<start>`, built
 * here from the reference profile table independently), an existing instance wins over its placement, and a
 * static GPU has no placement devices.
 */
import { describe, expect, it } from 'vitest';
import { GPU_MODELS } from '../../src/gpu/mock/index.js';
import { possiblePlacements } from '../../src/model/mig-placements.js';
import { prepareDevicesByName } from '../../src/model/placement-devices.js';
import { geometryOf, nodeOf } from '../helpers/dynamic-mig.js';

describe('prepareDevicesByName', () => {
  it('lists every possible placement of a dynamic GPU under its published name, beside the existing devices', () => {
    const inv = nodeOf('h100-80gb', 2);
    const g = geometryOf('h100-80gb');
    const byName = prepareDevicesByName(inv, (gpu) => (gpu.minor === 0 ? g : undefined));
    const names = GPU_MODELS['h100-80gb'].migProfiles.flatMap((p) =>
      p.placementStarts.map((s) => `gpu-0-mig-${p.name.replaceAll('.', '').replace('+', '-')}-${p.id}-${s}`),
    );
    expect(names).toHaveLength(possiblePlacements(g).length);
    for (const n of names) expect(byName.get(n)?.kind, n).toBe('placement');
    expect(byName.get('gpu-0-mig-3g40gb-9-4')).toMatchObject({ kind: 'placement', placement: { start: 4, profile: { id: 9 } } });
    expect(byName.get('gpu-0')?.kind).toBe('gpu'); // MIG mode off: the GPU itself
    expect(byName.get('gpu-1')?.kind).toBe('gpu');
    expect([...byName.keys()].filter((n) => n.startsWith('gpu-1-mig-'))).toEqual([]); // static GPU: none
  });

  it('an existing instance resolves to the MIG device it is, not to its placement', () => {
    const g = geometryOf('h100-80gb');
    const at = possiblePlacements(g).find((p) => p.profile.name === '1g.10gb' && p.start === 6)!;
    const inv = nodeOf('h100-80gb', 1, [at]);
    const byName = prepareDevicesByName(inv, () => g);
    expect(byName.get('gpu-0-mig-1g10gb-19-6')?.kind).toBe('mig');
    expect(byName.get('gpu-0-mig-1g10gb-19-5')?.kind).toBe('placement');
    expect(byName.get('gpu-0')?.kind).toBe('whole-gpu'); // MIG mode on: handed out by turning MIG mode off at prepare
  });
});
