/**
 * The ld.so.cache parser against glibc's own reader: `ldconfig -p` of this machine prints every entry of
 * /etc/ld.so.cache as `<soname> (<type>,<arch>...) => <path>`; the parser must give the same pairs, in the same
 * order, and the libc6/x86-64 flags for entries printed as such. Malformed input is refused with a reason,
 * never read out of bounds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { archFlag, isLibc6Of, LD_CACHE_MAX_BYTES, LdCacheFormatError, parseLdCache } from '../../src/userspace/ld-cache.js';

const ldconfig = ['/sbin/ldconfig', '/usr/sbin/ldconfig'].find((p) => existsSync(p));
const hasCache = existsSync('/etc/ld.so.cache') && ldconfig !== undefined;

describe('parseLdCache', () => {
  it.skipIf(!hasCache)('reads /etc/ld.so.cache as `ldconfig -p` prints it', () => {
    const printed = spawnSync(ldconfig!, ['-p'], { encoding: 'utf8' }).stdout.split('\n').slice(1);
    const expected = printed.flatMap((l) => {
      const m = /^\s+(\S+) \(([^)]*)\) => (\S+)$/.exec(l);
      return m ? [{ soname: m[1] ?? '', path: m[3] ?? '', kind: m[2] ?? '' }] : [];
    });
    const entries = parseLdCache(readFileSync('/etc/ld.so.cache'));
    expect(expected.length).toBeGreaterThan(10);
    expect(entries.map((e) => [e.soname, e.path])).toEqual(expected.map((e) => [e.soname, e.path]));
    const flag = archFlag(process.arch);
    if (process.arch === 'x64' && flag !== undefined) {
      entries.forEach((e, i) => expect(isLibc6Of(e, flag), `${e.soname}: ${expected[i]?.kind}`).toBe(expected[i]?.kind.startsWith('libc6,x86-64') ?? false));
    }
  });

  it('refuses what is not a cache, truncated, or pointing outside the file', () => {
    expect(() => parseLdCache(Buffer.from('hello world, this is not a cache at all, no'))).toThrow(LdCacheFormatError);
    const header = Buffer.alloc(48);
    header.write('glibc-ld.so.cache1.1', 0, 'latin1');
    header.writeUInt32LE(1000, 20); // 1000 entries that are not there
    expect(() => parseLdCache(header)).toThrow(/1000 entries do not fit/);
    const one = Buffer.concat([header, Buffer.alloc(24)]);
    one.writeUInt32LE(1, 20);
    one.writeInt32LE(0x0303, 48);
    one.writeUInt32LE(5000, 52); // key offset outside the file
    expect(() => parseLdCache(one)).toThrow(/outside the file/);
    const old = Buffer.alloc(32);
    old.write('ld.so-1.7.0', 0, 'latin1');
    expect(() => parseLdCache(old)).toThrow(/old ld\.so-1\.7\.0 format/);
    expect(() => parseLdCache(Buffer.alloc(LD_CACHE_MAX_BYTES + 1))).toThrow(/more than/);
  });

  it('reads an entry built by hand: strings counted from the new header, after an old-format part', () => {
    const strings = Buffer.from('libcuda.so.1\0/usr/lib/libcuda.so.1\0');
    const neu = Buffer.alloc(48 + 24);
    neu.write('glibc-ld.so.cache1.1', 0, 'latin1');
    neu.writeUInt32LE(1, 20);
    neu.writeInt32LE(0x0303, 48);
    neu.writeUInt32LE(neu.length, 52);
    neu.writeUInt32LE(neu.length + 13, 56);
    const old = Buffer.alloc(16 + 12); // old header with one 12-byte entry, 28 bytes → new part aligned at 32
    old.write('ld.so-1.7.0', 0, 'latin1');
    old.writeUInt32LE(1, 12);
    const file = Buffer.concat([old, Buffer.alloc(4), neu, strings]);
    expect(parseLdCache(file)).toEqual([{ soname: 'libcuda.so.1', path: '/usr/lib/libcuda.so.1', flags: 0x0303 }]);
  });
});
