/**
 * Deterministic identities for mock devices, seeded by a SHA-256 of the node name and the GPU index (and the
 * GPU-instance ID for MIG devices): the same node name always gets the same UUIDs and serials, different node
 * names get different ones. Pure.
 *
 * PCI addresses are a property of the machine's topology, not of its name: GPU i sits at the i-th bus of a
 * DGX H100 (0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb), in PCI domain ⌊i / 8⌋, as identical hardware
 * does on every node.
 */
import { createHash } from 'node:crypto';

function digest(...parts: readonly (string | number)[]): Buffer {
  return createHash('sha256').update(parts.map(String).join('\u0000')).digest();
}

function uuidBody(bytes: Buffer): string {
  const h = bytes.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower-case hex), as `nvmlDeviceGetUUID` prints it. */
export function mockGpuUuid(nodeName: string, gpuIndex: number): string {
  return `GPU-${uuidBody(digest('gpu', nodeName, gpuIndex))}`;
}

/** `MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (the R470+ MIG UUID form) of GPU instance `gpuInstanceId`. */
export function mockMigUuid(nodeName: string, gpuIndex: number, gpuInstanceId: number): string {
  return `MIG-${uuidBody(digest('mig', nodeName, gpuIndex, gpuInstanceId))}`;
}

/** 13-digit board serial (`nvmlDeviceGetSerial`), starting with 1 like NVIDIA's data-center boards. */
export function mockSerial(nodeName: string, gpuIndex: number): string {
  const n = digest('serial', nodeName, gpuIndex).readBigUInt64BE(0) % 1_000_000_000_000n;
  return `1${n.toString().padStart(12, '0')}`;
}

/** 32-bit seed for the reading simulator of one device (GPU or MIG UUID). */
export function mockSeed(uuid: string): number {
  return digest('seed', uuid).readUInt32BE(0);
}

/** PCI bus numbers of the eight GPUs of a DGX H100. */
export const DGX_BUS_NUMBERS: readonly number[] = [0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb];

/**
 * PCI address of GPU `gpuIndex`: `busId` in sysfs form `DDDD:BB:00.0`, and `pcieRoot` `pciDDDD:RR`, the root
 * complex three bus numbers below the GPU (the GPU sits behind a PCIe switch).
 */
export function mockPciAddress(gpuIndex: number): { busId: string; pcieRoot: string } {
  const bus = DGX_BUS_NUMBERS[gpuIndex % DGX_BUS_NUMBERS.length] ?? 0x18;
  const domain = Math.floor(gpuIndex / DGX_BUS_NUMBERS.length).toString(16).padStart(4, '0');
  const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
  return { busId: `${domain}:${hex2(bus)}:00.0`, pcieRoot: `pci${domain}:${hex2(bus - 3)}` };
}
