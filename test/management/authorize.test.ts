/**
 * The management API's authorisation hooks (src/management/authorize.ts), without a store: which action is
 * checked at which scope for whom, what a refusal is, the subscription's tenant before RBAC, Graph's read/write
 * split, list filtering, and the deny break-glass of the bootstrap admin. The end-to-end suites
 * (test/rbac/authz/, test/management/) prove the same with real roles; these pin the exact checks, fast.
 */
import { describe, it, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import {
  DENY_BREAK_GLASS_ACTIONS,
  OPENMSI_ACTIONS,
  ROOT_SCOPE,
  allowed,
  atRoot,
  authorizationFailed,
  authorizationScopeOf,
  authorize,
  authorizeGraph,
  decide,
  filterReadable,
  graphRequestDenied,
  requireAccess,
  resourceGroupScope,
  resourceScope,
  subscriptionScope,
} from '../../src/management/authorize.js';
import { authenticate, callerOf, type Caller } from '../../src/management/authenticate.js';
import { ApiError } from '../../src/shared/api-error.js';
import { managementHarness, send, OTHER_SUB, OTHER_TENANT, PRINCIPALS, SUB, TENANT, type ManagementHarness } from '../support/management.js';

const VM = 'Microsoft.Compute/virtualMachines';
const GRANTED = { allowed: true, reason: 'granted' } as const;
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;
const DENIED = { allowed: false, reason: 'denied' } as const;
const DENY_READ = 'Microsoft.Authorization/denyAssignments/read';
const DENY_DELETE = 'Microsoft.Authorization/denyAssignments/delete';
const DENY_WRITE = 'Microsoft.Authorization/denyAssignments/write';
const ALL_AUTHORIZATION = [{ actions: ['Microsoft.Authorization/*'], notActions: [], dataActions: [], notDataActions: [] }];

function callerFor(name: keyof typeof PRINCIPALS): Caller {
  const principal = PRINCIPALS[name];
  return { principal, tenantId: principal.tenantId, token: undefined as never, family: 'arm' };
}

describe('management authorisation hooks', () => {
  let h: ManagementHarness;

  beforeEach(async () => {
    h = managementHarness();
    const arm = authenticate(h.ctx, 'arm');
    const ok = () => Promise.resolve({ ok: true });
    h.app.get(`/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/${VM}/:resourceName`, {
      onRequest: [arm, authorize(h.ctx, (request) => ({ action: `${VM}/read`, scope: resourceScope(request, VM) }))],
      handler: ok,
    });
    h.app.get('/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName', {
      onRequest: [
        arm,
        authorize(h.ctx, (request) => ({ action: 'Microsoft.Resources/subscriptions/resourceGroups/read', scope: resourceGroupScope(request) })),
      ],
      handler: ok,
    });
    h.app.get('/subscriptions/:subscriptionId', {
      onRequest: [arm, authorize(h.ctx, (request) => ({ action: 'Microsoft.Resources/subscriptions/read', scope: subscriptionScope(request) }))],
      handler: ok,
    });
    h.app.get('/openmsi/keys', { onRequest: [arm, authorize(h.ctx, atRoot(OPENMSI_ACTIONS.keysRead))], handler: ok });
    for (const objects of ['servicePrincipals', 'groups'] as const) {
      const graph = [authenticate(h.ctx, 'graph'), authorizeGraph(h.ctx, objects)];
      for (const method of ['GET', 'POST', 'PATCH', 'DELETE'] as const) {
        h.app.route({ method, url: `/v1.0/${objects}`, onRequest: graph, handler: ok });
        h.app.route({ method, url: `/v1.0/${objects}/*`, onRequest: graph, handler: ok });
      }
    }
    h.app.get('/subscriptions/:subscriptionId/readable', {
      onRequest: [arm],
      handler: async (request) => {
        const items = ['vm-a', 'vm-b', 'vm-c', 'vm-d'];
        const readable = await filterReadable(h.ctx, callerOf(request), items, (name) => ({
          action: `${VM}/read`,
          scope: `/subscriptions/${SUB}/resourceGroups/rg/providers/${VM}/${name}`,
        }));
        return { readable };
      },
    });
    await h.app.ready();
  });

  it('invariant: a route checks its action at the scope its path parameters name, for the caller, in its tenant, as a control-plane action', async () => {
    const cases = [
      {
        url: `/subscriptions/${SUB}/resourceGroups/rg-a/providers/${VM}/vm-1`,
        action: `${VM}/read`,
        scope: `/subscriptions/${SUB}/resourceGroups/rg-a/providers/${VM}/vm-1`,
      },
      {
        url: `/subscriptions/${SUB}/resourceGroups/rg-a`,
        action: 'Microsoft.Resources/subscriptions/resourceGroups/read',
        scope: `/subscriptions/${SUB}/resourceGroups/rg-a`,
      },
      { url: `/subscriptions/${SUB}`, action: 'Microsoft.Resources/subscriptions/read', scope: `/subscriptions/${SUB}` },
      { url: '/openmsi/keys', action: 'Microsoft.Authorization/signingKeys/read', scope: '/' },
    ];
    for (const c of cases) {
      h.checks.length = 0;
      const r = await send(h, 'user', 'GET', `${c.url}?api-version=2023-01-31`);
      assert.equal(r.status, 200, `${c.url}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(h.checks, [{ tenantId: TENANT, principalId: PRINCIPALS.user.objectId, action: c.action, isDataAction: false, scope: c.scope }], c.url);
    }
  });

  it("invariant: a refusal is ARM's 403 AuthorizationFailed naming the action and scope, nothing is served, and the refused principal is recorded for the audit trail", async () => {
    h.decide = () => NOT_GRANTED;
    const url = `/subscriptions/${SUB}/resourceGroups/rg-a/providers/${VM}/vm-1`;
    const r = await send(h, 'user', 'GET', url);
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, {
      error: {
        code: 'AuthorizationFailed',
        message: `The client 'app-user' with object id '${PRINCIPALS.user.objectId}' does not have authorization to perform action '${VM}/read' over scope '${url}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      },
    });
    assert.equal(h.denied.get(url), PRINCIPALS.user.objectId);
    // A deny is a refusal too.
    h.decide = () => DENIED;
    assert.equal((await send(h, 'user', 'GET', '/openmsi/keys')).status, 403);
    assert.equal(h.denied.get('/openmsi/keys'), PRINCIPALS.user.objectId);
  });

  it('invariant: a route under a subscription of another tenant is 401 InvalidAuthenticationTokenTenant, an unknown subscription 404, before RBAC is asked', async () => {
    for (const url of [
      `/subscriptions/${OTHER_SUB}`,
      `/subscriptions/${OTHER_SUB}/resourceGroups/rg`,
      `/subscriptions/${OTHER_SUB}/resourceGroups/rg/providers/${VM}/vm`,
    ]) {
      const r = await send(h, 'user', 'GET', url);
      assert.equal(r.status, 401, url);
      assert.equal(r.body.error?.code, 'InvalidAuthenticationTokenTenant', url);
    }
    const missing = await send(h, 'user', 'GET', '/subscriptions/55555555-5555-4555-8555-555555555555');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error?.code, 'SubscriptionNotFound');
    assert.deepEqual(h.checks, []);
    // A route without a subscription is not held to one.
    assert.equal((await send(h, 'user', 'GET', '/openmsi/keys')).status, 200);
  });

  it('invariant: a path parameter that is not one id segment is 400 InvalidScope and nothing is checked', async () => {
    const r = await send(h, 'user', 'GET', `/subscriptions/${SUB}/resourceGroups/rg%20a`);
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'InvalidScope');
    assert.deepEqual(h.checks, []);
  });

  it("invariant: Graph reads need …/read at / and every other call …/write at /; a refusal is Graph's Authorization_RequestDenied", async () => {
    const cases: [string, string, string][] = [
      ['GET', '/v1.0/servicePrincipals', OPENMSI_ACTIONS.graphRead],
      ['GET', '/v1.0/servicePrincipals/abc', OPENMSI_ACTIONS.graphRead],
      ['POST', '/v1.0/servicePrincipals', OPENMSI_ACTIONS.graphWrite],
      ['PATCH', '/v1.0/servicePrincipals/abc', OPENMSI_ACTIONS.graphWrite],
      ['DELETE', '/v1.0/servicePrincipals/abc', OPENMSI_ACTIONS.graphWrite],
      ['POST', '/v1.0/servicePrincipals/abc/getMemberGroups', OPENMSI_ACTIONS.graphRead],
      ['GET', '/v1.0/groups', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups', OPENMSI_ACTIONS.graphGroupsWrite],
      ['DELETE', '/v1.0/groups/g/members/m/$ref', OPENMSI_ACTIONS.graphGroupsWrite],
      ['POST', '/v1.0/groups/g/members/$ref', OPENMSI_ACTIONS.graphGroupsWrite],
      ['POST', '/v1.0/groups/g/checkMemberGroups', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups/g/checkMemberObjects', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups/g/getMemberGroups', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups/g/getMemberObjects', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups/g/GETMEMBEROBJECTS', OPENMSI_ACTIONS.graphGroupsRead],
      ['POST', '/v1.0/groups/g/getMemberObjects?x=1', OPENMSI_ACTIONS.graphGroupsRead],
      // Only the whole last segment makes a POST a read.
      ['POST', '/v1.0/groups/g/getMemberObjectsX', OPENMSI_ACTIONS.graphGroupsWrite],
      ['POST', '/v1.0/groups/g/xgetMemberObjects', OPENMSI_ACTIONS.graphGroupsWrite],
      ['POST', '/v1.0/groups/getMemberObjects/members/$ref', OPENMSI_ACTIONS.graphGroupsWrite],
      // Only a POST: any other verb on a reading segment's path changes something and needs write.
      ['PATCH', '/v1.0/groups/g/getMemberGroups', OPENMSI_ACTIONS.graphGroupsWrite],
      ['DELETE', '/v1.0/servicePrincipals/abc/getMemberObjects', OPENMSI_ACTIONS.graphWrite],
    ];
    for (const [method, url, action] of cases) {
      h.checks.length = 0;
      assert.equal((await send(h, 'user', method, url)).status, 200, `${method} ${url}`);
      assert.deepEqual(
        h.checks.map((c) => [c.action, c.scope]),
        [[action, '/']],
        `${method} ${url}`,
      );
    }
    h.decide = () => NOT_GRANTED;
    const refused = await send(h, 'user', 'POST', '/v1.0/groups');
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body, { error: { code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' } });
    assert.equal(h.denied.get('/v1.0/groups'), PRINCIPALS.user.objectId);
  });

  it('invariant: the actions of openmsi endpoints are the documented ones, and their writes fall under Microsoft.Authorization/*/Write (excluded from Contributor)', () => {
    assert.deepEqual(OPENMSI_ACTIONS, {
      graphRead: 'Microsoft.Authorization/servicePrincipals/read',
      graphWrite: 'Microsoft.Authorization/servicePrincipals/write',
      graphGroupsRead: 'Microsoft.Authorization/groups/read',
      graphGroupsWrite: 'Microsoft.Authorization/groups/write',
      keysRead: 'Microsoft.Authorization/signingKeys/read',
      keysWrite: 'Microsoft.Authorization/signingKeys/write',
      backupWrite: 'Microsoft.Authorization/backups/write',
      federationIssuersRead: 'Microsoft.Authorization/federationIssuers/read',
      federationIssuersWrite: 'Microsoft.Authorization/federationIssuers/write',
      auditRead: 'Microsoft.Insights/eventtypes/values/read',
      rbacStateRead: 'Microsoft.Authorization/roleAssignments/read',
    });
    assert.equal(ROOT_SCOPE, '/');
  });

  it('invariant: a list shows exactly the items the caller may read, in order, each checked at its own id', async () => {
    h.decide = (check) => (check.scope.endsWith('vm-b') || check.scope.endsWith('vm-d') ? GRANTED : NOT_GRANTED);
    const r = await send(h, 'user', 'GET', `/subscriptions/${SUB}/readable`);
    assert.deepEqual(r.body, { readable: ['vm-b', 'vm-d'] });
    assert.deepEqual(
      h.checks.map((c) => c.scope.split('/').pop()),
      ['vm-a', 'vm-b', 'vm-c', 'vm-d'],
    );
  });

  describe('decide', () => {
    it('invariant: the check is made at the canonical scope; a scope that does not parse is 400 InvalidScope and nothing is checked', async () => {
      const decision = await decide(h.ctx, callerFor('user'), { action: `${VM}/read`, scope: `/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rg/providers/${VM}/vm/` });
      assert.deepEqual(decision, GRANTED);
      assert.deepEqual(h.checks, [
        {
          tenantId: TENANT,
          principalId: PRINCIPALS.user.objectId,
          action: `${VM}/read`,
          isDataAction: false,
          scope: `/subscriptions/${SUB}/resourceGroups/rg/providers/${VM}/vm`,
        },
      ]);
      h.checks.length = 0;
      await assert.rejects(
        decide(h.ctx, callerFor('user'), { action: `${VM}/read`, scope: `/subscriptions/${SUB}/resourceGroups/rg/../rg2` }),
        (err: unknown) => err instanceof ApiError && err.status === 400 && err.code === 'InvalidScope',
      );
      assert.deepEqual(h.checks, []);
    });

    it("invariant: the caller's own tenant is the one asked, whatever the scope", async () => {
      await decide(h.ctx, callerFor('stranger'), { action: `${VM}/read`, scope: `/subscriptions/${SUB}` });
      assert.equal(h.checks[0]?.tenantId, OTHER_TENANT);
      assert.equal(h.checks[0]?.principalId, PRINCIPALS.stranger.objectId);
    });

    it('invariant: a deny never stops the bootstrap admin from reading and deleting deny assignments, when its roles grant it (break-glass)', async () => {
      h.decide = () => DENIED;
      h.permissions = ALL_AUTHORIZATION;
      const scope = `/subscriptions/${SUB}/resourceGroups/rg`;
      for (const action of [DENY_READ, DENY_DELETE, DENY_DELETE.toUpperCase()]) {
        h.permissionCalls.length = 0;
        assert.deepEqual(await decide(h.ctx, callerFor('admin'), { action, scope: `${scope}/` }), GRANTED, action);
        assert.equal(await allowed(h.ctx, callerFor('admin'), { action, scope }), true, action);
        assert.deepEqual(h.permissionCalls[0], [TENANT, PRINCIPALS.admin.objectId, scope], 'asked at the canonical scope');
      }
      assert.deepEqual([...DENY_BREAK_GLASS_ACTIONS].sort(), [DENY_DELETE.toLowerCase(), DENY_READ.toLowerCase()]);
    });

    it('invariant: the break-glass skips only the deny: not for other actions, not for anyone but the bootstrap admin, not past a role that does not grant, not when nothing was denied', async () => {
      h.permissions = ALL_AUTHORIZATION;
      h.decide = () => DENIED;
      assert.equal(await allowed(h.ctx, callerFor('admin'), { action: DENY_WRITE, scope: '/' }), false, 'creating a deny is not break-glass');
      assert.equal(await allowed(h.ctx, callerFor('admin'), { action: 'Microsoft.Authorization/roleAssignments/write', scope: '/' }), false);
      assert.equal(await allowed(h.ctx, callerFor('user'), { action: DENY_DELETE, scope: '/' }), false, 'only the bootstrap admin');
      h.permissions = [{ actions: ['Microsoft.Authorization/denyAssignments/read'], notActions: [], dataActions: [], notDataActions: [] }];
      assert.equal(await allowed(h.ctx, callerFor('admin'), { action: DENY_DELETE, scope: '/' }), false, 'its roles must grant the action');
      assert.equal(await allowed(h.ctx, callerFor('admin'), { action: DENY_READ, scope: '/' }), true);
      h.permissions = [{ actions: [], notActions: [], dataActions: ['*'], notDataActions: [] }];
      assert.equal(await allowed(h.ctx, callerFor('admin'), { action: DENY_DELETE, scope: '/' }), false, 'a data action never grants a control-plane one');
      h.permissions = ALL_AUTHORIZATION;
      h.decide = () => NOT_GRANTED;
      assert.deepEqual(await decide(h.ctx, callerFor('admin'), { action: DENY_DELETE, scope: '/' }), NOT_GRANTED, 'no role grants it: not granted');
    });
  });

  it('requireAccess needs the authenticate hook; the refusals are worded as ARM and Graph word them', async () => {
    const fake = { url: '/x' } as FastifyRequest;
    await assert.rejects(requireAccess(h.ctx, fake, { action: 'a', scope: '/' }), TypeError, 'no caller without the authenticate hook');
    assert.deepEqual(
      authorizationFailed('app', 'oid', 'act', 'sc').message,
      "The client 'app' with object id 'oid' does not have authorization to perform action 'act' over scope 'sc' or the scope is invalid. If access was recently granted, please refresh your credentials.",
    );
    assert.equal(graphRequestDenied().status, 403);
  });

  it('authorizationScopeOf: a Microsoft.Authorization path is checked at the canonical scope before its last provider segment, / at the root', () => {
    const of = (url: string) => authorizationScopeOf({ url } as FastifyRequest);
    assert.equal(of('/providers/Microsoft.Authorization/roleAssignments?api-version=1'), '/');
    assert.equal(of(`/SUBSCRIPTIONS/${SUB}/resourcegroups/rg/providers/microsoft.authorization/roleAssignments/x`), `/subscriptions/${SUB}/resourceGroups/rg`);
    assert.equal(
      of(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Authorization/locks/l/providers/Microsoft.Authorization/roleAssignments`),
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Authorization/locks/l`,
    );
    // Not a Microsoft.Authorization path: the path itself, canonical.
    assert.equal(of(`/SUBSCRIPTIONS/${SUB}?x=/providers/Microsoft.Authorization/`), `/subscriptions/${SUB}`);
    assert.equal(of(`/subscriptions/${SUB}/resourceGroups/r%67`), `/subscriptions/${SUB}/resourceGroups/rg`);
  });
});
