import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { SignJWT } from 'jose';
import { startTestAuthority, freePort, captureLogs, registerTestApplication, type TestAuthority } from '../support/authority.js';
import { httpsRequest, postForm } from '../support/https.js';
import { createOpenmsiServer, type OpenmsiServer } from '../../src/server/server.js';
import { StoreLockedError } from '../../src/store/sqlite.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';
import { putResourceGroup, putUserAssignedIdentity } from '../../src/directory/resources.js';
import { putFederatedCredential } from '../../src/directory/federated-credentials.js';
import { startTestOidcIssuer } from '../support/oidc-issuer.js';

const postgresUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];

describe('replicas', () => {
  it('a second authority on the embedded store gets a clear error', async () => {
    const t = await startTestAuthority();
    try {
      await assert.rejects(
        createOpenmsiServer({
          dataDir: t.dataDir,
          env: { ...process.env, OPENMSI_STORE: '' },
          logger: captureLogs().logger,
          store: dataDirLayout(t.dataDir).sqlite,
          autoRotate: false,
        }),
        (err: unknown) => err instanceof StoreLockedError && /in use by another openmsi process/.test(err.message),
      );
    } finally {
      await t.close();
    }
  });

  /** Two authority processes' worth of state on one PostgreSQL database, as a multi-replica deployment runs. */
  describe('two authorities sharing PostgreSQL', { skip: postgresUrl ? false : 'OPENMSI_TEST_POSTGRES_URL not set' }, () => {
    let a: TestAuthority;
    let b: OpenmsiServer;
    let bUrl: string;
    let appId: string;
    let certPem: string;
    let keyPem: string;

    before(async () => {
      a = await startTestAuthority({ backend: 'postgres' });
      const port = await freePort();
      // Replicas share one issuer, the public URL they are reached by (README: --public-url); without one,
      // each advertises the port it listens on.
      b = await createOpenmsiServer({
        dataDir: a.dataDir,
        env: { ...process.env, OPENMSI_STORE: '' },
        store: a.storeLocation,
        logger: captureLogs().logger,
        host: '127.0.0.1',
        port,
        publicUrl: a.url,
        autoRotate: false,
      });
      await b.listen();
      bUrl = `https://localhost:${String(port)}`;
      ({ appId, certPem, keyPem } = await registerTestApplication(a, 'replicated'));
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    function assertion(aud: string) {
      const der = new X509Certificate(certPem).raw;
      return new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'PS256', 'x5t#S256': createHash('sha256').update(der).digest('base64url') })
        .setIssuer(appId)
        .setSubject(appId)
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(createPrivateKey(keyPem));
    }

    it('refuses an assertion replayed at the other replica', async () => {
      // Both replicas publish the same issuer (config.json), so an assertion for one token endpoint is valid at both.
      const jwt = await assertion(`${a.url}/${a.tenantId}/oauth2/v2.0/token`);
      const form = {
        grant_type: 'client_credentials',
        client_id: appId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: jwt,
        scope: 'https://vault.azure.net/.default',
      };
      assert.equal((await postForm(`${a.url}/${a.tenantId}/oauth2/v2.0/token`, form, a.caPem)).status, 200);
      const replay = await postForm(`${bUrl}/${a.tenantId}/oauth2/v2.0/token`, form, a.caPem);
      assert.equal(replay.status, 401);
      assert.deepEqual(replay.json<{ error_codes: number[] }>().error_codes, [700229]);
    });

    it('accepts a token issued by one replica at the other, and follows a revocation made on the first', async () => {
      const token = await a.adminToken('https://management.azure.com/');
      const list = () => httpsRequest(`${bUrl}/subscriptions?api-version=2022-12-01`, { ca: a.caPem, headers: { authorization: `Bearer ${token}` } });
      assert.equal((await list()).status, 200);
      await a.ctx.rotator.rotateNow({ revokePrevious: true });
      // Replica B re-reads the key ring on a timer (30 s in production); force the refresh the timer would do.
      await b.ctx.keyRing.refresh();
      assert.equal((await list()).status, 401);
      const jwks = (await httpsRequest(`${bUrl}/${a.tenantId}/discovery/v2.0/keys`, { ca: a.caPem })).json<{ keys: { kid: string }[] }>();
      assert.deepEqual(jwks, (await httpsRequest(`${a.url}/${a.tenantId}/discovery/v2.0/keys`, { ca: a.caPem })).json());
    });

    it('a federated credential made, changed or deleted through one replica applies at the other at once (nothing caches them)', async () => {
      const issuer = await startTestOidcIssuer({ dir: a.dataDir, path: '/replicated' });
      try {
        const clock = a.ctx.clock;
        await putResourceGroup(a.ctx.store, { subscriptionId: a.subscriptionId, name: 'replicated', location: 'local', clock });
        const { principal } = await putUserAssignedIdentity(a.ctx.store, {
          subscriptionId: a.subscriptionId,
          resourceGroup: 'replicated',
          name: 'pods',
          clock,
        });
        const now = Date.now();
        await a.ctx.store.federationIssuers.put({
          issuer: issuer.issuer,
          jwks: issuer.jwks(),
          jwksUri: null,
          ca: null,
          algorithms: ['RS256'],
          createdAt: now,
          updatedAt: now,
        });
        const fields = {
          issuer: issuer.issuer,
          subject: 'system:serviceaccount:default:workload',
          claimsMatchingExpression: null,
          audiences: ['api://AzureADTokenExchange'],
          description: null,
        };
        const assertion = await issuer.sign();
        const grantAtB = async () =>
          (
            await postForm(
              `${bUrl}/adfs/oauth2/v2.0/token`,
              {
                grant_type: 'client_credentials',
                client_id: principal.appId,
                scope: 'https://vault.azure.net/.default',
                client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
                client_assertion: assertion,
              },
              a.caPem,
            )
          ).json<{ access_token?: string; error_codes?: number[] }>();
        assert.deepEqual((await grantAtB()).error_codes, [700211]);
        await putFederatedCredential(a.ctx.store, { owner: principal, name: 'cluster', fields, family: 'arm', clock });
        assert.equal(typeof (await grantAtB()).access_token, 'string');
        await putFederatedCredential(a.ctx.store, { owner: principal, name: 'cluster', fields: { ...fields, subject: 'other' }, family: 'arm', clock });
        assert.deepEqual((await grantAtB()).error_codes, [700213]);
        await a.ctx.store.federatedCredentials.delete(principal.objectId, 'cluster');
        assert.deepEqual((await grantAtB()).error_codes, [700211]);
      } finally {
        await issuer.close();
      }
    });
  });
});
