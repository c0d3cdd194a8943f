/** The logger bounds identifiers from outside: a 3 MB claim UID never makes a 3 MB log line. */
import { describe, expect, it } from 'vitest';
import { createLogger, MAX_LOGGED_ID } from '../src/log.js';

/** A logger at `level` whose JSON lines are collected in `lines`. */
function capture(level: 'debug' | 'info' = 'debug') {
  const lines: string[] = [];
  const logger = createLogger(level, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

describe('createLogger', () => {
  it('cuts an identifier longer than the bound, noting its length, in a call and in a child binding', () => {
    const { logger, lines } = capture();
    const huge = 'u'.repeat(3 * 1024 * 1024);
    logger.warn({ claimUid: huge, err: 'bad' }, 'prepare failed for claim');
    logger.child({ claim: `ns/${huge}` }).info('child');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThan(1024);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first['claimUid']).toBe(`${'u'.repeat(MAX_LOGGED_ID)}… (${huge.length} characters)`);
    expect(first['err']).toBe('bad');
    const second = JSON.parse(lines[1]!) as Record<string, unknown>;
    expect(second['claim']).toBe(`ns/${'u'.repeat(MAX_LOGGED_ID - 3)}… (${huge.length + 3} characters)`);
  });

  it('keeps identifiers within the bound and every other field as they are', () => {
    const { logger, lines } = capture();
    const uid = '0b6f2c1e-5d1a-4c39-9a57-8d3e2f1a0001';
    logger.info({ claimUid: uid, device: 'gpu-0', count: 3 }, 'claim prepared');
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({ claimUid: uid, device: 'gpu-0', count: 3, service: 'gpulet', msg: 'claim prepared' });
  });
});
