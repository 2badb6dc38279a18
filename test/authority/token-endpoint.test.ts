import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import { BACKENDS, registerTestApplication, startTestAuthority, type TestAuthority } from '../helpers/authority.js';
import { postForm, httpsRequest } from '../helpers/https.js';
import { createClientCertificate } from '../../src/pki/client-certificate.js';

const VAULT = 'https://vault.azure.net';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

for (const backend of BACKENDS) describe(`token endpoint (${backend})`, () => {
  let t: TestAuthority;
  let appId: string;
  let secret: string;
  let certPem: string;
  let keyPem: string;
  let v2: string;
  let v1: string;

  before(async () => {
    t = await startTestAuthority({ backend });
    ({ appId, secret, certPem, keyPem } = await registerTestApplication(t, 'token-test'));
    v2 = `${t.url}/${t.tenantId}/oauth2/v2.0/token`;
    v1 = `${t.url}/${t.tenantId}/oauth2/token`;
  });
  after(async () => {
    await t.close();
  });

  function assertion(options: { alg?: 'PS256' | 'RS256'; aud?: string; jti?: string; exp?: number; key?: KeyObject; header?: Record<string, unknown> } = {}) {
    const der = new X509Certificate(certPem).raw;
    const alg = options.alg ?? 'PS256';
    const header =
      options.header ??
      (alg === 'PS256'
        ? { alg, typ: 'JWT', 'x5t#S256': createHash('sha256').update(der).digest('base64url') }
        : { alg, typ: 'JWT', x5t: createHash('sha1').update(der).digest('base64url') });
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ jti: options.jti ?? randomUUID() })
      .setProtectedHeader(header as { alg: string })
      .setIssuer(appId)
      .setSubject(appId)
      .setAudience(options.aud ?? v2)
      .setNotBefore(now)
      .setIssuedAt(now)
      .setExpirationTime(options.exp ?? now + 600)
      .sign(options.key ?? createPrivateKey(keyPem));
  }

  function expectError(response: Awaited<ReturnType<typeof postForm>>, status: number, error: string, aadsts: number) {
    assert.equal(response.status, status, response.body);
    const body = response.json<{ error: string; error_description: string; error_codes: number[]; trace_id: string; correlation_id: string; timestamp: string }>();
    assert.equal(body.error, error);
    assert.match(body.error_description, new RegExp(`^AADSTS${String(aadsts)}: `));
    assert.deepEqual(body.error_codes, [aadsts]);
    assert.match(body.trace_id, /^[0-9a-f-]{36}$/);
    assert.match(body.correlation_id, /^[0-9a-f-]{36}$/);
    assert.match(body.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  }

  it('issues a v2 client_credentials token with a secret, with Entra claims', async () => {
    const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem);
    assert.equal(response.status, 200, response.body);
    assert.equal(response.headers['cache-control'], 'no-store, no-cache');
    assert.match(String(response.headers['x-ms-request-id']), /^[0-9a-f-]{36}$/);
    const body = response.json<{ token_type: string; expires_in: number; ext_expires_in: number; access_token: string }>();
    assert.equal(body.token_type, 'Bearer');
    assert.equal(typeof body.expires_in, 'number');
    assert.ok(body.expires_in > 3000 && body.expires_in <= 3600);
    const header = decodeProtectedHeader(body.access_token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'JWT');
    assert.equal(header.kid, header.x5t);
    const claims = decodeJwt(body.access_token);
    assert.equal(claims.aud, VAULT);
    assert.equal(claims.iss, `${t.url}/${t.tenantId}/`);
    assert.equal(claims['appid'], appId);
    assert.equal(claims['appidacr'], '1');
    assert.equal(claims['idtyp'], 'app');
    assert.equal(claims['tid'], t.tenantId);
    assert.equal(claims['ver'], '1.0');
    assert.equal(claims.sub, claims['oid']);
    assert.equal(claims.nbf, claims.iat);
    assert.equal(typeof claims['uti'], 'string');
    assert.equal(claims['xms_mirid'], undefined);
  });

  it('issues a v1 token for the seeds\' raw form POST, with string numbers and the resource echoed exactly', async () => {
    const response = await postForm(v1, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, resource: 'https://management.core.windows.net/' }, t.caPem);
    assert.equal(response.status, 200, response.body);
    const body = response.json<Record<string, unknown>>();
    for (const field of ['expires_in', 'ext_expires_in', 'expires_on', 'not_before']) {
      assert.equal(typeof body[field], 'string');
      assert.match(body[field] as string, /^\d+$/);
    }
    assert.equal(body['resource'], 'https://management.core.windows.net/');
    assert.equal(decodeJwt(body['access_token'] as string).aud, 'https://management.core.windows.net/');
  });

  it('keeps the trailing slash of a v2 scope like az does (//.default)', async () => {
    const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: 'https://management.core.windows.net//.default' }, t.caPem);
    assert.equal(response.status, 200, response.body);
    assert.equal(decodeJwt(response.json<{ access_token: string }>().access_token).aud, 'https://management.core.windows.net/');
  });

  it('echoes client-request-id as the correlation id, as Entra does for MSAL', async () => {
    const correlation = randomUUID();
    const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: 'wrong', scope: `${VAULT}/.default` }, t.caPem, { 'client-request-id': correlation });
    assert.equal(response.headers['client-request-id'], correlation);
    assert.equal(response.json<{ correlation_id: string }>().correlation_id, correlation);
  });

  it('accepts client_secret_basic and the tenant domain name', async () => {
    const basic = Buffer.from(`${appId}:${encodeURIComponent(secret)}`).toString('base64');
    const response = await postForm(`${t.url}/openmsi.local/oauth2/v2.0/token`, { grant_type: 'client_credentials', scope: `${VAULT}/.default` }, t.caPem, { authorization: `Basic ${basic}` });
    assert.equal(response.status, 200, response.body);
  });

  it('accepts PS256 (x5t#S256) and RS256 (x5t) client assertions and refuses a replay', async () => {
    for (const alg of ['PS256', 'RS256'] as const) {
      const jwt = await assertion({ alg });
      const form = { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` };
      const first = await postForm(v2, form, t.caPem);
      assert.equal(first.status, 200, first.body);
      assert.equal(decodeJwt(first.json<{ access_token: string }>().access_token)['appidacr'], '2');
      expectError(await postForm(v2, form, t.caPem), 401, 'invalid_client', 700229);
    }
  });

  describe('bad input gets a clear, correctly coded error and the server keeps serving', () => {
    it('wrong secret', async () => {
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: 'not-the-secret', scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 7000215);
    });
    it('unknown client', async () => {
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: randomUUID(), client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'unauthorized_client', 700016);
    });
    it('unknown tenant', async () => {
      expectError(await postForm(`${t.url}/${randomUUID()}/oauth2/v2.0/token`, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 90002);
    });
    it('common is not a tenant for client credentials', async () => {
      expectError(await postForm(`${t.url}/common/oauth2/v2.0/token`, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 90014);
    });
    it('missing grant_type, client_id, credential', async () => {
      expectError(await postForm(v2, { client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 900144);
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 900144);
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 7000218);
    });
    it('malformed bodies: duplicate parameter, JSON, not a form', async () => {
      const dup = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${appId}&client_id=${appId}&client_secret=x&scope=a` });
      expectError(dup, 400, 'invalid_request', 90015);
      const json = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials' }) });
      expectError(json, 400, 'invalid_request', 900561);
      const brokenJson = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
      expectError(brokenJson, 400, 'invalid_request', 900561);
      const text = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'text/plain' }, body: 'hello' });
      expectError(text, 400, 'invalid_request', 900561);
      const empty = await httpsRequest(v2, { method: 'POST', ca: t.caPem });
      expectError(empty, 400, 'invalid_request', 900144);
    });
    it('oversized body', async () => {
      const big = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&pad=${'a'.repeat(200 * 1024)}` });
      expectError(big, 413, 'invalid_request', 900561);
    });
    it('unsupported grant', async () => {
      expectError(await postForm(v2, { grant_type: 'password', client_id: appId, username: 'u', password: 'p', scope: `${VAULT}/.default` }, t.caPem), 400, 'unsupported_grant_type', 70003);
    });
    it('scope without /.default, several scopes, and a resource that is not a URI', async () => {
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: VAULT }, t.caPem), 400, 'invalid_scope', 1002012);
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default https://graph.microsoft.com/.default` }, t.caPem), 400, 'invalid_scope', 1002012);
      expectError(await postForm(v1, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, resource: 'not a uri' }, t.caPem), 400, 'invalid_resource', 500011);
    });
    it('malformed assertion', async () => {
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: 'abc.def', scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 50027);
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: 'urn:other', client_assertion: await assertion(), scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 50027);
    });
    it('expired assertion', async () => {
      const now = Math.floor(Date.now() / 1000);
      const jwt = await assertion({ exp: now - 3600 });
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 700024);
    });
    it('assertion signed by an unregistered key', async () => {
      const other = await createClientCertificate({ commonName: 'stranger', years: 1, clock: t.ctx.clock });
      const otherDer = new X509Certificate(other.certPem).raw;
      const jwt = await assertion({ key: createPrivateKey(other.keyPem), header: { alg: 'PS256', 'x5t#S256': createHash('sha256').update(otherDer).digest('base64url') } });
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 700027);
      // The registered thumbprint, but a signature from another key.
      const forged = await assertion({ key: createPrivateKey(other.keyPem) });
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: forged, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 700027);
    });
    it('assertions with a forbidden algorithm, the wrong audience, or another client', async () => {
      const hs = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'HS256' }).setIssuer(appId).setSubject(appId).setAudience(v2).setExpirationTime('10m').sign(new Uint8Array(32));
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: hs, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 5002738);
      const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: appId, sub: appId, aud: v2, exp: 9999999999, jti: 'x' })).toString('base64url')}.`;
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: none, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 5002738);
      const wrongAud = await assertion({ aud: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' });
      expectError(await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: wrongAud, scope: `${VAULT}/.default` }, t.caPem), 401, 'invalid_client', 50013);
      const { privateKey } = await generateKeyPair('ES256');
      void privateKey;
    });
    it('still serves after all of that', async () => {
      const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem);
      assert.equal(response.status, 200);
    });
  });

  it('audits issuance and refusals without secrets, and never logs secrets, assertions or tokens', async () => {
    const jwt = await assertion();
    const ok = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` }, t.caPem);
    const token = ok.json<{ access_token: string }>().access_token;
    await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: `${secret}x`, scope: `${VAULT}/.default` }, t.caPem);
    await t.ctx.audit.flush();
    const events = await t.ctx.store.audit.list({ limit: 500 });
    assert.ok(events.some((e) => e.action === 'token.issued' && e.target === VAULT));
    assert.ok(events.some((e) => e.action === 'token.denied' && e.detail['aadsts'] === 7000215));
    const everything = JSON.stringify(events) + t.logLines.join('\n');
    assert.ok(t.logLines.length > 0, 'the authority logged something');
    for (const needle of [secret, jwt, token, jwt.split('.')[2]!, token.split('.')[2]!]) {
      assert.equal(everything.includes(needle), false, 'a credential leaked into logs or audit');
    }
  });
});
