/**
 * Federated identity credentials over the management API (src/management/federated-credentials.ts): the ARM
 * shape on user-assigned identities, the Graph shape on applications, Entra's rules on both, RBAC, the
 * per-issuer settings, and a change applying at once at the token endpoint.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { postForm } from '../support/https.js';
import { startTestOidcIssuer, TOKEN_EXCHANGE_AUDIENCE, type TestOidcIssuer } from '../support/oidc-issuer.js';
import { assignRole, call, expectAuthorizationFailed, GRAPH, ROLE, testPrincipal, V, type TestPrincipal } from '../rbac/authz/helpers.js';

const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const FIC = `${UAMI}/federatedIdentityCredentials`;
const SUBJECT = 'system:serviceaccount:default:workload';

for (const backend of STORE_BACKENDS)
  describe(`federated identity credentials, management API (${backend})`, { ...backendSuiteOptions(backend), timeout: 120_000 }, () => {
    let t: TestAuthority;
    let issuer: TestOidcIssuer;
    let admin: string;
    let graphAdmin: string;
    let rg: string;
    let identity: string;
    let clientId: string;
    let reader: TestPrincipal;
    let miContributor: TestPrincipal;
    const fic = (name: string) => `${identity}/federatedIdentityCredentials/${name}?${V}`;
    const body = (over: Record<string, unknown> = {}) => ({
      properties: { issuer: issuer.issuer, subject: SUBJECT, audiences: [TOKEN_EXCHANGE_AUDIENCE], ...over },
    });
    const grant = async (id: string) =>
      postForm(
        `${t.url}/adfs/oauth2/v2.0/token`,
        {
          grant_type: 'client_credentials',
          client_id: id,
          scope: 'https://vault.azure.net/.default',
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: await issuer.sign(),
        },
        t.caPem,
      );

    before(async () => {
      t = await startTestAuthority({ backend });
      issuer = await startTestOidcIssuer({ dir: t.dataDir });
      admin = await t.adminToken('https://management.azure.com/');
      graphAdmin = await t.adminToken(GRAPH);
      rg = `/subscriptions/${t.subscriptionId}/resourceGroups/workloads`;
      identity = `${rg}/providers/${UAMI}/pods`;
      assert.equal((await call(t, 'PUT', `${rg}?${V}`, admin, { location: 'westeurope' })).status, 201);
      const created = await call(t, 'PUT', `${identity}?${V}`, admin, { location: 'westeurope' });
      assert.equal(created.status, 201, created.body);
      clientId = created.json<{ properties: { clientId: string } }>().properties.clientId;
      reader = await testPrincipal(t, 'fic-reader');
      await assignRole(t, admin, rg, ROLE.Reader, reader.objectId);
      miContributor = await testPrincipal(t, 'fic-mi-contributor');
      await assignRole(t, admin, rg, ROLE.ManagedIdentityContributor, miContributor.objectId);
      // The issuer's keys, given statically: its discovery is never asked (and could not be: its CA is not trusted).
      const setting = await call(t, 'PUT', '/openmsi/federationIssuers', admin, { issuer: issuer.issuer, jwks: issuer.jwks() });
      assert.equal(setting.status, 201, setting.body);
    });
    after(async () => {
      await issuer.close();
      await t.close();
    });

    it('ARM: PUT creates (201) and replaces (200), GET and list show the ARM shape, DELETE removes (200, then 204)', async () => {
      const created = await call(t, 'PUT', fic('cluster-1'), admin, body());
      assert.equal(created.status, 201, created.body);
      const view = created.json<Record<string, unknown>>();
      assert.equal(view['id'], `${identity}/federatedIdentityCredentials/cluster-1`);
      assert.equal(view['name'], 'cluster-1');
      assert.equal(view['type'], FIC);
      assert.deepEqual(view['properties'], { issuer: issuer.issuer, subject: SUBJECT, audiences: [TOKEN_EXCHANGE_AUDIENCE] });
      assert.equal((await call(t, 'PUT', fic('cluster-1'), admin, body({ subject: `${SUBJECT}-2` }))).status, 200);
      const shown = await call(t, 'GET', fic('CLUSTER-1'), admin);
      assert.equal(shown.status, 200);
      assert.equal(shown.json<{ properties: { subject: string } }>().properties.subject, `${SUBJECT}-2`);
      const list = await call(t, 'GET', `${identity}/federatedIdentityCredentials?${V}`, reader.token);
      assert.equal(list.status, 200, list.body);
      assert.deepEqual(
        list.json<{ value: { name: string }[] }>().value.map((v) => v.name),
        ['cluster-1'],
      );
      assert.equal((await call(t, 'DELETE', fic('cluster-1'), admin)).status, 200);
      assert.equal((await call(t, 'DELETE', fic('cluster-1'), admin)).status, 204);
      assert.equal((await call(t, 'GET', fic('cluster-1'), admin)).status, 404);
    });

    it("ARM: Entra's rules — one audience, an https non-Entra issuer, a valid name, issuer+subject unique, at most 20", async () => {
      const refused = async (name: string, b: unknown, pattern: RegExp) => {
        const r = await call(t, 'PUT', fic(name), admin, b);
        assert.equal(r.status, 400, r.body);
        assert.match(r.json<{ error: { code: string; message: string } }>().error.message, pattern);
      };
      await refused('two-audiences', body({ audiences: ['a', 'b'] }), /exactly one audience/);
      await refused('no-audience', body({ audiences: [] }), /exactly one audience/);
      await refused('entra', body({ issuer: 'https://login.microsoftonline.com/tenant/v2.0' }), /AAD-issued tokens/);
      await refused('http-issuer', body({ issuer: 'http://issuer.example' }), /https/);
      await refused('-bad', body(), /name/);
      await refused('no-subject', body({ subject: undefined }), /subject/);
      const first = await call(t, 'PUT', fic('first'), admin, body());
      assert.equal(first.status, 201, first.body);
      await refused('second', body(), /Issuer and subject combination already exists/);
      for (let i = 1; i < 20; i++) assert.equal((await call(t, 'PUT', fic(`fic-${String(i)}`), admin, body({ subject: `s${String(i)}` }))).status, 201);
      await refused('fic-20', body({ subject: 's20' }), /limit of 20/);
      await refused('n2', body({ subject: 's20' }), /name 'n2' is invalid/);
      assert.equal((await call(t, 'PUT', fic('first'), admin, body({ subject: 'replaced' }))).status, 200, 'replacing one is not a 21st');
      for (const name of ['first', ...Array.from({ length: 19 }, (_, i) => `fic-${String(i + 1)}`)]) await call(t, 'DELETE', fic(name), admin);
    });

    it('ARM: authorised by federatedIdentityCredentials/{read,write,delete} at the identity: a Reader reads, a Managed Identity Contributor writes', async () => {
      expectAuthorizationFailed(await call(t, 'PUT', fic('by-reader'), reader.token, body()), reader.appId, reader.objectId, `${FIC}/write`, identity);
      const created = await call(t, 'PUT', fic('by-mi-contributor'), miContributor.token, body({ subject: 'mic' }));
      assert.equal(created.status, 201, created.body);
      assert.equal((await call(t, 'GET', fic('by-mi-contributor'), reader.token)).status, 200);
      expectAuthorizationFailed(await call(t, 'DELETE', fic('by-mi-contributor'), reader.token), reader.appId, reader.objectId, `${FIC}/delete`, identity);
      assert.equal((await call(t, 'DELETE', fic('by-mi-contributor'), miContributor.token)).status, 200);
    });

    it('a credential applies at the token endpoint at once, and its deletion too', async () => {
      assert.equal((await grant(clientId)).status, 401);
      assert.equal((await call(t, 'PUT', fic('live'), admin, body())).status, 201);
      const ok = await grant(clientId);
      assert.equal(ok.status, 200, ok.body);
      assert.equal((await call(t, 'DELETE', fic('live'), admin)).status, 200);
      assert.deepEqual((await grant(clientId)).json<{ error_codes: number[] }>().error_codes, [700211]);
      assert.equal(issuer.requests.length, 0, 'a static JWKS is never fetched');
    });

    it('Graph: an application’s federated credentials — POST, list, GET by id or name, PATCH, DELETE; flexible expressions', async () => {
      const sp = await call(t, 'POST', '/v1.0/servicePrincipals', graphAdmin, { displayName: 'ci-app' });
      assert.equal(sp.status, 201, sp.body);
      const { id: objectId, appId } = sp.json<{ id: string; appId: string }>();
      const base = `/v1.0/applications/${objectId}/federatedIdentityCredentials`;
      // az resolves `--id <appId>` to the application's object id this way.
      const resolved = await call(t, 'GET', `/v1.0/applications?$filter=${encodeURIComponent(`appId eq '${appId}'`)}`, graphAdmin);
      assert.equal(resolved.status, 200, resolved.body);
      assert.deepEqual(
        resolved.json<{ value: { id: string; appId: string }[] }>().value.map((a) => [a.id, a.appId]),
        [[objectId, appId]],
      );
      assert.deepEqual(
        (await call(t, 'GET', `/v1.0/applications?$filter=${encodeURIComponent(`appId eq '${objectId}'`)}`, graphAdmin)).json<{ value: unknown[] }>().value,
        [],
      );
      const created = await call(t, 'POST', base, graphAdmin, {
        name: 'k8s',
        issuer: issuer.issuer,
        subject: SUBJECT,
        audiences: [TOKEN_EXCHANGE_AUDIENCE],
        description: 'pods',
      });
      assert.equal(created.status, 201, created.body);
      const c = created.json<Record<string, unknown>>();
      assert.deepEqual(
        { name: c['name'], issuer: c['issuer'], subject: c['subject'], audiences: c['audiences'], description: c['description'] },
        { name: 'k8s', issuer: issuer.issuer, subject: SUBJECT, audiences: [TOKEN_EXCHANGE_AUDIENCE], description: 'pods' },
      );
      assert.equal((await call(t, 'POST', base, graphAdmin, { name: 'k8s', issuer: issuer.issuer, subject: 'x', audiences: ['a'] })).status, 400);
      assert.equal((await call(t, 'GET', `${base}/${String(c['id'])}`, graphAdmin)).status, 200);
      assert.equal((await call(t, 'GET', `/v1.0/applications/${appId}/federatedIdentityCredentials/k8s`, graphAdmin)).status, 200);
      assert.equal((await grant(appId)).status, 200);
      assert.equal((await call(t, 'PATCH', `${base}/k8s`, graphAdmin, { subject: 'other' })).status, 204);
      assert.equal((await grant(appId)).status, 401);
      const flexible = await call(t, 'PATCH', `${base}/k8s`, graphAdmin, {
        claimsMatchingExpression: {
          value: "claims['sub'] matches 'system:serviceaccount:default:*' and claims['iss'] eq '" + issuer.issuer + "'",
          languageVersion: 1,
        },
      });
      assert.equal(flexible.status, 204, flexible.body);
      assert.equal((await grant(appId)).status, 200, 'the flexible expression matches');
      assert.equal(
        (await call(t, 'PATCH', `${base}/k8s`, graphAdmin, { claimsMatchingExpression: { value: "claims['sub'] like 'x'", languageVersion: 1 } })).status,
        400,
      );
      const list = await call(t, 'GET', base, graphAdmin);
      assert.equal(list.json<{ value: unknown[] }>().value.length, 1);
      assert.equal((await call(t, 'DELETE', `${base}/k8s`, graphAdmin)).status, 204);
      assert.equal((await call(t, 'GET', `${base}/k8s`, graphAdmin)).status, 404);
      assert.equal((await grant(appId)).status, 401);
    });

    it('Graph: writes need Graph write rights at / (a group Reader is refused); a missing application is a 404', async () => {
      const readerGraph = await (await import('../rbac/authz/helpers.js')).clientToken(t, reader.appId, reader.secret, GRAPH);
      const sp = await call(t, 'POST', '/v1.0/servicePrincipals', graphAdmin, { displayName: 'ci-app-2' });
      const { id } = sp.json<{ id: string }>();
      const refused = await call(t, 'POST', `/v1.0/applications/${id}/federatedIdentityCredentials`, readerGraph, {
        name: 'x1',
        issuer: issuer.issuer,
        subject: 's',
        audiences: ['a'],
      });
      assert.equal(refused.status, 403, refused.body);
      assert.equal((await call(t, 'GET', `/v1.0/applications/00000000-0000-0000-0000-000000000001/federatedIdentityCredentials`, graphAdmin)).status, 404);
    });

    it('issuer settings: shown, validated, owner-level to change', async () => {
      const shown = await call(t, 'GET', `/openmsi/federationIssuers?issuer=${encodeURIComponent(issuer.issuer)}`, admin);
      assert.equal(shown.status, 200, shown.body);
      assert.equal(shown.json<{ keySource: string }>().keySource, 'jwks');
      expectAuthorizationFailed(
        await call(t, 'PUT', '/openmsi/federationIssuers', miContributor.token, { issuer: 'https://x.example' }),
        miContributor.appId,
        miContributor.objectId,
        'Microsoft.Authorization/federationIssuers/write',
        '/',
      );
      for (const bad of [
        { issuer: 'http://x.example' },
        { issuer: 'https://x.example', jwks: { keys: [] } },
        { issuer: 'https://x.example', jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } },
        { issuer: 'https://x.example', jwksUri: 'https://x.example/keys', jwks: issuer.jwks() },
        { issuer: 'https://x.example', algorithms: ['HS256'] },
        { issuer: 'https://x.example', ca: 'not a pem' },
      ]) {
        assert.equal((await call(t, 'PUT', '/openmsi/federationIssuers', admin, bad)).status, 400, JSON.stringify(bad));
      }
      const put = await call(t, 'PUT', '/openmsi/federationIssuers', admin, {
        issuer: 'https://x.example',
        jwksUri: 'https://x.example/keys',
        algorithms: ['RS256', 'ES256'],
      });
      assert.equal(put.status, 201, put.body);
      assert.equal(put.json<{ keySource: string }>().keySource, 'jwksUri');
      assert.equal((await call(t, 'DELETE', `/openmsi/federationIssuers?issuer=${encodeURIComponent('https://x.example')}`, admin)).status, 200);
      assert.equal((await call(t, 'GET', `/openmsi/federationIssuers?issuer=${encodeURIComponent('https://x.example')}`, admin)).status, 404);
    });
  });
