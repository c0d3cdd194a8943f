/**
 * The kubelet plugin registration service (`pluginregistration.Registration`, kubernetes/kubelet
 * pkg/apis/pluginregistration/v1), served on `<registryDir>/<driver>[-<podUID>]-reg.sock`.
 *
 * The kubelet's plugin watcher finds the socket, calls GetInfo (1 s timeout), picks the first entry of
 * `supported_versions` it supports, and reports the outcome with NotifyRegistrationStatus (5 s timeout).
 * It repeats this whenever it (re)starts or the socket reappears, so `onRegistered` fires on every
 * (re)registration: the composition root republishes ResourceSlices then (docs/contracts.md §2).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../../log.js';
import { errorMessage } from '../../errors.js';
import {
  SERVICE_VERSIONS,
  type WireEmpty,
  type WirePluginInfo,
  type WireRegistrationStatus,
} from './grpc-protos.js';

/** `PluginInfo.type` of a DRA driver. */
export const DRA_PLUGIN_TYPE = 'DRAPlugin';

/** Called after every NotifyRegistrationStatus: `registered` false comes with the kubelet's error text. */
export type RegistrationCallback = (registered: boolean, error?: string) => void;

/** Last registration status the kubelet reported. */
export interface RegistrationState {
  /** `undefined` until the kubelet has called NotifyRegistrationStatus. */
  readonly registered: boolean | undefined;
  readonly error: string;
  /** How many NotifyRegistrationStatus calls arrived. */
  readonly notifications: number;
}

/**
 * The `supported_versions` list, most preferred first: `v1.DRAPlugin`, `v1beta1.DRAPlugin`, then, when health
 * is served, `v1.DRAResourceHealth` and `v1alpha1.DRAResourceHealth`. The kubelet takes the first DRAPlugin
 * entry it knows, and for health the first of ITS list (`v1`, then `v1alpha1`) that the plugin advertises
 * (k8s.io/kubernetes v1.37.2 pkg/kubelet/cm/dra/plugin/dra_plugin_manager.go `pickHealthService`); a kubelet
 * before 1.37 knows only `v1alpha1.DRAResourceHealth` and picks it.
 */
export function supportedVersions(healthServed: boolean): string[] {
  const v: string[] = [SERVICE_VERSIONS.draV1, SERVICE_VERSIONS.draV1beta1];
  if (healthServed) v.push(SERVICE_VERSIONS.healthV1, SERVICE_VERSIONS.healthV1alpha1);
  return v;
}

/**
 * Build the Registration service implementation.
 * @param opts.driverName `PluginInfo.name`
 * @param opts.endpoint absolute path of the DRA socket (`PluginInfo.endpoint`)
 * @param opts.healthServed whether DRAResourceHealth is served on the endpoint
 * @param opts.onRegistered fired on every NotifyRegistrationStatus; exceptions are logged, never returned
 */
export function createRegistrationService(opts: {
  driverName: string;
  endpoint: string;
  healthServed: boolean;
  logger: Logger;
  onRegistered?: RegistrationCallback | undefined;
}): { implementation: grpc.UntypedServiceImplementation; state(): RegistrationState } {
  let state: RegistrationState = { registered: undefined, error: '', notifications: 0 };
  const info: WirePluginInfo = {
    type: DRA_PLUGIN_TYPE,
    name: opts.driverName,
    endpoint: opts.endpoint,
    supported_versions: supportedVersions(opts.healthServed),
  };
  const getInfo: grpc.handleUnaryCall<WireEmpty, WirePluginInfo> = (_call, callback) => {
    opts.logger.debug({ info }, 'kubelet called GetInfo');
    callback(null, info);
  };
  const notify: grpc.handleUnaryCall<WireRegistrationStatus, WireEmpty> = (call, callback) => {
    const registered = call.request.plugin_registered === true;
    const error = typeof call.request.error === 'string' ? call.request.error : '';
    state = { registered, error, notifications: state.notifications + 1 };
    if (registered) opts.logger.info({ driver: opts.driverName }, 'registered with the kubelet');
    else opts.logger.error({ driver: opts.driverName, err: error }, 'kubelet rejected the plugin registration');
    try {
      if (registered) opts.onRegistered?.(true);
      else opts.onRegistered?.(false, error);
    } catch (err) {
      opts.logger.error({ err: errorMessage(err) }, 'onRegistered callback threw');
    }
    callback(null, {});
  };
  const implementation: grpc.UntypedServiceImplementation = {
    GetInfo: getInfo,
    NotifyRegistrationStatus: notify,
  };
  return { implementation, state: () => state };
}
