/**
 * The server's Prometheus metrics (prom-client), on a listener of their own (`--metrics-port`, plain HTTP,
 * loopback by default), never on the public port. One registry per server, so tests can run several servers
 * in one process. docs/operations.md lists every metric.
 *
 * Hot paths only increment counters and observe histograms; everything else (pool, audit backlog, RBAC cache)
 * is read when Prometheus scrapes, from counts those components keep anyway.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GrantMetrics } from '../authority/context.js';
import type { AuthorizerStats } from '../rbac/authorizer.js';
import type { StoreHealth } from '../store/types.js';

/** Every metric name starts with this. */
export const METRIC_PREFIX = 'openmsi_';

/** Grant latency buckets, seconds: a cached grant takes about a millisecond, a slow store hundreds. */
const GRANT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What the scrape-time metrics read. */
export interface MetricsSources {
  store: StoreHealth;
  audit: { readonly backlog: number; readonly failedEvents: number };
  authorizer: { stats(): Pick<AuthorizerStats, 'hits' | 'misses'> };
}

/** The server's registry and the instruments the hot paths use. */
export class ServerMetrics implements GrantMetrics {
  readonly registry = new Registry();
  readonly #tokens: Counter<'grant_type' | 'outcome'>;
  readonly #latency: Histogram<'grant_type'>;

  constructor(sources: MetricsSources) {
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

  grant(grantType: string, outcome: string, seconds: number): void {
    this.#tokens.inc({ grant_type: grantType, outcome });
    this.#latency.observe({ grant_type: grantType }, seconds);
  }
}

/** A plain-HTTP listener answering `GET /metrics` from `registry` and 404 to anything else. */
export interface MetricsListener {
  /** `http://host:port` as bound. */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `registry` at `GET /metrics` on `host:port` (port 0 picks one). Shared by the server and the agent. */
export async function listenMetrics(registry: Registry, host: string, port: number): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      () => res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics collection failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${String(bound)}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
