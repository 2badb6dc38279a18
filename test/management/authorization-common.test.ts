/**
 * The `Microsoft.Authorization` routes' plumbing (src/management/authorization-common.ts), without a store:
 * at every scope shape (the root, a management group, a subscription, a group, a resource id through the
 * wildcard) the action the method and type name is checked at the scope the path names, in canonical form,
 * before the handler runs, and the handler addresses exactly that scope. The end-to-end suites prove the same
 * with real roles (test/management/role-assignments.test.ts, role-definitions, deny-assignments).
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import {
  armRoleDefinitionId,
  authorizationAddress,
  authorizationArmAction,
  authorizationFilter,
  authorizationId,
  authorizationRoutes,
  isoOrNull,
  resourceScopeWildcard,
  type AuthorizationResourceType,
} from '../../src/management/authorization-common.js';
import { authenticate } from '../../src/management/authenticate.js';
import type { RouteHandler } from '../../src/management/common.js';
import { managementHarness, send, OTHER_SUB, PRINCIPALS, SUB, TENANT, type ManagementHarness } from '../support/management.js';

const TYPES: readonly AuthorizationResourceType[] = ['roleAssignments', 'roleDefinitions', 'denyAssignments'];
const GUID = '66666666-6666-4666-8666-666666666666';
const V = 'api-version=2022-04-01';
const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
const VAULT = `${RG}/providers/Microsoft.KeyVault/vaults/kv`;
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;

/** Every scope shape: as the path spells it, and the canonical scope checked. */
const SHAPES = [
  { path: '', scope: '/', subscriptionId: undefined },
  { path: '/providers/Microsoft.Management/managementGroups/mg', scope: '/providers/Microsoft.Management/managementGroups/mg', subscriptionId: undefined },
  { path: `/SUBSCRIPTIONS/${SUB}`, scope: `/subscriptions/${SUB}`, subscriptionId: SUB },
  { path: `/subscriptions/${SUB}/RESOURCEGROUPS/rg`, scope: RG, subscriptionId: SUB },
  {
    path: `/subscriptions/${SUB}/resourceGroups/rg/providers/microsoft.keyvault/vaults/kv`,
    scope: `${RG}/providers/microsoft.keyvault/vaults/kv`,
    subscriptionId: SUB,
  },
  { path: `${VAULT}/providers/Microsoft.Authorization/locks/l`, scope: `${VAULT}/providers/Microsoft.Authorization/locks/l`, subscriptionId: SUB },
] as const;

const VERBS = [
  { method: 'GET', one: false, verb: 'read', handler: 'list' },
  { method: 'GET', one: true, verb: 'read', handler: 'get' },
  { method: 'PUT', one: true, verb: 'write', handler: 'put' },
  { method: 'DELETE', one: true, verb: 'delete', handler: 'delete' },
] as const;

describe('Microsoft.Authorization routes at every scope', () => {
  let h: ManagementHarness;
  /** The handlers that ran: [type, handler]. */
  let served: [string, string][];

  beforeEach(async () => {
    h = managementHarness();
    served = [];
    const handler =
      (type: AuthorizationResourceType, name: string): RouteHandler =>
      async (request) => {
        served.push([type, name]);
        const { caller, ...address } = await authorizationAddress(h.ctx, request, type);
        return { ...address, caller: caller.principal.objectId };
      };
    for (const type of TYPES) {
      for (const v of VERBS) {
        authorizationRoutes(h.app, h.ctx, {
          method: v.method,
          type,
          one: v.one,
          armAction: `Microsoft.Authorization/${type}/${v.verb}`,
          handler: handler(type, v.handler),
        });
      }
    }
    resourceScopeWildcard(
      h.app,
      h.ctx,
      Object.fromEntries(
        TYPES.map((type) => [type, { list: handler(type, 'list'), get: handler(type, 'get'), put: handler(type, 'put'), delete: handler(type, 'delete') }]),
      ),
    );
    h.app.get('/probe/*', { onRequest: [authenticate(h.ctx, 'arm')], handler: handler('denyAssignments', 'probe') });
    await h.app.ready();
  });

  it('invariant: each method and type is checked as its action at the canonical scope the path names, and the handler addresses that scope', async () => {
    for (const shape of SHAPES) {
      for (const type of TYPES) {
        for (const v of VERBS) {
          h.checks.length = 0;
          served = [];
          const url = `${shape.path}/providers/Microsoft.Authorization/${type}${v.one ? `/${GUID}` : ''}?${V}`;
          const r = await send(h, 'user', v.method, url);
          const what = `${v.method} ${url}`;
          assert.equal(r.status, 200, `${what}: ${JSON.stringify(r.body)}`);
          assert.deepEqual(
            h.checks,
            [
              {
                tenantId: TENANT,
                principalId: PRINCIPALS.user.objectId,
                action: `Microsoft.Authorization/${type}/${v.verb}`,
                isDataAction: false,
                scope: shape.scope,
              },
            ],
            what,
          );
          assert.deepEqual(served, [[type, v.handler]], what);
          assert.deepEqual(
            r.body,
            {
              tenantId: TENANT,
              scope: shape.scope,
              caller: PRINCIPALS.user.objectId,
              ...(v.one ? { name: GUID } : {}),
              ...(shape.subscriptionId === undefined ? {} : { subscriptionId: shape.subscriptionId }),
            },
            what,
          );
        }
      }
    }
  });

  it('invariant: a refused check answers 403 at every scope shape and the handler never runs', async () => {
    h.decide = () => NOT_GRANTED;
    for (const shape of SHAPES) {
      for (const type of TYPES) {
        for (const v of VERBS) {
          const url = `${shape.path}/providers/Microsoft.Authorization/${type}${v.one ? `/${GUID}` : ''}?${V}`;
          const r = await send(h, 'user', v.method, url);
          assert.equal(r.status, 403, `${v.method} ${url}`);
          assert.equal(r.body.error?.code, 'AuthorizationFailed');
          assert.ok(r.body.error.message.includes(`'Microsoft.Authorization/${type}/${v.verb}'`), r.body.error.message);
        }
      }
    }
    assert.deepEqual(served, []);
  });

  it("invariant: a scope in another tenant's subscription is 401 InvalidAuthenticationTokenTenant before RBAC, at every shape below a subscription", async () => {
    const other = [
      `/subscriptions/${OTHER_SUB}`,
      `/subscriptions/${OTHER_SUB}/resourceGroups/rg`,
      `/subscriptions/${OTHER_SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv`,
    ];
    for (const scope of other) {
      for (const v of VERBS) {
        const r = await send(h, 'user', v.method, `${scope}/providers/Microsoft.Authorization/roleAssignments${v.one ? `/${GUID}` : ''}?${V}`);
        assert.equal(r.status, 401, scope);
        assert.equal(r.body.error?.code, 'InvalidAuthenticationTokenTenant');
      }
    }
    assert.deepEqual(h.checks, []);
    assert.deepEqual(served, []);
    // The handlers' own reading of the scope refuses it too, without the hook in front.
    const bare = managementHarness();
    bare.app.get('/subscriptions/:subscriptionId/providers/Microsoft.Authorization/denyAssignments', {
      onRequest: [authenticate(bare.ctx, 'arm')],
      handler: async (request) => ({ scope: (await authorizationAddress(bare.ctx, request, 'denyAssignments')).scope }),
    });
    const probe = await send(bare, 'user', 'GET', `/subscriptions/${OTHER_SUB}/providers/Microsoft.Authorization/denyAssignments`);
    assert.equal(probe.status, 401);
    assert.equal(probe.body.error?.code, 'InvalidAuthenticationTokenTenant');
    assert.deepEqual((await send(bare, 'user', 'GET', `/subscriptions/${SUB}/providers/Microsoft.Authorization/denyAssignments`)).body, {
      scope: `/subscriptions/${SUB}`,
    });
  });

  it('invariant: a resource-id scope that does not parse (an encoded /, a space) is 400 InvalidScope and nothing is checked or served', async () => {
    for (const scope of [
      `${RG}/providers/Microsoft.KeyVault/vaults/kv%2Fx`,
      `${RG}/providers/Microsoft.KeyVault/vaults/kv%2F..`,
      `${RG}/providers/Microsoft.KeyVault/vaults/kv%20`,
    ]) {
      const r = await send(h, 'user', 'PUT', `${scope}/providers/Microsoft.Authorization/roleAssignments/${GUID}?${V}`);
      assert.equal(r.status, 400, `${scope}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, 'InvalidScope');
    }
    assert.deepEqual(h.checks, []);
    assert.deepEqual(served, []);
  });

  it('the wildcard answers 404, unchecked, what is not one of the three types or not a method of it', async () => {
    const cases: [string, string][] = [
      ['GET', `${VAULT}/providers/Microsoft.Authorization/locks?${V}`],
      ['GET', `${VAULT}/providers/Microsoft.Authorization/roleAssignments/${GUID}/extra?${V}`],
      ['GET', `${VAULT}/roleAssignments?${V}`],
      ['PUT', `${VAULT}/providers/Microsoft.Authorization/roleAssignments?${V}`],
      ['DELETE', `${VAULT}/providers/Microsoft.Authorization/roleDefinitions?${V}`],
    ];
    for (const [method, url] of cases) {
      h.checks.length = 0;
      const r = await send(h, 'user', method, url);
      assert.equal(r.status, 404, `${method} ${url}: ${JSON.stringify(r.body)}`);
      if (!url.includes('/providers/Microsoft.Authorization/roleAssignments?') && !url.includes('roleDefinitions?'))
        assert.deepEqual(h.checks, [], `${method} ${url}`);
    }
    assert.deepEqual(served, []);
    const probe = await send(h, 'user', 'GET', '/probe/subscriptions/x');
    assert.equal(probe.status, 404);
  });

  it('authorizationArmAction: the action of a method and path', () => {
    const one = `${VAULT}/providers/Microsoft.Authorization/roleAssignments/${GUID}`;
    assert.equal(authorizationArmAction('GET', one), 'Microsoft.Authorization/roleAssignments/read');
    assert.equal(authorizationArmAction('get', `${one}?${V}`), 'Microsoft.Authorization/roleAssignments/read');
    assert.equal(authorizationArmAction('PUT', one), 'Microsoft.Authorization/roleAssignments/write');
    assert.equal(authorizationArmAction('DELETE', one), 'Microsoft.Authorization/roleAssignments/delete');
    assert.equal(
      authorizationArmAction('PUT', `${VAULT}/providers/microsoft.authorization/ROLEDEFINITIONS/${GUID}`),
      'Microsoft.Authorization/roleDefinitions/write',
    );
    assert.equal(
      authorizationArmAction('DELETE', `${VAULT}/providers/Microsoft.Authorization/denyAssignments/${GUID}/`),
      'Microsoft.Authorization/denyAssignments/delete',
    );
    assert.equal(authorizationArmAction('POST', one), undefined);
    assert.equal(authorizationArmAction('PATCH', one), undefined);
    assert.equal(authorizationArmAction('GET', `${VAULT}/providers/Microsoft.Authorization/locks/l`), undefined);
    assert.equal(authorizationArmAction('GET', `${one}/x`), undefined);
    assert.equal(authorizationArmAction('GET', `${VAULT}?x=/providers/Microsoft.Authorization/roleAssignments`), undefined);
  });

  it('ids: authorizationId and armRoleDefinitionId', () => {
    assert.equal(authorizationId('/', 'roleAssignments', GUID), `/providers/Microsoft.Authorization/roleAssignments/${GUID}`);
    assert.equal(authorizationId(RG, 'denyAssignments', GUID), `${RG}/providers/Microsoft.Authorization/denyAssignments/${GUID}`);
    assert.equal(armRoleDefinitionId(VAULT, GUID), `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${GUID}`);
    assert.equal(armRoleDefinitionId(`/SUBSCRIPTIONS/${SUB}`, GUID), `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/${GUID}`);
    assert.equal(armRoleDefinitionId('/', GUID), `/providers/Microsoft.Authorization/roleDefinitions/${GUID}`);
    assert.equal(
      armRoleDefinitionId(`/providers/Microsoft.Management/managementGroups/mg/subscriptions/${SUB}`, GUID),
      `/providers/Microsoft.Authorization/roleDefinitions/${GUID}`,
    );
    assert.equal(isoOrNull(undefined), null);
    assert.equal(isoOrNull(0), '1970-01-01T00:00:00.000Z');
  });

  it('authorizationFilter: the supported $filter clauses, and a 400 for anything else', () => {
    const filter = (text?: string) => authorizationFilter({ query: text === undefined ? {} : { $filter: text } } as unknown as FastifyRequest);
    assert.deepEqual(filter(), { atScope: false });
    assert.deepEqual(filter('  '), { atScope: false });
    assert.deepEqual(filter('atScope()'), { atScope: true });
    assert.deepEqual(filter("ATSCOPE() AND assignedTo('p1')"), { atScope: true, assignedTo: 'p1' });
    assert.deepEqual(filter("principalId eq 'p2'"), { atScope: false, principalId: 'p2' });
    assert.deepEqual(filter("roleName  EQ  'O''Brien'"), { atScope: false, roleName: "O'Brien" });
    assert.deepEqual(filter("type eq 'CustomRole' and roleDefinitionId eq 'r'"), { atScope: false, type: 'CustomRole', roleDefinitionId: 'r' });
    for (const bad of [
      "principalId eq 'p' or atScope()",
      'atScope',
      "principalId ne 'p'",
      "xprincipalId eq 'p'",
      "principalId eq 'p'x",
      "assignedTo('p')x",
      'xatScope()',
    ]) {
      assert.throws(
        () => filter(bad),
        (err: { status?: number; code?: string }) => err.status === 400 && err.code === 'InvalidFilterInQueryString',
        bad,
      );
    }
  });
});
