/**
 * Writes a glibc dynamic-linker cache (`/etc/ld.so.cache`) for fake driver roots in tests, in the new format
 * only (`glibc-ld.so.cache1.1`, what glibc 2.32+ `ldconfig` writes by default), as glibc's `elf/cache.c`
 * (`save_cache`) lays it out and its `sysdeps/generic/dl-cache.h` declares it:
 * - header of 48 bytes: the 20-byte magic `glibc-ld.so.cache` + `1.1`, `nlibs` u32, `len_strings` u32,
 *   `flags` u8 (2 = little-endian) + 3 bytes padding, `extension_offset` u32 (0: none), 3 × u32 unused;
 * - `nlibs` entries of 24 bytes (`flags` i32, `key` u32, `value` u32, `osversion` u32, `hwcap` u64), `key` and
 *   `value` being offsets of the soname and path strings counted from the header's start;
 * - the strings, NUL-terminated.
 * Glibc's own reader accepts the result (`ldconfig -p -C <file>`: test/deploy/userspace-mounts.test.ts), so
 * the fake cache is not just one gpulet's parser agrees with itself about.
 */
import { FLAG_ELF_LIBC6, FLAG_X8664_LIB64 } from '../../src/userspace/ld-cache.js';

/** One entry: `soname` → `path`, flags default to an x86-64 glibc library (`libc6,x86-64`). */
export interface LdCacheInput {
  readonly soname: string;
  readonly path: string;
  readonly flags?: number;
}

const MAGIC = 'glibc-ld.so.cache1.1';
const HEADER_BYTES = 48;
const ENTRY_BYTES = 24;

/** The bytes of a cache holding `entries`, in the order given (ldconfig sorts by soname; callers may too). */
export function buildLdCache(entries: readonly LdCacheInput[]): Buffer {
  const stringsStart = HEADER_BYTES + entries.length * ENTRY_BYTES;
  const strings: Buffer[] = [];
  let offset = stringsStart;
  const add = (s: string): number => {
    const b = Buffer.from(`${s}\0`, 'utf8');
    strings.push(b);
    const at = offset;
    offset += b.length;
    return at;
  };
  const head = Buffer.alloc(stringsStart);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(entries.length, 20);
  entries.forEach((e, i) => {
    const at = HEADER_BYTES + i * ENTRY_BYTES;
    head.writeInt32LE(e.flags ?? (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64), at);
    head.writeUInt32LE(add(e.soname), at + 4);
    head.writeUInt32LE(add(e.path), at + 8);
  });
  head.writeUInt32LE(offset - stringsStart, 24);
  head.writeUInt8(2, 28);
  return Buffer.concat([head, ...strings]);
}
