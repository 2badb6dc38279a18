import { createFederatedCredentialStore, createFederationIssuerStore } from './federated-credential-store.js';
import { createFederationLinkStore } from './federation-link-store.js';
import { createUserStore } from './user-store.js';
import { createRefreshTokenStore } from './refresh-token-store.js';
import { createAuthorizationCodeStore, createDeviceCodeStore } from './sign-in-code-store.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql, type Kysely, type Logger as KyselyLogger } from 'kysely';
import type { Dialect } from './dialect.js';
import { isPostgresLocation } from './location.js';
import { appliedMigration, migrateToLatest } from './migrate.js';
import type { Database } from './schema.js';
import { openSqlite } from './sqlite.js';
import type { Repositories, Store, StoreHealth, StoreNotifications, TransactionOptions } from './types.js';
import { createDenyAssignmentStore } from './deny-assignment-store.js';
import { createGroupStore } from './group-store.js';
import { createRbacVersionStore, type NotificationHooks } from './rbac-version-store.js';
import { createRoleAssignmentStore } from './role-assignment-store.js';
import { createRoleDefinitionStore } from './role-definition-store.js';
import { createAuditStore } from './audit-store.js';
import { createCredentialStore } from './credential-store.js';
import { createHostCredentialStore } from './host-credential-store.js';
import { createJoinTokenStore } from './join-token-store.js';
import { createReplayStore } from './replay-store.js';
import { createFailureCounterStore } from './auth-failure-store.js';
import { createResourceGroupStore } from './resource-group-store.js';
import { createResourceStore } from './resource-store.js';
import { createServicePrincipalStore } from './service-principal-store.js';
import { createSigningKeyStore } from './signing-key-store.js';
import { createSubscriptionStore } from './subscription-store.js';
import { createTenantStore } from './tenant-store.js';
import { createVaultStore } from './vault-store.js';
import { createSecretStore } from './secret-store.js';
import { createKeyStore } from './key-store.js';
import { createStoreLocks } from './locks.js';

export { describeStoreLocation, isPostgresLocation } from './location.js';

export interface OpenStoreOptions {
  /** Bring the schema up to the newest version before returning (default true). */
  migrate?: boolean;
  /** PostgreSQL only: the connection pool size (default 10). */
  maxConnections?: number;
  /** Told every query's duration and whether it failed (the server's metrics); absent, queries are not timed. */
  onQuery?: QueryObserver;
}

/** Receives each query's duration in seconds and outcome. */
export type QueryObserver = (seconds: number, outcome: 'ok' | 'error') => void;

/**
 * Every aggregate, bound to `db`: the pool, or one transaction. `hooks` names the dialect (PostgreSQL writes
 * also `pg_notify`) and receives the change notices the writes publish; without it, writes publish nothing.
 * `pool`: `db` is the pool (never a transaction), so writes that may share a commit do (the replay store's).
 */
export function repositoriesFor(db: Kysely<Database>, hooks?: NotificationHooks, pool = false): Repositories {
  return {
    tenants: createTenantStore(db),
    subscriptions: createSubscriptionStore(db),
    resourceGroups: createResourceGroupStore(db),
    resources: createResourceStore(db, hooks),
    servicePrincipals: createServicePrincipalStore(db, hooks),
    credentials: createCredentialStore(db, hooks),
    signingKeys: createSigningKeyStore(db, hooks),
    replay: createReplayStore(db, { groupCommit: pool }),
    authFailures: createFailureCounterStore(db, 'auth_failures'),
    enrolmentFailures: createFailureCounterStore(db, 'enrolment_failures'),
    audit: createAuditStore(db),
    hostCredentials: createHostCredentialStore(db, hooks),
    joinTokens: createJoinTokenStore(db),
    roleDefinitions: createRoleDefinitionStore(db),
    roleAssignments: createRoleAssignmentStore(db),
    denyAssignments: createDenyAssignmentStore(db),
    groups: createGroupStore(db),
    rbacVersions: createRbacVersionStore(db, hooks),
    vaults: createVaultStore(db, hooks),
    secrets: createSecretStore(db, hooks),
    keys: createKeyStore(db, hooks),
    federatedCredentials: createFederatedCredentialStore(db, hooks),
    federationIssuers: createFederationIssuerStore(db),
    federationLinks: createFederationLinkStore(db, hooks),
    users: createUserStore(db, hooks),
    refreshTokens: createRefreshTokenStore(db),
    authorizationCodes: createAuthorizationCodeStore(db),
    deviceCodes: createDeviceCodeStore(db),
  };
}

/** This process's subscribers, by channel. */
class LocalNotifications {
  readonly #listeners = new Map<string, Set<(payload: string) => void>>();
  subscribe(channel: string, listener: (payload: string) => void): () => void {
    let set = this.#listeners.get(channel);
    if (set === undefined) this.#listeners.set(channel, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }
  emit(channel: string, payload: string): void {
    for (const listener of [...(this.#listeners.get(channel) ?? [])]) {
      try {
        listener(payload);
      } catch {
        // A listener's failure is its own; the writer's commit stands and the others still hear of it.
      }
    }
  }
  channels(): string[] {
    return [...this.#listeners.entries()].filter(([, set]) => set.size > 0).map(([channel]) => channel);
  }
}

/** kysely's log hook, reduced to what {@link QueryObserver} needs. */
function queryLog(observe: QueryObserver): KyselyLogger {
  return (event) => observe(event.queryDurationMillis / 1000, event.level === 'query' ? 'ok' : 'error');
}

/** The channel of {@link StoreHealth.notificationRoundTrip}'s probes (nothing else listens on it). */
export const NOTIFICATION_PROBE_CHANNEL = 'openmsi_notification_probe';

/** Thrown by {@link StoreHealth.check} when the database did not answer in time. */
export class StoreTimeoutError extends Error {
  override readonly name = 'StoreTimeoutError';
}

/**
 * `work`, or a {@link StoreTimeoutError} after `ms`. The query itself is not cancelled: a hung connection stays
 * the pool's to time out, and the caller (one probe at a time) does not wait for it.
 */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(`the store did not answer within ${String(ms)} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Thrown when code inside `store.transaction(fn)` uses the store itself instead of the `tx` it was given. */
export class StoreMisuseError extends Error {
  override readonly name = 'StoreMisuseError';
}

/**
 * Wraps every repository method so that calling it from inside one of this store's transactions fails fast.
 * On SQLite (one connection) such a call would wait forever for the transaction that is waiting for it; on
 * PostgreSQL it would silently commit outside the transaction. Either way it is a bug, so both backends
 * reject it the same way.
 */
function guarded(repositories: Repositories, insideTransaction: () => boolean): Repositories {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, repository] of Object.entries(repositories) as Array<[string, Record<string, unknown>]>) {
    const wrapped: Record<string, unknown> = {};
    for (const [method, fn] of Object.entries(repository)) {
      if (typeof fn !== 'function') continue;
      wrapped[method] = (...args: unknown[]): unknown => {
        if (insideTransaction()) {
          return Promise.reject(
            new StoreMisuseError(`store.${name}.${method}() called inside store.transaction(): use the repositories passed to the callback`),
          );
        }
        return (fn as (...a: unknown[]) => unknown).apply(repository, args);
      };
    }
    out[name] = wrapped;
  }
  return out as unknown as Repositories;
}

/**
 * Opens the store at `location`: a `postgres://` / `postgresql://` URL, or otherwise a SQLite file path
 * (`:memory:` for a throwaway in-memory store). Runs the schema migrations unless `migrate` is false.
 *
 * A SQLite file is locked for the life of the process: a second opener (in another process, or a second
 * open in this one) gets a {@link StoreLockedError}.
 */
export async function openStore(location: string, options: OpenStoreOptions = {}): Promise<Store> {
  const dialect: Dialect = isPostgresLocation(location) ? 'postgres' : 'sqlite';
  // pg is loaded only for a PostgreSQL store: an embedded store starts without it.
  const opened =
    dialect === 'postgres'
      ? (await import('./postgres.js')).openPostgres(location, {
          ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
          ...(options.onQuery === undefined ? {} : { log: queryLog(options.onQuery) }),
        })
      : openSqlite(location, options.onQuery === undefined ? {} : { log: queryLog(options.onQuery) });
  const { db } = opened;
  const local = new LocalNotifications();
  const poolHooks: NotificationHooks = { dialect, published: (channel, payload) => local.emit(channel, payload) };
  try {
    if (options.migrate ?? true) await migrateToLatest(db as unknown as Kysely<unknown>, dialect);
  } catch (err) {
    await opened.close();
    throw err;
  }

  const transactionScope = new AsyncLocalStorage<{ open: boolean }>();
  const insideTransaction = (): boolean => transactionScope.getStore()?.open === true;
  let closing: Promise<void> | undefined;

  // PostgreSQL: one dedicated connection LISTENs for every channel someone here subscribed to.
  const listener = opened.listen === undefined ? undefined : opened.listen((channel, payload) => local.emit(channel, payload));
  const notifications: StoreNotifications = {
    subscribe(channel, fn) {
      const unsubscribe = local.subscribe(channel, fn);
      listener?.listen(channel);
      return unsubscribe;
    },
    async ready() {
      await listener?.ready();
    },
  };

  const pool = opened.pool === undefined ? undefined : () => opened.pool();
  // One probe query at a time: while a database hangs, probes time out on the same query instead of piling up
  // one new connection attempt per probe.
  let probing: Promise<string | undefined> | undefined;
  const health: StoreHealth = {
    check: (timeoutMs) => {
      probing ??= appliedMigration(db as unknown as Kysely<unknown>).finally(() => {
        probing = undefined;
      });
      return withTimeout(probing, timeoutMs);
    },
    ...(pool === undefined ? {} : { pool }),
    ...(listener === undefined
      ? {}
      : {
          notificationRoundTrip: async (timeoutMs: number) => {
            const id = randomUUID();
            let heard!: () => void;
            const arrived = new Promise<void>((resolve) => (heard = resolve));
            // Only LISTEN delivers it: a raw pg_notify is not echoed to this process's local subscribers.
            const unsubscribe = notifications.subscribe(NOTIFICATION_PROBE_CHANNEL, (payload) => {
              if (payload === id) heard();
            });
            try {
              const started = performance.now();
              await withTimeout(
                (async () => {
                  await listener.ready();
                  await sql`select pg_notify(${NOTIFICATION_PROBE_CHANNEL}, ${id})`.execute(db);
                  await arrived;
                })(),
                timeoutMs,
              );
              return (performance.now() - started) / 1000;
            } finally {
              unsubscribe();
            }
          },
        }),
  };

  return {
    dialect,
    notifications,
    health,
    locks: createStoreLocks(db, dialect),
    ...guarded(repositoriesFor(db, poolHooks, true), insideTransaction),
    ...('snapshot' in opened ? { snapshot: (destination: string) => opened.snapshot(destination) } : {}),

    async transaction<T>(fn: (tx: Repositories) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
      if (insideTransaction()) {
        throw new StoreMisuseError('store.transaction() called inside another store.transaction(): use the outer transaction');
      }
      const scope = { open: true };
      const pending: Array<[string, string]> = [];
      const hooks: NotificationHooks = { dialect, published: (channel, payload) => pending.push([channel, payload]) };
      let result: T;
      try {
        let builder = db.transaction();
        if (options.isolation !== undefined && dialect === 'postgres') builder = builder.setIsolationLevel(options.isolation);
        result = await builder.execute((trx) => transactionScope.run(scope, () => fn(repositoriesFor(trx, hooks))));
      } finally {
        // Work the callback started but did not await may outlive it; it is no longer inside the transaction.
        scope.open = false;
      }
      // Committed: now (and only now) this process's listeners hear of it.
      const seen = new Set<string>();
      for (const [channel, payload] of pending) {
        const key = `${channel} ${payload}`;
        if (seen.has(key)) continue;
        seen.add(key);
        local.emit(channel, payload);
      }
      return result;
    },

    close() {
      closing ??= (async () => {
        await listener?.close();
        await opened.close();
      })();
      return closing;
    },
  };
}
