/**
 * The management API's bearer authentication (src/management/authenticate.ts `authenticate`, `callerOf`,
 * `authorizeSubscription`), store-less: a fake context whose verifier and store answer from a table. Who is
 * admitted, each refusal's ARM error and the tenant its challenge names. The audience rule is
 * test/management/authenticate.test.ts; the same hook with real tokens, test/management/management.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';
import { ApiError } from '../../src/shared/api-error.js';
import { DirectoryError } from '../../src/directory/errors.js';
import { TokenVerificationError, type VerifiedToken } from '../../src/shared/token-verifier.js';
import { authenticate, authorizeSubscription, callerOf, deniedPrincipalOf, markDenied, type Caller } from '../../src/management/authenticate.js';
import type { ManagementContext } from '../../src/management/context.js';
import type { ServicePrincipal } from '../../src/store/types.js';

const ORIGIN = 'https://localhost:8443';
// Hex letters in the tenant ids: a comparison that ignores case must be seen to.
const TENANT = 'aaaaaaaa-1111-4111-8111-111111111111';
const OTHER_TENANT = 'bbbbbbbb-2222-4222-8222-222222222222';
const SUB = '33333333-3333-4333-8333-333333333333';
const OTHER_SUB = '44444444-4444-4444-8444-444444444444';
const OID = '55555555-5555-4555-8555-555555555555';
const PRINCIPAL = { objectId: OID, tenantId: TENANT, appId: 'app' } as unknown as ServicePrincipal;

/** A token the fake verifier knows by its text: its claims, or the code it is refused with. */
type Known = { claims: Record<string, unknown> } | { refused: ConstructorParameters<typeof TokenVerificationError>[0] };

function context(tokens: Record<string, Known>, options: { tenants?: string[] } = {}) {
  const verified: { token: string; audiences: readonly string[] }[] = [];
  const tenants = options.tenants ?? [TENANT, OTHER_TENANT];
  const ctx = {
    authority: {
      origin: ORIGIN,
      v1Issuer: (t: string) => `${ORIGIN}/${t}/`,
      advertisedOrigins: () => ORIGINS,
    },
    vaultDomain: 'vault.localhost',
    verifyAccessToken: (token: string, audiences: readonly string[]) => {
      verified.push({ token, audiences });
      const known = tokens[token];
      if (known === undefined) return Promise.reject(new TokenVerificationError('bad_signature', 'unknown token'));
      if ('refused' in known) return Promise.reject(new TokenVerificationError(known.refused, known.refused));
      return Promise.resolve({ claims: known.claims } as unknown as VerifiedToken);
    },
    store: {
      servicePrincipals: { getByObjectId: (oid: string) => Promise.resolve(oid === OID ? PRINCIPAL : undefined) },
      subscriptions: {
        get: (id: string) =>
          Promise.resolve(id === SUB ? { id: SUB, tenantId: TENANT } : id === OTHER_SUB ? { id: OTHER_SUB, tenantId: OTHER_TENANT } : undefined),
      },
      tenants: {
        get: (id: string) => Promise.resolve(tenants.includes(id) ? { id } : undefined),
        list: () => Promise.resolve(tenants.map((id) => ({ id }))),
      },
    },
  } as unknown as ManagementContext;
  return { ctx, verified };
}
const ORIGINS = [{ origin: ORIGIN }];

const request = (authorization: string | undefined, params: Record<string, string> = {}) =>
  ({ headers: authorization === undefined ? {} : { authorization }, params }) as unknown as FastifyRequest;

async function refusal(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ApiError, `not an ApiError: ${String(err)}`);
    return err;
  }
  assert.fail('admitted');
}

const challengeOf = (err: ApiError) => err.headers['www-authenticate'];
const challenge = (tenant: string) => `Bearer authorization_uri="${ORIGIN}/${tenant}", error="invalid_token"`;
/** A JWT whose payload names `tid` (unsigned: the challenge only decodes it). */
const jwtWithTid = (tid: string) => new SignJWT({ tid }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(32));

void describe('management authentication: who is admitted', () => {
  void it("admits a known principal of the token's tenant, with `Bearer` in any case and blanks around the token, and records the caller", async () => {
    const { ctx, verified } = context({ good: { claims: { oid: OID, tid: TENANT } } });
    for (const header of ['Bearer good', 'bearer good', 'BEARER\tgood', 'Bearer  good  ']) {
      const req = request(header);
      await authenticate(ctx, 'arm')(req);
      const caller = callerOf(req);
      assert.equal(caller.principal, PRINCIPAL, header);
      assert.equal(caller.tenantId, TENANT);
      assert.equal(caller.family, 'arm');
    }
    assert.deepEqual(verified.at(-1)?.audiences, [
      'https://management.azure.com/',
      'https://management.azure.com',
      'https://management.core.windows.net/',
      'https://management.core.windows.net',
    ]);
    const graph = request('Bearer good');
    await authenticate(ctx, 'graph')(graph);
    assert.equal(callerOf(graph).family, 'graph');
    assert.ok(verified.at(-1)?.audiences.includes(ORIGIN), "Graph also takes the server's own origin");
  });

  void it('refuses a missing or blank Authorization header: 401 AuthenticationFailed (ARM) or InvalidAuthenticationToken (Graph), with a challenge', async () => {
    const { ctx, verified } = context({});
    for (const header of [undefined, '', '   ']) {
      const arm = await refusal(authenticate(ctx, 'arm')(request(header)));
      assert.equal(arm.status, 401);
      assert.equal(arm.code, 'AuthenticationFailed');
      assert.match(arm.message, /header is missing/);
      assert.equal(challengeOf(arm), challenge('common'), 'two tenants, no subscription, no token');
      const graph = await refusal(authenticate(ctx, 'graph')(request(header)));
      assert.equal(graph.code, 'InvalidAuthenticationToken');
      assert.equal(graph.message, 'Access token is empty.');
    }
    assert.equal(verified.length, 0, 'nothing verified');
  });

  void it('refuses anything but one Bearer token of token characters, before verifying it', async () => {
    const { ctx, verified } = context({ good: { claims: { oid: OID, tid: TENANT } } });
    for (const header of [
      'Basic good',
      'Bearer',
      'Bearer ',
      'Bearergood',
      'xBearer good',
      'Bearer good extra',
      'Bearer go"od',
      'Bearer good\n',
      ' Bearer good',
    ]) {
      const err = await refusal(authenticate(ctx, 'arm')(request(header)));
      assert.equal(err.status, 401, header);
      assert.equal(err.code, 'AuthenticationFailed', header);
      assert.match(err.message, /not in the 'Bearer <token>' format/, header);
    }
    assert.equal(verified.length, 0, 'nothing verified');
  });

  void it("maps the verifier's refusal to ARM's codes, and any other error passes through unchanged", async () => {
    const { ctx } = context({ old: { refused: 'expired' }, elsewhere: { refused: 'bad_audience' }, forged: { refused: 'bad_signature' } });
    assert.equal((await refusal(authenticate(ctx, 'arm')(request('Bearer old')))).code, 'ExpiredAuthenticationToken');
    const audience = await refusal(authenticate(ctx, 'arm')(request('Bearer elsewhere')));
    assert.equal(audience.code, 'InvalidAuthenticationTokenAudience');
    assert.match(audience.message, /https:\/\/management\.azure\.com\//);
    const forged = await refusal(authenticate(ctx, 'arm')(request('Bearer forged')));
    assert.equal(forged.code, 'InvalidAuthenticationToken');
    assert.match(forged.message, /bad signature/);
    const broken = { ...ctx, verifyAccessToken: () => Promise.reject(new RangeError('bug')) } as unknown as ManagementContext;
    await assert.rejects(authenticate(broken, 'arm')(request('Bearer any')), RangeError);
  });

  void it("refuses a valid token whose principal is unknown, has no string oid, or belongs to another tenant than the token's", async () => {
    const { ctx } = context({
      unknown: { claims: { oid: '66666666-6666-4666-8666-666666666666', tid: TENANT } },
      noOid: { claims: { tid: TENANT } },
      numericOid: { claims: { oid: 42, tid: TENANT } },
      otherTenant: { claims: { oid: OID, tid: OTHER_TENANT } },
    });
    for (const token of ['unknown', 'noOid', 'numericOid', 'otherTenant']) {
      const req = request(`Bearer ${token}`);
      const err = await refusal(authenticate(ctx, 'arm')(req));
      assert.equal(err.status, 401, token);
      assert.equal(err.code, 'InvalidAuthenticationToken', token);
      assert.match(err.message, /named by the access token does not exist in tenant/, token);
      assert.throws(() => callerOf(req), TypeError, 'no caller recorded');
    }
  });
});

void describe('management authentication: the challenge names a tenant', () => {
  void it("the addressed subscription's tenant, else the token's known tid, else the only tenant, else common", async () => {
    const { ctx } = context({});
    const hook = authenticate(ctx, 'arm');
    assert.equal(challengeOf(await refusal(hook(request(undefined, { subscriptionId: OTHER_SUB })))), challenge(OTHER_TENANT));
    assert.equal(challengeOf(await refusal(hook(request('Bearer x', { subscriptionId: SUB })))), challenge(TENANT));
    const token = await jwtWithTid(OTHER_TENANT);
    assert.equal(challengeOf(await refusal(hook(request(`Bearer ${token}`, { subscriptionId: 'not-a-guid' })))), challenge(OTHER_TENANT));
    assert.equal(challengeOf(await refusal(hook(request(`Bearer ${await jwtWithTid('77777777-7777-4777-8777-777777777777')}`)))), challenge('common'));
    assert.equal(challengeOf(await refusal(hook(request('Bearer not-a-jwt', { subscriptionId: OID })))), challenge('common'));
    const single = context({}, { tenants: [TENANT] });
    assert.equal(challengeOf(await refusal(authenticate(single.ctx, 'arm')(request('Bearer not-a-jwt')))), challenge(TENANT));
    assert.equal(challengeOf(await refusal(authenticate(context({}, { tenants: [] }).ctx, 'arm')(request(undefined)))), challenge('common'));
  });
});

void describe('management authentication: callers, denials, subscriptions', () => {
  void it('callerOf refuses a request the hook never admitted; a denial is remembered per request', () => {
    const req = request('Bearer x');
    assert.throws(() => callerOf(req), { name: 'TypeError', message: 'management route registered without the authenticate hook' });
    assert.equal(deniedPrincipalOf(req), undefined);
    markDenied(req, PRINCIPAL);
    assert.equal(deniedPrincipalOf(req), PRINCIPAL);
    assert.equal(deniedPrincipalOf(request('Bearer x')), undefined, 'another request');
  });

  void it("authorizeSubscription: the caller's tenant's subscription; SubscriptionNotFound for an unknown or malformed id; 401 InvalidAuthenticationTokenTenant for another tenant's", async () => {
    const { ctx } = context({});
    const caller = { principal: PRINCIPAL, tenantId: TENANT.toUpperCase(), family: 'arm' } as unknown as Caller;
    assert.equal((await authorizeSubscription(ctx, caller, SUB)).id, SUB, 'tenants compared case-insensitively');
    for (const id of ['99999999-9999-4999-8999-999999999999', 'not-a-guid']) {
      // The directory's error (the management handler answers it 404 SubscriptionNotFound).
      await assert.rejects(authorizeSubscription(ctx, caller, id), (err: unknown) => err instanceof DirectoryError && err.code === 'SubscriptionNotFound');
    }
    const other = await refusal(authorizeSubscription(ctx, caller, OTHER_SUB));
    assert.equal(other.status, 401);
    assert.equal(other.code, 'InvalidAuthenticationTokenTenant');
    assert.equal(
      other.message,
      `The access token is from the wrong issuer '${ORIGIN}/${TENANT.toUpperCase()}/'. It must match the tenant '${ORIGIN}/${OTHER_TENANT}/' associated with this subscription. Please use the authority (URL) '${ORIGIN}/${OTHER_TENANT}' to get the token.`,
    );
    assert.equal(challengeOf(other), challenge(OTHER_TENANT));
  });
});
