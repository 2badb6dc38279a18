/**
 * Liveness and readiness of one server process (`GET /healthz`, `GET /readyz`; docs/operations.md).
 *
 * Ready means this replica can issue tokens now: the store answers a cheap query within a bound, the key ring
 * holds a current signing key, and the store's newest applied schema migration is the one this release ships
 * (not older: it would miss tables; not newer: another replica of a later release migrated it). An answer is
 * reused for {@link HEALTH.readyCacheMs} and concurrent probes share one query, so probes cannot load the
 * database. Bodies name checks and states only: no connection strings, hosts or error texts.
 */
import type { Clock } from '../shared/clock.js';
import { HEALTH } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { LATEST_MIGRATION } from '../store/migrate.js';
import { StoreTimeoutError } from '../store/open.js';
import type { StoreHealth } from '../store/types.js';

/** One check's state: `unknown` when it could not be made (the migrations check while the store is down). */
export type CheckState = 'ok' | 'failing' | 'unknown';

/** The `/readyz` body. */
export interface ReadinessReport {
  status: 'ready' | 'not_ready';
  checks: {
    store: { state: CheckState; detail?: string };
    signingKeys: { state: CheckState; detail?: string };
    migrations: { state: CheckState; detail?: string };
  };
}

/** What readiness reads: the store's health facet and the key ring. */
export interface ReadinessSources {
  store: StoreHealth;
  keyRing: { hasCurrent(): boolean };
  clock: Clock;
  logger: Logger;
  /** Defaults: {@link HEALTH}. */
  cacheMs?: number;
  storeTimeoutMs?: number;
}

/** Computes and caches the readiness report; logs each change between ready and not ready once. */
export class Readiness {
  readonly #sources: ReadinessSources;
  readonly #cacheMs: number;
  readonly #timeoutMs: number;
  #cached: { at: number; report: ReadinessReport } | undefined;
  #pending: Promise<ReadinessReport> | undefined;
  #lastStatus: ReadinessReport['status'] | undefined;

  constructor(sources: ReadinessSources) {
    this.#sources = sources;
    this.#cacheMs = sources.cacheMs ?? HEALTH.readyCacheMs;
    this.#timeoutMs = sources.storeTimeoutMs ?? HEALTH.storeTimeoutMs;
  }

  /** The current report: cached when younger than the cache window, else one fresh probe shared by all callers. */
  report(): Promise<ReadinessReport> {
    const now = this.#sources.clock.now();
    const cached = this.#cached;
    if (cached !== undefined && now - cached.at < this.#cacheMs && now >= cached.at) return Promise.resolve(cached.report);
    this.#pending ??= this.#probe().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #probe(): Promise<ReadinessReport> {
    const { store, keyRing, clock, logger } = this.#sources;
    const checks: ReadinessReport['checks'] = {
      store: { state: 'ok' },
      signingKeys: keyRing.hasCurrent() ? { state: 'ok' } : { state: 'failing', detail: 'no current signing key' },
      migrations: { state: 'ok' },
    };
    let failure: string | undefined;
    try {
      const applied = await store.check(this.#timeoutMs);
      if (applied !== LATEST_MIGRATION) {
        checks.migrations = {
          state: 'failing',
          detail: `the store's schema is at ${applied ?? 'no migration'}; this release expects ${LATEST_MIGRATION}`,
        };
      }
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
      checks.store = {
        state: 'failing',
        detail: err instanceof StoreTimeoutError ? `no answer within ${String(this.#timeoutMs)} ms` : 'the probe query failed',
      };
      checks.migrations = { state: 'unknown', detail: 'not checked: the store did not answer' };
    }
    const ready = Object.values(checks).every((c) => c.state === 'ok');
    const report: ReadinessReport = { status: ready ? 'ready' : 'not_ready', checks };
    if (report.status !== this.#lastStatus) {
      if (ready) logger.info('ready: store reachable, signing key loaded, schema current');
      else {
        const failing = Object.entries(checks)
          .filter(([, c]) => c.state !== 'ok')
          .map(([name]) => name);
        logger.warn({ failing, ...(failure === undefined ? {} : { err: { message: failure } }) }, 'not ready');
      }
      this.#lastStatus = report.status;
    }
    this.#cached = { at: clock.now(), report };
    return report;
  }
}
