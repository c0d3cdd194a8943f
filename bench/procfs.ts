/**
 * Linux /proc readers for the footprint of another process (proc(5)): CPU time from `/proc/<pid>/stat`
 * (fields 14 `utime` and 15 `stime`, in clock ticks) and resident memory from `/proc/<pid>/status`
 * (`VmRSS`, `VmHWM`, in kB). Undefined when the process is gone or /proc is not Linux's.
 */
import fs from 'node:fs';

/** Clock ticks per second (`getconf CLK_TCK`): 100 on every mainstream Linux architecture. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** One reading of a process. */
export interface ProcReading {
  /** User + system CPU time, ms (10 ms resolution). */
  readonly cpuMs: number;
  /** Resident set size, bytes. */
  readonly rssBytes: number;
  /** Peak resident set size, bytes. */
  readonly peakRssBytes: number;
}

/** Read CPU time and RSS of `pid`; undefined when it cannot be read. */
export function readProc(pid: number): ProcReading | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    const reading = { cpuMs: ((utime + stime) * 1000) / CLOCK_TICKS_PER_SECOND, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
    return Number.isFinite(reading.cpuMs) && Number.isFinite(reading.rssBytes) ? reading : undefined;
  } catch {
    return undefined;
  }
}

/** Direct children of `pid` (`/proc/<pid>/task/<pid>/children`, else a scan of every process' ppid). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    const out: number[] = [];
    for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
      try {
        const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }
}

/**
 * The process that runs the agent: `pid` itself, or, when `pid` is a launcher (tsx re-spawns node with its
 * loader), its only child. Undefined when that is ambiguous.
 */
export function agentPid(pid: number, launcher: boolean): number | undefined {
  if (!launcher) return pid;
  const children = childPids(pid);
  return children.length === 1 ? children[0] : undefined;
}
