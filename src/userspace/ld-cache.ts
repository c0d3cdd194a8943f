/**
 * Parser of glibc's dynamic-linker cache, `/etc/ld.so.cache` (what `ldconfig -p` prints). Pure: takes the
 * file's bytes, no I/O (the reader is `host-scan.ts`, which bounds the size by {@link LD_CACHE_MAX_BYTES}).
 *
 * Format (glibc `sysdeps/generic/dl-cache.h`, `elf/dl-cache.c` `_dl_load_cache_lookup`):
 * - new format, written alone by glibc ≥ 2.32: header `struct cache_file_new` of 48 bytes — magic
 *   `glibc-ld.so.cache` + version `1.1` (20 bytes), `nlibs` u32, `len_strings` u32, `flags` u8 + 3 bytes padding,
 *   `extension_offset` u32, 3 × u32 unused — then `nlibs` × `struct file_entry_new` of 24 bytes (`flags` i32,
 *   `key` u32, `value` u32, `osversion` u32, `hwcap` u64). `key` (the soname) and `value` (the path) are offsets
 *   of NUL-terminated strings, counted from the start of the new-format header.
 * - old format (`ld.so-1.7.0`: 11 bytes of magic, `nlibs` u32 at offset 12, 12-byte `struct file_entry`s),
 *   which older glibc writes in front of the new one: skipped, and the new part found right after its
 *   entries (aligned to 8 bytes, `ALIGN_CACHE`); a file with only the old format is refused.
 * Entry flags: `FLAG_ELF_LIBC6` = 0x0003 in the low byte (`FLAG_TYPE_MASK` 0x00ff); the architecture in
 * `FLAG_REQUIRED_MASK` 0xff00, e.g. `FLAG_X8664_LIB64` = 0x0300, `FLAG_AARCH64_LIB64` = 0x0a00.
 * Byte order is the machine's (little-endian on x86-64 and arm64, the only ones read here).
 */

/** Largest cache read, bytes. A distribution's cache with thousands of libraries is a few hundred KiB. */
export const LD_CACHE_MAX_BYTES = 16 * 1024 * 1024;

const NEW_MAGIC = 'glibc-ld.so.cache1.1';
const OLD_MAGIC = 'ld.so-1.7.0';
const NEW_HEADER_BYTES = 48;
const NEW_ENTRY_BYTES = 24;
const OLD_HEADER_BYTES = 16;
const OLD_ENTRY_BYTES = 12;

/** `FLAG_ELF_LIBC6`: an ELF library for glibc. */
export const FLAG_ELF_LIBC6 = 0x0003;
/** `FLAG_X8664_LIB64`: x86-64. */
export const FLAG_X8664_LIB64 = 0x0300;
/** `FLAG_AARCH64_LIB64`: AArch64. */
export const FLAG_AARCH64_LIB64 = 0x0a00;

/** One entry: `soname` → `path`, as `ldconfig -p` prints `<soname> (<flags>) => <path>`. */
export interface LdCacheEntry {
  /** The library's soname (or file name), e.g. `libcuda.so.1`. */
  readonly soname: string;
  /** Absolute path in the filesystem the cache describes, e.g. `/lib/x86_64-linux-gnu/libcuda.so.1`. */
  readonly path: string;
  /** `flags` of the entry (type in the low byte, architecture in `0xff00`). */
  readonly flags: number;
}

/** Why a buffer is not a cache gpulet can read. */
export class LdCacheFormatError extends Error {
  override readonly name = 'LdCacheFormatError';
}

function cString(buf: Buffer, offset: number, base: number): string {
  const start = base + offset;
  if (offset < 0 || start >= buf.length) throw new LdCacheFormatError(`string offset ${offset} is outside the file (${buf.length} bytes)`);
  const end = buf.indexOf(0, start);
  if (end < 0) throw new LdCacheFormatError(`string at offset ${offset} is not NUL-terminated`);
  return buf.toString('utf8', start, end);
}

/** Offset of the new-format header: 0, or after the old-format part. @throws LdCacheFormatError */
function newFormatOffset(buf: Buffer): number {
  if (buf.toString('latin1', 0, NEW_MAGIC.length) === NEW_MAGIC) return 0;
  if (buf.length >= OLD_HEADER_BYTES && buf.toString('latin1', 0, OLD_MAGIC.length) === OLD_MAGIC) {
    const nlibs = buf.readUInt32LE(12);
    const end = OLD_HEADER_BYTES + nlibs * OLD_ENTRY_BYTES;
    const aligned = Math.ceil(end / 8) * 8;
    for (const off of [end, aligned]) {
      if (off + NEW_MAGIC.length <= buf.length && buf.toString('latin1', off, off + NEW_MAGIC.length) === NEW_MAGIC) return off;
    }
    throw new LdCacheFormatError('only the old ld.so-1.7.0 format is present (glibc before 2.32 without the new format); not read');
  }
  throw new LdCacheFormatError(`no ${JSON.stringify(NEW_MAGIC)} magic: not a glibc ld.so.cache`);
}

/**
 * Parse a cache file.
 * @returns every entry in file order (ldconfig sorts them by soname, the preferred entry of a name first).
 * @throws LdCacheFormatError when the bytes are not a readable cache (bad magic, truncated, offsets outside
 *   the file, larger than {@link LD_CACHE_MAX_BYTES}).
 */
export function parseLdCache(buf: Buffer): LdCacheEntry[] {
  if (buf.length > LD_CACHE_MAX_BYTES) throw new LdCacheFormatError(`${buf.length} bytes is more than the ${LD_CACHE_MAX_BYTES} read`);
  const base = newFormatOffset(buf);
  if (base + NEW_HEADER_BYTES > buf.length) throw new LdCacheFormatError('truncated header');
  const nlibs = buf.readUInt32LE(base + 20);
  const entriesEnd = base + NEW_HEADER_BYTES + nlibs * NEW_ENTRY_BYTES;
  if (entriesEnd > buf.length) throw new LdCacheFormatError(`${nlibs} entries do not fit in ${buf.length} bytes`);
  const out: LdCacheEntry[] = [];
  for (let i = 0; i < nlibs; i++) {
    const at = base + NEW_HEADER_BYTES + i * NEW_ENTRY_BYTES;
    const flags = buf.readInt32LE(at);
    const soname = cString(buf, buf.readUInt32LE(at + 4), base);
    const path = cString(buf, buf.readUInt32LE(at + 8), base);
    out.push({ soname, path, flags });
  }
  return out;
}

/** The `FLAG_REQUIRED_MASK` architecture flag of a Node.js `process.arch`, or undefined when not known. */
export function archFlag(arch: string): number | undefined {
  if (arch === 'x64') return FLAG_X8664_LIB64;
  if (arch === 'arm64') return FLAG_AARCH64_LIB64;
  return undefined;
}

/** True when the entry is a glibc ELF library of the architecture `flag` (`archFlag`). */
export function isLibc6Of(entry: LdCacheEntry, flag: number): boolean {
  return (entry.flags & 0x00ff) === FLAG_ELF_LIBC6 && (entry.flags & 0xff00) === flag;
}
