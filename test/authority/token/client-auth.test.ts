/**
 * Client authentication at the token endpoint (src/authority/token/client-auth.ts), store-less: a fake context
 * (the principal and credential lookups, a recording throttle, the real master key and assertion check, fake
 * federation lookups). Pinned: which method a request may use, who the client is, which credential matches, and
 * whose failure is counted (an unknown client against its source only; a wrong credential against both; a lockout
 * or an unreachable issuer against neither).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AuthorityContext } from '../../../src/authority/context.js';
import { TokenErrors } from '../../../src/authority/errors.js';
import { IssuerUnavailableError } from '../../../src/authority/federation/issuer-keys.js';
import { JWT_BEARER_ASSERTION_TYPE } from '../../../src/authority/token/assertion.js';
import {
  assertionAudiences,
  authenticateClient,
  CLIENT_ASSERTION_ALGORITHMS,
  requireOneAuthMethod,
  type ClientAuthRequest,
} from '../../../src/authority/token/client-auth.js';
import { createSelfSignedSigningCertificate, generateRsaSigningKeyPair, thumbprints } from '../../../src/pki/ca.js';
import { MasterKey } from '../../../src/pki/master-key.js';
import { DAY, FakeClock } from '../../../src/shared/clock.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';
import type { ClientCredential, FederatedCredential, ServicePrincipal, Tenant } from '../../../src/store/types.js';
import { memoryReplay } from '../../support/memory-replay.js';
import { withClientDirectory } from '../../support/client-directory.js';

const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const NOW_S = Math.floor(NOW / 1000);
const tenant: Tenant = { id: 'aaaaaaaa-0000-4000-8000-000000000001', displayName: 't', defaultDomain: 'contoso.localhost', createdAt: 0 };
const APP = 'bbbbbbbb-0000-4000-8000-00000000000a';
const UAMI = 'cccccccc-0000-4000-8000-00000000000c';
const SYSTEM = 'dddddddd-0000-4000-8000-00000000000d';
const SECRET = 'correct~horse~battery~staple~0123';
const masterKey = MasterKey.fromBytes(Buffer.alloc(32, 3));
const TOKEN_ENDPOINT = `https://login.localhost/${tenant.id}/oauth2/v2.0/token`;
const FED_ISSUER = 'https://token.actions.githubusercontent.com';
const FED_AUDIENCE = 'api://AzureADTokenExchange';
const fedKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });

function principal(appId: string, kind: ServicePrincipal['kind'], overrides: Partial<ServicePrincipal> = {}): ServicePrincipal {
  return {
    objectId: `obj-${appId}`,
    tenantId: tenant.id,
    appId,
    displayName: appId,
    kind,
    managedIdentity: null,
    isDirectoryAdmin: false,
    createdAt: 0,
    ...overrides,
  };
}

const PRINCIPALS: Record<string, ServicePrincipal> = {
  [APP]: principal(APP, 'Application'),
  [UAMI]: principal(UAMI, 'ManagedIdentity', { managedIdentity: { type: 'UserAssigned', resourceId: '/uami' } }),
  [SYSTEM]: principal(SYSTEM, 'ManagedIdentity', { managedIdentity: { type: 'SystemAssigned', resourceId: '/vm' } }),
  'other-tenant-app': principal('other-tenant-app', 'Application', { tenantId: 'another-tenant' }),
};

function password(keyId: string, secret: string, overrides: Partial<ClientCredential> = {}): ClientCredential {
  return {
    keyId,
    appId: APP,
    type: 'Password',
    displayName: keyId,
    hint: secret.slice(0, 3),
    secretHash: masterKey.hashSecret(secret),
    thumbprintSha1: null,
    thumbprintSha256: null,
    certificate: null,
    startAt: NOW - DAY,
    endAt: NOW + DAY,
    createdAt: 0,
    ...overrides,
  };
}

interface Cert {
  keyPair: Awaited<ReturnType<typeof generateRsaSigningKeyPair>>;
  der: Buffer;
  credential: ClientCredential;
  privateKey: KeyObject;
}

/** Three RSA key pairs, handed out in turn: consecutive certificates never share a key (RSA generation is slow). */
const KEY_POOL = Promise.all([generateRsaSigningKeyPair(), generateRsaSigningKeyPair(), generateRsaSigningKeyPair()]);
let nextKey = 0;

async function certificate(keyId: string, overrides: Partial<ClientCredential> = {}, validityDays = 30): Promise<Cert> {
  const keyPair = (await KEY_POOL)[nextKey++ % 3]!;
  const der = await createSelfSignedSigningCertificate({ subject: 'client cert', keyPair, clock: new FakeClock(NOW), validityDays });
  const { sha1, sha256 } = thumbprints(der);
  return {
    keyPair,
    der,
    privateKey: KeyObject.from(keyPair.privateKey),
    credential: {
      keyId,
      appId: APP,
      type: 'AsymmetricX509Cert',
      displayName: keyId,
      hint: null,
      secretHash: null,
      thumbprintSha1: sha1.toString('hex'),
      thumbprintSha256: sha256.toString('hex'),
      certificate: der.toString('base64'),
      startAt: NOW - DAY,
      endAt: NOW + DAY,
      createdAt: 0,
      ...overrides,
    },
  };
}

type ThrottleCall = [string, string];

function context(
  options: { credentials?: ClientCredential[]; locked?: (key: string) => boolean; federated?: FederatedCredential[]; getKey?: () => Promise<unknown> } = {},
) {
  const calls: ThrottleCall[] = [];
  const key = (s: { source: string; client?: string }) => (s.client === undefined ? `source:${s.source}` : `${s.client}@${s.source}`);
  const ctx = {
    clock: new FakeClock(NOW),
    masterKey,
    logger: { warn: () => undefined },
    urls: { assertionAudiences: (names: Iterable<string>) => [...new Set(names)].map((n) => `https://login.localhost/${n}/oauth2/v2.0/token`) },
    authThrottle: {
      refresh: (s: { source: string; client?: string }) => {
        calls.push(['refresh', key(s)]);
        return Promise.resolve();
      },
      check: (s: { source: string; client?: string }) => {
        calls.push(['check', key(s)]);
        if (options.locked?.(key(s)) === true) throw TokenErrors.throttled(60);
      },
      failed: (s: { source: string; client?: string }) => {
        calls.push(['failed', key(s)]);
        return Promise.resolve();
      },
    },
    store: {
      servicePrincipals: { getByAppId: (appId: string) => Promise.resolve(PRINCIPALS[appId]) },
      credentials: { listByApp: (appId: string) => Promise.resolve(appId === APP ? (options.credentials ?? []) : []) },
      replay: memoryReplay(),
      federatedCredentials: { listByIssuer: () => Promise.resolve(options.federated ?? []) },
      federationIssuers: { get: () => Promise.resolve(undefined) },
    },
    federation: { getKey: options.getKey ?? (() => Promise.resolve(fedKeys.publicKey)) },
  } as unknown as AuthorityContext;
  withClientDirectory(ctx);
  return { ctx, calls };
}

function request(params: Record<string, string>, basic?: { clientId: string; clientSecret: string }): ClientAuthRequest {
  return { tenant, tenantSegment: tenant.id, params, basic, source: '10.0.0.7' };
}

/** 'ok:{method}:{credentialId}', or the refusal as `{status} {aadsts}`. */
async function outcome(ctx: AuthorityContext, req: ClientAuthRequest): Promise<string> {
  try {
    const c = await authenticateClient(ctx, req);
    return `ok:${c.method}:${c.credentialId}:${c.principal.appId}`;
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    return `${String(err.status)} ${String(err.aadsts)}`;
  }
}

async function clientAssertion(cert: Cert, header: Record<string, unknown>, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ iss: APP, sub: APP, aud: TOKEN_ENDPOINT, exp: NOW_S + 600, jti: `j-${String(Math.random())}`, ...claims })
    .setProtectedHeader({ alg: 'RS256', ...header })
    .sign(cert.privateKey);
}

const assertionParams = (assertion: string, clientId: string | null = APP) => ({
  ...(clientId === null ? {} : { client_id: clientId }),
  client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
  client_assertion: assertion,
});

void describe('client authentication (store-less)', () => {
  void it('requireOneAuthMethod: two methods in one request are refused whatever their values', () => {
    const two: { params: Record<string, string>; basic: unknown }[] = [
      { params: { client_secret: 'a' }, basic: { clientId: 'x', clientSecret: 'y' } },
      { params: { client_assertion: 'a' }, basic: { clientId: 'x', clientSecret: 'y' } },
      { params: { client_secret: '', client_assertion: '' }, basic: undefined },
    ];
    for (const r of two)
      assert.throws(
        () => requireOneAuthMethod(r),
        (e: unknown) => e instanceof OAuthError && e.aadsts === 7000216,
        JSON.stringify(r),
      );
    const one: { params: Record<string, string>; basic: unknown }[] = [
      { params: {}, basic: undefined },
      { params: { client_secret: 'a' }, basic: undefined },
      { params: { client_assertion: 'a' }, basic: undefined },
      { params: {}, basic: {} },
    ];
    for (const r of one) {
      assert.doesNotThrow(() => requireOneAuthMethod(r));
    }
  });

  void it('a right secret, in the form or HTTP Basic, authenticates the application with that credential', async () => {
    const credentials = [password('k-other', 'not-it'), password('k-right', SECRET)];
    const { ctx, calls } = context({ credentials });
    assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: SECRET })), `ok:secret:k-right:${APP}`);
    assert.equal(await outcome(ctx, request({}, { clientId: APP, clientSecret: SECRET })), `ok:secret:k-right:${APP}`);
    assert.equal(
      await outcome(ctx, request({ client_id: APP }, { clientId: APP, clientSecret: SECRET })),
      `ok:secret:k-right:${APP}`,
      'the same client_id in the form',
    );
    // The source is checked before the lookup, the client before the secret; nothing counted as failed.
    assert.deepEqual(calls.slice(0, 4), [
      ['refresh', 'source:10.0.0.7'],
      ['check', 'source:10.0.0.7'],
      ['refresh', `app:${APP}@10.0.0.7`],
      ['check', `app:${APP}@10.0.0.7`],
    ]);
    assert.equal(calls.filter(([op]) => op === 'failed').length, 0);
  });

  void it('a client_id in the form that differs from the Basic one is refused', async () => {
    const { ctx } = context({ credentials: [password('k', SECRET)] });
    assert.equal(await outcome(ctx, request({ client_id: 'someone-else' }, { clientId: APP, clientSecret: SECRET })), '401 700021');
  });

  void it('no credential at all (or empty ones) is refused before any lookup', async () => {
    const { ctx, calls } = context();
    const empty: Record<string, string>[] = [{ client_id: APP }, { client_id: APP, client_secret: '' }, { client_id: APP, client_assertion: '' }];
    for (const params of empty) {
      assert.equal(await outcome(ctx, request(params)), '401 7000218', JSON.stringify(params));
    }
    assert.equal(await outcome(ctx, request({}, { clientId: APP, clientSecret: '' })), '401 7000218');
    assert.match(await outcome(ctx, request({ client_secret: SECRET })), /^400 900144/, 'no client_id');
    assert.deepEqual(calls, []);
  });

  void it('a locked source is refused before the client is looked up', async () => {
    const { ctx, calls } = context({ credentials: [password('k', SECRET)], locked: (k) => k === 'source:10.0.0.7' });
    assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: SECRET })), '429 50053');
    assert.deepEqual(calls, [
      ['refresh', 'source:10.0.0.7'],
      ['check', 'source:10.0.0.7'],
    ]);
  });

  void it('an unknown client, one of another tenant, or a managed identity with a secret is "not found" and counts against the source only', async () => {
    for (const clientId of ['no-such-app', 'other-tenant-app', SYSTEM, UAMI]) {
      const { ctx, calls } = context();
      assert.equal(await outcome(ctx, request({ client_id: clientId, client_secret: SECRET })), '400 700016', clientId);
      assert.deepEqual(
        calls.filter(([op]) => op === 'failed'),
        [['failed', 'source:10.0.0.7']],
        clientId,
      );
    }
  });

  void it('a wrong secret counts against the client and its source; a locked client is refused without counting', async () => {
    const { ctx, calls } = context({ credentials: [password('k', SECRET)] });
    assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: 'wrong' })), '401 7000215');
    assert.deepEqual(
      calls.filter(([op]) => op === 'failed'),
      [['failed', `app:${APP}@10.0.0.7`]],
    );
    const locked = context({ credentials: [password('k', SECRET)], locked: (k) => k.startsWith('app:') });
    assert.equal(await outcome(locked.ctx, request({ client_id: APP, client_secret: SECRET })), '429 50053', 'even the right secret');
    assert.equal(locked.calls.filter(([op]) => op === 'failed').length, 0, 'a lockout is not itself a failure');
  });

  void it('a secret is valid from startAt until endAt (exclusive); outside, a right secret is "expired"', async () => {
    const cases: [Partial<ClientCredential>, string][] = [
      [{ startAt: NOW, endAt: NOW + 1 }, `ok:secret:k:${APP}`],
      [{ startAt: NOW + 1 }, '401 7000222'],
      [{ endAt: NOW }, '401 7000222'],
      [{ endAt: NOW - 1 }, '401 7000222'],
    ];
    for (const [window, expected] of cases) {
      const { ctx } = context({ credentials: [password('k', SECRET, window)] });
      assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: SECRET })), expected, JSON.stringify(window));
    }
    // An expired match does not hide a valid one after it; a wrong secret with only expired ones is "invalid".
    const { ctx } = context({ credentials: [password('old', SECRET, { endAt: NOW - 1 }), password('new', SECRET)] });
    assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: SECRET })), `ok:secret:new:${APP}`);
    const wrong = context({ credentials: [password('old', SECRET, { endAt: NOW - 1 })] });
    assert.equal(await outcome(wrong.ctx, request({ client_id: APP, client_secret: 'wrong' })), '401 7000215');
  });

  void it('only Password credentials with a hash are secrets', async () => {
    const cert = await certificate('c');
    const { ctx } = context({
      credentials: [
        { ...password('nohash', SECRET), secretHash: null },
        { ...cert.credential, secretHash: masterKey.hashSecret(SECRET) },
      ],
    });
    assert.equal(await outcome(ctx, request({ client_id: APP, client_secret: SECRET })), '401 7000215');
  });

  void it('a certificate assertion is matched by x5t#S256, x5t or a kid holding either thumbprint, and names that credential', async () => {
    const decoy = await certificate('decoy');
    const cert = await certificate('cert');
    const { ctx } = context({ credentials: [password('k', SECRET), decoy.credential, cert.credential] });
    const { sha1, sha256 } = thumbprints(cert.der);
    for (const header of [
      { 'x5t#S256': sha256.toString('base64url') },
      { x5t: sha1.toString('base64url') },
      { kid: sha1.toString('hex').toUpperCase() },
      { kid: sha256.toString('hex') },
    ]) {
      assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(cert, header)))), `ok:certificate:cert:${APP}`, JSON.stringify(header));
    }
    assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(cert, {}), null))), '400 900144', 'client_id is still required');
  });

  void it('refuses an assertion naming no registered certificate, or signed by another one than it names', async () => {
    const cert = await certificate('cert');
    const other = await certificate('other');
    const { ctx, calls } = context({ credentials: [cert.credential] });
    const { sha1 } = thumbprints(other.der);
    assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(other, { x5t: sha1.toString('base64url') })))), '401 700027');
    assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(other, {})))), '401 700027');
    assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(other, { x5t: 7 })))), '401 700027');
    const own = thumbprints(cert.der).sha1.toString('base64url');
    assert.equal(await outcome(ctx, request(assertionParams(await clientAssertion(other, { x5t: own })))), '401 700027', 'signed by another key');
    assert.equal(calls.filter(([op, k]) => op === 'failed' && k.startsWith('app:')).length, 4, 'each counted against the client');
  });

  void it("a certificate is usable only within both its own validity and the credential's", async () => {
    const cases: [Partial<ClientCredential>, number, string][] = [
      [{}, 30, 'ok'],
      [{ startAt: NOW + 1 }, 30, '401 700027'],
      [{ endAt: NOW }, 30, '401 700027'],
      [{ startAt: NOW, endAt: NOW + 1 }, 30, 'ok'],
    ];
    for (const [window, days, expected] of cases) {
      const cert = await certificate('cert', window, days);
      const { ctx } = context({ credentials: [cert.credential] });
      const result = await outcome(ctx, request(assertionParams(await clientAssertion(cert, { x5t: thumbprints(cert.der).sha1.toString('base64url') }))));
      assert.equal(result.startsWith('ok') ? 'ok' : result, expected, JSON.stringify(window));
    }
    // The certificate's own notAfter, before the credential's endAt.
    const cert = await certificate('cert', { endAt: NOW + 400 * DAY }, 1);
    const { ctx } = context({ credentials: [cert.credential] });
    (ctx.clock as FakeClock).advance(2 * DAY);
    const assertion = await new SignJWT({ iss: APP, sub: APP, aud: TOKEN_ENDPOINT, exp: NOW_S + 2 * 86400 + 600, jti: 'late' })
      .setProtectedHeader({ alg: 'RS256', x5t: thumbprints(cert.der).sha1.toString('base64url') })
      .sign(cert.privateKey);
    assert.equal(await outcome(ctx, request(assertionParams(assertion))), '401 700027');
  });

  void it('assertions are RS256 or PS256 and addressed to this tenant by id, domain or the segment used', async () => {
    assert.deepEqual(CLIENT_ASSERTION_ALGORITHMS, ['RS256', 'PS256']);
    const { ctx } = context();
    assert.deepEqual(assertionAudiences(ctx, { tenant, tenantSegment: 'Contoso.localhost' }), [
      `https://login.localhost/${tenant.id}/oauth2/v2.0/token`,
      'https://login.localhost/contoso.localhost/oauth2/v2.0/token',
      'https://login.localhost/Contoso.localhost/oauth2/v2.0/token',
    ]);
    const cert = await certificate('cert');
    const c = context({ credentials: [cert.credential] });
    const x5t = thumbprints(cert.der).sha1.toString('base64url');
    const byDomain = await clientAssertion(cert, { x5t }, { aud: 'https://login.localhost/contoso.localhost/oauth2/v2.0/token' });
    assert.equal(await outcome(c.ctx, request(assertionParams(byDomain))), `ok:certificate:cert:${APP}`);
    const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const es256 = await new SignJWT({ iss: APP, sub: APP, aud: TOKEN_ENDPOINT, exp: NOW_S + 600, jti: 'e' })
      .setProtectedHeader({ alg: 'ES256', x5t })
      .sign(es.privateKey);
    assert.equal(await outcome(c.ctx, request(assertionParams(es256))), '401 5002738');
  });

  void it('a federated assertion authenticates an application or a user-assigned identity by its federated credential, never a system-assigned one', async () => {
    const credential: FederatedCredential = {
      id: 'fed-1',
      ownerId: 'x',
      name: 'gha',
      issuer: FED_ISSUER,
      subject: 'repo:contoso/app:ref:refs/heads/main',
      claimsMatchingExpression: null,
      audiences: [FED_AUDIENCE],
      description: null,
      createdAt: 0,
      updatedAt: 0,
    };
    const external = await new SignJWT({ iss: FED_ISSUER, sub: credential.subject!, aud: FED_AUDIENCE, iat: NOW_S - 10, exp: NOW_S + 600 })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .sign(fedKeys.privateKey);
    for (const clientId of [UAMI, APP]) {
      const { ctx } = context({ federated: [credential] });
      const c = await authenticateClient(ctx, request(assertionParams(external, clientId)));
      assert.deepEqual(
        { method: c.method, credentialId: c.credentialId, federated: c.federated, appId: c.principal.appId },
        { method: 'federated', credentialId: 'fed-1', federated: { issuer: FED_ISSUER, subject: credential.subject, credentialName: 'gha' }, appId: clientId },
      );
    }
    const system = context({ federated: [credential] });
    assert.equal(await outcome(system.ctx, request(assertionParams(external, SYSTEM))), '400 700016');
  });

  void it('a refused federated assertion counts against the client, unless its issuer could not be reached (AADSTS50166)', async () => {
    const external = await new SignJWT({ iss: FED_ISSUER, sub: 's', aud: FED_AUDIENCE, iat: NOW_S - 10, exp: NOW_S + 600 })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .sign(fedKeys.privateKey);
    const unmatched = context({ federated: [] });
    assert.match(await outcome(unmatched.ctx, request(assertionParams(external, UAMI))), /^40\d /);
    assert.deepEqual(
      unmatched.calls.filter(([op]) => op === 'failed'),
      [['failed', `app:${UAMI.toLowerCase()}@10.0.0.7`]],
    );
    const candidate = {
      id: 'f',
      ownerId: 'x',
      name: 'n',
      issuer: FED_ISSUER,
      subject: 's',
      claimsMatchingExpression: null,
      audiences: [FED_AUDIENCE],
      description: null,
      createdAt: 0,
      updatedAt: 0,
    };
    const down = context({ federated: [candidate], getKey: () => Promise.reject(new IssuerUnavailableError('down')) });
    assert.equal(await outcome(down.ctx, request(assertionParams(external, UAMI))), '400 50166');
    assert.equal(down.calls.filter(([op]) => op === 'failed').length, 0);
  });

  void it('the replay record of a client assertion is per application', async () => {
    const cert = await certificate('cert');
    const { ctx } = context({ credentials: [cert.credential] });
    const assertion = await clientAssertion(cert, { x5t: thumbprints(cert.der).sha1.toString('base64url') }, { jti: 'once' });
    assert.equal(await outcome(ctx, request(assertionParams(assertion))), `ok:certificate:cert:${APP}`);
    assert.equal(await outcome(ctx, request(assertionParams(assertion))), '401 700229');
  });
});
