/**
 * The `openmsi/rbac` library: the example service (node:http, remote RBAC state over HTTPS, a custom data
 * action) against a running test authority, and the fastify hook over the in-process store source.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { APPROVE_ORDERS, AUDIENCE, READ_ORDERS, startOrdersService, type OrdersService } from '../../../examples/rbac-service/server.js';
import { BUILTIN_ROLES, createAuthorizer, createRbacGuard, rbacFastifyHook, rbacResultOf } from '../../../src/rbac/index.js';
import { createStoreRbacSource } from '../../../src/store/rbac-state-source.js';
import { createTokenVerifier, localJwks } from '../../../src/shared/token-verifier.js';
import { assignRoleInStore, clientToken, deleteAssignmentInStore, ROLE, timeUntil } from './helpers.js';

const ORDERS_READER = randomUUID();

async function plain(url: string, method: string, token?: string): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

describe('openmsi/rbac library', () => {
  let t: TestAuthority;
  let service: OrdersService;
  let shopper: { appId: string; objectId: string; secret: string };
  const group = 'shop';

  before(async () => {
    t = await startTestAuthority();
    const now = Date.now();
    // The custom role of the example's README.
    await t.ctx.store.transaction(async (tx) => {
      await tx.roleDefinitions.create({
        id: ORDERS_READER,
        tenantId: t.tenantId,
        roleName: 'Orders Reader',
        roleType: 'CustomRole',
        description: 'Read the orders of Contoso stores.',
        permissions: [{ actions: [], notActions: [], dataActions: [READ_ORDERS], notDataActions: [] }],
        assignableScopes: [`/subscriptions/${t.subscriptionId}`],
        createdAt: now,
        createdBy: 'test',
        updatedAt: now,
        updatedBy: 'test',
      });
      await tx.rbacVersions.bump(t.tenantId);
    });
    const serviceIdentity = await registerTestApplication(t, 'orders-service', { certificate: false });
    await assignRoleInStore(t, '/', ROLE.Reader, serviceIdentity.objectId);
    shopper = await registerTestApplication(t, 'shopper', { certificate: false });
    service = await startOrdersService({
      authorityUrl: t.url,
      tenantId: t.tenantId,
      subscriptionId: t.subscriptionId,
      resourceGroup: group,
      clientId: serviceIdentity.appId,
      clientSecret: serviceIdentity.secret,
      ca: t.caPem,
      pollIntervalMs: 1000,
    });
  });
  after(async () => {
    await service.close();
    await t.close();
  });

  it('the example service: 401 without a token, 403 without the role, 200 with it, refused again after the deletion (timed)', async (ctx) => {
    const orders = `${service.url}/stores/berlin/orders`;
    const scope = `/subscriptions/${t.subscriptionId}/resourceGroups/${group}/providers/Contoso.Orders/stores/berlin`;
    const missing = await plain(orders, 'GET');
    assert.equal(missing.status, 401);
    assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer /);
    assert.equal((missing.body['error'] as { code: string }).code, 'AuthenticationFailed');

    const token = await clientToken(t, shopper.appId, shopper.secret, AUDIENCE);
    const refused = await plain(orders, 'GET', token);
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body, {
      error: {
        code: 'AuthorizationFailed',
        message: `The client '${shopper.appId}' with object id '${shopper.objectId}' does not have authorization to perform action '${READ_ORDERS}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      },
    });
    // A token for another audience is a 401.
    const armToken = await clientToken(t, shopper.appId, shopper.secret);
    assert.equal((await plain(orders, 'GET', armToken)).status, 401);

    const assignment = await assignRoleInStore(t, `/subscriptions/${t.subscriptionId}/resourceGroups/${group}`, ORDERS_READER, shopper.objectId);
    const grantMs = await timeUntil(async () => (await plain(orders, 'GET', token)).status === 200, 5000);
    assert.ok(grantMs !== undefined, 'the grant reached the remote authoriser');
    ctx.diagnostic(`remote source: grant effective after ${String(grantMs)} ms`);
    // Read only: approving is another data action.
    assert.equal((await plain(`${orders}/approve`, 'POST', token)).status, 403);

    await deleteAssignmentInStore(t, assignment);
    const revokeMs = await timeUntil(async () => (await plain(orders, 'GET', token)).status === 403, 5000);
    assert.ok(revokeMs !== undefined, 'the revocation reached the remote authoriser');
    ctx.diagnostic(`remote source (long poll): first refusal ${String(revokeMs)} ms after the deletion committed`);
    void APPROVE_ORDERS;
  });

  it('the fastify hook over the in-process store source', async () => {
    const source = createStoreRbacSource(t.ctx.store, BUILTIN_ROLES);
    const authorizer = createAuthorizer({ source });
    const guard = createRbacGuard({
      verifier: createTokenVerifier({ jwks: localJwks(() => t.ctx.keyRing.jwks()), issuers: [t.ctx.urls.v1Issuer(t.tenantId)], audiences: [AUDIENCE] }),
      authorizer,
    });
    const app = Fastify();
    app.addHook(
      'onRequest',
      rbacFastifyHook(guard, () => ({ action: 'Contoso.Orders/stores/read', scope: `/subscriptions/${t.subscriptionId}` })),
    );
    let handled = 0;
    app.get('/whoami', (request) => {
      handled += 1;
      return { oid: rbacResultOf(request)?.principal.oid };
    });
    try {
      const token = await clientToken(t, shopper.appId, shopper.secret, AUDIENCE);
      const none = await app.inject({ method: 'GET', url: '/whoami' });
      assert.equal(none.statusCode, 401);
      assert.match(String(none.headers['www-authenticate']), /^Bearer/);
      const refused = await app.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } });
      assert.equal(refused.statusCode, 403);
      assert.equal(refused.json<{ error: { code: string } }>().error.code, 'AuthorizationFailed');
      assert.equal(handled, 0, 'a refused request never reaches the handler');
      const id = await assignRoleInStore(t, `/subscriptions/${t.subscriptionId}`, ROLE.Reader, shopper.objectId);
      const ok = await app.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.deepEqual(ok.json(), { oid: shopper.objectId });
      await deleteAssignmentInStore(t, id);
      assert.equal((await app.inject({ method: 'GET', url: '/whoami', headers: { authorization: `Bearer ${token}` } })).statusCode, 403);
    } finally {
      await app.close();
      authorizer.close();
    }
  });
});

describe('openmsi/rbac stays light', () => {
  it('importing the library loads no store driver (better-sqlite3, pg, kysely)', async () => {
    const { execFile } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const script = `import { createRequire } from 'node:module';
await import('./src/rbac/index.ts');
const require = createRequire(import.meta.url);
console.log(JSON.stringify(Object.keys(require.cache).filter((k) => /better-sqlite3|node_modules[\\\\/](pg|kysely)[\\\\/]/.test(k))));`;
    const out = await new Promise<string>((done, fail) =>
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? fail(new Error(stderr)) : done(stdout),
      ),
    );
    assert.deepEqual(JSON.parse(out.trim()), []);
  });
});
