/**
 * A client of the kubelet's pod-resources API v1 (`v1.PodResourcesLister`, k8s.io/kubelet
 * pkg/apis/podresources/v1/api.proto, transcribed in proto/podresources/v1/api.proto), the node-local way to
 * learn which containers use which ResourceClaim without reading pods from the API server — as dcgm-exporter
 * does for its `container` label. The kubelet serves it on `<root-dir>/pod-resources/kubelet.sock`
 * (k8s.io/kubernetes pkg/kubelet/server/server.go `ListenAndServePodResources`), rate limited to 100 calls/s
 * (pkg/kubelet/apis/podresources/constants.go `DefaultQPS`).
 *
 * {@link PodResourcesWatcher} calls `List` when its answer is read, not on a timer: at start, when a reader asks
 * (a `/metrics` render: {@link PodResourcesWatcher.containersOf}) and the last call started `intervalMs`
 * (gpulet's sample interval) or longer ago — the reader gets the last answer, the next reader the new one — and
 * `intervalMs` after the node's claims changed ({@link PodResourcesWatcher.claimsChanged}: a pod's claim was
 * prepared or unprepared, and the kubelet lists the pod's claims only once its prepare returned). So a node
 * scraped every 15 s calls `List` about every 15 s rather than every second, and a node nobody scrapes calls it
 * only when its claims change (dcgm-exporter calls it once per collection). The containers of a (pod, claim) are
 * those of the pod's spec (`resources.claims`), fixed for the pod's life. One call at a time, each with a deadline
 * and a bounded answer (`grpc.max_receive_message_length`), validated (pod-resources-index.ts); the last index is
 * kept. A failed call (no socket, timeout, bad answer) empties the index — the `container` label is then absent,
 * never stale — and is logged once until a call succeeds again. Never throws after construction.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ConfigError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import {
  EMPTY_CLAIM_CONTAINERS, indexClaimContainers, listPodResourcesResponseSchema, type ClaimContainersIndex,
} from './pod-resources-index.js';

/** Largest `List` answer accepted, bytes: 16 MiB, the bound the kubelet's own tests use (test/e2e_node/util.go `defaultPodResourcesMaxSize`). */
export const POD_RESOURCES_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Deadline of one `List` call, ms (gpulet's; a kubelet answers from memory). */
export const POD_RESOURCES_TIMEOUT_MS = 5_000;

const PROTO_FILE = 'podresources/v1/api.proto';
const LIST_METHOD = 'v1.PodResourcesLister';

/** Options of {@link PodResourcesWatcher}. */
export interface PodResourcesOptions {
  /** Path of the kubelet's pod-resources unix socket. */
  readonly socketPath: string;
  /** Our DRA driver name: only claims with a device of it (`ClaimResource.driver_name`) are indexed. */
  readonly driverName: string;
  /** Our ResourceSlice pool (`ClaimResource.pool_name`). */
  readonly poolName: string;
  /** Least time between two `List` calls a reader starts, and the delay of the call after a claims change, ms (> 0). */
  readonly intervalMs: number;
  /** Deadline of one call, ms; default {@link POD_RESOURCES_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Largest answer accepted, bytes; default {@link POD_RESOURCES_MAX_MESSAGE_BYTES}. */
  readonly maxMessageBytes?: number;
  readonly logger: Logger;
  /** Monotonic clock, ms (tests); default `performance.now`. */
  readonly now?: () => number;
}

/** Find proto/ as src/dra/kubelet/grpc-protos.ts does: `GPULET_PROTO_DIR`, else the nearest `proto/` above this module. */
function podResourcesProto(): string {
  const fromEnv = process.env['GPULET_PROTO_DIR'];
  const candidates = fromEnv ? [fromEnv] : [];
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    candidates.push(path.join(dir, 'proto'));
    if (path.dirname(dir) === dir) break;
  }
  for (const dir of candidates) {
    const file = path.join(dir, PROTO_FILE);
    if (existsSync(file)) return file;
  }
  throw new ConfigError(`${PROTO_FILE} not found (looked in ${candidates.join(', ')}); set GPULET_PROTO_DIR to the proto/ directory`);
}

/**
 * The `List` method definition (proto-loader, gpulet's loader options: `keepCase`, `defaults`).
 * @throws ConfigError when the proto is missing or lacks the method.
 */
export function loadListMethod(): protoLoader.MethodDefinition<object, unknown> {
  const def = protoLoader.loadSync(podResourcesProto(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const svc = def[LIST_METHOD] as Record<string, protoLoader.MethodDefinition<object, unknown>> | undefined;
  const list = svc?.['List'];
  if (list === undefined) throw new ConfigError(`proto service ${LIST_METHOD} with method List missing from ${PROTO_FILE}`);
  return list;
}

/** Calls the kubelet's pod-resources `List` when its answer is read (see the file doc) and answers which containers use a claim. */
export class PodResourcesWatcher {
  private readonly client: grpc.Client;
  private readonly list: protoLoader.MethodDefinition<object, unknown>;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private index: ClaimContainersIndex = EMPTY_CLAIM_CONTAINERS;
  /** The call after a claims change, pending. */
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  /** When the last call started (the clock's ms); undefined before the first. */
  private lastCallAt: number | undefined;
  private started = false;
  /** The last failure logged (undefined: the last call succeeded, or none was made). */
  private failing: string | undefined;
  private answered = false;
  private stopped = false;

  /** @throws ConfigError when the proto cannot be loaded; RangeError for a non-positive interval. */
  constructor(private readonly opts: PodResourcesOptions) {
    if (!(opts.intervalMs > 0)) throw new RangeError(`pod-resources: interval must be > 0 ms, got ${opts.intervalMs}`);
    this.list = loadListMethod();
    this.timeoutMs = opts.timeoutMs ?? POD_RESOURCES_TIMEOUT_MS;
    this.now = opts.now ?? (() => performance.now());
    this.client = new grpc.Client(`unix:${opts.socketPath}`, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': opts.maxMessageBytes ?? POD_RESOURCES_MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': 1024,
    });
  }

  /** Call `List` now; from then on, reads and claims changes start calls (see the file doc) until {@link stop}. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    void this.refresh();
  }

  /**
   * One `List` call (joined when one is already running); updates the index. Never rejects.
   * @returns when the call has been answered or has failed
   */
  refresh(): Promise<void> {
    this.inFlight ??= this.call().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /**
   * The containers of `pod` (namespace, name) using the claim `claimName`, from the last answer; undefined: none
   * known. Once started, a read when no call runs and the last one started `intervalMs` or longer ago starts a
   * call (in the background: this read answers from the last answer).
   */
  containersOf(pod: { readonly namespace: string; readonly name: string }, claimName: string): readonly string[] | undefined {
    if (this.started && !this.stopped && this.inFlight === undefined && (this.lastCallAt === undefined || this.now() - this.lastCallAt >= this.opts.intervalMs)) {
      void this.refresh();
    }
    return this.index.containersOf(pod.namespace, pod.name, claimName);
  }

  /**
   * A claim of this node was prepared or unprepared: call `List` `intervalMs` from now (once for any number of
   * changes meanwhile), by when the kubelet lists the pod's claims. No-op before {@link start} and after {@link stop}.
   */
  claimsChanged(): void {
    if (!this.started || this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.refresh();
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stop calling and close the channel. Idempotent. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.index = EMPTY_CLAIM_CONTAINERS;
    this.client.close();
  }

  private async call(): Promise<void> {
    if (this.stopped) return;
    this.lastCallAt = this.now();
    let problem: string;
    try {
      const raw = await this.requestList();
      const parsed = listPodResourcesResponseSchema.safeParse(raw);
      if (parsed.success) {
        if (this.stopped) return;
        this.index = indexClaimContainers(parsed.data, this.opts.driverName, this.opts.poolName);
        if (this.failing !== undefined || !this.answered) {
          this.opts.logger.info({ socket: this.opts.socketPath, claims: this.index.size }, 'pod-resources: the kubelet answers; DCGM_FI_* series carry the container label');
        }
        this.failing = undefined;
        this.answered = true;
        return;
      }
      const issue = parsed.error.issues[0];
      problem = `unexpected answer at ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? 'invalid'}`;
    } catch (err) {
      problem = errorMessage(err);
    }
    this.index = EMPTY_CLAIM_CONTAINERS;
    if (this.failing === undefined && !this.stopped) {
      this.opts.logger.warn(
        { socket: this.opts.socketPath, err: problem },
        'pod-resources: List failed; DCGM_FI_* series go without the container label until it answers (mount the kubelet\'s pod-resources directory, or --pod-resources-socket "" to turn this off)',
      );
    }
    this.failing = problem;
  }

  private requestList(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        this.list.path,
        (req: object) => this.list.requestSerialize(req),
        (buf: Buffer) => this.list.responseDeserialize(buf),
        {},
        new grpc.Metadata(),
        { deadline: Date.now() + this.timeoutMs },
        (err, value) => (err ? reject(err) : resolve(value)),
      );
    });
  }
}
