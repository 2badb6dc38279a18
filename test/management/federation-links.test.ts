/**
 * Outbound federation over the management API (src/management/federation-links.ts): an identity's upstream link
 * (ARM shape, the federated credential to create upstream, Entra-side rules), RBAC (a write on the identity),
 * audit, the deletion with the identity, and `/openmsi/federationOutbound` (the export's source).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { assignRole, call, expectAuthorizationFailed, ROLE, testPrincipal, V, type TestPrincipal } from '../rbac/authz/helpers.js';
import { signOutboundAssertion } from '../../src/authority/federation/outbound-issuer.js';

const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const UPSTREAM_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const UPSTREAM_CLIENT = '3f1c2a4e-8d6b-4b7a-9e2f-5c4d3b2a1f00';

for (const backend of STORE_BACKENDS)
  describe(`outbound federation links, management API (${backend})`, { ...backendSuiteOptions(backend), timeout: 120_000 }, () => {
    let t: TestAuthority;
    let admin: string;
    let rg: string;
    let identity: string;
    let principalId: string;
    let reader: TestPrincipal;
    let miContributor: TestPrincipal;
    let issuer: string;
    const link = () => `${identity}/outboundFederation/default?${V}`;
    const body = (over: Record<string, unknown> = {}) => ({ properties: { tenantId: UPSTREAM_TENANT, clientId: UPSTREAM_CLIENT, ...over } });

    before(async () => {
      t = await startTestAuthority({ backend });
      admin = await t.adminToken('https://management.azure.com/');
      rg = `/subscriptions/${t.subscriptionId}/resourceGroups/outbound`;
      identity = `${rg}/providers/${UAMI}/web-app`;
      assert.equal((await call(t, 'PUT', `${rg}?${V}`, admin, { location: 'westeurope' })).status, 201);
      const created = await call(t, 'PUT', `${identity}?${V}`, admin, { location: 'westeurope' });
      assert.equal(created.status, 201, created.body);
      principalId = created.json<{ properties: { principalId: string } }>().properties.principalId;
      reader = await testPrincipal(t, 'link-reader');
      await assignRole(t, admin, rg, ROLE.Reader, reader.objectId);
      miContributor = await testPrincipal(t, 'link-mi-contributor');
      await assignRole(t, admin, rg, ROLE.ManagedIdentityContributor, miContributor.objectId);
      issuer = `${t.url}/openmsi/federation`;
    });
    after(async () => {
      await t.close();
    });

    it('PUT creates (201) and replaces (200); the view names the upstream and the exact federated credential to create there', async () => {
      const created = await call(t, 'PUT', link(), admin, body());
      assert.equal(created.status, 201, created.body);
      const view = created.json<Record<string, unknown>>();
      assert.equal(view['id'], `${identity}/outboundFederation/default`);
      assert.equal(view['type'], `${UAMI}/outboundFederation`);
      assert.deepEqual(view['properties'], {
        tenantId: UPSTREAM_TENANT,
        clientId: UPSTREAM_CLIENT,
        authorityHost: 'https://login.microsoftonline.com',
        tokenEndpoint: `https://login.microsoftonline.com/${UPSTREAM_TENANT}/oauth2/v2.0/token`,
        issuer,
        subject: principalId,
        audience: 'api://AzureADTokenExchange',
      });
      assert.deepEqual(view['federatedCredential'], { name: 'openmsi-web-app', issuer, subject: principalId, audiences: ['api://AzureADTokenExchange'] });
      const replaced = await call(t, 'PUT', link(), admin, body({ authorityHost: 'https://login.example.net/', issuer: 'https://oidc.example/openmsi/' }));
      assert.equal(replaced.status, 200, replaced.body);
      const shown = await call(t, 'GET', link(), admin);
      assert.equal(shown.status, 200);
      const properties = shown.json<{ properties: Record<string, unknown>; federatedCredential: Record<string, unknown> }>();
      assert.equal(properties.properties['authorityHost'], 'https://login.example.net');
      assert.equal(properties.federatedCredential['issuer'], 'https://oidc.example/openmsi/', 'a per-link issuer is kept exactly (trailing / included)');
      const events = await t.ctx.store.audit.list({ action: 'federationLink.updated', limit: 5 });
      assert.equal(events[0]?.target, `${identity}/outboundFederation/default`);
    });

    it('refuses what Entra or a token endpoint could not use, naming the field', async () => {
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ tenantId: '' }, /tenantId/],
        [{ tenantId: 'a/b' }, /tenantId/],
        [{ clientId: 'web-app' }, /clientId/],
        [{ authorityHost: 'http://login.example.net' }, /authorityHost/],
        [{ authorityHost: 'https://login.example.net/tenant' }, /authorityHost/],
        [{ issuer: 'https://oidc.example/x?y=1' }, /issuer/],
        [{ issuer: ' https://oidc.example/x' }, /issuer/],
        [{ issuer: 'http://oidc.example/x' }, /issuer/],
      ];
      for (const [over, field] of cases) {
        const refused = await call(t, 'PUT', link(), admin, body(over));
        assert.equal(refused.status, 400, `${JSON.stringify(over)}: ${refused.body}`);
        assert.match(refused.body, field);
      }
      assert.equal((await call(t, 'PUT', link(), admin, {})).status, 400);
    });

    it('linking is a write on the identity: a Reader reads and is refused writing; a Managed Identity Contributor writes', async () => {
      expectAuthorizationFailed(await call(t, 'PUT', link(), reader.token, body()), reader.appId, reader.objectId, `${UAMI}/write`, identity);
      expectAuthorizationFailed(await call(t, 'DELETE', link(), reader.token), reader.appId, reader.objectId, `${UAMI}/write`, identity);
      assert.equal((await call(t, 'GET', link(), reader.token)).status, 200);
      assert.equal((await call(t, 'PUT', link(), miContributor.token, body())).status, 200);
    });

    it('DELETE removes (200, then 204; GET 404); deleting the identity deletes its link', async () => {
      assert.equal((await call(t, 'DELETE', link(), admin)).status, 200);
      assert.equal((await call(t, 'DELETE', link(), admin)).status, 204);
      assert.equal((await call(t, 'GET', link(), admin)).status, 404);
      assert.equal((await call(t, 'PUT', link(), admin, body())).status, 201);
      assert.ok((await t.ctx.store.federationLinks.get(principalId)) !== undefined);
      assert.equal((await call(t, 'DELETE', `${identity}?${V}`, admin)).status, 200);
      assert.equal(await t.ctx.store.federationLinks.get(principalId), undefined);
      assert.equal((await call(t, 'GET', link(), admin)).status, 404);
    });

    it('/openmsi/federationOutbound: the issuer, its discovery document and JWKS; assertions verify with it (read at /)', async () => {
      const answer = await call(t, 'GET', '/openmsi/federationOutbound', admin);
      assert.equal(answer.status, 200, answer.body);
      const documents = answer.json<{
        issuer: string;
        jwksUri: string;
        openidConfiguration: Record<string, unknown>;
        jwks: { keys: Record<string, unknown>[] };
      }>();
      assert.equal(documents.issuer, issuer);
      assert.equal(documents.openidConfiguration['jwks_uri'], `${issuer}/openid/v1/jwks`);
      assert.equal(documents.jwksUri, `${issuer}/openid/v1/jwks`);
      for (const key of documents.jwks.keys) assert.equal(key['d'], undefined);
      const signed = signOutboundAssertion({ keyRing: t.ctx.keyRing, clock: t.ctx.clock, issuer, subject: principalId });
      const { payload, protectedHeader } = await jwtVerify(signed.assertion, createLocalJWKSet(documents.jwks as never), {
        issuer,
        audience: 'api://AzureADTokenExchange',
        subject: principalId,
      });
      assert.equal(protectedHeader.alg, 'RS256');
      assert.equal(protectedHeader.kid, t.ctx.keyRing.current().kid);
      assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
      const anonymous = await call(t, 'GET', '/openmsi/federationOutbound', '');
      assert.equal(anonymous.status, 401);
      const other = await call(t, 'GET', `/openmsi/federationOutbound?issuer=${encodeURIComponent('https://oidc.example/openmsi/')}`, admin);
      assert.equal(other.status, 200, other.body);
      assert.equal(other.json<{ openidConfiguration: { issuer: string; jwks_uri: string } }>().openidConfiguration.issuer, 'https://oidc.example/openmsi/');
      assert.equal(other.json<{ openidConfiguration: { jwks_uri: string } }>().openidConfiguration.jwks_uri, 'https://oidc.example/openmsi/openid/v1/jwks');
      assert.equal((await call(t, 'GET', `/openmsi/federationOutbound?issuer=${encodeURIComponent('http://oidc.example')}`, admin)).status, 400);
      // A Reader of a resource group only is not a reader at `/`.
      const refused = await call(t, 'GET', '/openmsi/federationOutbound', reader.token);
      expectAuthorizationFailed(refused, reader.appId, reader.objectId, 'Microsoft.Authorization/federationIssuers/read', '/');
    });

    it('after a key rotation, new assertions carry the new kid and the JWKS has both keys', async () => {
      const before = t.ctx.keyRing.current().kid;
      await t.ctx.signingKeys.rotateNow({ revokePrevious: false });
      await t.ctx.keyRing.refresh();
      const after = t.ctx.keyRing.current().kid;
      assert.notEqual(after, before);
      const jwks = (await call(t, 'GET', '/openmsi/federationOutbound', admin)).json<{ jwks: { keys: { kid: string }[] } }>().jwks;
      const kids = jwks.keys.map((k) => k.kid);
      assert.ok(kids.includes(before) && kids.includes(after), JSON.stringify(kids));
      const signed = signOutboundAssertion({ keyRing: t.ctx.keyRing, clock: t.ctx.clock, issuer, subject: principalId });
      assert.equal((await jwtVerify(signed.assertion, createLocalJWKSet(jwks as never))).protectedHeader.kid, after);
    });
  });

describe('outbound federation with a configured issuer (--federation-issuer)', { timeout: 60_000 }, () => {
  let t: TestAuthority;
  const configured = 'https://issuer.example.com/openmsi';
  before(async () => {
    t = await startTestAuthority({ federationIssuer: configured });
  });
  after(async () => {
    await t.close();
  });

  it('names the configured issuer in the documents and the assertions, and does not serve the built-in issuer path', async () => {
    const admin = await t.adminToken('https://management.azure.com/');
    const documents = (await call(t, 'GET', '/openmsi/federationOutbound', admin)).json<{ issuer: string; jwksUri: string }>();
    assert.deepEqual([documents.issuer, documents.jwksUri], [configured, `${configured}/openid/v1/jwks`]);
    assert.equal(t.ctx.outboundIssuer(), configured);
    const builtIn = await call(t, 'GET', '/openmsi/federation/.well-known/openid-configuration', '');
    assert.equal(builtIn.status, 404);
  });

  it('refuses an issuer that is not an https URL at start', async () => {
    await assert.rejects(startTestAuthority({ federationIssuer: 'http://issuer.example.com/x' }), /federation issuer .* must be an https:\/\/ URL/);
  });
});
