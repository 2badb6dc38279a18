/**
 * Outbound federation links over the management API (src/management/federation-links.ts), without a server: the
 * real routes and hooks over the management harness (a recording authoriser) and an in-memory SQLite store.
 * Linking changes where an identity's tokens come from, so a PUT or DELETE is `userAssignedIdentities/write` on
 * the identity and a GET `/read`; the link is stored for the addressed identity's own principal; every field is
 * checked (the upstream tenant, a GUID client id, an https origin, an https issuer). `/openmsi/federationOutbound`
 * is `federationIssuers/read` at `/`. End to end: test/management/federation-links.test.ts.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/types.js';
import { putUserAssignedIdentity } from '../../src/directory/resources.js';
import { acceptedAudiences } from '../../src/management/authenticate.js';
import { federationLinkRoutes, suggestedCredentialName, validateFederationLinkFields } from '../../src/management/federation-links.js';
import {
  managementHarness,
  NOW,
  OTHER_SUB,
  PRINCIPALS,
  send,
  SUB,
  TENANT,
  withMemoryStore,
  type ManagementHarness,
  type RecordedAudit,
} from '../support/management.js';

const V = 'api-version=2023-01-31';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
const IDENTITY = `${RG}/providers/${UAMI}/web-app`;
const OTHER_IDENTITY = `${RG}/providers/${UAMI}/other-app`;
const LINK = `${IDENTITY}/outboundFederation/default?${V}`;
const UPSTREAM_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const UPSTREAM_CLIENT = '3f1c2a4e-8d6b-4b7a-9e2f-5c4d3b2a1f00';
const ISSUER = 'https://authority.test/openmsi/federation';
const JWKS = { keys: [{ kty: 'RSA', kid: 'k', n: 'AQAB', e: 'AQAB' }] };
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;

const body = (over: Record<string, unknown> = {}) => ({ properties: { tenantId: UPSTREAM_TENANT, clientId: UPSTREAM_CLIENT, ...over } });
const checked = (h: ManagementHarness) => h.checks.map((c) => [c.action, c.scope]);

describe('outbound federation links (in-memory store)', () => {
  let h: ManagementHarness;
  let store: Store;
  let audit: RecordedAudit[];
  let clock: { now: () => number; at: number };
  let principalId: string;
  let otherPrincipalId: string;
  /** The audiences each request's token was verified for. */
  let audiences: (readonly string[])[];

  beforeEach(async () => {
    h = managementHarness();
    ({ store, audit, clock } = await withMemoryStore(h));
    Object.assign(h.ctx as unknown as Record<string, unknown>, { outboundFederation: { issuer: () => ISSUER, jwks: () => JWKS } });
    principalId = (await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'web-app', clock })).principal.objectId;
    otherPrincipalId = (await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'other-app', clock })).principal.objectId;
    const verify = h.ctx.verifyAccessToken.bind(h.ctx);
    audiences = [];
    Object.assign(h.ctx as unknown as Record<string, unknown>, {
      verifyAccessToken: (token: string, accepted: readonly string[]) => {
        audiences.push(accepted);
        return verify(token, accepted);
      },
    });
    federationLinkRoutes(h.app, h.ctx);
    await h.app.ready();
  });
  afterEach(async () => {
    await h.app.close();
    await store.close();
  });

  it("PUT: userAssignedIdentities/write on the identity; the link is its own principal's, shown with the credential to create upstream; audited", async () => {
    const r = await send(h, 'user', 'PUT', `/SUBSCRIPTIONS/${SUB}/resourcegroups/rg/providers/${UAMI}/web-app/outboundFederation/default?${V}`, body());
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [[`${UAMI}/write`, IDENTITY]]);
    assert.ok(h.checks.every((c) => c.principalId === PRINCIPALS.user.objectId && c.tenantId === TENANT && !c.isDataAction));
    const stored = await store.federationLinks.get(principalId);
    assert.deepEqual(stored, {
      ownerId: principalId.toLowerCase(),
      tenantId: UPSTREAM_TENANT,
      clientId: UPSTREAM_CLIENT,
      authorityHost: 'https://login.microsoftonline.com',
      issuer: null,
      createdAt: NOW,
      updatedAt: NOW,
    });
    assert.equal(await store.federationLinks.get(otherPrincipalId), undefined, 'no other identity linked');
    assert.deepEqual(r.body, {
      id: `${IDENTITY}/outboundFederation/default`,
      name: 'default',
      type: `${UAMI}/outboundFederation`,
      properties: {
        tenantId: UPSTREAM_TENANT,
        clientId: UPSTREAM_CLIENT,
        authorityHost: 'https://login.microsoftonline.com',
        tokenEndpoint: `https://login.microsoftonline.com/${UPSTREAM_TENANT}/oauth2/v2.0/token`,
        issuer: ISSUER,
        subject: principalId,
        audience: 'api://AzureADTokenExchange',
      },
      federatedCredential: { name: 'openmsi-web-app', issuer: ISSUER, subject: principalId, audiences: ['api://AzureADTokenExchange'] },
      systemData: { createdAt: new Date(NOW).toISOString(), lastModifiedAt: new Date(NOW).toISOString() },
    });
    assert.deepEqual(audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'federationLink.created',
      target: `${IDENTITY}/outboundFederation/default`,
      outcome: 'success',
      detail: { tenantId: UPSTREAM_TENANT, clientId: UPSTREAM_CLIENT, authorityHost: 'https://login.microsoftonline.com', issuer: null },
    });
    // An update keeps createdAt, takes the per-link issuer and a normalised authority.
    clock.at = NOW + 1000;
    const u = await send(
      h,
      'user',
      'PUT',
      LINK,
      body({ issuer: 'https://per-link.example/iss', authorityHost: 'https://login.example.com/', clientId: UPSTREAM_CLIENT.toUpperCase() }),
    );
    assert.equal(u.status, 200, JSON.stringify(u.body));
    const updated = await store.federationLinks.get(principalId);
    assert.equal(updated?.createdAt, NOW);
    assert.equal(updated.updatedAt, NOW + 1000);
    assert.equal(updated.issuer, 'https://per-link.example/iss');
    assert.equal(updated.authorityHost, 'https://login.example.com');
    assert.equal(updated.clientId, UPSTREAM_CLIENT);
    assert.equal((u.body['properties'] as { issuer: string }).issuer, 'https://per-link.example/iss');
    assert.equal(audit.at(-1)?.action, 'federationLink.updated');
  });

  it("refused writes and reads: 403 with nothing written; another tenant's subscription 401; an unknown identity 404", async () => {
    h.decide = () => NOT_GRANTED;
    for (const method of ['PUT', 'DELETE', 'GET']) {
      const r = await send(h, 'user', method, LINK, method === 'PUT' ? body() : undefined);
      assert.equal(r.status, 403, method);
      assert.ok(r.body.error?.message.includes(`${UAMI}/${method === 'GET' ? 'read' : 'write'}`), r.body.error?.message);
    }
    assert.equal(await store.federationLinks.get(principalId), undefined);
    h.decide = () => ({ allowed: true, reason: 'granted' });
    const other = await send(
      h,
      'user',
      'PUT',
      `/subscriptions/${OTHER_SUB}/resourceGroups/rg/providers/${UAMI}/web-app/outboundFederation/default?${V}`,
      body(),
    );
    assert.equal(other.status, 401);
    const unknown = await send(h, 'user', 'PUT', `${RG}/providers/${UAMI}/nobody/outboundFederation/default?${V}`, body());
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.deepEqual(audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'federationLink.write',
      target: `${RG}/providers/${UAMI}/nobody/outboundFederation/default`,
      outcome: 'failure',
      detail: { code: 'ResourceNotFound' },
    });
    const gone = await send(h, 'user', 'DELETE', `${RG}/providers/${UAMI}/nobody/outboundFederation/default?${V}`);
    assert.equal(gone.status, 404);
    assert.equal(audit.at(-1)?.target, `${RG}/providers/${UAMI}/nobody/outboundFederation/default`);
    assert.equal(audit.at(-1)?.action, 'federationLink.deleted');
  });

  it('GET: read on the identity, 404 without a link; DELETE: write on it, removes only its own link, 204 when none', async () => {
    assert.equal((await send(h, 'user', 'GET', LINK)).status, 404);
    await send(h, 'user', 'PUT', LINK, body());
    await send(h, 'user', 'PUT', `${OTHER_IDENTITY}/outboundFederation/default?${V}`, body());
    h.checks.length = 0;
    const got = await send(h, 'user', 'GET', LINK);
    assert.equal(got.status, 200);
    assert.equal((got.body['properties'] as { subject: string }).subject, principalId);
    assert.deepEqual(checked(h), [[`${UAMI}/read`, IDENTITY]]);
    h.checks.length = 0;
    const del = await send(h, 'user', 'DELETE', LINK);
    assert.equal(del.status, 200);
    assert.deepEqual(checked(h), [[`${UAMI}/write`, IDENTITY]]);
    assert.equal(await store.federationLinks.get(principalId), undefined);
    assert.notEqual(await store.federationLinks.get(otherPrincipalId), undefined, "the other identity's link stays");
    assert.deepEqual(audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'federationLink.deleted',
      target: `${IDENTITY}/outboundFederation/default`,
      outcome: 'success',
      detail: { tenantId: UPSTREAM_TENANT, clientId: UPSTREAM_CLIENT },
    });
    assert.equal((await send(h, 'user', 'DELETE', LINK)).status, 204);
    assert.deepEqual(audit.at(-1)?.detail, { existed: false });
  });

  it("every route takes ARM's audiences only (never Graph's)", async () => {
    await send(h, 'user', 'GET', LINK);
    await send(h, 'user', 'PUT', LINK, body());
    await send(h, 'user', 'DELETE', LINK);
    await send(h, 'user', 'GET', '/openmsi/federationOutbound');
    assert.equal(audiences.length, 4);
    for (const accepted of audiences) assert.deepEqual(accepted, acceptedAudiences(h.ctx, 'arm'));
  });

  it('every bad field is 400 InvalidRequestContent naming it, and nothing is written', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ tenantId: undefined }, /'properties\.tenantId' must be the upstream tenant's id/],
      [{ tenantId: 42 }, /'properties\.tenantId' must be a string/],
      [{ tenantId: '' }, /'properties\.tenantId'/],
      [{ tenantId: '-contoso.com' }, /'properties\.tenantId'/],
      [{ tenantId: 'contoso.com/x' }, /'properties\.tenantId'/],
      [{ tenantId: `a${'b'.repeat(255)}` }, /'properties\.tenantId'/],
      [{ clientId: undefined }, /'properties\.clientId' must be the upstream app's/],
      [{ clientId: 'not-a-guid' }, /'properties\.clientId'/],
      [{ authorityHost: 'not a url' }, /'properties\.authorityHost' must be an https:\/\/ origin\.$/],
      [{ authorityHost: 'http://login.example' }, /'properties\.authorityHost' must be an https:\/\/ origin with no path/],
      [{ authorityHost: 'https://login.example/tenant' }, /with no path/],
      [{ authorityHost: 'https://login.example/?x=1' }, /with no path/],
      [{ authorityHost: 'https://login.example/#x' }, /with no path/],
      [{ authorityHost: 'https://user@login.example' }, /with no path/],
      [{ issuer: 'http://issuer.example' }, /'properties\.issuer' must be an https:\/\/ URL/],
      [{ issuer: '' }, /'properties\.issuer' must not be empty/],
    ];
    for (const [over, message] of cases) {
      const r = await send(h, 'user', 'PUT', LINK, body(over));
      assert.equal(r.status, 400, JSON.stringify(over));
      assert.equal(r.body.error?.code, 'InvalidRequestContent');
      assert.match(r.body.error.message, message, JSON.stringify(over));
    }
    for (const payload of [{}, { properties: null }, { properties: 'x' }]) {
      const r = await send(h, 'user', 'PUT', LINK, payload);
      assert.equal(r.status, 400);
      assert.match(r.body.error?.message ?? '', /needs 'properties' with 'tenantId' and 'clientId'/);
    }
    assert.equal(await store.federationLinks.get(principalId), undefined);
  });

  it('the fields: a GUID tenant lower-cased, a domain or adfs as given; the default authority; the credential name Entra accepts', () => {
    assert.deepEqual(validateFederationLinkFields({ tenantId: UPSTREAM_TENANT.toUpperCase(), clientId: UPSTREAM_CLIENT, issuer: null, authorityHost: null }), {
      tenantId: UPSTREAM_TENANT,
      clientId: UPSTREAM_CLIENT,
      authorityHost: 'https://login.microsoftonline.com',
      issuer: null,
    });
    assert.equal(validateFederationLinkFields({ tenantId: 'Contoso.onmicrosoft.com', clientId: UPSTREAM_CLIENT }).tenantId, 'Contoso.onmicrosoft.com');
    assert.equal(validateFederationLinkFields({ tenantId: 'adfs', clientId: UPSTREAM_CLIENT }).tenantId, 'adfs');
    assert.equal(validateFederationLinkFields({ tenantId: `a${'b'.repeat(254)}`, clientId: UPSTREAM_CLIENT }).tenantId.length, 255);
    assert.equal(
      validateFederationLinkFields({ tenantId: 't', clientId: UPSTREAM_CLIENT, authorityHost: 'https://login.example:8443' }).authorityHost,
      'https://login.example:8443',
    );
    assert.equal(suggestedCredentialName('a.b c'), 'openmsi-a-b-c');
    assert.equal(suggestedCredentialName('x'.repeat(200)).length, 120);
  });

  it("/openmsi/federationOutbound: federationIssuers/read at '/'; the installation's issuer or a valid one asked for", async () => {
    const r = await send(h, 'user', 'GET', '/openmsi/federationOutbound');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [['Microsoft.Authorization/federationIssuers/read', '/']]);
    assert.equal(r.body['issuer'], ISSUER);
    assert.ok(String(r.body['jwksUri']).startsWith(`${ISSUER}/`));
    assert.equal((r.body['openidConfiguration'] as { issuer: string }).issuer, ISSUER);
    assert.deepEqual(r.body['jwks'], JWKS);
    const asked = await send(h, 'user', 'GET', `/openmsi/federationOutbound?issuer=${encodeURIComponent('https://per-link.example/iss')}`);
    assert.equal(asked.body['issuer'], 'https://per-link.example/iss');
    const bad = await send(h, 'user', 'GET', `/openmsi/federationOutbound?issuer=${encodeURIComponent('http://x.example')}`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error?.message ?? '', /the 'issuer' query parameter must be an https:\/\/ URL/);
    h.decide = () => NOT_GRANTED;
    assert.equal((await send(h, 'user', 'GET', '/openmsi/federationOutbound')).status, 403);
  });
});
