/**
 * The interactive sign-in flows at the authority (issue 20), through the HTTP layer: the authorize endpoint's
 * page, its CSRF and clickjacking defences, PKCE-bound single-use codes, and the device-code flow with its
 * verification page and polling errors. Real browsers and real clients drive the same routes in
 * test/clients/sign-in-browser.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { FakeClock, MINUTE, SECOND } from '../../../src/shared/clock.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const ARM_SCOPE = 'https://management.core.windows.net//.default';
const PASSWORD = 'Corr3ct-Horse!';
const REDIRECT = 'http://localhost:8400';

interface TokenBody {
  access_token?: string;
  refresh_token?: string;
  id_token?: string;
  error?: string;
  error_codes?: number[];
  interval?: number;
  device_code?: string;
  user_code?: string;
  verification_uri?: string;
  message?: string;
  expires_in?: number;
}

const field = (html: string, name: string) =>
  new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&#(\d+);/g, (_, c: string) => String.fromCharCode(Number(c)));
const cookieOf = (r: LightMyRequestResponse) => /openmsi_signin=([^;]+)/.exec(String(r.headers['set-cookie']))?.[1];

void describe('sign-in flows: authorization code with PKCE, device code', () => {
  let t: TestAuthority;
  let clock: FakeClock;
  let upn: string;
  let userId: string;
  let sources = 0;
  const source = () => `10.30.${String(++sources >> 8)}.${String(sources & 255)}`;

  before(async () => {
    clock = new FakeClock(Math.floor(Date.now() / MINUTE) * MINUTE + SECOND);
    t = await startTestAuthority({
      clock,
      clientAuthThrottle: { perClient: { failures: 3, windowMs: MINUTE }, perSource: { failures: 1000, windowMs: MINUTE } },
    });
    const admin = await t.adminToken(t.url);
    const domains = await t.app.inject({ method: 'GET', url: '/v1.0/domains', headers: { authorization: `Bearer ${admin}` } });
    const domain = domains.json<{ value: Array<{ id: string; isDefault: boolean }> }>().value.find((d) => d.isDefault)!.id;
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1.0/users',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      payload: JSON.stringify({
        accountEnabled: true,
        displayName: 'Ada',
        userPrincipalName: `ada@${domain}`,
        passwordProfile: { password: PASSWORD, forceChangePasswordNextSignIn: false },
      }),
    });
    assert.equal(created.statusCode, 201, created.body);
    ({ userPrincipalName: upn, id: userId } = created.json<{ userPrincipalName: string; id: string }>());
  });
  after(async () => {
    await t.close();
  });

  const pkce = () => {
    const verifier = randomBytes(32).toString('base64url');
    return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
  };
  const authorizeUrl = (params: Record<string, string>, path = '/adfs/oauth2/v2.0/authorize') =>
    `${path}?${new URLSearchParams({ client_id: AZ_CLI, response_type: 'code', redirect_uri: REDIRECT, scope: `${ARM_SCOPE} offline_access openid profile`, state: 'st-1', nonce: 'n-1', ...params }).toString()}`;

  async function openPage(challenge: string, extra: Record<string, string> = {}) {
    const page = await t.app.inject({ method: 'GET', url: authorizeUrl({ code_challenge: challenge, code_challenge_method: 'S256', ...extra }) });
    assert.equal(page.statusCode, 200, page.body);
    return { page, cookie: cookieOf(page)!, ticket: field(page.body, 'ticket')!, csrf: field(page.body, 'csrf_token')! };
  }
  function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}, remoteAddress = source()) {
    return t.app.inject({ method: 'POST', url, headers: { ...FORM, ...headers }, remoteAddress, payload: new URLSearchParams(form).toString() });
  }
  async function signIn(challenge: string, password = PASSWORD) {
    const { cookie, ticket, csrf } = await openPage(challenge);
    return post('/adfs/oauth2/v2.0/authorize', { ticket, csrf_token: csrf, username: upn, password }, { cookie: `openmsi_signin=${cookie}` });
  }
  const codeOf = (r: LightMyRequestResponse) => new URL(String(r.headers.location)).searchParams.get('code')!;
  const redeem = (code: string, verifier: string, extra: Record<string, string> = {}) =>
    post('/adfs/oauth2/v2.0/token', {
      grant_type: 'authorization_code',
      client_id: AZ_CLI,
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
      scope: `${ARM_SCOPE} offline_access openid profile`,
      client_info: '1',
      ...extra,
    });
  const aadsts = (r: LightMyRequestResponse) => r.json<TokenBody>().error_codes?.[0];

  it('the page refuses framing and script, sets a SameSite=Strict HttpOnly cookie, and signs in to a code the client redeems once with its verifier', async () => {
    const { verifier, challenge } = pkce();
    const { page } = await openPage(challenge);
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /form-action 'self' http:\/\/localhost:8400(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|script-src/);
    assert.doesNotMatch(page.body, /<script/i);
    assert.match(String(page.headers['set-cookie']), /HttpOnly; SameSite=Strict/);

    const signedIn = await signIn(challenge);
    assert.equal(signedIn.statusCode, 302, signedIn.body);
    const location = new URL(String(signedIn.headers.location));
    assert.equal(location.origin, REDIRECT);
    assert.equal(location.searchParams.get('state'), 'st-1');
    const code = codeOf(signedIn);
    const first = await redeem(code, verifier);
    assert.equal(first.statusCode, 200, first.body);
    const body = first.json<TokenBody>();
    assert.equal(decodeJwt(body.access_token!)['oid'], userId);
    assert.equal(decodeJwt(body.access_token!)['idtyp'], 'user');
    assert.equal(decodeJwt(body.id_token!)['nonce'], 'n-1');
    assert.ok(body.refresh_token);
    const audit = await t.ctx.store.audit.list({ action: 'user.signedIn', limit: 10 });
    assert.ok(audit.some((a) => a.actor === userId && (a.detail as { flow?: string }).flow === 'authorization_code'));

    // Replay: refused (54005), and the first redemption's refresh token dies with it.
    const replay = await redeem(code, verifier);
    assert.equal(replay.statusCode, 400);
    assert.equal(aadsts(replay), 54005);
    const refreshed = await post('/adfs/oauth2/v2.0/token', {
      grant_type: 'refresh_token',
      client_id: AZ_CLI,
      refresh_token: body.refresh_token,
      scope: `${ARM_SCOPE} offline_access`,
    });
    assert.equal(refreshed.statusCode, 400, refreshed.body);
  });

  it('a wrong verifier (501481), another redirect URI or client, and an expired code (70008) are refused; the code stays unused until a right redemption', async () => {
    const { verifier, challenge } = pkce();
    const code = codeOf(await signIn(challenge));
    const wrong = await redeem(code, pkce().verifier);
    assert.equal(aadsts(wrong), 501481);
    assert.equal(aadsts(await redeem(code, verifier, { redirect_uri: 'http://localhost:8401' })), 70000);
    assert.equal((await redeem(code, verifier, { client_id: '1950a258-227b-4e31-a9cf-717495945fc2' })).statusCode, 400);
    assert.equal((await redeem(code, verifier)).statusCode, 200);

    const late = pkce();
    const lateCode = codeOf(await signIn(late.challenge));
    clock.advance(5 * MINUTE + SECOND);
    assert.equal(aadsts(await redeem(lateCode, late.verifier)), 70008);
  });

  it('an unregistered redirect URI is shown on the page (50011), never redirected to; other errors go back to the registered URI', async () => {
    for (const uri of ['https://evil.example/cb', 'http://localhost.evil.example:8400', 'http://localhost:8400/#x', 'http://user@localhost:8400']) {
      const r = await t.app.inject({
        method: 'GET',
        url: authorizeUrl({ redirect_uri: uri, code_challenge: pkce().challenge, code_challenge_method: 'S256' }),
      });
      assert.equal(r.statusCode, 400, uri);
      assert.equal(r.headers.location, undefined);
      assert.match(r.body, /AADSTS50011/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
    }
    const noPkce = await t.app.inject({ method: 'GET', url: authorizeUrl({}) });
    assert.equal(noPkce.statusCode, 302);
    const back = new URL(String(noPkce.headers.location));
    assert.equal(back.origin, REDIRECT);
    assert.equal(back.searchParams.get('error'), 'invalid_request');
    assert.equal(back.searchParams.get('state'), 'st-1');
    const unknownClient = await t.app.inject({
      method: 'GET',
      url: authorizeUrl({ client_id: '00000000-0000-0000-0000-000000000001', code_challenge: pkce().challenge }),
    });
    assert.equal(unknownClient.statusCode, 400);
    assert.equal(unknownClient.headers.location, undefined);
  });

  it('cross-site posts are refused (403): no cookie, another browser’s cookie, a wrong CSRF token, a foreign Origin; no code is issued', async () => {
    const { challenge } = pkce();
    const { cookie, ticket, csrf } = await openPage(challenge);
    const other = await openPage(challenge);
    const before = await t.ctx.store.audit.list({ action: 'user.signedIn', limit: 100 });
    const attempts: Array<[Record<string, string>, Record<string, string>]> = [
      [{ ticket, csrf_token: csrf }, {}],
      [{ ticket, csrf_token: csrf }, { cookie: `openmsi_signin=${other.cookie}` }],
      [{ ticket, csrf_token: other.csrf }, { cookie: `openmsi_signin=${cookie}` }],
      [{ ticket }, { cookie: `openmsi_signin=${cookie}` }],
      [
        { ticket, csrf_token: csrf },
        { cookie: `openmsi_signin=${cookie}`, origin: 'https://evil.example' },
      ],
      [
        { ticket, csrf_token: csrf },
        { cookie: `openmsi_signin=${cookie}`, 'sec-fetch-site': 'cross-site' },
      ],
    ];
    for (const [form, headers] of attempts) {
      const r = await post('/adfs/oauth2/v2.0/authorize', { ...form, username: upn, password: PASSWORD }, headers);
      assert.equal(r.statusCode, 403, JSON.stringify(headers));
      assert.equal(r.headers.location, undefined);
      assert.match(r.body, /AADSTS90023/);
    }
    const tampered = await post(
      '/adfs/oauth2/v2.0/authorize',
      { ticket: `${ticket.slice(0, -4)}AAAA`, csrf_token: csrf, username: upn, password: PASSWORD },
      { cookie: `openmsi_signin=${cookie}` },
    );
    assert.equal(tampered.statusCode, 400);
    assert.equal((await t.ctx.store.audit.list({ action: 'user.signedIn', limit: 100 })).length, before.length);
    // The right post from the same page still works.
    const ok = await post(
      '/adfs/oauth2/v2.0/authorize',
      { ticket, csrf_token: csrf, username: upn, password: PASSWORD },
      { cookie: `openmsi_signin=${cookie}`, origin: 'http://localhost:80', 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(ok.statusCode, 302, ok.body);
  });

  it('a wrong password shows AADSTS50126 on the page, and repeated ones lock the user for that source (50053), audited', async () => {
    const { challenge } = pkce();
    const { cookie, ticket, csrf } = await openPage(challenge);
    const from = source();
    let r = await post(
      '/adfs/oauth2/v2.0/authorize',
      { ticket, csrf_token: csrf, username: upn, password: 'wrong' },
      { cookie: `openmsi_signin=${cookie}` },
      from,
    );
    assert.equal(r.statusCode, 400);
    assert.match(r.body, /AADSTS50126/);
    assert.equal(r.headers.location, undefined);
    for (let i = 0; i < 3; i++)
      r = await post(
        '/adfs/oauth2/v2.0/authorize',
        { ticket: field(r.body, 'ticket')!, csrf_token: field(r.body, 'csrf_token')!, username: upn, password: 'wrong' },
        { cookie: `openmsi_signin=${cookie}` },
        from,
      );
    assert.match(r.body, /AADSTS50053/);
    const failures = await t.ctx.store.audit.list({ action: 'user.signInFailed', limit: 10 });
    assert.ok(failures.some((a) => (a.detail as { grantType?: string }).grantType === 'authorization_code'));
    clock.advance(MINUTE + SECOND);
  });

  it('device code: Entra’s response fields, authorization_pending, slow_down, approval on /devicelogin, one redemption', async () => {
    const started = await post('/adfs/oauth2/v2.0/devicecode', { client_id: AZ_CLI, scope: `${ARM_SCOPE} offline_access openid profile` });
    assert.equal(started.statusCode, 200, started.body);
    const dc = started.json<TokenBody>();
    assert.deepEqual(Object.keys(dc).sort(), ['device_code', 'expires_in', 'interval', 'message', 'user_code', 'verification_uri']);
    assert.equal(dc.verification_uri, `${t.url}/devicelogin`);
    assert.equal(dc.interval, 5);
    assert.match(dc.message!, new RegExp(`enter the code ${dc.user_code!}`));
    const poll = () =>
      post('/adfs/oauth2/v2.0/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: AZ_CLI, device_code: dc.device_code! });
    const pending = await poll();
    assert.equal(pending.json<TokenBody>().error, 'authorization_pending');
    assert.equal((await poll()).json<TokenBody>().error, 'slow_down');

    const page = await t.app.inject({ method: 'GET', url: '/devicelogin' });
    assert.equal(page.headers['x-frame-options'], 'DENY');
    const cookie = `openmsi_signin=${cookieOf(page)!}`;
    const hidden = { ticket: field(page.body, 'ticket')!, csrf_token: field(page.body, 'csrf_token')! };
    const bad = await post('/devicelogin', { ...hidden, user_code: 'BBBBBBBBB', username: upn, password: PASSWORD, decision: 'approve' }, { cookie });
    assert.match(bad.body, /AADSTS70018/);
    const noCsrf = await post(
      '/devicelogin',
      { ticket: hidden.ticket, user_code: dc.user_code!, username: upn, password: PASSWORD, decision: 'approve' },
      { cookie },
    );
    assert.equal(noCsrf.statusCode, 403);
    clock.advance(6 * SECOND);
    assert.equal((await poll()).json<TokenBody>().error, 'authorization_pending');

    const approved = await post(
      '/devicelogin',
      { ...hidden, user_code: dc.user_code!.toLowerCase(), username: upn, password: PASSWORD, decision: 'approve' },
      { cookie },
    );
    assert.equal(approved.statusCode, 200, approved.body);
    assert.match(approved.body, /You have signed in/);
    clock.advance(6 * SECOND);
    const done = await poll();
    assert.equal(done.statusCode, 200, done.body);
    assert.equal(decodeJwt(done.json<TokenBody>().access_token!)['upn'], upn);
    clock.advance(6 * SECOND);
    assert.equal(aadsts(await poll()), 54005);
  });

  it('device code: declined, expired, and rate-limited per source', async () => {
    const from = source();
    const start = () => post('/adfs/oauth2/v2.0/devicecode', { client_id: AZ_CLI, scope: ARM_SCOPE }, {}, from);
    const dc = (await start()).json<TokenBody>();
    const poll = (code: string) =>
      post('/adfs/oauth2/v2.0/token', { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', client_id: AZ_CLI, device_code: code });
    const page = await t.app.inject({ method: 'GET', url: '/devicelogin' });
    const declined = await post(
      '/devicelogin',
      { ticket: field(page.body, 'ticket')!, csrf_token: field(page.body, 'csrf_token')!, user_code: dc.user_code!, decision: 'decline' },
      { cookie: `openmsi_signin=${cookieOf(page)!}` },
    );
    assert.match(declined.body, /declined/);
    assert.equal((await poll(dc.device_code!)).json<TokenBody>().error, 'authorization_declined');

    const late = (await start()).json<TokenBody>();
    clock.advance(15 * MINUTE + SECOND);
    assert.equal((await poll(late.device_code!)).json<TokenBody>().error, 'expired_token');

    for (let i = 0; i < 20; i++) assert.equal((await start()).statusCode, 200);
    const limited = await start();
    assert.equal(limited.statusCode, 429);
    assert.ok(limited.headers['retry-after']);
  });
});
