/**
 * Kubernetes `Status` failures (apimachinery `metav1.Status`, `StatusReason`): the error type every layer of the
 * embedded API server throws, and its wire form.
 */
import { ApiError } from '../../src/errors.js';

/** `metav1.StatusReason` values this server answers with (apimachinery `pkg/apis/meta/v1/types.go`). */
export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Gone'
  | 'Timeout'
  | 'Unknown';

/** `metav1.StatusCause`: one field-level problem (`reason` e.g. `FieldValueInvalid`, `field` e.g. `metadata.name`). */
export interface StatusCause {
  readonly reason: string;
  readonly message: string;
  readonly field?: string;
}

/** `metav1.StatusDetails`: the object the failure is about. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A `metav1.Status` with `status: Failure`, as sent on the wire. */
export interface StatusObject {
  readonly kind: 'Status';
  readonly apiVersion: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Failure';
  readonly message: string;
  readonly reason: StatusReason;
  readonly details?: StatusDetails;
  readonly code: number;
}

/** A request failed with an HTTP status (`httpStatus`, the Status `code`) and a Kubernetes `reason`; {@link toStatus} gives the body to send. */
export class StatusError extends ApiError {
  constructor(
    readonly httpStatus: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message, httpStatus);
  }
}

/** The `reason` the real API server pairs with an HTTP status code (apimachinery `errors.FromObject` mapping). */
export function reasonForCode(code: number): StatusReason {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 406:
      return 'NotAcceptable';
    case 409:
      return 'Conflict';
    case 410:
      return 'Gone';
    case 413:
      return 'RequestEntityTooLarge';
    case 415:
      return 'UnsupportedMediaType';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'Unknown';
  }
}

/** Wire form of a failure: `{kind: Status, apiVersion: v1, status: Failure, message, reason, details?, code}`. */
export function toStatus(err: StatusError): StatusObject {
  const base = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: err.message,
    reason: err.reason,
    code: err.httpStatus,
  } as const;
  return err.details === undefined ? base : { ...base, details: err.details };
}

/** Convert anything thrown inside a handler to a `StatusError` (unknown errors become 500 InternalError). */
export function asStatusError(err: unknown): StatusError {
  if (err instanceof StatusError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StatusError(500, 'InternalError', `Internal error occurred: ${message}`);
}

/** `404 NotFound` for `<resource> "<name>" not found`, as the real server words it. */
export function notFound(group: string, plural: string, name: string): StatusError {
  const what = group === '' ? plural : `${plural}.${group}`;
  return new StatusError(404, 'NotFound', `${what} "${name}" not found`, { name, group, kind: plural });
}

/** `400 BadRequest` with a message. */
export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

/** `422 Invalid` for one object, with field causes (`FieldValueInvalid`, `FieldValueRequired`). */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): StatusError {
  const detail = causes.map((c) => `${c.field ?? ''}: ${c.message}`).join(', ');
  const what = group === '' ? kind : `${kind}.${group}`;
  return new StatusError(422, 'Invalid', `${what} "${name}" is invalid: ${detail}`, { name, group, kind, causes });
}
