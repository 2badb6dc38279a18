/**
 * `POST /openmsi/hosts/federation-assertion` (src/authority/hosts/federation-assertion.ts) without a server: the
 * host API plugin on a bare fastify over an in-memory SQLite store, a fake key ring (one RSA key) and real host
 * assertions. A host gets an outbound assertion only for an identity assigned to it now that has an upstream link
 * (404 `IdentityNotFound` for any other identity, 409 `NotFederated` without a link), signed for that identity as
 * subject with the link's issuer or the installation's; audited without the assertion. End to end:
 * test/clients/sdk/outbound-federation.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT, importJWK, jwtVerify, type JWK } from 'jose';
import type { AuthorityContext } from '../../../src/authority/context.js';
import { hostRoutes } from '../../../src/authority/hosts/index.js';
import { TOKEN_EXCHANGE_AUDIENCE } from '../../../src/authority/federation/outbound-issuer.js';
import { createJoinToken, enrolHost, HOST_RESOURCE_TYPE } from '../../../src/directory/hosts.js';
import { putResource, putUserAssignedIdentity } from '../../../src/directory/resources.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { HOST_API_BASE, HOST_API_PATHS } from '../../../src/shared/host-protocol.js';
import { createLogger } from '../../../src/shared/logger.js';
import type { FederationLink, Store } from '../../../src/store/types.js';
import type { AuditWriter } from '../../../src/store/audit-writer.js';
import { seededMemoryStore } from '../../support/memory-store.js';

const TENANT = 'abcdef00-1111-4111-8111-111111111111';
const SUB = 'abcdef00-3333-4333-8333-333333333333';
const ORIGIN = 'https://login.localhost:8443';
const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const INSTALLATION_ISSUER = 'https://issuer.example/openmsi';
const LINK_ISSUER = 'https://per-link.example/issuer';
const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });

interface Host {
  id: string;
  keyId: string;
  privateKey: KeyObject;
}

/** An audit event as the writer takes it. */
type Audited = Parameters<AuditWriter['record']>[0] & { detail: Record<string, unknown> };

describe('host API: outbound federation assertions (in-memory store)', () => {
  let store: Store;
  let app: FastifyInstance;
  const audit: Audited[] = [];
  const clock = new FakeClock(NOW);
  let hostA: Host;
  let hostB: Host;
  /** Identities: on A with a link (installation issuer), on A with a per-link issuer, on A without a link, on B with a link. */
  const ids = { linked: '', perLink: '', unlinked: '', otherHosts: '', systemA: '' };

  async function enrolled(name: string, userAssigned: string[]): Promise<Host> {
    await putResource(store, {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      type: HOST_RESOURCE_TYPE,
      name,
      properties: { vmId: `vm-${name}` },
      identity:
        userAssigned.length === 0
          ? { type: 'SystemAssigned' }
          : { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: Object.fromEntries(userAssigned.map((u) => [u, {}])) },
      clock,
    });
    const token = await createJoinToken(store, { subscriptionId: SUB, resourceGroup: 'rg', name, createdBy: 'admin', clock });
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = pair.publicKey.export({ format: 'jwk' });
    const { credential, host } = await enrolHost(store, { joinToken: token.token, publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, clock });
    return { id: host.id, keyId: credential.keyId, privateKey: pair.privateKey };
  }

  async function link(objectId: string, issuer: string | null): Promise<void> {
    const l: FederationLink = {
      ownerId: objectId.toLowerCase(),
      tenantId: 'upstream.example',
      clientId: 'abcdef00-5555-4555-8555-555555555555',
      authorityHost: 'https://login.microsoftonline.com',
      issuer,
      createdAt: NOW,
      updatedAt: NOW,
    };
    await store.federationLinks.put(l);
  }

  const assertion = (host: Host) =>
    new SignJWT({
      iss: host.id,
      sub: host.id,
      aud: `${ORIGIN}${HOST_API_BASE}`,
      iat: Math.floor(NOW / 1000),
      exp: Math.floor(NOW / 1000) + 120,
      jti: randomUUID(),
    })
      .setProtectedHeader({ alg: 'ES256', kid: host.keyId })
      .sign(host.privateKey);

  async function ask(host: Host | undefined, body: unknown): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
    const r = await app.inject({
      method: 'POST',
      url: HOST_API_PATHS.federationAssertion,
      headers: host === undefined ? {} : { authorization: `Bearer ${await assertion(host)}` },
      payload: body as Record<string, unknown>,
    });
    return { status: r.statusCode, body: JSON.parse(r.body) as Record<string, unknown>, headers: r.headers };
  }

  before(async () => {
    store = await seededMemoryStore([[TENANT, SUB]]);
    const uami = async (name: string) => (await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name, clock })).resource.id;
    const linked = await uami('linked');
    const perLink = await uami('perlink');
    const unlinked = await uami('unlinked');
    const other = await uami('other');
    hostA = await enrolled('host-a', [linked, perLink, unlinked]);
    hostB = await enrolled('host-b', [other]);
    const principalOf = async (id: string) => (await store.servicePrincipals.getByManagedIdentityResource(id, 'UserAssigned'))?.objectId ?? '';
    ids.linked = await principalOf(linked);
    ids.perLink = await principalOf(perLink);
    ids.unlinked = await principalOf(unlinked);
    ids.otherHosts = await principalOf(other);
    ids.systemA = (await store.resources.get(hostA.id))?.systemPrincipalId ?? '';
    await link(ids.linked, null);
    await link(ids.perLink, LINK_ISSUER);
    await link(ids.otherHosts, null);
    await link(ids.systemA, null);
    const ctx = {
      clock,
      store,
      logger: createLogger({ level: 'silent' }),
      urls: { advertisedOrigins: () => [{ origin: ORIGIN }], forHost: () => ({ origin: ORIGIN }) },
      keyRing: { current: () => ({ kid: 'signing-1', privateKey: signing.privateKey }) },
      outboundIssuer: () => INSTALLATION_ISSUER,
      audit: {
        record: (e: Audited) => {
          audit.push(e);
          return Promise.resolve();
        },
      },
    } as unknown as AuthorityContext;
    app = Fastify();
    await app.register(hostRoutes, { ctx });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await store.close();
  });

  async function verified(assertionText: unknown, issuer: string) {
    const key = await importJWK(signing.publicKey.export({ format: 'jwk' }) as JWK, 'RS256');
    const { payload, protectedHeader } = await jwtVerify(String(assertionText), key, { issuer, audience: TOKEN_EXCHANGE_AUDIENCE, currentDate: new Date(NOW) });
    assert.equal(protectedHeader.kid, 'signing-1');
    return payload;
  }

  it("an identity on the calling host with a link: an assertion for it, the installation's issuer, not cached, audited without the assertion", async () => {
    audit.length = 0;
    const r = await ask(hostA, { objectId: ids.linked.toUpperCase() });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.headers['cache-control'], 'no-store');
    assert.equal(r.body['issuer'], INSTALLATION_ISSUER);
    const payload = await verified(r.body['assertion'], INSTALLATION_ISSUER);
    assert.equal(payload.sub, ids.linked);
    assert.equal(r.body['issuedAt'], Math.floor(NOW / 1000));
    assert.equal(r.body['expiresOn'], payload.exp);
    assert.deepEqual(audit, [
      {
        tenantId: TENANT,
        actor: hostA.id,
        action: 'federation.assertion.issued',
        target: ids.linked,
        outcome: 'success',
        detail: {
          issuer: INSTALLATION_ISSUER,
          subject: ids.linked,
          upstreamTenantId: 'upstream.example',
          upstreamClientId: 'abcdef00-5555-4555-8555-555555555555',
          expiresOn: payload.exp,
        },
      },
    ]);
    assert.ok(!JSON.stringify(audit).includes(String(r.body['assertion']).split('.')[2] ?? '-'), 'never the assertion');
  });

  it("a link's own issuer wins; the system-assigned identity too", async () => {
    const r = await ask(hostA, { objectId: ids.perLink });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body['issuer'], LINK_ISSUER);
    assert.equal((await verified(r.body['assertion'], LINK_ISSUER)).sub, ids.perLink);
    const s = await ask(hostA, { objectId: ids.systemA });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal((await verified(s.body['assertion'], INSTALLATION_ISSUER)).sub, ids.systemA);
  });

  it("another host's identity is 404 IdentityNotFound, even linked; an unlinked one of its own 409 NotFederated; each audited against the host", async () => {
    for (const [objectId, status, code] of [
      [ids.otherHosts, 404, 'IdentityNotFound'],
      ['abcdef00-9999-4999-8999-999999999999', 404, 'IdentityNotFound'],
      [ids.unlinked, 409, 'NotFederated'],
    ] as const) {
      audit.length = 0;
      const r = await ask(hostA, { objectId });
      assert.equal(r.status, status, objectId);
      assert.equal((r.body['error'] as { code: string }).code, code);
      assert.equal(r.body['assertion'], undefined);
      assert.deepEqual(
        audit.map((e) => [e.action, e.actor, e.tenantId, e.outcome, e.detail['code']]),
        [['host.request.refused', hostA.id, TENANT, 'failure', code]],
      );
    }
    const b = await ask(hostB, { objectId: ids.otherHosts });
    assert.equal(b.status, 200, 'its own host gets it');
  });

  it('an objectId that is not a GUID, or no body object, is 400 InvalidRequest; no host assertion is 401', async () => {
    // An array of one GUID reads as that GUID to a regex: refused as not a string.
    for (const body of [{}, { objectId: 42 }, { objectId: [ids.linked] }, { objectId: 'not-a-guid' }, { objectId: `${ids.linked}x` }]) {
      const r = await ask(hostA, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body['error'] as { code: string }).code, 'InvalidRequest');
      assert.match((r.body['error'] as { message: string }).message, /'objectId' must be the identity's object id \(a GUID\)/);
    }
    const none = await ask(undefined, { objectId: ids.linked });
    assert.equal(none.status, 401);
    assert.equal((none.body['error'] as { code: string }).code, 'HostNotRecognised');
  });
});
