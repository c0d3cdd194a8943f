/**
 * The NVML backend: gpulet's production GPU source, over the native addon (native/) that dlopen()s
 * libnvidia-ml at run time.
 */
export { createNvmlBackend, NvmlBackend, type NvmlBackendOptions } from './backend.js';
export { NvmlError, NVML_RETURN, isNvmlCode } from './nvml-error.js';
export { loadAddon, loadAddonFrom, addonPath, type NativeAddon, type OpenResult, type ProbeResult } from './addon.js';
export type { NvmlSession } from './session.js';
export { mapInventory, normalizeBusId, brandName, architectureName, addressingModeName, migProfileName, type PcieRootResolver } from './map-inventory.js';
export { pcieRootFromSysfs, sysfsPcieRootResolver } from './pcie-root.js';
export { resolvedLibraryPath } from './startup-errors.js';
export { mapMigProfiles, migError, migErrorCodeOf, type NvmlMigProfile } from './map-mig.js';
export { NvmlMigManager, type MigHost } from './mig-manager.js';
