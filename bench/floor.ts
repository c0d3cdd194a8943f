/**
 * The I/O floor of a prepare: its fsync'd atomic writes (write temp + fsync + rename + fsync dir; three per
 * prepare: checkpoint, CDI spec, checkpoint) in the agent's own temp dir, with the project's `writeFileAtomic` (src/state/atomic-file.ts), the primitive the
 * checkpoint and the CDI writer use. Payloads are of the size those files have (a few KiB of JSON).
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../src/state/atomic-file.js';
import { timeAsync } from './stats.js';

/**
 * Time `rounds` rounds of atomic writes (after 5 warm-up rounds) under `<dir>/floor/`, removed afterwards.
 * Writes alternate checkpoint, spec, checkpoint, ... as a prepare does.
 * @param writes atomic writes per round (3 = a prepare's; 2 = the "two fsyncs")
 * @returns ms per round (raw samples)
 * @throws the fs error when the dir is not writable
 */
export async function measureWriteFloor(dir: string, rounds: number, writes = 2): Promise<number[]> {
  const floorDir = path.join(dir, 'floor');
  fs.mkdirSync(floorDir, { recursive: true });
  const checkpoint = JSON.stringify({ apiVersion: 'gpulet.dev/v1', claims: { x: 'y'.repeat(1500) } });
  const spec = JSON.stringify({ cdiVersion: '0.5.0', kind: 'k8s.gpu.gpulet.dev/claim', devices: 'z'.repeat(2500) }, null, 2);
  try {
    const samples = await timeAsync(async (i) => {
      for (let w = 0; w < writes; w++) {
        await writeFileAtomic(path.join(floorDir, w % 2 === 0 ? 'checkpoint.json' : `spec-${i}.json`), w % 2 === 0 ? checkpoint : spec, 0o600);
      }
    }, { warmup: 5, runs: rounds });
    return samples;
  } finally {
    fs.rmSync(floorDir, { recursive: true, force: true });
  }
}
