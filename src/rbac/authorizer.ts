/**
 * The request-time authoriser: per-tenant RBAC state loaded once and kept in memory, a bounded LRU of
 * decisions, and invalidation on every change.
 *
 * - Hot path (state loaded, decision cached): one Map lookup; no store, no network.
 * - Miss: the tenant's state is loaded at most once at a time (single flight), indexed, and the request is
 *   evaluated by the pure {@link evaluate}.
 * - `source.onChange(tenantId)` drops that tenant's state and every cached decision for it at once (a
 *   generation counter: decisions carry the generation of the state they came from and older ones are never
 *   served) and reloads. Checks arriving during the reload wait for the new state; a load that was already in
 *   flight when the notification arrived is discarded and redone. So in this process a revoked permission is
 *   refused by the very next check.
 * - Reconciliation: every loaded tenant's `source.version()` is compared with the loaded version every
 *   `reconcileMs` (checked on a timer ticking at a fifth of that) and a difference reloads. This covers a
 *   notification missed by another replica: the bound there is the notify latency, or at worst
 *   `reconcileMs` plus one tick.
 *
 * Fail closed: when state cannot be loaded, `check` rejects (the caller refuses the request).
 */
import type { Authorizer, AuthorizationDecision, AuthorizationRequest, Permission, RbacStateSource } from './contracts.js';
import { effectivePermissions, evaluate, indexState, type RbacIndex } from './evaluate.js';
import { parseScope } from './scopes.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { RBAC_DEFAULTS } from '../shared/config.js';
import { BackgroundInterval } from '../shared/interval.js';
import type { Logger } from '../shared/logger.js';

export interface AuthorizerOptions {
  source: RbacStateSource;
  clock?: Clock;
  logger?: Pick<Logger, 'warn' | 'debug'>;
  /** How often a loaded tenant's version is reconciled with the source ({@link RBAC_DEFAULTS}.reconcileMs). */
  reconcileMs?: number;
  /** Decisions kept across all tenants ({@link RBAC_DEFAULTS}.decisionCacheSize). */
  decisionCacheSize?: number;
  /** Run reconciliation on a real timer (default true). Tests pass false and call {@link CachedAuthorizer.reconcile}. */
  timer?: boolean;
}

export interface AuthorizerStats {
  hits: number;
  misses: number;
  /** Calls to `source.load`. */
  loads: number;
  /** Tenants dropped by a change notification or by reconciliation. */
  invalidations: number;
  /** Version comparisons made by reconciliation. */
  reconciliations: number;
  cachedDecisions: number;
  loadedTenants: number;
}

/** The contract's {@link Authorizer}, plus what operators and tests need. */
export interface CachedAuthorizer extends Authorizer {
  /** Reconciles every loaded tenant whose last check is at least `reconcileMs` old (by the clock); the timer calls this. */
  reconcile(): Promise<void>;
  /** Drops a tenant's state and decisions, as a change notification does. */
  invalidate(tenantId: string): void;
  stats(): AuthorizerStats;
}

interface Loaded {
  index: RbacIndex;
  generation: number;
}

interface Tenant {
  /** Bumped by every invalidation; state and decisions from an older generation are never used. */
  generation: number;
  loaded: Loaded | undefined;
  loading: Promise<Loaded> | undefined;
  loadingGeneration: number;
  lastCheckedAt: number;
}

interface CachedDecision {
  tenant: Tenant;
  generation: number;
  decision: AuthorizationDecision;
}

export function createAuthorizer(options: AuthorizerOptions): CachedAuthorizer {
  const { source, logger } = options;
  const clock = options.clock ?? systemClock;
  const reconcileMs = options.reconcileMs ?? RBAC_DEFAULTS.reconcileMs;
  const maxDecisions = options.decisionCacheSize ?? RBAC_DEFAULTS.decisionCacheSize;
  if (!(reconcileMs > 0)) throw new RangeError('reconcileMs must be positive');
  if (!(maxDecisions > 0)) throw new RangeError('decisionCacheSize must be positive');

  const tenants = new Map<string, Tenant>();
  const decisions = new Map<string, CachedDecision>();
  const stats = { hits: 0, misses: 0, loads: 0, invalidations: 0, reconciliations: 0 };
  let closed = false;

  function tenant(tenantId: string): Tenant {
    let t = tenants.get(tenantId);
    if (!t) tenants.set(tenantId, (t = { generation: 0, loaded: undefined, loading: undefined, loadingGeneration: -1, lastCheckedAt: clock.now() }));
    return t;
  }

  function startLoad(tenantId: string, t: Tenant): Promise<Loaded> {
    const generation = t.generation;
    stats.loads++;
    const p = source.load(tenantId).then((state) => {
      if (state.tenantId !== tenantId) throw new Error(`RBAC state source returned tenant ${state.tenantId} for ${tenantId}`);
      const loaded: Loaded = { index: indexState(state), generation };
      if (t.generation === generation) {
        t.loaded = loaded;
        t.lastCheckedAt = clock.now();
      }
      return loaded;
    });
    const settled = p.finally(() => {
      if (t.loading === settled) t.loading = undefined;
    });
    t.loading = settled;
    t.loadingGeneration = generation;
    return settled;
  }

  /** The tenant's current state: loaded once (single flight), never from before the latest invalidation. */
  async function current(tenantId: string): Promise<Loaded> {
    const t = tenant(tenantId);
    for (;;) {
      if (t.loaded && t.loaded.generation === t.generation) return t.loaded;
      const pending = t.loading && t.loadingGeneration === t.generation ? t.loading : startLoad(tenantId, t);
      const loaded = await pending;
      if (loaded.generation === t.generation) return loaded;
      // Invalidated while loading: that state may predate the change; load again.
    }
  }

  function invalidate(tenantId: string): void {
    const t = tenants.get(tenantId);
    if (!t) return; // nothing loaded or cached for it
    t.generation++;
    t.loaded = undefined;
    stats.invalidations++;
    if (closed) return;
    current(tenantId).catch((err: unknown) => logger?.warn({ err, tenantId }, 'RBAC state reload after a change failed; the next check retries'));
  }

  function remember(key: string, entry: CachedDecision): void {
    decisions.set(key, entry);
    if (decisions.size > maxDecisions) {
      const oldest = decisions.keys().next();
      if (!oldest.done) decisions.delete(oldest.value);
    }
  }

  async function check(request: AuthorizationRequest): Promise<AuthorizationDecision> {
    // Keyed on the request as given (no case folding on the hot path): a case variant is a separate entry with
    // the same decision, since evaluation itself is case-insensitive.
    const key = `${request.tenantId}\n${request.principalId}\n${request.isDataAction ? 'd' : 'c'}\n${request.action}\n${request.scope}`;
    const hit = decisions.get(key);
    if (hit) {
      if (hit.generation === hit.tenant.generation && hit.tenant.loaded) {
        stats.hits++;
        decisions.delete(key);
        decisions.set(key, hit);
        return hit.decision;
      }
      decisions.delete(key);
    }
    stats.misses++;
    parseScope(request.scope); // refuses a malformed scope with ScopeError (InvalidScope)
    const t = tenant(request.tenantId);
    const loaded = await current(request.tenantId);
    const decision = evaluate(loaded.index, request);
    if (loaded.generation === t.generation) remember(key, { tenant: t, generation: loaded.generation, decision });
    return decision;
  }

  async function permissionsAt(tenantId: string, principalId: string, scope: string): Promise<Permission[]> {
    parseScope(scope);
    const loaded = await current(tenantId);
    return effectivePermissions(loaded.index, principalId, scope);
  }

  async function reconcile(): Promise<void> {
    const now = clock.now();
    await Promise.all(
      [...tenants].map(async ([tenantId, t]) => {
        const loaded = t.loaded;
        if (!loaded || now - t.lastCheckedAt < reconcileMs) return;
        t.lastCheckedAt = now;
        stats.reconciliations++;
        let version: number;
        try {
          version = await source.version(tenantId);
        } catch (err) {
          logger?.warn({ err, tenantId }, 'RBAC reconciliation could not read the state version; kept the loaded state');
          return;
        }
        if (t.loaded === loaded && version !== loaded.index.version) {
          logger?.debug({ tenantId, loaded: loaded.index.version, current: version }, 'RBAC state changed without a notification; reloading');
          invalidate(tenantId);
        }
      }),
    );
  }

  const unsubscribe = source.onChange((tenantId) => invalidate(tenantId));
  const interval = new BackgroundInterval();
  if (options.timer ?? true) {
    interval.start(Math.max(10, Math.floor(reconcileMs / 5)), reconcile, (err) => logger?.warn({ err }, 'RBAC reconciliation failed'));
  }

  return {
    check,
    permissionsAt,
    reconcile,
    invalidate,
    close(): void {
      if (closed) return;
      closed = true;
      unsubscribe();
      interval.stop();
    },
    stats(): AuthorizerStats {
      return { ...stats, cachedDecisions: decisions.size, loadedTenants: [...tenants.values()].filter((t) => t.loaded).length };
    },
  };
}
