/**
 * Mock GPU backend: realistic machines (A100 40GB, H100 80GB, H200 141GB, DGX H100 with static MIG; the A100 80GB
 * model is there for its MIG tables),
 * deterministic identities per node name, simulated readings, fault injection.
 */
export { createMockBackend, type MockBackend, type MockBackendOptions, type ReadingName } from './backend.js';
export { MOCK_MACHINES, machineSpecByName, type MachineSpec, type GpuSpec, type MigInstanceSpec, type MockMachineName } from './spec.js';
export { validateMachineSpec, migLayoutProblems, MAX_GPUS } from './validate.js';
export { buildMockInventory, MOCK_ADDRESSING_MODE, MOCK_SYSTEM } from './inventory.js';
export { GPU_MODELS, GPU_MODEL_NAMES, migProfilesByProductName, type GpuModel, type GpuModelName } from './models.js';
export { gpuInstanceId, type MigProfile } from './profiles.js';
export { CLOCK_EVENT_REASON, TEMPERATURE_RANGE_C } from './simulate.js';
