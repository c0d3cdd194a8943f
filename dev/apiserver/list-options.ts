/**
 * List and watch options (pure): their validation as apimachinery
 * `pkg/apis/meta/internalversion/validation/validation.go` `ValidateListOptions` does it (422 Invalid
 * `ListOptions.meta.k8s.io` with field causes; a non-numeric `resourceVersion` is 400 BadRequest), and
 * `limit`/`continue` pagination as `apiserver/pkg/storage` does it: items in key order, a page of at most `limit`,
 * an opaque base64 `continue` token naming the list's resourceVersion and the next key, `remainingItemCount` when
 * the list is not filtered, 400 BadRequest for a token that does not decode.
 */
import type { KubeObject } from './types.js';
import type { StatusCause } from './status.js';
import { StatusError, badRequest } from './status.js';
import { forbidden, notSupported } from './causes.js';

const NOT_OLDER_THAN = 'NotOlderThan';

function invalidOptions(causes: StatusCause[]): StatusError {
  const detail = causes.map((c) => `${c.field ?? ''}: ${c.message}`).join(', ');
  return new StatusError(422, 'Invalid', `ListOptions.meta.k8s.io "" is invalid: ${detail}`, { group: 'meta.k8s.io', kind: 'ListOptions', causes });
}

/** Throws 400 for a `resourceVersion` that is not a number. */
function checkResourceVersion(query: URLSearchParams): void {
  const rv = query.get('resourceVersion') ?? '';
  if (rv !== '' && !/^\d+$/.test(rv)) {
    throw badRequest(`invalid resource version: resourceVersion: Invalid value: "${rv}": strconv.ParseUint: parsing "${rv}": invalid syntax`);
  }
}

/** `validateWatchOptions`: `sendInitialEvents` needs `resourceVersionMatch=NotOlderThan`, and the match needs it. */
export function validateWatchOptions(query: URLSearchParams): void {
  checkResourceVersion(query);
  const match = query.get('resourceVersionMatch') ?? '';
  const causes: StatusCause[] = [];
  if (query.has('sendInitialEvents') && match !== NOT_OLDER_THAN) {
    causes.push(forbidden('resourceVersionMatch', `sendInitialEvents requires setting resourceVersionMatch to ${NOT_OLDER_THAN}`));
  }
  if (match !== '') {
    if (!query.has('sendInitialEvents')) causes.push(forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided'));
    if (match !== NOT_OLDER_THAN) causes.push(notSupported('resourceVersionMatch', match, [NOT_OLDER_THAN]));
  }
  if (causes.length > 0) throw invalidOptions(causes);
}

/** `ValidateListOptions` for a list (not a watch). */
export function validateListOptions(query: URLSearchParams): void {
  checkResourceVersion(query);
  const match = query.get('resourceVersionMatch') ?? '';
  const causes: StatusCause[] = [];
  if (match !== '') {
    if ((query.get('resourceVersion') ?? '') === '') causes.push(forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided'));
    if ((query.get('continue') ?? '') !== '') causes.push(forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
    if (match !== 'Exact' && match !== NOT_OLDER_THAN) causes.push(notSupported('resourceVersionMatch', match, ['Exact', NOT_OLDER_THAN, '']));
  }
  if (query.has('sendInitialEvents')) causes.push(forbidden('sendInitialEvents', 'sendInitialEvents is forbidden for list'));
  if (causes.length > 0) throw invalidOptions(causes);
}

/** The key objects are listed in and paginated by (`<namespace>/<name>`, '' namespace for cluster-scoped). */
export function listKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

interface ContinueToken {
  readonly rv: string;
  readonly start: string;
}

function encodeContinue(rv: string, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: Number(rv), start: `${lastKey}\u0000` })).toString('base64url');
}

function decodeContinue(token: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; rv?: unknown; start?: unknown };
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('not a continue token of this server');
    return { rv: String(t.rv), start: t.start };
  } catch (err) {
    throw badRequest(`invalid continue token: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** One page of a list: its items and the list metadata (`resourceVersion`, `continue`, `remainingItemCount`). */
export interface Page {
  readonly items: KubeObject[];
  readonly metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
}

/**
 * Cut `items` (already filtered, in key order) to the page `limit`/`continue` ask for.
 * @param rv the store's current resourceVersion (a continued list keeps its token's)
 * @param filtered whether a label or field selector applied (then no `remainingItemCount`, as upstream)
 */
export function paginate(items: KubeObject[], query: URLSearchParams, rv: string, filtered: boolean): Page {
  const token = query.get('continue') ?? '';
  const cont = token === '' ? undefined : decodeContinue(token);
  const listRv = cont?.rv ?? rv;
  const rest = cont === undefined ? items : items.filter((o) => listKey(o) >= cont.start);
  const limitText = query.get('limit') ?? '';
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : 0;
  if (limit <= 0 || rest.length <= limit) return { items: rest, metadata: { resourceVersion: listRv } };
  const page = rest.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page,
    metadata: {
      resourceVersion: listRv,
      continue: encodeContinue(listRv, last === undefined ? '' : listKey(last)),
      ...(filtered ? {} : { remainingItemCount: rest.length - limit }),
    },
  };
}
