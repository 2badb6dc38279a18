/**
 * The agent's Prometheus metrics (`openmsi agent --metrics-port`; docs/agent.md). Counters (and the authority
 * in use, a gauge), with every label child created up front, so answering a token costs one increment and no
 * allocation.
 */
import { Counter, Gauge, collectDefaultMetrics, Registry } from 'prom-client';
import { AGENT_SURFACES, type AgentSurface } from '../shared/host-protocol.js';
import { METRIC_PREFIX } from '../shared/metrics-listener.js';
import type { UpstreamFailureKind } from './upstream.js';

/** What the token path reports (src/agent/surfaces/common.ts). */
export interface AgentMetricsSink {
  /** A token was answered, from the cache or fresh from the authority (or a linked identity's upstream Entra). */
  served(surface: AgentSurface, source: 'cache' | 'authority' | 'upstream'): void;
  /** A token the cache did not hold could not be obtained from the authority. */
  upstreamError(kind: UpstreamFailureKind): void;
}

/** Every kind, so each label child exists from the start (a record, so a kind added to the type must be listed here). */
const UPSTREAM_KINDS = Object.keys({
  unavailable: true,
  'host-not-recognised': true,
  'identity-not-found': true,
  'invalid-resource': true,
  refused: true,
  'federation-refused': true,
} satisfies Record<UpstreamFailureKind, true>) as UpstreamFailureKind[];

type Inc = { inc(): void };

/** The agent's registry and its counters. */
export class AgentMetrics implements AgentMetricsSink {
  readonly registry = new Registry();
  readonly #served = new Map<AgentSurface, Inc>();
  readonly #hit: Inc;
  readonly #miss: Inc;
  readonly #upstream = new Map<UpstreamFailureKind, Inc>();
  readonly #switches: Record<'failover' | 'return', Inc>;
  readonly #inUse: Gauge;
  readonly #authorities: readonly string[];

  /** `authorities`: the agent's authorities in order of preference (their origins label the authority gauge). */
  constructor(options: { authorities?: readonly string[] } = {}) {
    this.#authorities = options.authorities ?? [];
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    const served = new Counter({
      name: `${METRIC_PREFIX}agent_tokens_served_total`,
      help: 'Tokens answered to workloads, by surface (imds, app-service, cloud-shell, arc, session, ...).',
      labelNames: ['surface'],
      registers,
    });
    for (const surface of AGENT_SURFACES) this.#served.set(surface, served.labels(surface));
    const cache = new Counter({
      name: `${METRIC_PREFIX}agent_token_cache_total`,
      help: 'Token requests by cache result: hit (answered from the cache) or miss (the authority, or a linked identity’s upstream Entra, was asked); hit ratio = hit / (hit + miss).',
      labelNames: ['result'],
      registers,
    });
    this.#hit = cache.labels('hit');
    this.#miss = cache.labels('miss');
    const upstream = new Counter({
      name: `${METRIC_PREFIX}agent_upstream_errors_total`,
      help: 'Token requests the authority did not serve, by kind (unavailable, host-not-recognised, identity-not-found, invalid-resource, refused, federation-refused).',
      labelNames: ['kind'],
      registers,
    });
    for (const kind of UPSTREAM_KINDS) this.#upstream.set(kind, upstream.labels(kind));
    const failovers = new Counter({
      name: `${METRIC_PREFIX}agent_authority_failovers_total`,
      help: 'Switches to another authority (--authority, repeatable) because the one in use failed with a connection error or a 5xx.',
      registers,
    });
    const returns = new Counter({
      name: `${METRIC_PREFIX}agent_authority_returns_total`,
      help: 'Switches back to a more preferred authority after its readiness probe (GET /readyz) answered 200.',
      registers,
    });
    this.#switches = { failover: failovers, return: returns };
    this.#inUse = new Gauge({
      name: `${METRIC_PREFIX}agent_authority_in_use`,
      help: 'The authority calls go to now: 1 for it, 0 for the others (label: its origin; index: its place in the --authority list, 0 = preferred).',
      labelNames: ['authority', 'index'],
      registers,
    });
    this.#authorities.forEach((origin, index) => this.#inUse.labels(origin, String(index)).set(index === 0 ? 1 : 0));
  }

  /** The agent switched to the authority at `index` (authority-pool.ts). */
  authoritySwitch(reason: 'failover' | 'return', index: number): void {
    this.#switches[reason].inc();
    this.#authorities.forEach((origin, i) => this.#inUse.labels(origin, String(i)).set(i === index ? 1 : 0));
  }

  served(surface: AgentSurface, source: 'cache' | 'authority' | 'upstream'): void {
    this.#served.get(surface)?.inc();
    (source === 'cache' ? this.#hit : this.#miss).inc();
  }

  upstreamError(kind: UpstreamFailureKind): void {
    this.#upstream.get(kind)?.inc();
    this.#miss.inc();
  }
}
