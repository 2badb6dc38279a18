/**
 * The token endpoint's client cache (src/authority/token/client-directory.ts): a grant reads no store, and
 * still a deleted secret, certificate or application is refused at once in this process and within 1 s on
 * every other replica (PostgreSQL LISTEN/NOTIFY). The authorities here trust a cached entry for 60 s, so
 * only the change notices can make these tests pass; the 1 s age bound is proven on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  acrossBackends,
  freePort,
  registerTestApplication,
  ROOMY_CLIENT_AUTH_THROTTLE,
  startTestAuthority,
  type TestAuthority,
} from '../../support/authority.js';
import { captureLogs } from '../../support/logs.js';
import { timeUntil } from '../../rbac/authz/helpers.js';
import { addPasswordCredential, removeCredential } from '../../../src/directory/credentials.js';
import { deleteApplicationPrincipal } from '../../../src/directory/principals.js';
import { ClientDirectory } from '../../../src/authority/token/client-directory.js';
import { createOpenmsiServer, type OpenmsiServer } from '../../../src/server/server.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { CREDENTIAL_CHANNEL, PRINCIPAL_CHANNEL, type Store } from '../../../src/store/types.js';

const LONG = 60_000;

async function grant(app: FastifyInstance, tenantId: string, appId: string, secret: string): Promise<number> {
  const response = await app.inject({
    method: 'POST',
    url: `/${tenantId}/oauth2/v2.0/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: appId,
      client_secret: secret,
      scope: 'https://vault.azure.net/.default',
    }).toString(),
  });
  return response.statusCode;
}

async function secretKeyId(store: Store, appId: string): Promise<string> {
  const secret = (await store.credentials.listByApp(appId)).find((c) => c.type === 'Password');
  assert.ok(secret !== undefined);
  return secret.keyId;
}

acrossBackends('token endpoint client cache', (backend) => {
  let t: TestAuthority;
  before(async () => {
    t = await startTestAuthority({ backend, clientCacheMaxAgeMs: LONG });
  });
  after(async () => {
    await t.close();
  });

  it('invariant: a client secret deleted gets no token at once, though the application was cached', async () => {
    const sp = await registerTestApplication(t, 'cached-secret', { certificate: false });
    assert.equal(await grant(t.app, t.tenantId, sp.appId, sp.secret), 200);
    assert.equal(await grant(t.app, t.tenantId, sp.appId, sp.secret), 200, 'served from the cache');
    assert.ok(await removeCredential(t.ctx.store, { appId: sp.appId, keyId: await secretKeyId(t.ctx.store, sp.appId) }));
    assert.equal(await grant(t.app, t.tenantId, sp.appId, sp.secret), 401);
  });

  it('invariant: a deleted application gets no token at once, though it was cached', async () => {
    const sp = await registerTestApplication(t, 'cached-app', { certificate: false });
    assert.equal(await grant(t.app, t.tenantId, sp.appId, sp.secret), 200);
    await deleteApplicationPrincipal(t.ctx.store, sp.objectId);
    assert.notEqual(await grant(t.app, t.tenantId, sp.appId, sp.secret), 200);
  });

  it('a secret added to a cached application is accepted at once', async () => {
    const sp = await registerTestApplication(t, 'cached-added', { certificate: false });
    assert.equal(await grant(t.app, t.tenantId, sp.appId, sp.secret), 200);
    const added = await t.ctx.store.transaction((tx) => addPasswordCredential(tx, t.ctx.masterKey, { appId: sp.appId, clock: t.ctx.clock }));
    assert.equal(await grant(t.app, t.tenantId, sp.appId, added.secretText), 200);
  });

  it('an entry is read again once older than maxAgeMs, and a read that overlapped a notice is not cached', async () => {
    const sp = await registerTestApplication(t, 'cache-age', { certificate: false });
    const clock = new FakeClock(Date.now());
    let reads = 0;
    let duringRead: (() => void) | undefined;
    const listeners = new Map<string, (payload: string) => void>();
    const store = {
      servicePrincipals: {
        getByAppId: async (appId: string) => {
          reads++;
          const found = await t.ctx.store.servicePrincipals.getByAppId(appId);
          duringRead?.();
          return found;
        },
      },
      credentials: t.ctx.store.credentials,
      // Notices delivered by hand: the store's own (on PostgreSQL it may still be delivering the registration's)
      // would make the read count depend on timing.
      notifications: {
        subscribe: (channel: string, listener: (payload: string) => void) => {
          listeners.set(channel, listener);
          return () => listeners.delete(channel);
        },
      },
    };
    const clients = new ClientDirectory({ store, clock, maxAgeMs: 1000 });
    try {
      assert.equal((await clients.get(sp.appId))?.principal.objectId, sp.objectId);
      await clients.get(sp.appId.toUpperCase());
      assert.equal(reads, 1, 'cached, by app id in any casing');
      clock.advance(999);
      await clients.get(sp.appId);
      assert.equal(reads, 1);
      clock.advance(1);
      await clients.get(sp.appId);
      assert.equal(reads, 2, 'read again at 1 s');

      clients.forgetApp(sp.appId);
      duringRead = () => clients.forgetPrincipal(sp.objectId);
      await clients.get(sp.appId);
      duringRead = undefined;
      await clients.get(sp.appId);
      assert.equal(reads, 4, 'the read a notice overlapped was not cached');
      assert.equal(await clients.get('00000000-0000-0000-0000-00000000beef'), undefined);
      assert.equal(await clients.get('00000000-0000-0000-0000-00000000beef'), undefined);
      assert.equal(reads, 6, 'an unknown client is never cached');

      // A user-assigned identity has no credentials: its deletion reaches the cache as a principal notice.
      await clients.get(sp.appId);
      assert.equal(reads, 6, 'cached');
      listeners.get(PRINCIPAL_CHANNEL)?.(sp.objectId.toUpperCase());
      await clients.get(sp.appId);
      assert.equal(reads, 7, 'a principal notice (by object id) dropped the entry');
      listeners.get(CREDENTIAL_CHANNEL)?.(sp.appId);
      await clients.get(sp.appId);
      assert.equal(reads, 8, 'a credential notice (by app id) dropped the entry');
    } finally {
      clients.close();
    }
  });
});

const postgresUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];

describe('token endpoint client cache across replicas', { skip: postgresUrl ? false : 'OPENMSI_TEST_POSTGRES_URL not set', timeout: 120_000 }, () => {
  let a: TestAuthority;
  let b: OpenmsiServer;

  before(async () => {
    a = await startTestAuthority({ backend: 'postgres', clientCacheMaxAgeMs: LONG });
    // Replica B: a second server process's worth of state (its own store pool, LISTEN connection and caches).
    b = await createOpenmsiServer({
      dataDir: a.dataDir,
      env: { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: a.storeLocation },
      store: a.storeLocation,
      logger: captureLogs().logger,
      host: '127.0.0.1',
      port: await freePort(),
      autoRotate: false,
      clientAuthThrottle: ROOMY_CLIENT_AUTH_THROTTLE,
      clientCacheMaxAgeMs: LONG,
    });
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  it('invariant: a client secret deleted through replica A is refused by replica B within 1 s', async () => {
    const sp = await registerTestApplication(a, 'replica-secret', { certificate: false });
    assert.equal(await grant(b.app, a.tenantId, sp.appId, sp.secret), 200, 'B has cached the application');
    assert.ok(await removeCredential(a.ctx.store, { appId: sp.appId, keyId: await secretKeyId(a.ctx.store, sp.appId) }));
    const took = await timeUntil(async () => (await grant(b.app, a.tenantId, sp.appId, sp.secret)) !== 200, 1500, 10);
    assert.ok(took !== undefined && took <= 1000, `replica B refused the deleted secret after ${String(took)} ms (bound 1000 ms)`);
  });

  it('invariant: an application deleted through replica A is refused by replica B within 1 s', async () => {
    const sp = await registerTestApplication(a, 'replica-app', { certificate: false });
    assert.equal(await grant(b.app, a.tenantId, sp.appId, sp.secret), 200, 'B has cached the application');
    await deleteApplicationPrincipal(a.ctx.store, sp.objectId);
    const took = await timeUntil(async () => (await grant(b.app, a.tenantId, sp.appId, sp.secret)) !== 200, 1500, 10);
    assert.ok(took !== undefined && took <= 1000, `replica B refused the deleted application after ${String(took)} ms (bound 1000 ms)`);
  });

  it('a secret added through replica A is accepted by replica B within 1 s', async () => {
    const sp = await registerTestApplication(a, 'replica-added', { certificate: false });
    assert.equal(await grant(b.app, a.tenantId, sp.appId, sp.secret), 200);
    const added = await a.ctx.store.transaction((tx) => addPasswordCredential(tx, a.ctx.masterKey, { appId: sp.appId, clock: a.ctx.clock }));
    const took = await timeUntil(async () => (await grant(b.app, a.tenantId, sp.appId, added.secretText)) === 200, 1500, 10);
    assert.ok(took !== undefined && took <= 1000, `replica B accepted the new secret after ${String(took)} ms`);
  });
});
