/**
 * Keeps this node's ResourceSlices equal to the pure function of the inventory and device health
 * (`buildResourceSlices`). One reconcile in flight at a time; changes arriving meanwhile coalesce into one more
 * reconcile. Failures are retried with capped exponential backoff and full jitter; nothing is written when
 * nothing changed. Timers are `unref()`ed and no promise is left to reject unhandled.
 *
 * Reconcile (docs/contracts.md §4, upstream k8s.io/dynamic-resource-allocation resourceslice controller pattern):
 * GET the Node (owner reference UID) → LIST our slices (`spec.nodeName`, `spec.driver` field selector) →
 * plan (`publisher-plan.ts`) → POST / PUT (resourceVersion) / DELETE (uid precondition).
 *
 * `stop()` leaves the slices in place: the kubelet deletes them 30 s after the plugin goes away for good, and a
 * restarting agent takes them over without a gap.
 */
import type { V1DeviceTaint, V1ResourceSlice } from '@kubernetes/client-node';
import type { KubeConnection } from '../../k8s/rest.js';
import { errorMessage, GpuletError } from '../../errors.js';
import type { Inventory } from '../../gpu/types.js';
import type { Logger } from '../../log.js';
import type { DnsSubdomain, DriverName, PoolName } from '../../model/names.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from '../../util/backoff.js';
import { createSliceClient, httpStatusOf, type SliceClient } from './client.js';
import { planReconcile } from './plan.js';
import { buildResourceSlices, SliceError, type SliceSpec } from './build.js';
import type { DynamicMigPolicy } from './dynamic-mig.js';

/** Options of {@link SlicePublisher}. */
export interface SlicePublisherOptions {
  /** Where the API server is (in-cluster, kubeconfig file, or the embedded dev server): src/k8s/kubeconfig.ts's, or a client-node `KubeConfig`. */
  readonly kubeConfig: KubeConnection;
  /** DRA driver name (`spec.driver`), e.g. `gpu.gpulet.dev`. */
  readonly driverName: DriverName;
  /** This node's name (`spec.nodeName`). */
  readonly nodeName: DnsSubdomain;
  /** Pool name (`spec.pool.name`): gpulet's is `poolNameOf(nodeName)`, decided once in src/config.ts. */
  readonly poolName: PoolName;
  readonly logger: Logger;
  /** Retry bounds, ms; default 500 ms initial, 30 s cap. */
  readonly backoff?: BackoffOptions;
  /** Bound of each API call, ms; default 30 s. */
  readonly requestTimeoutMs?: number;
  /** Replace the API client (tests). */
  readonly client?: SliceClient;
  /** Uniform random source in [0, 1) for jitter (tests); default Math.random. */
  readonly random?: () => number;
  /** GPUs published in dynamic MIG mode (`--mig-mode`); default none. */
  readonly dynamicMig?: DynamicMigPolicy;
}

/** Counters for health checks and tests. */
export interface PublisherStats {
  /** Reconciles that completed (with or without writes). */
  readonly reconciles: number;
  /** Successful write requests (POST, PUT, DELETE). */
  readonly writes: number;
  /** Failed reconciles (API errors and build errors). */
  readonly errors: number;
  /** Consecutive failed reconciles now (0 after a success). */
  readonly consecutiveFailures: number;
  /** Unix ms of the last successful reconcile. */
  readonly lastSuccessMs?: number;
  /** Message of the last error. */
  readonly lastError?: string;
  /** Pool generation currently published (0 before the first success). */
  readonly generation: number;
}

interface Desired {
  readonly inventory: Inventory;
  readonly taints: ReadonlyMap<string, readonly V1DeviceTaint[]>;
}

/** Publishes and reconciles this node's ResourceSlices. See the module doc. */
export class SlicePublisher {
  private readonly client: SliceClient;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private desired: Desired | undefined;
  private started = false;
  private stopped = false;
  private dirty = false;
  private synced = false;
  private running: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private waiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  private ignoreTaints = false;
  private nodeMissingWarned = false;
  /** UID of our Node (owner reference), read once and kept until republish(): one GET per start, not per reconcile. */
  private nodeUid: string | undefined;
  private counters = { reconciles: 0, writes: 0, errors: 0, generation: 0 };
  private lastSuccessMs: number | undefined;
  private lastError: string | undefined;

  constructor(private readonly opts: SlicePublisherOptions) {
    this.client = opts.client ?? createSliceClient(opts.kubeConfig, opts.requestTimeoutMs);
    this.log = opts.logger.child({ component: 'slice-publisher' });
    this.backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF, opts.random);
  }

  /**
   * Set the desired state (inventory + device taints by UUID, see ./taints.ts `taintsByUuid`) and trigger a
   * reconcile.
   */
  update(inventory: Inventory, taints: ReadonlyMap<string, readonly V1DeviceTaint[]> = new Map()): void {
    this.desired = { inventory, taints: new Map(taints) };
    this.kick();
  }

  /**
   * Force a full reconcile (e.g. after the kubelet re-registered us: it deletes the node's slices when it starts).
   * The Node's UID is read again too: a re-registered node may be a new Node object.
   */
  republish(): void {
    this.nodeUid = undefined;
    this.kick();
  }

  /** Begin reconciling (a reconcile runs as soon as a desired state is known). Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.kick();
  }

  /** Stop: cancel a pending retry, wait for an in-flight reconcile, reject pending `whenSynced()`. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.running;
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w.reject(new GpuletError('STOPPED', 'slice publisher stopped before the slices were in sync'));
  }

  /**
   * Resolves once the published slices match the latest desired state (no reconcile running or pending).
   * Rejects with the SliceError when the desired state cannot be built, or when the publisher stops first.
   */
  whenSynced(): Promise<void> {
    if (this.isIdleAndSynced()) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Counters: writes, errors, last success. */
  stats(): PublisherStats {
    return {
      ...this.counters,
      consecutiveFailures: this.backoff.failures,
      ...(this.lastSuccessMs === undefined ? {} : { lastSuccessMs: this.lastSuccessMs }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  private isIdleAndSynced(): boolean {
    return this.synced && !this.dirty && this.running === undefined && this.retryTimer === undefined;
  }

  private kick(): void {
    if (!this.started || this.stopped || this.desired === undefined) return;
    this.dirty = true;
    this.synced = false;
    // A running loop picks the change up; a pending retry will too (keeps the backoff: no hammering).
    if (this.running !== undefined || this.retryTimer !== undefined) return;
    this.runLoop();
  }

  private runLoop(): void {
    this.running = this.loop()
      .catch((err: unknown) => this.log.error({ err }, 'slice publisher loop failed unexpectedly'))
      .finally(() => {
        this.running = undefined;
        if (this.stopped) return;
        // A change that arrived after the loop's last check: run again (no lost wake-up).
        if (this.dirty && this.retryTimer === undefined) return this.runLoop();
        if (this.isIdleAndSynced()) for (const w of this.waiters.splice(0)) w.resolve();
      });
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.reconcileOnce();
        this.backoff.reset();
      } catch (err) {
        this.counters.errors += 1;
        this.lastError = errorMessage(err);
        if (err instanceof SliceError) {
          // Deterministic: retrying cannot help. Wait for the next update().
          this.log.error({ err }, 'cannot build ResourceSlices from the inventory; keeping the published ones');
          this.rejectWaiters(err);
          return;
        }
        const delay = this.backoff.next();
        this.log.warn(
          { err: this.lastError, status: httpStatusOf(err), attempt: this.backoff.failures, retryInMs: delay },
          'ResourceSlice reconcile failed; retrying',
        );
        this.dirty = true;
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (!this.stopped) this.runLoop();
        }, delay);
        this.retryTimer.unref();
        return;
      }
    }
    if (!this.dirty && !this.stopped) this.synced = true;
  }

  private rejectWaiters(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  private async reconcileOnce(): Promise<void> {
    const desired = this.desired;
    if (desired === undefined) return;
    const { driverName, nodeName, poolName } = this.opts;
    const nodeUid = (this.nodeUid ??= await this.client.nodeUid(nodeName));
    if (nodeUid === undefined && !this.nodeMissingWarned) {
      this.nodeMissingWarned = true;
      this.log.warn({ node: nodeName }, 'Node object not found: publishing ResourceSlices without an owner reference');
    }
    const build = (generation: number): SliceSpec[] =>
      buildResourceSlices({
        driverName, nodeName, poolName, inventory: desired.inventory, generation, taints: desired.taints,
        ...(nodeUid === undefined ? {} : { nodeUid }),
        ...(this.opts.dynamicMig === undefined ? {} : { dynamicMig: this.opts.dynamicMig }),
      });
    build(0); // throws SliceError before any request when the inventory cannot be published
    const existing = await this.client.list(driverName, nodeName);
    const plan = planReconcile({
      existing, build, poolName, lastGeneration: this.counters.generation, ignoreTaints: this.ignoreTaints,
    });
    for (const action of plan.actions) {
      if (action.op === 'delete') {
        await this.client.delete(action.name, action.uid);
      } else {
        const stored = action.op === 'create' ? await this.client.create(action.body) : await this.client.replace(action.body);
        this.noticeDroppedTaints(action.body, stored);
      }
      this.counters.writes += 1;
    }
    this.counters.reconciles += 1;
    this.counters.generation = plan.generation;
    this.lastSuccessMs = Date.now();
    if (plan.actions.length > 0) {
      const count = plan.actions.reduce<Record<string, number>>((acc, a) => ({ ...acc, [a.op]: (acc[a.op] ?? 0) + 1 }), {});
      this.log.info({ generation: plan.generation, ...count }, 'ResourceSlices published');
    }
  }

  /** The API server drops `devices[].taints` when the DRADeviceTaints feature gate (alpha in 1.35) is off. */
  private noticeDroppedTaints(sent: V1ResourceSlice, stored: V1ResourceSlice): void {
    if (this.ignoreTaints) return;
    const sentTaints = (sent.spec.devices ?? []).some((d) => (d.taints?.length ?? 0) > 0);
    const storedTaints = (stored.spec.devices ?? []).some((d) => (d.taints?.length ?? 0) > 0);
    if (sentTaints && !storedTaints) {
      this.ignoreTaints = true;
      this.log.warn('the API server dropped device taints (DRADeviceTaints feature gate off?): faulty devices stay schedulable');
    }
  }
}
