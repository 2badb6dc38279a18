/**
 * Host API authentication (src/authority/hosts/authenticate.ts), store-less: a fake store (credentials,
 * subscriptions, resources, replay), real ES256 host keys and the real assertion check. Every refusal is 401
 * HostNotRecognised; once the assertion's credential is found, the refusal names its host and tenant (for the
 * audit trail), never before.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';
import type { AuthorityContext } from '../../../src/authority/context.js';
import { authenticateHost, hostApiAudiences } from '../../../src/authority/hosts/authenticate.js';
import { HostError } from '../../../src/directory/hosts.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { HOST_API_BASE } from '../../../src/shared/host-protocol.js';
import type { HostCredential } from '../../../src/store/types.js';
import { memoryReplay } from '../../support/memory-replay.js';

const NOW = Date.UTC(2031, 4, 6, 7, 8, 9);
const NOW_S = Math.floor(NOW / 1000);
const SUB = '0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const TENANT = 'aaaaaaaa-0000-4000-8000-000000000001';
const HOST = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m1`;
const ORIGINS = ['https://login.localhost:8443', 'https://authority.internal:8443'];
const AUD = `${ORIGINS[0]!}${HOST_API_BASE}`;
const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });

function credential(overrides: Partial<HostCredential> = {}): HostCredential {
  return {
    keyId: 'kid-1',
    hostResourceId: HOST,
    publicJwk: keys.publicKey.export({ format: 'jwk' }),
    createdAt: NOW - 1000,
    expiresAt: NOW + 3_600_000,
    revokedAt: null,
    ...overrides,
  };
}

function context(options: { credentials?: HostCredential[]; hostExists?: boolean; subscriptionExists?: boolean } = {}): AuthorityContext {
  const credentials = options.credentials ?? [credential()];
  return {
    clock: new FakeClock(NOW),
    urls: { advertisedOrigins: () => ORIGINS.map((origin) => ({ origin })) },
    store: {
      hostCredentials: { get: (keyId: string) => Promise.resolve(credentials.find((c) => c.keyId === keyId)) },
      subscriptions: {
        get: (id: string) => Promise.resolve(options.subscriptionExists !== false && id.toLowerCase() === SUB ? { id: SUB, tenantId: TENANT } : undefined),
      },
      resources: { get: (id: string) => Promise.resolve(options.hostExists !== false && id.toLowerCase() === HOST.toLowerCase() ? { id: HOST } : undefined) },
      replay: memoryReplay(),
    },
  } as unknown as AuthorityContext;
}

async function assertion(options: { claims?: Record<string, unknown>; header?: Record<string, unknown>; key?: KeyObject } = {}): Promise<string> {
  return new SignJWT({ iss: HOST, sub: HOST, aud: AUD, iat: NOW_S, exp: NOW_S + 120, jti: `j-${String(Math.random())}`, ...options.claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'kid-1', ...options.header })
    .sign(options.key ?? keys.privateKey);
}

const request = (authorization: string | undefined) => ({ headers: authorization === undefined ? {} : { authorization } }) as unknown as FastifyRequest;

/** 'ok' or the refusal: its message, and ' @host' when it names the host and tenant. */
async function outcome(ctx: AuthorityContext, authorization: string | undefined): Promise<string> {
  try {
    const r = await authenticateHost(ctx, request(authorization));
    assert.deepEqual([r.host.id, r.credential.keyId, r.tenantId], [HOST, 'kid-1', TENANT]);
    return 'ok';
  } catch (err) {
    if (!(err instanceof HostError)) throw err;
    assert.equal(err.code, 'HostNotRecognised');
    if (err.subject !== undefined) assert.deepEqual(err.subject, { hostResourceId: HOST, tenantId: TENANT });
    return `${err.message}${err.subject === undefined ? '' : ' @host'}`;
  }
}

void describe('host API authentication (store-less)', () => {
  void it('accepts a fresh assertion of a live credential of an existing host: the host, its credential and tenant', async () => {
    assert.equal(await outcome(context(), `Bearer ${await assertion()}`), 'ok');
    assert.equal(await outcome(context(), `bearer\t${await assertion()}  `), 'ok', 'the scheme in any case, tabs and trailing blanks');
    assert.equal(await outcome(context(), `Bearer  \t ${await assertion()}`), 'ok', 'any run of blanks after the scheme');
    assert.equal(await outcome(context(), `Bearer ${await assertion({ claims: { aud: `${ORIGINS[1]!}${HOST_API_BASE}` } })}`), 'ok', 'any advertised origin');
    const upper = HOST.toUpperCase().replace('/SUBSCRIPTIONS/', '/subscriptions/');
    assert.equal(await outcome(context(), `Bearer ${await assertion({ claims: { iss: upper, sub: upper } })}`), 'ok', "'iss' compared as an ARM id");
  });

  void it('hostApiAudiences: the host API on every advertised origin', () => {
    assert.deepEqual(hostApiAudiences(context()), ['https://login.localhost:8443/openmsi/hosts', 'https://authority.internal:8443/openmsi/hosts']);
  });

  void it('refuses a missing or malformed Authorization header, naming no host', async () => {
    const valid = await assertion();
    for (const header of [
      undefined,
      '',
      'Bearer',
      'Bearer ',
      `Basic ${valid}`,
      `Bearer ${valid} x`,
      `Bearer ${valid}!`,
      `Bearer\n${valid}`,
      ` Bearer ${valid}`,
    ]) {
      assert.match(await outcome(context(), header), /header is missing or malformed\.$/, JSON.stringify(header));
    }
  });

  void it('refuses an assertion naming no kid or an unknown one, naming no host', async () => {
    assert.match(await outcome(context(), `Bearer ${await assertion({ header: { kid: undefined } })}`), /names no 'kid'\.$/);
    assert.match(await outcome(context(), `Bearer ${await assertion({ header: { kid: 7 } })}`), /names no 'kid'\.$/);
    assert.match(await outcome(context(), `Bearer ${await assertion({ header: { kid: 'kid-2' } })}`), /no host credential has this key id\.$/);
  });

  void it('refuses a revoked or expired credential (at its expiry), naming its host', async () => {
    assert.match(
      await outcome(context({ credentials: [credential({ revokedAt: NOW - 1 })] }), `Bearer ${await assertion()}`),
      /credential is revoked\. @host$/,
    );
    assert.match(await outcome(context({ credentials: [credential({ expiresAt: NOW })] }), `Bearer ${await assertion()}`), /credential has expired\. @host$/);
    assert.equal(await outcome(context({ credentials: [credential({ expiresAt: NOW + 1 })] }), `Bearer ${await assertion()}`), 'ok');
  });

  void it("refuses an assertion whose 'iss' is another host than the credential's", async () => {
    const other = HOST.replace('/m1', '/m2');
    assert.match(
      await outcome(context(), `Bearer ${await assertion({ claims: { iss: other, sub: other } })}`),
      /'iss' is not the host the credential belongs to\. @host$/,
    );
    assert.match(await outcome(context(), `Bearer ${await assertion({ claims: { iss: undefined } })}`), /'iss' is not the host/);
  });

  void it('refuses a credential that holds no public key', async () => {
    const secretKey = credential({ publicJwk: { kty: 'oct', k: 'c2VjcmV0LWtleS1ieXRlcy0wMTIzNDU2Nzg5YWJjZGVm' } });
    const hs = await new SignJWT({ iss: HOST, sub: HOST, aud: AUD, iat: NOW_S, exp: NOW_S + 60, jti: 'h' })
      .setProtectedHeader({ alg: 'ES256', kid: 'kid-1' })
      .sign(keys.privateKey);
    assert.match(await outcome(context({ credentials: [secretKey] }), `Bearer ${hs}`), /not a public key\. @host$/);
  });

  void it('refuses what the assertion check refuses (signature, audience, time, replay), naming the host once its credential is known', async () => {
    const ctx = context();
    assert.match(await outcome(ctx, `Bearer ${await assertion({ key: otherKeys.privateKey })}`), /the host assertion was refused \(.*signature.*\)\. @host$/);
    assert.match(
      await outcome(ctx, `Bearer ${await assertion({ claims: { aud: 'https://elsewhere.example/openmsi/hosts' } })}`),
      /the host assertion was refused \(.*audience.*\)\. @host$/,
    );
    assert.match(await outcome(ctx, `Bearer ${await assertion({ claims: { exp: NOW_S - 1000, iat: NOW_S - 1100 } })}`), /was refused .* @host$/);
    const once = await assertion();
    assert.equal(await outcome(ctx, `Bearer ${once}`), 'ok');
    assert.match(await outcome(ctx, `Bearer ${once}`), /was refused \(.*already been used.*\)\. @host$/);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const hs256 = `${b64({ alg: 'HS256', kid: 'kid-1' })}.${b64({ iss: HOST, sub: HOST, aud: AUD, iat: NOW_S, exp: NOW_S + 60, jti: 'x' })}.c2ln`;
    assert.match(await outcome(ctx, `Bearer ${hs256}`), /was refused \(.*HS256.*\)\.$/, 'an algorithm hosts do not use: refused before the credential is read');
  });

  void it("needs 'iat' and 'exp' at most 300 seconds apart", async () => {
    assert.equal(await outcome(context(), `Bearer ${await assertion({ claims: { iat: NOW_S - 100, exp: NOW_S + 200 } })}`), 'ok');
    for (const claims of [{ iat: undefined }, { iat: NOW_S - 100, exp: NOW_S + 201 }, { iat: 'x' }]) {
      assert.match(
        await outcome(context(), `Bearer ${await assertion({ claims })}`),
        /'iat' and 'exp' at most 300 seconds apart|was refused/,
        JSON.stringify(claims),
      );
    }
    assert.match(await outcome(context(), `Bearer ${await assertion({ claims: { iat: undefined } })}`), /'iat' and 'exp' at most 300 seconds apart\. @host$/);
    assert.match(
      await outcome(context(), `Bearer ${await assertion({ claims: { iat: NOW_S - 100, exp: NOW_S + 201 } })}`),
      /at most 300 seconds apart\. @host$/,
    );
  });

  void it('refuses a credential whose host, or its subscription, no longer exists', async () => {
    assert.match(await outcome(context({ hostExists: false }), `Bearer ${await assertion()}`), /the host no longer exists\. @host$/);
    assert.equal(
      await outcome(context({ subscriptionExists: false }), `Bearer ${await assertion()}`),
      'The host is not recognised: the host no longer exists.',
      'no tenant: named nowhere',
    );
  });
});
