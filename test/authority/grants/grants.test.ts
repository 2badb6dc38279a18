/**
 * The agent's grant (src/authority/grants/managed-identity.ts) and the client credentials grant
 * (src/authority/grants/client-credentials.ts), store-less: a fake context (host credentials, hosts, principals,
 * a recording throttle and token issuer), real ES256 host keys and the real assertion check. Pinned: which
 * identity a host may get a token for (its system-assigned one, or an attached user-assigned one, by any selector;
 * never another host's, never another tenant's), what the token says, and whose failure is counted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import type { AuthorityContext } from '../../../src/authority/context.js';
import { TokenErrors } from '../../../src/authority/errors.js';
import { clientCredentialsGrant } from '../../../src/authority/grants/client-credentials.js';
import type { TokenRequest } from '../../../src/authority/grants/grant.js';
import { HOST_ASSERTION_ALGORITHMS, MANAGED_IDENTITY_GRANT_TYPE, managedIdentityGrant } from '../../../src/authority/grants/managed-identity.js';
import { JWT_BEARER_ASSERTION_TYPE } from '../../../src/authority/token/assertion.js';
import { MasterKey } from '../../../src/pki/master-key.js';
import { DAY, FakeClock } from '../../../src/shared/clock.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';
import type { ClientCredential, HostCredential, Resource, ServicePrincipal, Tenant } from '../../../src/store/types.js';
import { memoryReplay } from '../../support/memory-replay.js';
import { withClientDirectory } from '../../support/client-directory.js';

const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const NOW_S = Math.floor(NOW / 1000);
const tenant: Tenant = { id: 'aaaaaaaa-0000-4000-8000-000000000001', displayName: 't', defaultDomain: 'contoso.localhost', createdAt: 0 };
const SUB = '/subscriptions/0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d/resourceGroups/rg/providers';
const HOST_ID = `${SUB}/Microsoft.HybridCompute/machines/m1`;
const OTHER_HOST_ID = `${SUB}/Microsoft.HybridCompute/machines/m2`;
const UAMI_ID = `${SUB}/Microsoft.ManagedIdentity/userAssignedIdentities/app-id`;
const DETACHED_ID = `${SUB}/Microsoft.ManagedIdentity/userAssignedIdentities/not-attached`;
const FOREIGN_ID = `${SUB}/Microsoft.ManagedIdentity/userAssignedIdentities/other-tenant`;
const TOKEN_ENDPOINT = `https://login.localhost/${tenant.id}/oauth2/token`;
const hostKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const strangerKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const fedKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const FED_ISSUER = 'https://token.actions.githubusercontent.com';
const FEDERATED = {
  id: 'fed-1',
  ownerId: 'uami-oid',
  name: 'gha',
  issuer: FED_ISSUER,
  subject: 'repo:contoso/app:ref:refs/heads/main',
  claimsMatchingExpression: null,
  audiences: ['api://AzureADTokenExchange'],
  description: null,
  createdAt: 0,
  updatedAt: 0,
};

function mi(objectId: string, appId: string, type: 'SystemAssigned' | 'UserAssigned', resourceId: string, tenantId = tenant.id): ServicePrincipal {
  return {
    objectId,
    tenantId,
    appId,
    displayName: objectId,
    kind: 'ManagedIdentity',
    managedIdentity: { type, resourceId },
    isDirectoryAdmin: false,
    createdAt: 0,
  };
}

const PRINCIPALS: ServicePrincipal[] = [
  mi('sys-oid', 'sys-app', 'SystemAssigned', HOST_ID),
  mi('other-sys-oid', 'other-sys-app', 'SystemAssigned', OTHER_HOST_ID),
  mi('uami-oid', 'uami-app', 'UserAssigned', UAMI_ID),
  mi('detached-oid', 'detached-app', 'UserAssigned', DETACHED_ID),
  mi('foreign-oid', 'foreign-app', 'UserAssigned', FOREIGN_ID, 'another-tenant'),
  {
    objectId: 'app-oid',
    tenantId: tenant.id,
    appId: 'app-app',
    displayName: 'app',
    kind: 'Application',
    managedIdentity: null,
    isDirectoryAdmin: false,
    createdAt: 0,
  },
];

function host(overrides: Partial<Resource> = {}): Resource {
  return { id: HOST_ID, systemPrincipalId: 'sys-oid', userAssignedIdentityIds: [UAMI_ID.toUpperCase(), FOREIGN_ID], ...overrides } as unknown as Resource;
}

function hostCredential(overrides: Partial<HostCredential> = {}): HostCredential {
  return {
    keyId: 'kid-1',
    hostResourceId: HOST_ID,
    publicJwk: hostKeys.publicKey.export({ format: 'jwk' }),
    createdAt: NOW - 1000,
    expiresAt: NOW + DAY,
    revokedAt: null,
    ...overrides,
  };
}

interface Options {
  credentials?: HostCredential[];
  host?: Resource | undefined;
  locked?: (key: string) => boolean;
  appCredentials?: ClientCredential[];
}

function context(options: Options = {}) {
  const calls: string[] = [];
  const issued: Record<string, unknown>[] = [];
  const credentials = options.credentials ?? [hostCredential()];
  const theHost = 'host' in options ? options.host : host();
  const key = (s: { source: string; client?: string }) => (s.client === undefined ? `source:${s.source}` : `${s.client}@${s.source}`);
  const ctx = {
    clock: new FakeClock(NOW),
    masterKey: MasterKey.fromBytes(Buffer.alloc(32, 5)),
    urls: { assertionAudiences: (names: Iterable<string>) => [...new Set(names)].map((n) => `https://login.localhost/${n}/oauth2/token`) },
    authThrottle: {
      refresh: (s: { source: string; client?: string }) => {
        calls.push(`refresh ${key(s)}`);
        return Promise.resolve();
      },
      check: (s: { source: string; client?: string }) => {
        calls.push(`check ${key(s)}`);
        if (options.locked?.(key(s)) === true) throw TokenErrors.throttled(30);
      },
      failed: (s: { source: string; client?: string }) => {
        calls.push(`failed ${key(s)}`);
        return Promise.resolve();
      },
    },
    tokens: {
      issue: (r: Record<string, unknown>) => {
        issued.push(r);
        return { accessToken: 'token', expiresIn: 3600 };
      },
    },
    store: {
      hostCredentials: { get: (kid: string) => Promise.resolve(credentials.find((c) => c.keyId === kid)) },
      resources: { get: (id: string) => Promise.resolve(theHost !== undefined && id.toLowerCase() === theHost.id.toLowerCase() ? theHost : undefined) },
      servicePrincipals: {
        getByObjectId: (id: string) => Promise.resolve(PRINCIPALS.find((p) => p.objectId === id)),
        getByAppId: (id: string) => Promise.resolve(PRINCIPALS.find((p) => p.appId === id)),
        getByManagedIdentityResource: (id: string, type: string) =>
          Promise.resolve(PRINCIPALS.find((p) => p.managedIdentity?.type === type && p.managedIdentity.resourceId.toLowerCase() === id.toLowerCase())),
      },
      credentials: { listByApp: () => Promise.resolve(options.appCredentials ?? []) },
      federatedCredentials: { listByIssuer: () => Promise.resolve([FEDERATED]) },
      federationIssuers: { get: () => Promise.resolve(undefined) },
      replay: memoryReplay(),
    },
    federation: { getKey: () => Promise.resolve(fedKeys.publicKey) },
  } as unknown as AuthorityContext;
  withClientDirectory(ctx);
  return { ctx, calls, issued };
}

async function hostAssertion(claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key = hostKeys.privateKey): Promise<string> {
  return new SignJWT({ iss: HOST_ID, sub: HOST_ID, aud: TOKEN_ENDPOINT, exp: NOW_S + 120, jti: `j-${String(Math.random())}`, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'kid-1', ...header })
    .sign(key);
}

async function tokenRequest(given: Record<string, string | undefined> = {}, assertion?: string): Promise<TokenRequest> {
  const params = Object.fromEntries(Object.entries(given).filter((e): e is [string, string] => e[1] !== undefined));
  return {
    tenant,
    tenantSegment: tenant.id,
    endpoint: 'v1',
    params: {
      grant_type: MANAGED_IDENTITY_GRANT_TYPE,
      client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
      client_assertion: assertion ?? (await hostAssertion()),
      resource: 'https://vault.azure.net',
      ...params,
    },
    basic: undefined,
    source: '10.0.0.9',
  };
}

/** 'ok:{object id}', or the refusal as `{status} {aadsts}`. */
async function outcome(ctx: AuthorityContext, request: TokenRequest): Promise<string> {
  try {
    const r = await managedIdentityGrant.handle(ctx, request);
    return `ok:${r.principal.objectId}`;
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    return `${String(err.status)} ${String(err.aadsts)}`;
  }
}

void describe('managed-identity grant (store-less)', () => {
  void it("issues the host's system-assigned identity's token when no selector is given, naming the identity and the host", async () => {
    const { ctx, issued, calls } = context();
    const result = await managedIdentityGrant.handle(ctx, await tokenRequest());
    assert.equal(result.resource, 'https://vault.azure.net');
    assert.deepEqual(result.detail, { host: HOST_ID, identityType: 'SystemAssigned', identityResourceId: HOST_ID });
    assert.equal(issued.length, 1);
    const { principal, ...rest } = issued[0]!;
    assert.equal((principal as ServicePrincipal).objectId, 'sys-oid');
    assert.deepEqual(rest, {
      tenantId: tenant.id,
      resource: 'https://vault.azure.net',
      authMethod: 'managed-identity',
      managedIdentityResourceId: HOST_ID,
      callerResourceId: HOST_ID,
    });
    assert.deepEqual(calls, ['refresh source:10.0.0.9', 'check source:10.0.0.9', 'refresh host:kid-1@10.0.0.9', 'check host:kid-1@10.0.0.9']);
    assert.equal(MANAGED_IDENTITY_GRANT_TYPE, 'urn:openmsi:params:oauth:grant-type:managed-identity');
    assert.equal(managedIdentityGrant.grantType, MANAGED_IDENTITY_GRANT_TYPE);
    assert.deepEqual(HOST_ASSERTION_ALGORITHMS, ['ES256', 'RS256', 'PS256']);
  });

  void it('selects an attached user-assigned identity by client id, object id or resource id (any case)', async () => {
    const { ctx, issued } = context();
    for (const params of [{ mi_client_id: 'uami-app' }, { mi_object_id: 'uami-oid' }, { mi_res_id: UAMI_ID.toLowerCase() }]) {
      assert.equal(await outcome(ctx, await tokenRequest(params)), 'ok:uami-oid', JSON.stringify(params));
    }
    assert.equal(issued[0]?.['managedIdentityResourceId'], UAMI_ID);
    assert.equal(issued[0]?.['callerResourceId'], HOST_ID);
  });

  void it("selects the host's own system identity explicitly by client or object id, never another host's", async () => {
    const { ctx } = context();
    assert.equal(await outcome(ctx, await tokenRequest({ mi_client_id: 'sys-app' })), 'ok:sys-oid');
    assert.equal(await outcome(ctx, await tokenRequest({ mi_object_id: 'sys-oid' })), 'ok:sys-oid');
    for (const params of [{ mi_client_id: 'other-sys-app' }, { mi_object_id: 'other-sys-oid' }, { mi_res_id: OTHER_HOST_ID }, { mi_res_id: HOST_ID }]) {
      assert.equal(await outcome(ctx, await tokenRequest(params)), '400 700241', JSON.stringify(params));
    }
  });

  void it('refuses an identity not attached to the host, of another tenant, not a managed identity, or unknown', async () => {
    const { ctx, issued } = context();
    for (const params of [
      { mi_client_id: 'detached-app' },
      { mi_res_id: DETACHED_ID },
      { mi_object_id: 'foreign-oid' },
      { mi_client_id: 'app-app' },
      { mi_object_id: 'no-such-oid' },
    ]) {
      assert.equal(await outcome(ctx, await tokenRequest(params)), '400 700241', JSON.stringify(params));
    }
    assert.equal(issued.length, 0);
    const notAnIdentity = context({ host: host({ systemPrincipalId: 'app-oid' }) });
    assert.equal(
      await outcome(notAnIdentity.ctx, await tokenRequest()),
      '400 700241',
      'a host whose system principal is not a managed identity (a store out of step)',
    );
    const noSystem = context({ host: host({ systemPrincipalId: null }) });
    assert.equal(await outcome(noSystem.ctx, await tokenRequest()), '400 700241', 'a host without a system-assigned identity');
  });

  void it('refuses two selectors, and an empty one', async () => {
    const { ctx } = context();
    assert.equal(await outcome(ctx, await tokenRequest({ mi_client_id: 'uami-app', mi_object_id: 'uami-oid' })), '400 900561');
    assert.equal(await outcome(ctx, await tokenRequest({ mi_res_id: UAMI_ID, mi_client_id: 'uami-app' })), '400 900561');
    assert.equal(await outcome(ctx, await tokenRequest({ mi_client_id: ' ' })), '400 900144');
  });

  void it('refuses an assertion naming no kid, an unknown, revoked or expired credential, or another host: counted against the source, and the credential once known', async () => {
    const cases: [Options, Record<string, unknown>, Record<string, unknown>, string[]][] = [
      [{}, {}, { kid: undefined }, ['failed source:10.0.0.9']],
      [{}, {}, { kid: 'kid-2' }, ['failed source:10.0.0.9']],
      [{ credentials: [hostCredential({ revokedAt: NOW - 1 })] }, {}, {}, ['failed host:kid-1@10.0.0.9']],
      [{ credentials: [hostCredential({ expiresAt: NOW })] }, {}, {}, ['failed host:kid-1@10.0.0.9']],
      [{}, { iss: OTHER_HOST_ID, sub: OTHER_HOST_ID }, {}, ['failed host:kid-1@10.0.0.9']],
      [{}, { iss: undefined }, {}, ['failed host:kid-1@10.0.0.9']],
    ];
    for (const [options, claims, header, failed] of cases) {
      const { ctx, calls } = context(options);
      assert.equal(await outcome(ctx, await tokenRequest({}, await hostAssertion(claims, header))), '401 700027', JSON.stringify([claims, header]));
      assert.deepEqual(
        calls.filter((c) => c.startsWith('failed')),
        failed,
        JSON.stringify([claims, header]),
      );
    }
    const live = context({ credentials: [hostCredential({ expiresAt: NOW + 1 })] });
    assert.equal(await outcome(live.ctx, await tokenRequest()), 'ok:sys-oid', 'live until its expiry');
    const upper = HOST_ID.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/');
    assert.equal(
      await outcome(context().ctx, await tokenRequest({}, await hostAssertion({ iss: upper, sub: upper }))),
      'ok:sys-oid',
      "'iss' compared as an ARM id",
    );
  });

  void it('refuses a signature by another key, a credential without a public key, and a host that no longer exists', async () => {
    const signed = context();
    assert.equal(await outcome(signed.ctx, await tokenRequest({}, await hostAssertion({}, {}, strangerKeys.privateKey))), '401 700027');
    assert.deepEqual(
      signed.calls.filter((c) => c.startsWith('failed')),
      ['failed host:kid-1@10.0.0.9'],
    );
    const oct = context({ credentials: [hostCredential({ publicJwk: { kty: 'oct', k: 'c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5YWJjZGVm' } })] });
    assert.equal(await outcome(oct.ctx, await tokenRequest()), '401 700027');
    const gone = context({ host: undefined });
    assert.equal(await outcome(gone.ctx, await tokenRequest()), '401 700027');
    assert.deepEqual(
      gone.calls.filter((c) => c.startsWith('failed')),
      ['failed host:kid-1@10.0.0.9'],
    );
  });

  void it('a locked source or credential is refused without counting; a second method in the request is refused', async () => {
    const source = context({ locked: (k) => k === 'source:10.0.0.9' });
    assert.equal(await outcome(source.ctx, await tokenRequest()), '429 50053');
    assert.deepEqual(source.calls, ['refresh source:10.0.0.9', 'check source:10.0.0.9']);
    const credential = context({ locked: (k) => k.startsWith('host:') });
    assert.equal(await outcome(credential.ctx, await tokenRequest()), '429 50053');
    assert.equal(credential.calls.filter((c) => c.startsWith('failed')).length, 0);
    const { ctx } = context();
    assert.equal(await outcome(ctx, await tokenRequest({ client_secret: 'x' })), '400 7000216');
  });

  void it('checks the resource before anything else', async () => {
    const { ctx, calls } = context();
    assert.match(await outcome(ctx, await tokenRequest({ resource: 'not a resource' })), /^400 /);
    assert.deepEqual(calls, []);
  });
});

void describe('client credentials grant (store-less)', () => {
  void it("issues the application's token with its credential in the audit detail; a user-assigned identity's names its resource", async () => {
    const masterKey = MasterKey.fromBytes(Buffer.alloc(32, 5));
    const secret: ClientCredential = {
      keyId: 'k1',
      appId: 'app-app',
      type: 'Password',
      displayName: 'k1',
      hint: 'sec',
      secretHash: masterKey.hashSecret('s3cret-value'),
      thumbprintSha1: null,
      thumbprintSha256: null,
      certificate: null,
      startAt: NOW - DAY,
      endAt: NOW + DAY,
      createdAt: 0,
    };
    const { ctx, issued } = context({ appCredentials: [secret] });
    const request: TokenRequest = {
      tenant,
      tenantSegment: tenant.id,
      endpoint: 'v2',
      params: { grant_type: 'client_credentials', client_id: 'app-app', client_secret: 's3cret-value', scope: 'https://vault.azure.net/.default' },
      basic: undefined,
      source: '10.0.0.9',
    };
    const result = await clientCredentialsGrant.handle(ctx, request);
    assert.equal(clientCredentialsGrant.grantType, 'client_credentials');
    assert.equal(result.resource, 'https://vault.azure.net');
    assert.equal(result.principal.objectId, 'app-oid');
    assert.deepEqual(result.detail, { credentialType: 'secret', credentialId: 'k1' });
    const { principal, ...rest } = issued[0]!;
    assert.equal((principal as ServicePrincipal).objectId, 'app-oid');
    assert.deepEqual(rest, { tenantId: tenant.id, resource: 'https://vault.azure.net', authMethod: 'secret' });
    // A user-assigned identity by a federated assertion: its token names its resource, the audit its federation.
    const external = await new SignJWT({ iss: FED_ISSUER, sub: FEDERATED.subject, aud: 'api://AzureADTokenExchange', iat: NOW_S - 10, exp: NOW_S + 600 })
      .setProtectedHeader({ alg: 'RS256', kid: 'k' })
      .sign(fedKeys.privateKey);
    const fed = context();
    const federated = await clientCredentialsGrant.handle(fed.ctx, {
      ...request,
      params: {
        grant_type: 'client_credentials',
        client_id: 'uami-app',
        client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
        client_assertion: external,
        scope: 'https://vault.azure.net/.default',
      },
    });
    assert.deepEqual(federated.detail, {
      credentialType: 'federated',
      credentialId: 'fed-1',
      federatedIssuer: FED_ISSUER,
      federatedSubject: FEDERATED.subject,
      federatedCredentialName: 'gha',
    });
    const { principal: p2, ...issuedFed } = fed.issued[0]!;
    assert.equal((p2 as ServicePrincipal).objectId, 'uami-oid');
    assert.deepEqual(issuedFed, { tenantId: tenant.id, resource: 'https://vault.azure.net', authMethod: 'federated', managedIdentityResourceId: UAMI_ID });
    // A malformed scope is refused before the client is looked up.
    const bad = context({ appCredentials: [secret] });
    await assert.rejects(clientCredentialsGrant.handle(bad.ctx, { ...request, params: { ...request.params, scope: 'https://vault.azure.net' } }), OAuthError);
    assert.deepEqual(bad.calls, []);
  });
});
