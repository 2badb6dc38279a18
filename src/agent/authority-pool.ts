/**
 * The authorities an agent may call (`openmsi agent --authority URL`, repeatable) and the one it calls now: the
 * one place every agent → authority call chooses where to go (enrolment, renewal, `self`, grants, federation
 * assertions, audit uploads; see {@link AuthorityClient}).
 *
 * - The first authority is preferred. A call goes to the one in use; when it fails with a connection error (refused,
 *   reset, TLS, timeout) or a 5xx, the same call is tried at once on the next authority (those not seen failing
 *   first, in the order given), and the first that answers becomes the one in use (a failover). Any other answer
 *   (a 4xx: a refused host, a used join token, an unknown identity; a 429) is the installation's answer, final,
 *   and never tried elsewhere: the replicas share one store, so another would say the same.
 * - While a less preferred authority is in use, the more preferred ones are probed (`GET /readyz`, unauthenticated)
 *   with exponential backoff and jitter; the first that answers 200 is used again from the next call (a return).
 *   A return followed by a failure before any call succeeded there counts as a failed probe, so an authority that
 *   is ready but cannot serve does not make the agent flap at probe speed.
 * - Every authority has its own keep-alive connection pool; a call is never sent twice to the same authority.
 *
 * Replicas of one installation share the store, so a call repeated on another replica after an ambiguous failure
 * is safe: host assertions are signed per attempt (fresh `jti`), renewals with the same new key return the
 * same credential, audit records are stored once by id, and a join token is accepted once in total.
 */
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { AUTHORITY_READY_PATH } from '../shared/host-protocol.js';
import { httpCall } from '../shared/http-client.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { AGENT_DEFAULTS } from '../shared/config.js';
import { UpstreamError } from './upstream-error.js';

/** One authority the agent may call. */
export interface AuthorityEndpoint {
  /** Its position in the list (0 = preferred). */
  readonly index: number;
  /** `https://host:port` */
  readonly origin: string;
  /** Its keep-alive connection pool (with the installation's CA for https). */
  readonly agent: HttpsAgent | HttpAgent;
}

/** A change of the authority in use: `failover` after failures, `return` to a more preferred one that recovered. */
export interface AuthoritySwitch {
  from: AuthorityEndpoint;
  to: AuthorityEndpoint;
  reason: 'failover' | 'return';
  /** What the authority left behind answered (failover only); never a token or a secret. */
  error?: string;
}

export interface AuthorityPoolOptions {
  /** The authorities in order of preference (at least one; duplicates are dropped). */
  urls: readonly string[];
  /** PEM of the CA the authorities' TLS certificates chain to; absent, the system roots. */
  caPem?: string;
  clock?: Clock;
  random?: () => number;
  /** Bound of one readiness probe (default {@link AGENT_DEFAULTS.upstreamTimeoutMs}). */
  timeoutMs?: number;
  /** First and longest wait between probes of a more preferred authority (defaults {@link AGENT_DEFAULTS}). */
  probeMinMs?: number;
  probeMaxMs?: number;
  onSwitch?: (event: AuthoritySwitch) => void;
}

/** Whether `err` says the authority could not serve (connection error, timeout, 5xx), so another may. */
export function isFailoverError(err: unknown): boolean {
  return err instanceof UpstreamError && err.kind === 'unavailable' && (err.status === undefined || err.status >= 500);
}

export class AuthorityPool {
  readonly endpoints: readonly AuthorityEndpoint[];
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #timeoutMs: number;
  readonly #probeMinMs: number;
  readonly #probeMaxMs: number;
  readonly #onSwitch: ((event: AuthoritySwitch) => void) | undefined;
  #current = 0;
  /** Clock time each authority was last seen failing; undefined once it answered again. */
  readonly #failedAt: (number | undefined)[];
  #probeTimer: NodeJS.Timeout | undefined;
  #probeFailures = 0;
  /** Set by a return; cleared by the first call that succeeds after it (the return then held). */
  #returnPending = false;
  #closed = false;
  /** Failovers and returns since start (tests and metrics read them). */
  failovers = 0;
  returns = 0;

  constructor(options: AuthorityPoolOptions) {
    const origins = [...new Set(options.urls.map((url) => new URL(url).origin))];
    if (origins.length === 0) throw new TypeError('an agent needs at least one authority URL');
    this.endpoints = origins.map((origin, index) => ({
      index,
      origin,
      agent: origin.startsWith('https:')
        ? new HttpsAgent({ keepAlive: true, maxSockets: 16, ...(options.caPem === undefined ? {} : { ca: options.caPem }) })
        : new HttpAgent({ keepAlive: true, maxSockets: 16 }),
    }));
    this.#failedAt = origins.map(() => undefined);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#timeoutMs = options.timeoutMs ?? AGENT_DEFAULTS.upstreamTimeoutMs;
    this.#probeMinMs = options.probeMinMs ?? AGENT_DEFAULTS.authorityProbeMinMs;
    this.#probeMaxMs = Math.max(this.#probeMinMs, options.probeMaxMs ?? AGENT_DEFAULTS.authorityProbeMaxMs);
    this.#onSwitch = options.onSwitch;
  }

  /** The preferred authority (the first given). */
  get preferred(): AuthorityEndpoint {
    return this.endpoints[0]!;
  }

  /** The authority calls go to now. */
  get current(): AuthorityEndpoint {
    return this.endpoints[this.#current]!;
  }

  /**
   * Runs `attempt` on the authority in use; on a connection error or a 5xx, on each other authority in turn
   * (those not seen failing first) until one answers. Rejects with the last failure when none could serve, and
   * at once with any other failure, or when `signal` was aborted (an abandoned call is no authority's fault).
   */
  async call<T>(attempt: (endpoint: AuthorityEndpoint) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let last: unknown;
    const startedOn = this.#current;
    for (const endpoint of this.#order()) {
      try {
        const result = await attempt(endpoint);
        this.#answered(endpoint, startedOn);
        return result;
      } catch (err) {
        if (signal?.aborted === true) throw err;
        if (!isFailoverError(err)) {
          // A refusal is still an answer: the authority is up (and the installation's answer is final).
          if (err instanceof UpstreamError && err.status !== undefined) this.#answered(endpoint, startedOn);
          throw err;
        }
        last = err;
        this.#failed(endpoint);
      }
    }
    throw last;
  }

  /** Stops probing and closes every connection pool. */
  close(): void {
    this.#closed = true;
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer);
    this.#probeTimer = undefined;
    for (const endpoint of this.endpoints) endpoint.agent.destroy();
  }

  /** The authority in use first, then the others by preference, those seen failing last. */
  #order(): AuthorityEndpoint[] {
    const others = this.endpoints.filter((e) => e.index !== this.#current);
    const healthy = others.filter((e) => this.#failedAt[e.index] === undefined);
    const failing = others.filter((e) => this.#failedAt[e.index] !== undefined);
    return [this.current, ...healthy, ...failing];
  }

  #failed(endpoint: AuthorityEndpoint): void {
    this.#failedAt[endpoint.index] = this.#clock.now();
    if (endpoint.index === this.#current && this.#returnPending) {
      // The return did not hold: back off as after a failed probe.
      this.#returnPending = false;
      this.#probeFailures++;
    }
  }

  /** `endpoint` answered a call that started on the authority at `startedOn`. */
  #answered(endpoint: AuthorityEndpoint, startedOn: number): void {
    this.#failedAt[endpoint.index] = undefined;
    if (endpoint.index === this.#current) {
      if (this.#returnPending) {
        this.#returnPending = false;
        this.#probeFailures = 0;
      }
      return;
    }
    // The authority in use changed while this call ran (a return, or another call's failover): it stays. A call
    // sent before a return and served where it was sent must not undo the return.
    if (this.#current !== startedOn) return;
    const from = this.current;
    this.#current = endpoint.index;
    this.failovers++;
    this.#onSwitch?.({ from, to: endpoint, reason: 'failover', error: 'connection error or 5xx' });
    this.#scheduleProbe();
  }

  /** While a less preferred authority is in use, probes the more preferred ones after a backoff. */
  #scheduleProbe(): void {
    if (this.#closed || this.#current === 0 || this.#probeTimer !== undefined) return;
    const ceiling = Math.min(this.#probeMaxMs, this.#probeMinMs * 2 ** Math.min(this.#probeFailures, 30));
    const delay = Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined;
      void this.#probe().finally(() => this.#scheduleProbe());
    }, delay);
    this.#probeTimer.unref();
  }

  /** Probes the authorities more preferred than the one in use, best first; switches to the first that is ready. */
  async #probe(): Promise<void> {
    for (const endpoint of this.endpoints.slice(0, this.#current)) {
      if (this.#closed) return;
      if (!(await this.#ready(endpoint))) continue;
      if (this.#closed || endpoint.index >= this.#current) return;
      const from = this.current;
      this.#current = endpoint.index;
      this.#failedAt[endpoint.index] = undefined;
      this.#returnPending = true;
      this.returns++;
      this.#onSwitch?.({ from, to: endpoint, reason: 'return' });
      return;
    }
    this.#probeFailures++;
  }

  async #ready(endpoint: AuthorityEndpoint): Promise<boolean> {
    try {
      const answer = await httpCall(endpoint.origin + AUTHORITY_READY_PATH, {
        agent: endpoint.agent,
        timeoutMs: Math.min(this.#timeoutMs, 5000),
        maxResponseBytes: 64 * 1024,
        headers: { accept: 'application/json' },
      });
      return answer.status === 200;
    } catch {
      return false;
    }
  }
}
