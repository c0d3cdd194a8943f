/**
 * Contract of the embedded, in-process Kubernetes API server (development and tests only, never part of the
 * agent). Implemented in `dev/apiserver/server.ts` as `startApiServer(options)`.
 */

/** One request the server handled: for asserting request counts (e.g. "no write when nothing changed"). */
export interface RequestRecord {
  readonly method: string;
  /** Path without query, e.g. `/apis/resource.k8s.io/v1/resourceslices`. */
  readonly path: string;
  /** Raw query string without `?` ('' when none). */
  readonly query: string;
  /** HTTP status returned. */
  readonly status: number;
  /** Unix ms. */
  readonly timestampMs: number;
}

/** A fault the server injects on matching requests (for error-path tests). */
export interface FaultRule {
  /** HTTP method to match (any when absent). */
  readonly method?: string;
  /** Substring of the path to match (any when absent). */
  readonly pathIncludes?: string;
  /** Status to answer with (409, 429, 500, ...), as a `Status` object. */
  readonly status?: number;
  /** Delay before answering (or before the fault), ms. */
  readonly delayMs?: number;
  /** Destroy the socket without answering. */
  readonly drop?: boolean;
  /** How many matching requests to fault; unlimited when absent. */
  readonly times?: number;
  /**
   * Called when a matching request arrives, before any delay, hold or fault (tests: act while a request is
   * in flight, e.g. "the claim GET is now held by the server"). A rule with only this set observes without
   * faulting.
   */
  readonly arrived?: (request: { readonly method: string; readonly path: string }) => void;
  /** Hold the matching request until this settles (after `delayMs`), then go on (fault or answer). */
  readonly holdUntil?: Promise<unknown>;
}

export interface ApiServerOptions {
  /** Listen address; default `127.0.0.1`. */
  readonly host?: string;
  /** Listen port; default 0 (a free port). */
  readonly port?: number;
  /** Write a kubeconfig here (for kubectl and @kubernetes/client-node) when given. */
  readonly kubeconfigPath?: string;
  /** Nodes to create at start (name → created with a fresh UID). */
  readonly nodes?: readonly string[];
}

/** A Kubernetes object as stored: always has apiVersion, kind and metadata. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: unknown[];
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** A running embedded API server. */
export interface EmbeddedApiServer {
  /** Base URL, e.g. `http://127.0.0.1:34567`. */
  readonly url: string;
  /** Kubeconfig YAML pointing at this server (works with kubectl and @kubernetes/client-node). */
  kubeconfig(): string;
  /** Every request handled so far, in order. */
  readonly requests: readonly RequestRecord[];
  /** Forget recorded requests. */
  clearRequests(): void;
  /** Add a fault rule; returns a function that removes it. */
  injectFault(rule: FaultRule): () => void;
  /** Direct store access for tests and the demo (bypasses HTTP, still bumps resourceVersion and notifies watchers). */
  create(obj: KubeObject): KubeObject;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(apiVersion: string, kind: string, namespace?: string): KubeObject[];
  /** Replace the object's `status` (as the scheduler would allocate a claim). */
  updateStatus(obj: KubeObject): KubeObject;
  delete(apiVersion: string, kind: string, namespace: string | undefined, name: string): boolean;
  /** Stop listening and end watches. Idempotent. */
  close(): Promise<void>;
}
