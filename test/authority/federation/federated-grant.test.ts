import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { STORE_BACKENDS, backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { postForm, type HttpsResponse } from '../../support/https.js';
import { startTestOidcIssuer, TOKEN_EXCHANGE_AUDIENCE, type TestOidcIssuer } from '../../support/oidc-issuer.js';
import { putResourceGroup, putUserAssignedIdentity } from '../../../src/directory/resources.js';
import { putFederatedCredential, type FederatedCredentialFields } from '../../../src/directory/federated-credentials.js';
import type { ServicePrincipal } from '../../../src/store/types.js';

const SUBJECT = 'system:serviceaccount:default:workload';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface EntraError {
  error: string;
  error_description: string;
  error_codes: number[];
  timestamp: string;
  trace_id: string;
  correlation_id: string;
}

for (const backend of STORE_BACKENDS)
  describe(`the federated client assertion grant (${backend})`, { ...backendSuiteOptions(backend), timeout: 120_000 }, () => {
    let t: TestAuthority;
    let issuer: TestOidcIssuer;
    let down: TestOidcIssuer;
    let hung: TestOidcIssuer;
    let uami: ServicePrincipal;
    let app: ServicePrincipal;

    const fields = (over: Partial<FederatedCredentialFields> = {}): FederatedCredentialFields => ({
      issuer: issuer.issuer,
      subject: SUBJECT,
      claimsMatchingExpression: null,
      audiences: [TOKEN_EXCHANGE_AUDIENCE],
      description: null,
      ...over,
    });
    const trust = async (i: TestOidcIssuer) => {
      const now = Date.now();
      await t.ctx.store.federationIssuers.put({
        issuer: i.issuer,
        jwks: null,
        jwksUri: null,
        ca: i.caPem,
        algorithms: ['RS256'],
        createdAt: now,
        updatedAt: now,
      });
    };

    before(async () => {
      t = await startTestAuthority({ backend });
      issuer = await startTestOidcIssuer({ dir: t.dataDir });
      down = await startTestOidcIssuer({ dir: t.dataDir, path: '/down' });
      hung = await startTestOidcIssuer({ dir: t.dataDir, path: '/hung' });
      const clock = t.ctx.clock;
      await putResourceGroup(t.ctx.store, { subscriptionId: t.subscriptionId, name: 'workloads', location: 'local', clock });
      uami = (await putUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: 'workloads', name: 'pod-identity', clock }))
        .principal;
      const registered = await registerTestApplication(t, 'federated-app', { certificate: false });
      app = (await t.ctx.store.servicePrincipals.getByAppId(registered.appId))!;
      for (const i of [issuer, down, hung]) await trust(i);
      await putFederatedCredential(t.ctx.store, { owner: uami, name: 'cluster-1', fields: fields(), family: 'arm', clock });
      await putFederatedCredential(t.ctx.store, { owner: uami, name: 'down', fields: fields({ issuer: down.issuer }), family: 'arm', clock });
      await putFederatedCredential(t.ctx.store, { owner: uami, name: 'hung', fields: fields({ issuer: hung.issuer }), family: 'arm', clock });
      await putFederatedCredential(t.ctx.store, { owner: app, name: 'cluster-1', fields: fields(), family: 'graph', clock });
      await down.close();
      hung.hang = true;
    });
    after(async () => {
      await Promise.all([issuer.close(), hung.close()]);
      await t.close();
    });

    function grant(assertion: string, options: { clientId?: string; tenant?: string; path?: string } = {}): Promise<HttpsResponse> {
      const v1 = options.path === 'oauth2/token';
      return postForm(
        `${t.url}/${options.tenant ?? 'adfs'}/${options.path ?? 'oauth2/v2.0/token'}`,
        {
          grant_type: 'client_credentials',
          client_id: options.clientId ?? uami.appId,
          ...(v1 ? { resource: 'https://vault.azure.net' } : { scope: 'https://vault.azure.net/.default' }),
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion,
        },
        t.caPem,
      );
    }

    async function expectRefused(response: HttpsResponse, status: number, error: string, code: number): Promise<EntraError> {
      assert.equal(response.status, status, response.body);
      const body = response.json<EntraError>();
      assert.equal(body.error, error);
      assert.deepEqual(body.error_codes, [code]);
      assert.match(body.error_description, new RegExp(`^AADSTS${String(code)}: `));
      assert.match(body.timestamp, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$/);
      // Every refusal leaves the others' grants as they were.
      const good = await grant(await issuer.sign());
      assert.equal(good.status, 200, good.body);
      return body;
    }

    it("issues the user-assigned identity's token for a matching external token, on every tenant path and both endpoints", async () => {
      const assertion = await issuer.sign();
      for (const [tenant, path] of [
        ['adfs', 'oauth2/v2.0/token'],
        [t.tenantId, 'oauth2/v2.0/token'],
        [t.tenantId, 'oauth2/token'],
        ['ADFS', 'oauth2/token'],
      ] as const) {
        const response = await grant(assertion, { tenant, path });
        assert.equal(response.status, 200, `${tenant}/${path}: ${response.body}`);
        const claims = decodeJwt(response.json<{ access_token: string }>().access_token);
        assert.equal(claims['appid'], uami.appId);
        assert.equal(claims['oid'], uami.objectId);
        assert.equal(claims['tid'], t.tenantId);
        assert.equal(claims['appidacr'], '2');
        assert.equal(claims['xms_mirid'], uami.managedIdentity?.resourceId);
      }
    });

    it('accepts the same token file many times, with the trailing newline Python sends', async () => {
      const assertion = await issuer.sign({ jti: 'reused' });
      for (let i = 0; i < 5; i++) assert.equal((await grant(`${assertion}\n`)).status, 200);
    });

    it("issues an application's token through its federated credential", async () => {
      const response = await grant(await issuer.sign(), { clientId: app.appId });
      assert.equal(response.status, 200, response.body);
      assert.equal(decodeJwt(response.json<{ access_token: string }>().access_token)['appid'], app.appId);
    });

    it('audits each federated grant with the issuer and subject', async () => {
      await grant(await issuer.sign());
      await t.ctx.audit.flush();
      const events = await t.ctx.store.audit.list({ action: 'token.issued', limit: 50 });
      const federated = events.find((e) => e.actor === uami.objectId && e.detail['credentialType'] === 'federated');
      assert.ok(federated, 'a token.issued event for the identity');
      assert.equal(federated.detail['federatedIssuer'], issuer.issuer);
      assert.equal(federated.detail['federatedSubject'], SUBJECT);
      assert.equal(federated.detail['federatedCredentialName'], 'cluster-1');
    });

    it('audits a refused federated grant with the issuer and subject it claimed', async () => {
      await grant(await issuer.sign({ sub: 'system:serviceaccount:default:refused-one' }));
      await t.ctx.audit.flush();
      const events = await t.ctx.store.audit.list({ limit: 200 });
      const refused = events.find((e) => e.outcome === 'failure' && e.detail['federatedSubject'] === 'system:serviceaccount:default:refused-one');
      assert.ok(refused, 'a failure event naming the subject');
      assert.equal(refused.detail['federatedIssuer'], issuer.issuer);
      assert.equal(refused.detail['aadsts'], 700213);
      assert.equal(refused.actor, uami.appId);
    });

    describe('refuses, with Entra’s codes (spec §6 T-A2-3)', () => {
      it('a subject that differs only in case: AADSTS7002138', async () => {
        const body = await expectRefused(await grant(await issuer.sign({ sub: SUBJECT.toUpperCase() })), 401, 'invalid_client', 7002138);
        assert.ok(body.error_description.includes(SUBJECT.toUpperCase()));
      });
      it('another subject: AADSTS700213, quoting it', async () => {
        const body = await expectRefused(await grant(await issuer.sign({ sub: 'system:serviceaccount:default:other' })), 401, 'invalid_client', 700213);
        assert.ok(body.error_description.includes("'system:serviceaccount:default:other'"));
      });
      it('a wrong audience: AADSTS700212', async () => {
        await expectRefused(await grant(await issuer.sign({ aud: ['api://other'] })), 401, 'invalid_client', 700212);
      });
      it('an issuer with an extra "/": AADSTS700211', async () => {
        const body = await expectRefused(await grant(await issuer.sign({ iss: `${issuer.issuer}/` })), 401, 'invalid_client', 700211);
        assert.ok(body.error_description.includes(`'${issuer.issuer}/'`));
      });
      it('no iat: AADSTS70023', async () => {
        await expectRefused(await grant(await issuer.sign({ iat: undefined })), 400, 'invalid_request', 70023);
      });
      it('a lifetime of 25 h + 1 s: AADSTS70023 (25 h exactly is accepted)', async () => {
        const now = Math.floor(Date.now() / 1000);
        await expectRefused(await grant(await issuer.sign({ iat: now, exp: now + 90_001 })), 400, 'invalid_request', 70023);
        assert.equal((await grant(await issuer.sign({ iat: now, exp: now + 90_000 }))).status, 200);
      });
      it('an expired token: AADSTS700024', async () => {
        const now = Math.floor(Date.now() / 1000);
        await expectRefused(await grant(await issuer.sign({ iat: now - 7200, nbf: now - 7200, exp: now - 600 })), 401, 'invalid_client', 700024);
      });
      it('a token not yet valid: AADSTS700024', async () => {
        const now = Math.floor(Date.now() / 1000);
        await expectRefused(await grant(await issuer.sign({ iat: now, nbf: now + 1200, exp: now + 3600 })), 401, 'invalid_client', 700024);
      });
      it('an unknown kid: AADSTS7000272, naming it', async () => {
        const stranger = await issuer.newKey();
        const body = await expectRefused(await grant(await issuer.sign({}, { key: stranger })), 401, 'invalid_client', 7000272);
        assert.ok(body.error_description.includes(stranger.kid));
      });
      it('a bad signature: AADSTS700027', async () => {
        const stranger = await issuer.newKey();
        await expectRefused(await grant(await issuer.sign({}, { key: stranger, kid: issuer.current.kid })), 401, 'invalid_client', 700027);
      });
      it('an algorithm the issuer is not allowed (ES256 without opt-in): AADSTS700027', async () => {
        const ec = await issuer.newKey('ES256');
        await expectRefused(await grant(await issuer.sign({}, { key: ec })), 401, 'invalid_client', 700027);
      });
      it('an issuer that is down: AADSTS50166', async () => {
        await expectRefused(await grant(await down.sign()), 400, 'invalid_request', 50166);
      });
      it('an Entra-issued token: AADSTS700222', async () => {
        await expectRefused(await grant(await issuer.sign({ iss: 'https://login.microsoftonline.com/x/v2.0' })), 401, 'invalid_client', 700222);
      });
      it('a deleted federated credential, at once: AADSTS700211', async () => {
        const assertion = await issuer.sign({}, {});
        assert.equal((await grant(assertion, { clientId: app.appId })).status, 200);
        assert.equal(await t.ctx.store.federatedCredentials.delete(app.objectId, 'cluster-1'), true);
        await expectRefused(await grant(assertion, { clientId: app.appId }), 401, 'invalid_client', 700211);
        await putFederatedCredential(t.ctx.store, { owner: app, name: 'cluster-1', fields: fields(), family: 'graph', clock: t.ctx.clock });
        assert.equal((await grant(assertion, { clientId: app.appId })).status, 200);
      });
      it('an unknown client id: AADSTS700016', async () => {
        await expectRefused(await grant(await issuer.sign(), { clientId: '00000000-0000-0000-0000-00000000beef' }), 400, 'unauthorized_client', 700016);
      });
      it('a client secret for a user-assigned identity, which is no confidential client: AADSTS700016', async () => {
        const response = await postForm(
          `${t.url}/adfs/oauth2/v2.0/token`,
          { grant_type: 'client_credentials', client_id: uami.appId, client_secret: 'guess', scope: 'https://vault.azure.net/.default' },
          t.caPem,
        );
        await expectRefused(response, 400, 'unauthorized_client', 700016);
      });
    });

    it("accepts ES256 and PS256 once the issuer's setting allows them (a changed setting applies at once)", async () => {
      const original = issuer.current;
      const ec = await issuer.newKey('ES256');
      const ps = await issuer.newKey('PS256');
      issuer.rotate(ec, { keepOld: true });
      issuer.rotate(ps, { keepOld: true });
      const now = Date.now();
      await t.ctx.store.federationIssuers.put({
        issuer: issuer.issuer,
        jwks: null,
        jwksUri: null,
        ca: issuer.caPem,
        algorithms: ['RS256', 'ES256', 'PS256'],
        createdAt: now,
        updatedAt: now + 1,
      });
      try {
        for (const key of [ec, ps]) {
          const response = await grant(await issuer.sign({}, { key }));
          assert.equal(response.status, 200, `${key.alg}: ${response.body}`);
        }
        const stranger = await issuer.newKey('ES256');
        const forged = await grant(await issuer.sign({}, { key: stranger, kid: ec.kid }));
        assert.deepEqual(forged.json<EntraError>().error_codes, [700027]);
      } finally {
        await trust(issuer);
        issuer.rotate(original, { keepOld: true });
      }
      const refused = await grant(await issuer.sign({}, { key: ec }));
      assert.deepEqual(refused.json<EntraError>().error_codes, [700027], 'RS256 only again');
    });

    it('a hung issuer fails its own grants with AADSTS50166 after its timeout, and stalls nobody else', async () => {
      const started = Date.now();
      const pending = grant(await hung.sign());
      const others = Date.now();
      for (let i = 0; i < 3; i++) assert.equal((await grant(await issuer.sign())).status, 200);
      assert.ok(Date.now() - others < 3000, `other grants took ${String(Date.now() - others)} ms`);
      const response = await pending;
      assert.equal(response.status, 400, response.body);
      assert.deepEqual(response.json<EntraError>().error_codes, [50166]);
      assert.ok(Date.now() - started < 9000);
      // Within the failure cooldown the hung issuer is not asked again: its grants fail at once.
      const again = Date.now();
      assert.deepEqual((await grant(await hung.sign())).json<EntraError>().error_codes, [50166]);
      assert.ok(Date.now() - again < 1000);
    });
  });
