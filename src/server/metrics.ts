/**
 * The server's Prometheus metrics (prom-client), on a listener of their own (`--metrics-port`, plain HTTP,
 * loopback by default), never on the public port. One registry per server, so tests can run several servers
 * in one process. docs/operations.md lists every metric.
 *
 * Hot paths only increment counters and observe histograms; everything else (pool, audit backlog, RBAC cache)
 * is read when Prometheus scrapes, from counts those components keep anyway.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRIC_PREFIX } from '../shared/metrics-listener.js';
import type { GrantMetrics } from '../authority/context.js';
import type { AuthorizerStats } from '../rbac/authorizer.js';
import type { StoreHealth } from '../store/types.js';

export { listenMetrics, METRIC_PREFIX, type MetricsListener } from '../shared/metrics-listener.js';

/** Grant latency buckets, seconds: a cached grant takes about a millisecond, a slow store hundreds. */
const GRANT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** How long a scrape waits for its notification probe: the revocation bound every replica is held to. */
const NOTIFICATION_PROBE_TIMEOUT_MS = 1000;

/** What the scrape-time metrics read. */
export interface MetricsSources {
  store: StoreHealth;
  audit: { readonly backlog: number; readonly failedEvents: number };
  authorizer: { stats(): Pick<AuthorizerStats, 'hits' | 'misses'> };
}

/** Store query latency buckets, seconds: SQLite point reads take tens of microseconds, PostgreSQL round trips milliseconds. */
const QUERY_BUCKETS = [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/**
 * The server's registry and the instruments the hot paths use. Made before the store opens (it times the
 * store's queries); {@link watch} then adds what is read at scrape time.
 */
export class ServerMetrics implements GrantMetrics {
  readonly registry = new Registry();
  readonly #tokens: Counter<'grant_type' | 'outcome'>;
  readonly #latency: Histogram<'grant_type'>;
  readonly #queryOk: { observe(seconds: number): void };
  readonly #queryError: { observe(seconds: number): void };

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.#tokens = new Counter({
      name: `${METRIC_PREFIX}tokens_issued_total`,
      help: 'Token requests by grant type and outcome (success, or the OAuth error code of the refusal).',
      labelNames: ['grant_type', 'outcome'],
      registers,
    });
    this.#latency = new Histogram({
      name: `${METRIC_PREFIX}grant_duration_seconds`,
      help: 'Time to answer a token request, by grant type (successes and refusals).',
      labelNames: ['grant_type'],
      buckets: GRANT_BUCKETS,
      registers,
    });
    const queries = new Histogram({
      name: `${METRIC_PREFIX}store_query_duration_seconds`,
      help: 'Store query latency, by outcome (ok or error).',
      labelNames: ['outcome'],
      buckets: QUERY_BUCKETS,
      registers,
    });
    this.#queryOk = queries.labels('ok');
    this.#queryError = queries.labels('error');
  }

  /** Adds the metrics read at scrape time from the store's pool, the audit writer and the authoriser. */
  watch(sources: MetricsSources): void {
    const registers = [this.registry];
    const pool = sources.store.pool;
    if (pool !== undefined) {
      new Gauge({
        name: `${METRIC_PREFIX}store_pool_connections`,
        help: 'PostgreSQL pool connections: total open, idle, and queries waiting for one.',
        labelNames: ['state'],
        registers,
        collect() {
          const counts = pool();
          this.set({ state: 'total' }, counts.total);
          this.set({ state: 'idle' }, counts.idle);
          this.set({ state: 'waiting' }, counts.waiting);
        },
      });
    }
    const roundTrip = sources.store.notificationRoundTrip;
    if (roundTrip !== undefined) {
      // One probe per scrape, shared by both metrics (a scrape collects them concurrently): the failure a probe
      // counts shows in the same scrape as its NaN.
      let failed = 0;
      let probe: Promise<number> | undefined;
      const probeOnce = (): Promise<number> =>
        (probe ??= roundTrip(NOTIFICATION_PROBE_TIMEOUT_MS)
          .catch(() => {
            failed++;
            return Number.NaN;
          })
          .finally(() => {
            probe = undefined;
          }));
      new Gauge({
        name: `${METRIC_PREFIX}store_notification_lag_seconds`,
        help: 'PostgreSQL NOTIFY to this replica hearing it through LISTEN, probed at each scrape (NaN when not heard within 1 s).',
        registers,
        async collect() {
          this.set(await probeOnce());
        },
      });
      new Counter({
        name: `${METRIC_PREFIX}store_notification_probe_failures_total`,
        help: 'Change-notification probes not heard back within 1 s (LISTEN connection down or lagging).',
        registers,
        async collect() {
          await probeOnce();
          this.reset();
          this.inc(failed);
        },
      });
    }
    new Gauge({
      name: `${METRIC_PREFIX}audit_backlog_events`,
      help: 'Audit events recorded and not yet written to the store.',
      registers,
      collect() {
        this.set(sources.audit.backlog);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}audit_dropped_events_total`,
      help: 'Audit events whose write to the store failed (the request that recorded each was told).',
      registers,
      collect() {
        this.reset();
        this.inc(sources.audit.failedEvents);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}rbac_decision_cache_requests_total`,
      help: 'RBAC decisions asked of the authoriser, by cache result (hit or miss); hit ratio = hit / (hit + miss).',
      labelNames: ['result'],
      registers,
      collect() {
        const { hits, misses } = sources.authorizer.stats();
        this.reset();
        this.inc({ result: 'hit' }, hits);
        this.inc({ result: 'miss' }, misses);
      },
    });
  }

  /** One store query's duration (the store's `onQuery`). */
  query(seconds: number, outcome: 'ok' | 'error'): void {
    (outcome === 'ok' ? this.#queryOk : this.#queryError).observe(seconds);
  }

  grant(grantType: string, outcome: string, seconds: number): void {
    this.#tokens.inc({ grant_type: grantType, outcome });
    this.#latency.observe({ grant_type: grantType }, seconds);
  }
}
