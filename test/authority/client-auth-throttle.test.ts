import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { captureLogs, freePort, registerTestApplication, startTestAuthority, type TestAuthority, type TestApplication } from '../support/authority.js';
import { postForm } from '../support/https.js';
import { createOpenmsiServer, type OpenmsiServer } from '../../src/server/server.js';
import { DEFAULT_CLIENT_AUTH_THROTTLE } from '../../src/authority/token/throttle.js';
import { MANAGED_IDENTITY_GRANT_TYPE } from '../../src/authority/grants/managed-identity.js';
import { FakeClock, MINUTE, SECOND } from '../../src/shared/clock.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SCOPE = 'https://vault.azure.net/.default';
const PER_CLIENT = DEFAULT_CLIENT_AUTH_THROTTLE.perClient.failures;
const PER_SOURCE = DEFAULT_CLIENT_AUTH_THROTTLE.perSource.failures;

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const codes = (r: LightMyRequestResponse) => r.json<{ error: string; error_codes: number[] }>();

/**
 * Failed client authentication at the token endpoint (issue 15, finding 7 and the RFC 6749 §2.3.1 part of
 * finding 8), end to end with the production limits: a wrong secret, a bad client assertion or a bad host
 * assertion counts against the client and the source; past the limit every attempt is 429 AADSTS50053 with
 * Retry-After until the window ends, and the audit stays bounded.
 */
void describe('client authentication throttle', () => {
  let t: TestAuthority;
  let clock: FakeClock;
  let tokenPath: string;
  let nextSource = 0;
  /** A source address no other test uses. */
  const source = () => `10.77.${String(++nextSource >> 8)}.${String(nextSource & 255)}`;

  before(async () => {
    clock = new FakeClock(Math.floor(Date.now() / MINUTE) * MINUTE);
    t = await startTestAuthority({ clock, clientAuthThrottle: DEFAULT_CLIENT_AUTH_THROTTLE });
    tokenPath = `/${t.tenantId}/oauth2/v2.0/token`;
  });
  after(async () => {
    await t.close();
  });

  /** Moves the clock to one second into a fresh window, so a test's failures all fall in one window. */
  function freshWindow() {
    clock.set(Math.floor(clock.now() / MINUTE) * MINUTE + MINUTE + SECOND);
  }
  function token(form: Record<string, string>, from: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const request: InjectOptions = {
      method: 'POST',
      url: tokenPath,
      headers: { ...FORM, ...headers },
      remoteAddress: from,
      payload: new URLSearchParams(form).toString(),
    };
    return t.app.inject(request);
  }
  const secretForm = (app: TestApplication, secret: string) => ({
    grant_type: 'client_credentials',
    client_id: app.appId,
    client_secret: secret,
    scope: SCOPE,
  });

  void it('invariant: a client is locked after 10 wrong secrets from any sources: even the right secret gets 429 AADSTS50053 until Retry-After', async () => {
    freshWindow();
    const app = await registerTestApplication(t, `locked-${randomUUID()}`, { certificate: false });
    for (let i = 0; i < PER_CLIENT; i++) assert.equal((await token(secretForm(app, 'wrong'), source())).statusCode, 401);
    clock.advance(9 * SECOND);
    const locked = await token(secretForm(app, app.secret), source());
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers['retry-after'], '50');
    assert.deepEqual([codes(locked).error, codes(locked).error_codes], ['invalid_client', [50053]]);
    assert.match(locked.headers['cache-control'] ?? '', /no-store/);
    clock.advance(49 * SECOND);
    assert.equal((await token(secretForm(app, app.secret), source())).statusCode, 429, 'one second before Retry-After: still locked');
    clock.advance(SECOND);
    assert.equal((await token(secretForm(app, app.secret), source())).statusCode, 200, 'at Retry-After the right secret works');
  });

  void it('invariant: a bad client assertion counts like a wrong secret', async () => {
    freshWindow();
    const app = await registerTestApplication(t, `assertion-${randomUUID()}`, { certificate: false });
    const form = { grant_type: 'client_credentials', client_id: app.appId, client_assertion_type: JWT_BEARER, client_assertion: 'e30.e30.bad', scope: SCOPE };
    for (let i = 0; i < PER_CLIENT; i++) assert.equal((await token(form, source())).statusCode, 401);
    assert.equal((await token(secretForm(app, app.secret), source())).statusCode, 429);
  });

  void it('invariant: a source is locked after 100 failures, whichever client ids it names, and other sources are not', async () => {
    freshWindow();
    const app = await registerTestApplication(t, `bystander-${randomUUID()}`, { certificate: false });
    const from = source();
    for (let i = 0; i < PER_SOURCE; i++) {
      const r = await token({ grant_type: 'client_credentials', client_id: randomUUID(), client_secret: 'guess', scope: SCOPE }, from);
      assert.equal(r.statusCode, 400, 'unknown client ids count against the source');
    }
    const locked = await token(secretForm(app, app.secret), from);
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers['retry-after'], '59');
    assert.equal((await token(secretForm(app, app.secret), source())).statusCode, 200, 'the same client from another source');
  });

  void it('invariant: a bad host assertion is throttled per host credential and source', async () => {
    freshWindow();
    const keyId = randomUUID();
    const hostId = `/subscriptions/${t.subscriptionId}/resourceGroups/hosts/providers/Microsoft.HybridCompute/machines/${keyId}`;
    const registered = await generateKeyPair('ES256');
    const attacker = await generateKeyPair('ES256');
    await t.ctx.store.hostCredentials.add({
      keyId,
      hostResourceId: hostId,
      publicJwk: await exportJWK(registered.publicKey),
      createdAt: clock.now(),
      expiresAt: clock.now() + MINUTE * 60 * 24,
      revokedAt: null,
    });
    const forged = () =>
      new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: keyId })
        .setIssuer(hostId)
        .setSubject(hostId)
        .setAudience(`${t.url}${tokenPath}`)
        .setIssuedAt(Math.floor(clock.now() / 1000))
        .setExpirationTime(Math.floor(clock.now() / 1000) + 300)
        .sign(attacker.privateKey);
    const form = async () => ({ grant_type: MANAGED_IDENTITY_GRANT_TYPE, client_assertion_type: JWT_BEARER, client_assertion: await forged(), scope: SCOPE });
    for (let i = 0; i < PER_CLIENT; i++) assert.equal((await token(await form(), source())).statusCode, 401);
    const locked = await token(await form(), source());
    assert.equal(locked.statusCode, 429);
    assert.deepEqual(codes(locked).error_codes, [50053]);
  });

  void it('1,000 parallel wrong secrets for one client are refused and write a bounded number of audit rows', async () => {
    freshWindow();
    const app = await registerTestApplication(t, `flood-${randomUUID()}`, { certificate: false });
    const from = source();
    const statuses = new Map<number, number>();
    for (const r of await Promise.all(Array.from({ length: 1000 }, () => token(secretForm(app, `wrong-${randomUUID()}`), from)))) {
      statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
    }
    assert.deepEqual(
      [...statuses].sort(),
      [
        [401, PER_CLIENT],
        [429, 1000 - PER_CLIENT],
      ],
      'exactly the limit is verified on one replica',
    );
    clock.advance(MINUTE);
    // The next refusal of that client ends the interval of its counted refusals.
    await token(secretForm(app, 'wrong'), from);
    await t.ctx.audit.flush();
    const rows = (await t.ctx.store.audit.list({ action: 'token.denied', limit: 10_000 })).filter((e) => e.actor === app.appId);
    assert.ok(rows.length <= 5, `${String(rows.length)} rows`);
    const counted = rows.reduce((sum, e) => sum + (e.detail['aggregated'] === true ? (e.detail['count'] as number) : 1), 0);
    assert.equal(counted, 1001, 'every refusal is counted');
  });

  void it('invariant: Basic and form client credentials in one request are refused 400 invalid_request, whichever values (RFC 6749 §2.3.1)', async () => {
    const app = await registerTestApplication(t, `two-methods-${randomUUID()}`, { certificate: false });
    const secret = fc.oneof(fc.constant(app.secret), fc.constant(''), fc.string({ maxLength: 40 }));
    await fc.assert(
      fc.asyncProperty(
        secret,
        secret,
        fc.constantFrom('client_secret', 'client_assertion', 'both'),
        fc.boolean(),
        async (headerSecret, formValue, formField, withClientId) => {
          const form: Record<string, string> = { grant_type: 'client_credentials', scope: SCOPE };
          if (withClientId) form['client_id'] = app.appId;
          if (formField !== 'client_assertion') form['client_secret'] = formValue;
          if (formField !== 'client_secret') Object.assign(form, { client_assertion_type: JWT_BEARER, client_assertion: formValue });
          const r = await token(form, source(), { authorization: basic(app.appId, headerSecret) });
          assert.equal(r.statusCode, 400);
          assert.deepEqual([codes(r).error, codes(r).error_codes], ['invalid_request', [7000216]]);
        },
      ),
      { numRuns: 60 },
    );
    const both = await token(
      {
        grant_type: 'client_credentials',
        client_id: app.appId,
        client_secret: app.secret,
        client_assertion_type: JWT_BEARER,
        client_assertion: 'x',
        scope: SCOPE,
      },
      source(),
    );
    assert.equal(both.statusCode, 400, 'form secret and assertion together');
    assert.equal(
      (await token({ grant_type: 'client_credentials', scope: SCOPE }, source(), { authorization: basic(app.appId, app.secret) })).statusCode,
      200,
      'Basic alone works',
    );
  });
});

/** Two authority processes' worth of state on one PostgreSQL database: the lock set at one holds at the other. */
void describe(
  'client authentication throttle across replicas (postgres)',
  { skip: process.env['OPENMSI_TEST_POSTGRES_URL'] ? false : 'OPENMSI_TEST_POSTGRES_URL not set' },
  () => {
    let a: TestAuthority;
    let b: OpenmsiServer;
    let bUrl: string;

    before(async () => {
      // One clock for both, one second into a window, so the test's failures all fall in one window.
      const clock = new FakeClock(Math.floor(Date.now() / MINUTE) * MINUTE + SECOND);
      a = await startTestAuthority({ backend: 'postgres', clock, clientAuthThrottle: DEFAULT_CLIENT_AUTH_THROTTLE });
      const port = await freePort();
      b = await createOpenmsiServer({
        clock,
        clientAuthThrottle: DEFAULT_CLIENT_AUTH_THROTTLE,
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
    });
    after(async () => {
      await b.close();
      await a.close();
    });

    void it('invariant: wrong secrets at one replica lock the client at the other, right secret included', async () => {
      const app = await registerTestApplication(a, `replicated-${randomUUID()}`, { certificate: false });
      const form = (secret: string) => ({ grant_type: 'client_credentials', client_id: app.appId, client_secret: secret, scope: SCOPE });
      const path = `/${a.tenantId}/oauth2/v2.0/token`;
      // Half the guesses at each replica: each one alone stays under the limit, together they reach it.
      for (let i = 0; i < PER_CLIENT; i++) assert.equal((await postForm(`${i % 2 === 0 ? a.url : bUrl}${path}`, form('wrong'), a.caPem)).status, 401);
      for (const url of [a.url, bUrl]) {
        const r = await postForm(`${url}${path}`, form(app.secret), a.caPem);
        assert.equal(r.status, 429, url);
        assert.ok(Number(r.headers['retry-after']) >= 1);
      }
    });
  },
);
