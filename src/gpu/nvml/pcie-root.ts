/**
 * PCIe root complex of a PCI device, from sysfs, as k8s.io/dynamic-resource-allocation/deviceattribute
 * (`GetPCIeRootAttributeByPCIBusID`, used by NVIDIA's DRA driver) finds it: the real path of
 * `<sysfs>/bus/pci/devices/<busId>` is `.../devices/pci<domain>:<bus>/.../<busId>`; the `pci<domain>:<bus>`
 * component is the root (e.g. `pci0000:15`). Reads the filesystem; never throws.
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { PcieRootResolver } from './map-inventory.js';

const ROOT_COMPONENT = /^pci[0-9a-f]{4,8}:[0-9a-f]{2}$/;

/**
 * The PCIe root of `busId` (sysfs form `0000:18:00.0`) under `sysfsRoot` (default `/sys`), or `undefined`
 * when the device is not in sysfs (e.g. a fake library's devices) or the path has no root component.
 */
export function pcieRootFromSysfs(busId: string, sysfsRoot = '/sys'): string | undefined {
  let real: string;
  try {
    real = realpathSync(path.join(sysfsRoot, 'bus', 'pci', 'devices', busId));
  } catch {
    return undefined;
  }
  return real.split(path.sep).find((part) => ROOT_COMPONENT.test(part));
}

/** A {@link PcieRootResolver} reading `sysfsRoot`. */
export function sysfsPcieRootResolver(sysfsRoot = '/sys'): PcieRootResolver {
  return (busId) => pcieRootFromSysfs(busId, sysfsRoot);
}
