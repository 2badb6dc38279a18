/**
 * People at the token endpoint (issue 20): users created through Graph sign in with the resource-owner
 * password grant as the Azure CLI does (public client, `/adfs` and tenant endpoints), get Entra's user
 * claims, an ID token MSAL accepts and a rotating refresh token; wrong passwords, locks, replays, deleted
 * users and revoked sessions are refused with Entra's codes, and the user's token opens the management API
 * exactly as far as RBAC says.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import { acrossBackends, startTestAuthority, type Backend, type TestAuthority } from '../support/authority.js';
import { FakeClock, MINUTE, SECOND } from '../../src/shared/clock.js';
import { BUILTIN_ROLE_IDS } from '../../src/rbac/builtin-roles.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const AZ_CLI = '04b07795-8ddb-461a-bbee-02f9e1bf7b46';
const ARM_SCOPE = 'https://management.core.windows.net//.default';
const PASSWORD = 'Corr3ct-Horse!';

interface TokenBody {
  access_token: string;
  refresh_token?: string;
  id_token?: string;
  scope?: string;
  client_info?: string;
  error?: string;
  error_codes?: number[];
  error_description?: string;
}

acrossBackends('users: password and refresh-token grants', (backend: Backend) => {
  let t: TestAuthority;
  let clock: FakeClock;
  let admin: string;
  let domain: string;
  let sourceCount = 0;
  const source = () => `10.20.${String(++sourceCount >> 8)}.${String(sourceCount & 255)}`;

  before(async () => {
    clock = new FakeClock(Math.floor(Date.now() / MINUTE) * MINUTE + SECOND);
    // Production-like per-user lock (3 for speed), a roomy per-source one so each test's own source does not lock.
    t = await startTestAuthority({
      backend,
      clock,
      clientAuthThrottle: { perClient: { failures: 3, windowMs: MINUTE }, perSource: { failures: 1000, windowMs: MINUTE } },
    });
    admin = await t.adminToken(t.url);
    const domains = await graph('GET', '/v1.0/domains', admin);
    assert.equal(domains.statusCode, 200, domains.body);
    const list = domains.json<{ value: Array<{ id: string; isDefault: boolean }> }>().value;
    domain = list.find((d) => d.isDefault)!.id;
  });
  after(async () => {
    await t.close();
  });

  function graph(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: unknown): Promise<LightMyRequestResponse> {
    return t.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
  }
  function token(form: Record<string, string>, from = '127.0.0.1', path = '/adfs/oauth2/v2.0/token'): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: path, headers: FORM, remoteAddress: from, payload: new URLSearchParams(form).toString() });
  }
  const passwordForm = (username: string, password: string, extra: Record<string, string> = {}) => ({
    grant_type: 'password',
    client_id: AZ_CLI,
    username,
    password,
    scope: `${ARM_SCOPE} offline_access openid profile`,
    client_info: '1',
    ...extra,
  });
  const refreshForm = (refreshToken: string, scope = `https://vault.azure.net/.default offline_access openid profile`) => ({
    grant_type: 'refresh_token',
    client_id: AZ_CLI,
    refresh_token: refreshToken,
    scope,
    client_info: '1',
  });
  async function createUser(name: string, extra: Record<string, unknown> = {}): Promise<{ id: string; userPrincipalName: string }> {
    const r = await graph('POST', '/v1.0/users', admin, {
      accountEnabled: true,
      displayName: `User ${name}`,
      userPrincipalName: `${name}@${domain}`,
      passwordProfile: { password: PASSWORD, forceChangePasswordNextSignIn: false },
      ...extra,
    });
    assert.equal(r.statusCode, 201, r.body);
    return r.json();
  }
  const aadsts = (r: LightMyRequestResponse) => r.json<TokenBody>().error_codes?.[0];

  it('Graph: creates a user (201, Graph shape, never the password), shows it by id and UPN, lists and filters; refuses bad names and weak passwords', async () => {
    const u = await createUser('ada');
    const shown = await graph('GET', `/v1.0/users/${encodeURIComponent(u.userPrincipalName.toUpperCase())}`, admin);
    assert.equal(shown.statusCode, 200);
    const body = shown.json<Record<string, unknown>>();
    assert.equal(body['id'], u.id);
    assert.equal(body['userPrincipalName'], `ada@${domain}`);
    assert.equal(body['accountEnabled'], true);
    assert.equal(body['displayName'], 'User ada');
    assert.ok(!JSON.stringify(body).includes(PASSWORD) && !('passwordProfile' in body) && !('passwordHash' in body));
    const filtered = await graph('GET', `/v1.0/users?$filter=${encodeURIComponent(`userPrincipalName eq 'ADA@${domain}'`)}`, admin);
    assert.deepEqual(
      filtered.json<{ value: Array<{ id: string }> }>().value.map((v) => v.id),
      [u.id],
    );
    for (const [payload, pattern] of [
      [{ userPrincipalName: `ada@${domain}` }, /already exists/],
      [{ userPrincipalName: 'eve@elsewhere.example' }, /domain portion/],
      [{ userPrincipalName: `.eve@${domain}` }, /userPrincipalName is invalid/],
      [{ userPrincipalName: `eve@${domain}`, passwordProfile: { password: 'password' } }, /complexity/],
    ] as const) {
      const r = await graph('POST', '/v1.0/users', admin, { displayName: 'Eve', passwordProfile: { password: PASSWORD }, ...payload });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.json<{ error: { code: string; message: string } }>().error.message, pattern);
    }
    const audit = await t.ctx.store.audit.list({ action: 'user.created', limit: 50 });
    assert.ok(!JSON.stringify(audit).includes(PASSWORD));
    assert.ok(!t.logLines.join('\n').includes(PASSWORD));
  });

  it("az's password grant on /adfs: Entra's user claims, an ID token with the /adfs document's issuer and client_info, a refresh token", async () => {
    const u = await createUser('grace');
    const r = await token(passwordForm(u.userPrincipalName.toUpperCase(), PASSWORD));
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json<TokenBody>();
    const claims = decodeJwt(body.access_token);
    assert.equal(claims['aud'], 'https://management.core.windows.net/');
    assert.equal(claims['oid'], u.id);
    assert.equal(claims['sub'], u.id);
    assert.equal(claims['tid'], t.tenantId);
    assert.equal(claims['idtyp'], 'user');
    assert.equal(claims['upn'], u.userPrincipalName);
    assert.equal(claims['preferred_username'], u.userPrincipalName);
    assert.equal(claims['name'], 'User grace');
    assert.equal(claims['scp'], 'user_impersonation');
    assert.equal(claims['appid'], AZ_CLI);
    assert.equal(claims['appidacr'], '0');
    assert.equal(claims['iss'], t.ctx.authority.v1Issuer(t.tenantId));
    const doc = (await t.app.inject({ method: 'GET', url: '/adfs/.well-known/openid-configuration', headers: { host: new URL(t.url).host } })).json<{
      issuer: string;
    }>();
    const idClaims = decodeJwt(body.id_token!);
    assert.equal(idClaims['iss'], doc.issuer);
    assert.equal(idClaims['aud'], AZ_CLI);
    assert.equal(idClaims['preferred_username'], u.userPrincipalName);
    assert.deepEqual(JSON.parse(Buffer.from(body.client_info!, 'base64url').toString()), { uid: u.id, utid: t.tenantId });
    assert.ok(body.refresh_token && body.refresh_token.length >= 40);
    assert.match(body.scope!, /management\.core\.windows\.net\/\/\.default/);
    // Stored as a hash only.
    assert.ok(!JSON.stringify(await t.ctx.store.audit.list({ limit: 200 })).includes(body.refresh_token));
    assert.ok(!t.logLines.join('\n').includes(body.refresh_token) && !t.logLines.join('\n').includes(PASSWORD));
  });

  it('refresh tokens rotate: a new one each time, for any resource; a replay is refused and revokes the family (AADSTS50173), audited', async () => {
    const u = await createUser('linus');
    const first = (await token(passwordForm(u.userPrincipalName, PASSWORD))).json<TokenBody>();
    const second = await token(refreshForm(first.refresh_token!));
    assert.equal(second.statusCode, 200, second.body);
    const rotated = second.json<TokenBody>();
    assert.equal(decodeJwt(rotated.access_token)['aud'], 'https://vault.azure.net');
    assert.notEqual(rotated.refresh_token, first.refresh_token);
    // Replaying the used token: refused, and the rotated one (same family) dies with it.
    const replay = await token(refreshForm(first.refresh_token!));
    assert.equal(replay.statusCode, 400);
    assert.equal(replay.json<TokenBody>().error, 'invalid_grant');
    assert.equal(aadsts(replay), 50173);
    const after = await token(refreshForm(rotated.refresh_token!));
    assert.equal(aadsts(after), 50173);
    const audit = await t.ctx.store.audit.list({ action: 'refreshToken.replayed', limit: 10 });
    assert.ok(audit.some((e) => e.actor === u.id));
    // Garbage and another client's use are refused.
    assert.equal(aadsts(await token(refreshForm('not-a-token'))), 9002313);
    const fresh = (await token(passwordForm(u.userPrincipalName, PASSWORD))).json<TokenBody>();
    const other = await token({ ...refreshForm(fresh.refresh_token!), client_id: '1950a258-227b-4e31-a9cf-717495945fc2' });
    assert.equal(aadsts(other), 700003);
  });

  it("a deleted user's refresh token is refused; a password change and a sign-out revoke them too", async () => {
    const u = await createUser('ken');
    const rt = () => token(passwordForm(u.userPrincipalName, PASSWORD)).then((r) => r.json<TokenBody>().refresh_token!);
    const a = await rt();
    const revoke = await graph('POST', `/v1.0/users/${u.id}/revokeSignInSessions`, admin);
    assert.equal(revoke.statusCode, 200, revoke.body);
    assert.equal(aadsts(await token(refreshForm(a))), 50173);

    const b = await rt();
    assert.equal((await graph('PATCH', `/v1.0/users/${u.id}`, admin, { passwordProfile: { password: 'N3w-Passw0rd!' } })).statusCode, 204);
    assert.equal(aadsts(await token(refreshForm(b))), 50173);
    assert.equal(aadsts(await token(passwordForm(u.userPrincipalName, PASSWORD))), 50126);
    const c = (await token(passwordForm(u.userPrincipalName, 'N3w-Passw0rd!'))).json<TokenBody>().refresh_token!;
    const access = (await token(passwordForm(u.userPrincipalName, 'N3w-Passw0rd!'))).json<TokenBody>().access_token;

    assert.equal((await graph('DELETE', `/v1.0/users/${u.id}`, admin)).statusCode, 204);
    assert.equal(aadsts(await token(refreshForm(c))), 50173);
    assert.equal(aadsts(await token(passwordForm(u.userPrincipalName, 'N3w-Passw0rd!'))), 50126);
    // Its access token no longer opens the management API.
    const sub = await t.app.inject({ method: 'GET', url: '/subscriptions?api-version=2019-11-01', headers: { authorization: `Bearer ${access}` } });
    assert.equal(sub.statusCode, 401, sub.body);
  });

  it('a wrong password: 400 AADSTS50126, nothing issued, audited; an unknown name is answered the same', async () => {
    const u = await createUser('barbara');
    const wrong = await token(passwordForm(u.userPrincipalName, 'Wr0ng-Password!'), source());
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json<TokenBody>().error, 'invalid_grant');
    assert.equal(aadsts(wrong), 50126);
    assert.match(wrong.json<TokenBody>().error_description!, /^AADSTS50126: Error validating credentials due to invalid username or password\./);
    const unknown = await token(passwordForm(`nobody@${domain}`, PASSWORD), source());
    assert.equal(unknown.statusCode, 400);
    assert.deepEqual(unknown.json<TokenBody>().error_codes, wrong.json<TokenBody>().error_codes);
    // Nothing issued to the user.
    assert.deepEqual(await t.ctx.store.audit.list({ action: 'token.issued', involving: [[u.id]], limit: 10 }), []);
    assert.ok((await t.ctx.store.audit.list({ action: 'user.signInFailed', limit: 100 })).some((e) => e.actor === u.id));
  });

  it('a lock: repeated wrong passwords lock the user for that source only (AADSTS50053, Retry-After), until the window ends', async () => {
    const u = await createUser('frances');
    const attacker = source();
    for (let i = 0; i < 3; i++) assert.equal(aadsts(await token(passwordForm(u.userPrincipalName, `Wr0ng-${String(i)}!x`), attacker)), 50126);
    const locked = await token(passwordForm(u.userPrincipalName, PASSWORD), attacker);
    assert.equal(locked.statusCode, 400);
    assert.equal(aadsts(locked), 50053);
    assert.ok(Number(locked.headers['retry-after']) >= 1);
    // The user, elsewhere, still signs in: the attacker cannot lock everyone out.
    assert.equal((await token(passwordForm(u.userPrincipalName, PASSWORD), source())).statusCode, 200);
    assert.ok((await t.ctx.store.audit.list({ action: 'user.locked', limit: 100 })).some((e) => e.actor === u.id));
    // The cool-down: the next window opens the lock.
    clock.set(Math.floor(clock.now() / MINUTE) * MINUTE + MINUTE + SECOND);
    assert.equal((await token(passwordForm(u.userPrincipalName, PASSWORD), attacker)).statusCode, 200);
  });

  it('disabled accounts (50057), forced password changes (50055), confidential or unknown clients (700016) are refused', async () => {
    const disabled = await createUser('dis', { accountEnabled: false });
    assert.equal(aadsts(await token(passwordForm(disabled.userPrincipalName, PASSWORD))), 50057);
    const forced = await createUser('forced', { passwordProfile: { password: PASSWORD, forceChangePasswordNextSignIn: true } });
    assert.equal(aadsts(await token(passwordForm(forced.userPrincipalName, PASSWORD))), 50055);
    const u = await createUser('client');
    const r = await token(passwordForm(u.userPrincipalName, PASSWORD, { client_id: t.admin.clientId }));
    assert.equal(r.json<TokenBody>().error, 'unauthorized_client');
    assert.equal(aadsts(r), 700016);
  });

  it("a user's token: /v1.0/me, ARM /tenants, and subscriptions only once RBAC grants a role (assignee by UPN's object id)", async () => {
    const u = await createUser('margaret');
    const get = (url: string, tok: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${tok}` } });
    const arm = (await token(passwordForm(u.userPrincipalName, PASSWORD))).json<TokenBody>().access_token;
    const graphToken = (await token(passwordForm(u.userPrincipalName, PASSWORD, { scope: `${t.url}/.default openid` }))).json<TokenBody>().access_token;
    const me = await get('/v1.0/me', graphToken);
    assert.equal(me.statusCode, 200, me.body);
    assert.equal(me.json<{ id: string }>().id, u.id);
    // A user without a directory role cannot list users.
    assert.equal((await get('/v1.0/users', graphToken)).statusCode, 403);
    const tenants = await get('/tenants?api-version=2019-11-01', arm);
    assert.equal(tenants.statusCode, 200, tenants.body);
    assert.equal(tenants.json<{ value: Array<{ tenantId: string }> }>().value[0]?.tenantId, t.tenantId);
    assert.deepEqual((await get('/subscriptions?api-version=2019-11-01', arm)).json<{ value: unknown[] }>().value, []);
    const scope = `/subscriptions/${t.subscriptionId}`;
    const put = await t.app.inject({
      method: 'PUT',
      url: `${scope}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}?api-version=2022-04-01`,
      headers: { authorization: `Bearer ${await t.adminToken('https://management.azure.com/')}`, 'content-type': 'application/json' },
      payload: JSON.stringify({
        properties: {
          roleDefinitionId: `${scope}/providers/Microsoft.Authorization/roleDefinitions/${BUILTIN_ROLE_IDS.Reader}`,
          principalId: u.id,
          principalType: 'User',
        },
      }),
    });
    assert.equal(put.statusCode, 201, put.body);
    const subs = await get('/subscriptions?api-version=2019-11-01', arm);
    assert.deepEqual(
      subs.json<{ value: Array<{ subscriptionId: string }> }>().value.map((s) => s.subscriptionId),
      [t.subscriptionId],
    );
    // An app-only token still gets Graph's 400 at /me.
    assert.equal((await get('/v1.0/me', admin)).statusCode, 400);
  });
});
