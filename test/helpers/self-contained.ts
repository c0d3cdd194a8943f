/**
 * The checker behind test/repo/self-contained.test.ts: does a set of repository files stand alone? Pure (the
 * caller reads the files and says which paths exist), so the test can also run it on small in-memory samples
 * and show that each kind of violation is caught.
 *
 * What counts as a violation (issue 8, "the repository stands alone"):
 * - `outside`: a path that leaves the repository for a sibling folder — a `shared` folder reached through `..`,
 *   or the reference folder inside that `shared` folder, where the reference data used to be read from;
 * - `machine`: an absolute path of a developer's machine — under `/work`, `/home`, `/Users` or `/root`. Runtime
 *   paths of a Kubernetes node (`/var/lib/kubelet`, `/var/run/cdi`, `/etc/cdi`, `/dev/nvidia0`, `/proc`, `/sys`,
 *   `/usr/lib/<triplet>/...`) are what gpulet works with and are not violations;
 * - `citation`: a citation of the design notes that lived outside the repository (the upper-case contracts and
 *   design file names); the in-repo documents are docs/contracts.md and docs/architecture.md;
 * - `link`: a relative Markdown link whose target does not exist in the repository;
 * - `outside-link`: a relative Markdown link that resolves outside the repository root.
 *
 * Markdown links follow CommonMark 0.31 ("Links", "Link reference definitions"): inline `[text](target "title")`,
 * `<...>`-bracketed targets, and `[label]: target` definitions; links inside code spans and fenced code blocks
 * are not links. A target with a URI scheme (`https:`, `mailto:`, ...) or only a fragment (`#...`) is not a
 * file. A target starting with `/` is taken relative to the repository root, as GitHub renders it.
 *
 * The patterns below are written so that this file does not match them itself.
 */
import path from 'node:path';

/** One file of the repository: its path relative to the root (`/`-separated) and its text. */
export interface RepoFile {
  readonly path: string;
  readonly text: string;
}

/** Kinds of violation, see the module docs. */
export type ViolationKind = 'outside' | 'machine' | 'citation' | 'link' | 'outside-link';

/** One violation, located by file and 1-based line. */
export interface Violation {
  readonly file: string;
  readonly line: number;
  readonly kind: ViolationKind;
  /** The offending text (the match, or the link target). */
  readonly text: string;
}

/** Text patterns checked in every file. Each is global so all matches are reported. */
const TEXT_RULES: ReadonlyArray<{ readonly kind: ViolationKind; readonly pattern: RegExp }> = [
  // One or more `..` segments, then `shared`: a folder beside the repository.
  { kind: 'outside', pattern: /(?:\.\.\/)+shared\b/g },
  // The reference folder of that `shared` folder, where the reference data used to be looked up.
  { kind: 'outside', pattern: /\bshared\/reference\b/g },
  // Developer machine roots. Not preceded by a word character, `.` or `-`, so `https://host/home/...` and
  // `some-dir/work/` do not count; `/var/lib/kubelet`, `/proc`, ... are not in the list.
  { kind: 'machine', pattern: /(?<![\w.-])\/(?:work|home|Users|root)\//g },
  // The design notes that lived outside the repository.
  { kind: 'citation', pattern: /\b(?:CONTRACTS|DESIGN)\.md\b/g },
];

/** 1-based line of character `index` in `text`. */
function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = 0; i < index && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** `s` with every character but newlines replaced by a space (keeps offsets and line numbers). */
function blank(s: string): string {
  return s.replace(/[^\n]/g, ' ');
}

/**
 * Markdown text with fenced code blocks and code spans blanked out (same length, same lines), so that what
 * remains are the links a reader can follow. Fences: a line starting with up to 3 spaces and 3+ backticks or
 * tildes opens a block that the same fence closes (CommonMark 0.31, "Fenced code blocks").
 */
export function markdownProse(text: string): string {
  let fence: string | undefined;
  const unfenced = text
    .split('\n')
    .map((line) => {
      const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (fence === undefined) {
        if (m === null) return line;
        fence = m[1]!;
        return blank(line);
      }
      if (m !== null && m[1]![0] === fence[0] && m[1]!.length >= fence.length) fence = undefined;
      return blank(line);
    })
    .join('\n');
  // Code spans: a run of backticks up to the next run of the same length, within one paragraph (a span may
  // wrap onto the next line, never across a blank line).
  return unfenced.replace(/(`+)(?:(?!\n[ \t]*\n)[^`]|(?!\1)`+)*?\1(?!`)/g, (span) => blank(span));
}

/** Link targets of Markdown text (inline links, images and reference definitions), with their offsets. */
export function markdownLinkTargets(text: string): Array<{ readonly target: string; readonly index: number }> {
  const prose = markdownProse(text);
  const found: Array<{ target: string; index: number }> = [];
  const inline = /!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>\n]*>|[^\s)]+)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/g;
  for (const m of prose.matchAll(inline)) found.push({ target: m[1]!, index: m.index });
  const definition = /^ {0,3}\[(?:[^\]\\]|\\.)+\]:\s*(<[^>\n]*>|\S+)/gm;
  for (const m of prose.matchAll(definition)) found.push({ target: m[1]!, index: m.index });
  return found.map(({ target, index }) => ({ target: target.startsWith('<') ? target.slice(1, -1) : target, index }));
}

/**
 * Where a link target of `fromFile` points inside the repository: a root-relative, normalised path
 * (`docs/contracts.md`), `undefined` when the target is not a file (URI scheme, fragment only, empty), or
 * `null` when it resolves outside the repository root.
 */
export function resolveLink(fromFile: string, target: string): string | null | undefined {
  if (target === '' || target.startsWith('#') || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(target) || target.startsWith('//')) return undefined;
  let file = target.replace(/[#?].*$/, '');
  if (file === '') return undefined;
  try {
    file = decodeURIComponent(file);
  } catch {
    // Not percent-encoded: keep it as written.
  }
  const joined = file.startsWith('/') ? path.posix.normalize(file.slice(1)) : path.posix.join(path.posix.dirname(fromFile), file);
  const normal = path.posix.normalize(joined).replace(/\/$/, '');
  if (normal === '..' || normal.startsWith('../') || path.posix.isAbsolute(normal)) return null;
  return normal === '' ? '.' : normal;
}

/**
 * Every violation in `files` (see the module docs), in file order.
 * @param exists whether a root-relative path (a file or a directory) exists in the repository
 */
export function findViolations(files: readonly RepoFile[], exists: (repoPath: string) => boolean): Violation[] {
  const out: Violation[] = [];
  for (const f of files) {
    for (const rule of TEXT_RULES) {
      for (const m of f.text.matchAll(rule.pattern)) {
        out.push({ file: f.path, line: lineOf(f.text, m.index), kind: rule.kind, text: m[0] });
      }
    }
    if (!f.path.toLowerCase().endsWith('.md')) continue;
    for (const { target, index } of markdownLinkTargets(f.text)) {
      const resolved = resolveLink(f.path, target);
      if (resolved === undefined) continue;
      if (resolved === null) out.push({ file: f.path, line: lineOf(f.text, index), kind: 'outside-link', text: target });
      else if (!exists(resolved)) out.push({ file: f.path, line: lineOf(f.text, index), kind: 'link', text: target });
    }
  }
  return out;
}

/** True when `bytes` look binary: a NUL byte in the first 8000 bytes (git's own heuristic, `buffer_is_binary`). */
export function isBinary(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 8000);
  for (let i = 0; i < n; i++) if (bytes[i] === 0) return true;
  return false;
}
