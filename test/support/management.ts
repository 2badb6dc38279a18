/**
 * A management API without a store, a key or a network, for fast unit tests of its authorisation plumbing
 * (src/management/authorize.ts, authorization-common.ts): plain fastify (routed as the authority routes:
 * case-insensitive, trailing slash ignored), the management error handler, a token verifier that takes the
 * bearer token to be the caller's object id, and an authoriser whose decisions a test sets and whose checks it
 * reads back. Routes are added by the test with the modules' own hooks.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { AuthorizationDecision, AuthorizationRequest, Authorizer, Permission } from '../../src/rbac/contracts.js';
import type { ManagementContext } from '../../src/management/context.js';
import type { CustomRoleDefinition, ServicePrincipal, Store, StoredDenyAssignment, Subscription } from '../../src/store/types.js';
import { seededMemoryStore } from './memory-store.js';
import type { VerifiedToken } from '../../src/shared/token-verifier.js';
import { TokenVerificationError } from '../../src/shared/token-verifier.js';
import { apiErrorHandler } from '../../src/shared/api-error.js';
import { deniedPrincipalOf } from '../../src/management/authenticate.js';
import { translateDirectoryError } from '../../src/management/errors.js';

// Hex letters in the tenant id: a comparison that folds only one side's case must be seen to.
export const TENANT = 'abcdef11-1111-4111-8111-111111111111';
export const OTHER_TENANT = '22222222-2222-4222-8222-222222222222';
/** A subscription of {@link TENANT}. */
export const SUB = '33333333-3333-4333-8333-333333333333';
/** A subscription of {@link OTHER_TENANT}. */
export const OTHER_SUB = '44444444-4444-4444-8444-444444444444';
export const ORIGIN = 'https://authority.test';
/** The origins the fake server is published at (one array, as the authority keeps it until the port changes). */
const ADVERTISED = [{ origin: ORIGIN }];

function principal(objectId: string, name: string, isDirectoryAdmin: boolean, tenantId = TENANT): ServicePrincipal {
  return { objectId, tenantId, appId: `app-${name}`, displayName: name, kind: 'Application', managedIdentity: null, isDirectoryAdmin, createdAt: 0 };
}

/** The callers: the bearer token is the object id. */
export const PRINCIPALS = {
  /** The bootstrap admin (`isDirectoryAdmin`). */
  admin: principal('aaaaaaaa-0000-4000-8000-000000000001', 'admin', true),
  user: principal('aaaaaaaa-0000-4000-8000-000000000002', 'user', false),
  /** A principal of {@link OTHER_TENANT}. */
  stranger: principal('aaaaaaaa-0000-4000-8000-000000000003', 'stranger', false, OTHER_TENANT),
} as const;

export interface ManagementHarness {
  app: FastifyInstance;
  ctx: ManagementContext;
  /** Every check the authoriser was asked, in order. */
  checks: AuthorizationRequest[];
  /** Every `permissionsAt` call: [tenantId, principalId, scope]. */
  permissionCalls: [string, string, string][];
  /** The authoriser's answer to a check (default: granted). */
  decide: (check: AuthorizationRequest) => AuthorizationDecision;
  /** What `permissionsAt` returns (default: none). */
  permissions: Permission[];
  /** The principal `markDenied` recorded for each refused request, by URL. */
  denied: Map<string, string>;
}

/** The harness; register routes on `app`, then `app.inject(...)`. */
export function managementHarness(): ManagementHarness {
  const subscriptions: Subscription[] = [
    { id: SUB, tenantId: TENANT, displayName: 'sub', state: 'Enabled', createdAt: 0 },
    { id: OTHER_SUB, tenantId: OTHER_TENANT, displayName: 'other', state: 'Enabled', createdAt: 0 },
  ];
  const h: ManagementHarness = {
    app: undefined as unknown as FastifyInstance,
    ctx: undefined as unknown as ManagementContext,
    checks: [],
    permissionCalls: [],
    decide: () => ({ allowed: true, reason: 'granted' }),
    permissions: [],
    denied: new Map(),
  };
  const authorizer: Authorizer = {
    check: (request) => {
      h.checks.push(request);
      return Promise.resolve(h.decide(request));
    },
    permissionsAt: (tenantId, principalId, scope) => {
      h.permissionCalls.push([tenantId, principalId, scope]);
      return Promise.resolve(h.permissions);
    },
    close: () => undefined,
  };
  const byObjectId = new Map(Object.values(PRINCIPALS).map((p) => [p.objectId, p]));
  h.ctx = {
    store: {
      servicePrincipals: { getByObjectId: (id: string) => Promise.resolve(byObjectId.get(id)) },
      subscriptions: { get: (id: string) => Promise.resolve(subscriptions.find((s) => s.id === id)) },
      tenants: { get: () => Promise.resolve(undefined), list: () => Promise.resolve([]) },
    },
    authority: { origin: ORIGIN, v1Issuer: (tenantId: string) => `${ORIGIN}/${tenantId}/`, advertisedOrigins: () => ADVERTISED },
    vaultDomain: 'vault.authority.test',
    authorizer,
    verifyAccessToken: (token: string): Promise<VerifiedToken> => {
      const p = byObjectId.get(token);
      if (p === undefined) return Promise.reject(new TokenVerificationError('malformed', 'not a test token'));
      return Promise.resolve({ header: { alg: 'RS256', kid: 'k' }, claims: { oid: p.objectId, tid: p.tenantId } } as unknown as VerifiedToken);
    },
  } as unknown as ManagementContext;
  h.app = Fastify({ routerOptions: { ignoreTrailingSlash: true, caseSensitive: false, maxParamLength: 512 } });
  h.app.setErrorHandler(
    apiErrorHandler({
      bodyLimit: 1024 * 1024,
      translate: translateDirectoryError,
      logMessage: 'management request failed',
      onError: (request) => {
        const p = deniedPrincipalOf(request);
        if (p !== undefined) h.denied.set(request.url, p.objectId);
        return Promise.resolve();
      },
    }),
  );
  return h;
}

/** `app.inject` as a caller (`undefined`: no token), with an optional JSON payload; the JSON body parsed. */
export async function send(
  h: ManagementHarness,
  as: keyof typeof PRINCIPALS | undefined,
  method: string,
  url: string,
  payload?: unknown,
): Promise<{ status: number; body: { error?: { code: string; message: string } } & Record<string, unknown> }> {
  const response = await h.app.inject({
    method: method as 'GET',
    url,
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    headers: as === undefined ? {} : { authorization: `Bearer ${PRINCIPALS[as].objectId}` },
  });
  return { status: response.statusCode, body: response.body === '' ? {} : (JSON.parse(response.body) as Record<string, unknown>) };
}

/** An audit event the harness's writer recorded. */
export interface RecordedAudit {
  tenantId: string | null;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  detail: Record<string, unknown>;
}

/**
 * In-memory role definitions, deny assignments and role-assignment counts behind the harness's store (with a
 * `transaction` that runs on the same maps), an audit writer that records, and a fixed clock: enough for the
 * handlers of role-definitions.ts and deny-assignments.ts without a database. Keys are lower-case ids.
 */
export function withRbacRepos(h: ManagementHarness): {
  roleDefinitions: Map<string, CustomRoleDefinition>;
  denyAssignments: Map<string, StoredDenyAssignment>;
  /** Assignments per role definition id (for deleteRoleDefinition's "still in use" refusal). */
  assignmentCounts: Map<string, number>;
  audit: RecordedAudit[];
  /** Called at each `roleDefinitions.get`: lets a test change the stored role between the checks and the write. */
  onGet: { hook: ((id: string) => void) | undefined };
  versions: { bumps: number };
} {
  const roleDefinitions = new Map<string, CustomRoleDefinition>();
  const denyAssignments = new Map<string, StoredDenyAssignment>();
  const assignmentCounts = new Map<string, number>();
  const audit: RecordedAudit[] = [];
  const onGet: { hook: ((id: string) => void) | undefined } = { hook: undefined };
  const versions = { bumps: 0 };
  const store = h.ctx.store as unknown as Record<string, unknown>;
  Object.assign(store, {
    roleDefinitions: {
      get: (_tenantId: string, id: string) => {
        onGet.hook?.(id.toLowerCase());
        return Promise.resolve(roleDefinitions.get(id.toLowerCase()));
      },
      getByName: (_tenantId: string, name: string) =>
        Promise.resolve([...roleDefinitions.values()].find((d) => d.roleName.toLowerCase() === name.toLowerCase())),
      list: () => Promise.resolve([...roleDefinitions.values()]),
      count: () => Promise.resolve(roleDefinitions.size),
      create: (d: CustomRoleDefinition) => {
        if (roleDefinitions.has(d.id)) return Promise.resolve(false);
        roleDefinitions.set(d.id, d);
        return Promise.resolve(true);
      },
      update: (d: CustomRoleDefinition) => {
        roleDefinitions.set(d.id, d);
        return Promise.resolve(true);
      },
      delete: (_tenantId: string, id: string) => Promise.resolve(roleDefinitions.delete(id.toLowerCase())),
    },
    roleAssignments: { countByRoleDefinition: (_tenantId: string, id: string) => Promise.resolve(assignmentCounts.get(id) ?? 0) },
    denyAssignments: {
      get: (_tenantId: string, id: string) => Promise.resolve(denyAssignments.get(id.toLowerCase())),
      list: () => Promise.resolve([...denyAssignments.values()]),
      create: (d: StoredDenyAssignment) => {
        if (denyAssignments.has(d.id)) return Promise.resolve(false);
        denyAssignments.set(d.id, d);
        return Promise.resolve(true);
      },
      delete: (_tenantId: string, id: string) => Promise.resolve(denyAssignments.delete(id.toLowerCase())),
    },
    rbacVersions: {
      bump: () => {
        versions.bumps += 1;
        return Promise.resolve(versions.bumps);
      },
    },
    transaction: <T>(fn: (tx: unknown) => Promise<T>) => fn(store),
  });
  Object.assign(h.ctx as unknown as Record<string, unknown>, {
    audit: {
      record: (event: RecordedAudit) => {
        audit.push(event);
        return Promise.resolve();
      },
    },
    clock: { now: () => NOW },
  });
  return { roleDefinitions, denyAssignments, assignmentCounts, audit, onGet, versions };
}

/** The fixed time of {@link withRbacRepos}'s clock (epoch milliseconds). */
export const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

/**
 * A throwaway in-memory SQLite store behind the harness (the directory's transactions are real; no file, no
 * server), seeded with the harness's tenants, subscriptions and a resource group `rg` in each; the harness's
 * principals are found by object id as before. Also an audit writer that records and a clock a test may move.
 * Close the returned store after the test.
 */
export async function withMemoryStore(h: ManagementHarness): Promise<{ store: Store; audit: RecordedAudit[]; clock: { now: () => number; at: number } }> {
  const store = await seededMemoryStore([
    [TENANT, SUB],
    [OTHER_TENANT, OTHER_SUB],
  ]);
  const byObjectId = new Map(Object.values(PRINCIPALS).map((p) => [p.objectId, p]));
  const audit: RecordedAudit[] = [];
  const clock = {
    at: NOW,
    now(): number {
      return clock.at;
    },
  };
  const ctxStore = {
    ...store,
    servicePrincipals: {
      ...store.servicePrincipals,
      getByObjectId: async (id: string) => byObjectId.get(id) ?? (await store.servicePrincipals.getByObjectId(id)),
    },
  };
  Object.assign(h.ctx as unknown as Record<string, unknown>, {
    store: ctxStore,
    audit: {
      record: (event: RecordedAudit) => {
        audit.push(event);
        return Promise.resolve();
      },
    },
    clock,
  });
  return { store, audit, clock };
}
