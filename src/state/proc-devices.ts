/**
 * Dynamic character-device majors of the NVIDIA kernel modules, from `/proc/devices` (Linux
 * `fs/proc/devices.c`: a "Character devices:" section of `<major> <name>` lines, then "Block devices:").
 * `nvidia-uvm` and `nvidia-caps` get dynamic majors; NVIDIA's own tools (nvidia-modprobe, the container
 * toolkit's `getDeviceMajor`) read them from this file the same way.
 */
import { readFile } from 'node:fs/promises';
import type { DeviceMajors } from './cdi.js';

/** Parse the "Character devices:" section. Pure; malformed lines are ignored. */
export function parseCharacterMajors(text: string): Map<string, number> {
  const majors = new Map<string, number>();
  let inChar = false;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === 'Character devices:') {
      inChar = true;
      continue;
    }
    if (trimmed.endsWith('devices:')) {
      inChar = false;
      continue;
    }
    if (!inChar) continue;
    const m = /^(\d+)\s+(\S+)$/.exec(trimmed);
    if (m?.[1] !== undefined && m[2] !== undefined && !majors.has(m[2])) majors.set(m[2], Number(m[1]));
  }
  return majors;
}

/** `nvidia-uvm` and `nvidia-caps` majors from a `/proc/devices` text. Absent modules give absent fields. */
export function nvidiaMajors(text: string): DeviceMajors {
  const majors = parseCharacterMajors(text);
  const uvm = majors.get('nvidia-uvm');
  const caps = majors.get('nvidia-caps');
  return { ...(uvm !== undefined ? { nvidiaUvm: uvm } : {}), ...(caps !== undefined ? { nvidiaCaps: caps } : {}) };
}

/**
 * Read the NVIDIA majors of this host.
 * @param path default `/proc/devices`.
 * @returns `{}` when the file cannot be read (device nodes then stay path-only and the runtime stats them).
 */
export async function readNvidiaMajors(path = '/proc/devices'): Promise<DeviceMajors> {
  try {
    return nvidiaMajors(await readFile(path, 'utf8'));
  } catch {
    return {};
  }
}
