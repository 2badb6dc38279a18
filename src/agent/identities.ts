/**
 * The identities assigned to this host, as the authority's `self` answers, and selector resolution.
 *
 * The list is kept current by a long poll of `self` (`since` = the version last read, `wait` =
 * `longPollSeconds`): the authority answers as soon as the host's description changes, so a change reaches
 * the agent within the authority's notice latency plus one `self` read. Every `reconcileMs` (default 5 min) a
 * plain `self` read runs as well (full reconciliation, not relying on any notice). An authority that sends no
 * `version` (before the long poll) is polled every `pollMs` (default 2 s), as are failures. The list is also
 * refreshed on demand (single flight) when a selector does not resolve. When an identity disappears from the
 * list, `onRemoved` fires with its object id and the agent drops its cached tokens at once: an identity
 * removed from the host stops getting tokens within {@link HostIdentities.removalBoundMs} at worst (one poll
 * interval plus one `self` round trip), and within well under a second while the long poll runs.
 */
import type { HostDescription, HostIdentity } from '../shared/host-protocol.js';
import type { SelfLongPoll } from './upstream.js';
import { armKey } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { UpstreamError } from './upstream.js';

/** What a request selected: nothing (system-assigned), or one id of one kind. */
export type IdentitySelector = { kind: 'system' } | { kind: 'client' | 'object' | 'resource'; value: string };

/** Every parameter spelling clients use for a selector (lower case), and what kind it is. */
export const SELECTOR_PARAMETERS: Readonly<Record<string, 'client' | 'object' | 'resource'>> = {
  client_id: 'client',
  clientid: 'client',
  object_id: 'object',
  principal_id: 'object',
  principalid: 'object',
  msi_res_id: 'resource',
  mi_res_id: 'resource',
  'msi-res-id': 'resource',
};

export interface HostIdentitiesOptions {
  /** Reads the host description from the authority (normally `AuthorityClient.self`), with `poll` as a long poll. */
  describe: (poll?: SelfLongPoll, signal?: AbortSignal) => Promise<HostDescription>;
  pollMs: number;
  /** The long poll's `wait` (seconds); 0 turns the long poll off (poll every `pollMs`). Default 0. */
  longPollSeconds?: number;
  /** How often a plain `self` read runs while the long poll is on (full reconciliation); default 5 min. */
  reconcileMs?: number;
  logger: Logger;
  clock?: Clock;
  /** Identities (object ids) no longer assigned to the host. */
  onRemoved: (objectIds: string[]) => void;
  /** Identities (object ids) still assigned whose upstream link (outbound federation) was added, changed or removed. */
  onUpstreamChanged?: (objectIds: string[]) => void;
  /** The authority no longer recognises the host (credential revoked or host deleted). */
  onHostNotRecognised: (err: UpstreamError) => void;
  /** The authority answered `self`: it recognises the host (again, after a refusal). */
  onHostRecognised?: () => void;
  /** On-demand refreshes (unknown selectors) are at most this frequent; default 200 ms. */
  minOnDemandGapMs?: number;
}

export class HostIdentities {
  readonly pollMs: number;
  readonly #options: HostIdentitiesOptions;
  readonly #clock: Clock;
  #host: HostDescription | undefined;
  #byClient = new Map<string, HostIdentity>();
  #byObject = new Map<string, HostIdentity>();
  #byResource = new Map<string, HostIdentity>();
  #system: HostIdentity | undefined;
  #inFlight: Promise<HostDescription> | undefined;
  #lastRefreshAt = -Infinity;
  #lastSuccessAt: number | undefined;
  #lastError: UpstreamError | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Set while the watch loop runs; aborting it ends the loop and its pending long poll. */
  #watching: AbortController | undefined;
  // Answers are applied in the order their reads started: an older read answering late must not win.
  #startedReads = 0;
  #appliedRead = 0;
  /** Number of `self` calls made (tests measure single flight with it). */
  refreshes = 0;
  /** Number of long polls answered (tests). */
  longPolls = 0;

  constructor(options: HostIdentitiesOptions) {
    this.#options = options;
    this.pollMs = options.pollMs;
    this.#clock = options.clock ?? systemClock;
  }

  /** The upper bound on how long a removed identity keeps getting tokens: one poll plus one `self` call (timeout). */
  removalBoundMs(upstreamTimeoutMs: number): number {
    return this.pollMs + upstreamTimeoutMs;
  }

  /** The host as last described; undefined until the first successful `self`. */
  get host(): HostDescription | undefined {
    return this.#host;
  }

  /** When (clock time) the authority last answered `self`; undefined until it has. Readiness reads it. */
  get lastSuccessAt(): number | undefined {
    return this.#lastSuccessAt;
  }

  get lastError(): UpstreamError | undefined {
    return this.#lastError;
  }

  start(): void {
    if (this.#timer !== undefined || this.#watching !== undefined) return;
    if ((this.#options.longPollSeconds ?? 0) > 0) {
      const watching = new AbortController();
      this.#watching = watching;
      void this.#watch(watching.signal);
      return;
    }
    this.#timer = setInterval(() => {
      this.refresh().catch(() => undefined);
    }, this.pollMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#watching?.abort();
    this.#watching = undefined;
  }

  /**
   * The long-poll loop: a plain read when there is no version to wait on or a reconciliation is due (and
   * `pollMs` between reads while the authority sends no version), else a long poll from the version held.
   * After a failure it waits `pollMs` before the next call.
   */
  async #watch(signal: AbortSignal): Promise<void> {
    const waitSeconds = this.#options.longPollSeconds ?? 0;
    const reconcileMs = this.#options.reconcileMs ?? 300_000;
    let reconciledAt = -Infinity;
    while (!signal.aborted) {
      const since = this.#host?.version;
      if (since === undefined || this.#clock.now() - reconciledAt >= reconcileMs) {
        reconciledAt = this.#clock.now();
        const answered = await this.refresh().then(
          () => true,
          () => false,
        );
        // After a failure, and from an authority without the long poll: poll every `pollMs`, as before it.
        if (!answered || this.#host?.version === undefined) await pause(this.pollMs, signal);
        continue;
      }
      try {
        const read = ++this.#startedReads;
        const started = performance.now();
        const host = await this.#options.describe({ since, waitSeconds }, signal);
        this.longPolls++;
        this.#succeeded(host, read);
        // An authority answering every poll at once (a version that keeps changing) must not spin this loop.
        if (performance.now() - started < LONG_POLL_MIN_GAP_MS) await pause(LONG_POLL_MIN_GAP_MS, signal);
      } catch (err) {
        if (signal.aborted) return;
        this.#failed(err);
        await pause(this.pollMs, signal);
      }
    }
  }

  /** Forgets everything (the host is no longer recognised). */
  clear(): void {
    this.#apply(undefined);
  }

  /** Re-reads `self` (single flight: concurrent callers share one call). */
  refresh(): Promise<HostDescription> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    this.refreshes++;
    const read = ++this.#startedReads;
    const flight = this.#options
      .describe()
      .then((host) => {
        this.#succeeded(host, read);
        return host;
      })
      .catch((err: unknown) => {
        throw this.#failed(err);
      })
      .finally(() => {
        this.#lastRefreshAt = this.#clock.now();
        this.#inFlight = undefined;
      });
    this.#inFlight = flight;
    return flight;
  }

  #succeeded(host: HostDescription, read: number): void {
    this.#lastError = undefined;
    this.#lastSuccessAt = this.#clock.now();
    this.#options.onHostRecognised?.();
    if (read < this.#appliedRead) return; // a later read already applied a newer description
    this.#appliedRead = read;
    this.#apply(host);
  }

  #failed(err: unknown): UpstreamError {
    const failure = err instanceof UpstreamError ? err : new UpstreamError('unavailable', String(err), { cause: err });
    this.#lastError = failure;
    if (failure.kind === 'host-not-recognised') {
      this.#apply(undefined);
      this.#options.onHostNotRecognised(failure);
    } else {
      this.#options.logger.warn(
        { err: failure.message, kind: failure.kind },
        "cannot read this host's identities from the authority; keeping the last known list",
      );
    }
    return failure;
  }

  /** The identity a selector names among the host's identities now, or undefined. Synchronous (hot path). */
  resolve(selector: IdentitySelector): HostIdentity | undefined {
    switch (selector.kind) {
      case 'system':
        return this.#system;
      case 'client':
        return this.#byClient.get(selector.value.toLowerCase());
      case 'object':
        return this.#byObject.get(selector.value.toLowerCase());
      case 'resource':
        return this.#byResource.get(armKey(selector.value));
    }
  }

  /**
   * Like {@link resolve}; when the selector does not resolve (or nothing is known yet), re-reads `self` once
   * (shared with concurrent callers) and tries again. Throws the {@link UpstreamError} when the authority
   * cannot answer and nothing is known.
   */
  async resolveFresh(selector: IdentitySelector): Promise<HostIdentity | undefined> {
    const found = this.resolve(selector);
    if (found !== undefined) return found;
    const gap = this.#options.minOnDemandGapMs ?? 200;
    if (this.#inFlight !== undefined || this.#host === undefined || this.#clock.now() - this.#lastRefreshAt >= gap) {
      try {
        await this.refresh();
      } catch (err) {
        if (this.#host === undefined) throw err;
      }
    }
    return this.resolve(selector);
  }

  #apply(host: HostDescription | undefined): void {
    const before = this.#byObject;
    const byClient = new Map<string, HostIdentity>();
    const byObject = new Map<string, HostIdentity>();
    const byResource = new Map<string, HostIdentity>();
    let system: HostIdentity | undefined;
    for (const identity of host?.identities ?? []) {
      byClient.set(identity.clientId.toLowerCase(), identity);
      byObject.set(identity.objectId.toLowerCase(), identity);
      // A system-assigned identity's resourceId is the host's own id; selecting the host by msi_res_id is not a thing.
      if (identity.type === 'UserAssigned') byResource.set(armKey(identity.resourceId), identity);
      else system = identity;
    }
    this.#host = host;
    this.#byClient = byClient;
    this.#byObject = byObject;
    this.#byResource = byResource;
    this.#system = system;
    const removed = [...before.keys()].filter((oid) => !byObject.has(oid));
    if (removed.length > 0) {
      this.#options.logger.info({ identities: removed }, 'identities no longer assigned to this host; their cached tokens are dropped');
      this.#options.onRemoved(removed);
    }
    // A token from the old upstream (or from openmsi, before a link) must not be served after the link changed.
    const relinked = [...byObject.entries()]
      .filter(([oid, now]) => {
        const was = before.get(oid);
        return was !== undefined && JSON.stringify(was.upstream ?? null) !== JSON.stringify(now.upstream ?? null);
      })
      .map(([oid]) => oid);
    if (relinked.length > 0) {
      this.#options.logger.info({ identities: relinked }, 'upstream links changed; the cached tokens of these identities are dropped');
      this.#options.onUpstreamChanged?.(relinked);
    }
  }
}

/** The least time between two long polls (a change is still applied at once; only the next poll waits). */
const LONG_POLL_MIN_GAP_MS = 100;

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
