/**
 * Per-device attributes of every `hw.*` series, and Kubernetes attribution from the prepared claims.
 * Pure functions of the inventory and the ownership map.
 *
 * Device attributes (OTel semconv `model/hardware/registry.yaml`): `hw.id` (UUID, required), `hw.name` (product name; a MIG device's profile, e.g.
 * `1g.10gb`), `hw.parent` (a MIG device's parent GPU UUID), `hw.model`, `hw.vendor` ("NVIDIA"),
 * `hw.serial_number`, `hw.driver_version`, `hw.firmware_version` (the GPU's VBIOS version,
 * `nvmlDeviceGetVbiosVersion`; a MIG device's is its parent's; omitted when NVML does not say); plus
 * `gpulet.dra.device.name` (the DRA device name, e.g. `gpu-0`, for allocatable devices). `hw.firmware_version`
 * is a Recommended attribute of every `hw.gpu.*` metric (semconv `metric_attributes.hw.gpu`, docs/hardware/gpu.md;
 * `ATTR_HW_FIRMWARE_VERSION` in @opentelemetry/semantic-conventions 1.45): a series attribute like
 * `hw.driver_version`, not a resource attribute (the resource is the node, which has several GPUs).
 *
 * `hw.type` only where the conventions define it (semconv 1.45 `docs/hardware/common.md`, `metric_attributes.hw.attributes`:
 * Required on the common `hw.*` metrics — `hw.energy`, `hw.errors`, `hw.power`, `hw.status`, `hw.temperature`):
 * `commonAttributes` add `hw.type=gpu`; the `hw.gpu.*` metrics' attribute group (`metric_attributes.hw.gpu`) has
 * no `hw.type` (the name says it), nor have gpulet's own metrics. A temperature sensor is its own component
 * (`docs/hardware/temperature.md`: `hw.type=temperature`, `hw.parent` the component it measures, `hw.sensor_location`):
 * `temperatureAttributes[location]`, with `hw.id` `<device UUID>-temperature-<location>`.
 *
 * Attribution (stable k8s semconv): `k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`. OTel semconv 1.45
 * has no ResourceClaim attributes, so the claim goes in non-standard `gpulet.claim.name`,
 * `gpulet.claim.namespace`, `gpulet.claim.uid` (dcgm-exporter's `dra_claim_*` labels are used only on the
 * dcgm-compatible series, see dcgm.ts).
 */
import { allocatableDevices } from '../model/devices.js';
import type { DeviceOwner } from '../model/types.js';
import type { GpuInfo, Inventory, MigDeviceInfo } from '../gpu/types.js';

/** Attribute map of one series. */
export type Attrs = Readonly<Record<string, string>>;

/** Static identity of one device (a GPU or a MIG device), looked up by UUID. */
export interface DeviceIdentity {
  readonly uuid: string;
  readonly kind: 'gpu' | 'mig';
  /** The physical GPU (the parent, for a MIG device). */
  readonly gpu: GpuInfo;
  readonly mig?: MigDeviceInfo;
  /** DRA device name when the device is allocatable (a GPU in MIG mode is not). */
  readonly draName?: string;
  /** The OTel device attributes (see module docs), without `hw.type`: those of the `hw.gpu.*` metrics. */
  readonly attributes: Attrs;
  /** {@link attributes} plus `hw.type=gpu`: the common `hw.*` metrics of the device (power, energy, errors, status). */
  readonly commonAttributes: Attrs;
  /** Per `hw.sensor_location` (`gpu`, `memory`): the device's temperature sensor as its own component. */
  readonly temperatureAttributes: Readonly<Record<TemperatureLocation, Attrs>>;
}

/** Locations of the temperature sensors gpulet reads (`hw.sensor_location`). */
export type TemperatureLocation = 'gpu' | 'memory';

/** `hw.type` of the device component itself (semconv `hw.type` value `gpu`). */
export const HW_TYPE_GPU = 'gpu';

/**
 * The sensor components of a device: `hw.id` `<uuid>-temperature-<location>`, `hw.type=temperature`, `hw.name`
 * `<device name> <location> temperature`, `hw.parent` the device, `hw.sensor_location`; plus the DRA device name
 * (gpulet's attribution key) when the device has one.
 */
function temperatureSensors(base: Attrs): Record<TemperatureLocation, Attrs> {
  const uuid = base['hw.id'] ?? '';
  const sensor = (location: TemperatureLocation): Attrs => {
    const out: Record<string, string> = {
      'hw.id': `${uuid}-temperature-${location}`,
      'hw.type': 'temperature',
      'hw.name': `${base['hw.name'] ?? uuid} ${location} temperature`,
      'hw.parent': uuid,
      'hw.sensor_location': location,
    };
    const dra = base['gpulet.dra.device.name'];
    if (dra !== undefined) out['gpulet.dra.device.name'] = dra;
    return out;
  };
  return { gpu: sensor('gpu'), memory: sensor('memory') };
}

/** The identity of `uuid` with its three attribute sets (see {@link DeviceIdentity}). */
function identity(fields: Omit<DeviceIdentity, 'commonAttributes' | 'temperatureAttributes'>): DeviceIdentity {
  return {
    ...fields,
    commonAttributes: { ...fields.attributes, 'hw.type': HW_TYPE_GPU },
    temperatureAttributes: temperatureSensors(fields.attributes),
  };
}

/** Vendor string of every device (`hw.vendor`). */
export const VENDOR = 'NVIDIA';

/** Build the UUID → identity map of every GPU and MIG device of the inventory. */
export function deviceIdentities(inventory: Inventory): Map<string, DeviceIdentity> {
  const draNames = new Map(allocatableDevices(inventory).map((d) => [d.uuid, d.name]));
  const out = new Map<string, DeviceIdentity>();
  const driverVersion = inventory.system.driverVersion;
  for (const gpu of inventory.gpus) {
    const draName = draNames.get(gpu.uuid);
    const attributes: Record<string, string> = {
      'hw.id': gpu.uuid,
      'hw.name': gpu.productName,
      'hw.model': gpu.productName,
      'hw.vendor': VENDOR,
      'hw.serial_number': gpu.serial,
      'hw.driver_version': driverVersion,
    };
    if (gpu.vbiosVersion !== undefined) attributes['hw.firmware_version'] = gpu.vbiosVersion;
    if (draName !== undefined) attributes['gpulet.dra.device.name'] = draName;
    out.set(gpu.uuid, identity(draName === undefined ? { uuid: gpu.uuid, kind: 'gpu', gpu, attributes } : { uuid: gpu.uuid, kind: 'gpu', gpu, draName, attributes }));
    for (const mig of gpu.migDevices) {
      const migDra = draNames.get(mig.uuid);
      const migAttrs: Record<string, string> = {
        'hw.id': mig.uuid,
        'hw.name': mig.profile,
        'hw.parent': gpu.uuid,
        'hw.model': gpu.productName,
        'hw.vendor': VENDOR,
        'hw.serial_number': gpu.serial,
        'hw.driver_version': driverVersion,
      };
      if (gpu.vbiosVersion !== undefined) migAttrs['hw.firmware_version'] = gpu.vbiosVersion;
      if (migDra !== undefined) migAttrs['gpulet.dra.device.name'] = migDra;
      out.set(
        mig.uuid,
        identity(migDra === undefined ? { uuid: mig.uuid, kind: 'mig', gpu, mig, attributes: migAttrs } : { uuid: mig.uuid, kind: 'mig', gpu, mig, draName: migDra, attributes: migAttrs }),
      );
    }
  }
  return out;
}

/**
 * Attribute sets of one device: its base attributes, once per holder. A device held by no claim gets one set
 * (the base); a device held by a claim gets one set per pod of the claim (or one with the claim alone when
 * no pod is known yet). A shared device therefore has one series per holder: do not sum them.
 * @param base the device attributes (from {@link deviceIdentities}, or `{ 'hw.id': uuid }` for an unknown device)
 * @param owners the holders of this device (`OwnershipSource.owners().get(uuid)`)
 */
export function attributionSets(base: Attrs, owners: readonly DeviceOwner[] | undefined): Attrs[] {
  if (owners === undefined || owners.length === 0) return [base];
  const out: Attrs[] = [];
  for (const owner of owners) {
    const claimAttrs: Record<string, string> = {
      ...base,
      'k8s.namespace.name': owner.claim.namespace,
      'gpulet.claim.name': owner.claim.name,
      'gpulet.claim.namespace': owner.claim.namespace,
      'gpulet.claim.uid': owner.claim.uid,
    };
    if (owner.pods.length === 0) {
      out.push(claimAttrs);
      continue;
    }
    for (const pod of owner.pods) {
      out.push({ ...claimAttrs, 'k8s.namespace.name': pod.namespace, 'k8s.pod.name': pod.name, 'k8s.pod.uid': pod.uid });
    }
  }
  return out;
}
