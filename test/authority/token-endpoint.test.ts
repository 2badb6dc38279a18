import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomUUID, X509Certificate, type KeyObject } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader } from 'jose';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority, acrossBackends } from '../support/authority.js';
import { postForm, httpsRequest } from '../support/https.js';
import { createClientCertificate } from '../../src/pki/client-certificate.js';
import { DAY, FakeClock } from '../../src/shared/clock.js';
import { addCertificateCredential, addPasswordCredential } from '../../src/directory/credentials.js';
import { createApplicationPrincipal } from '../../src/directory/principals.js';
import { putResourceGroup, putUserAssignedIdentity } from '../../src/directory/resources.js';

const VAULT = 'https://vault.azure.net';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

acrossBackends('token endpoint', (backend) => {
  describe(`token endpoint (${backend})`, backendSuiteOptions(backend), () => {
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

    /** An assertion with the given claims (`undefined` leaves a claim out), signed with `cert` (default: the app's certificate). */
    async function signedAssertion(claims: Record<string, unknown>, cert: { certPem: string; keyPem: string } = { certPem, keyPem }) {
      const der = new X509Certificate(cert.certPem).raw;
      const now = Math.floor(Date.now() / 1000);
      const payload: Record<string, unknown> = { iss: appId, sub: appId, aud: v2, jti: randomUUID(), nbf: now, iat: now, exp: now + 600, ...claims };
      for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': createHash('sha256').update(der).digest('base64url') })
        .sign(createPrivateKey(cert.keyPem));
    }

    function expectError(response: Awaited<ReturnType<typeof postForm>>, status: number, error: string, aadsts: number) {
      assert.equal(response.status, status, response.body);
      const body = response.json<{
        error: string;
        error_description: string;
        error_codes: number[];
        trace_id: string;
        correlation_id: string;
        timestamp: string;
      }>();
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

    it("issues a v1 token for the seeds' raw form POST, with string numbers and the resource echoed exactly", async () => {
      const response = await postForm(
        v1,
        { grant_type: 'client_credentials', client_id: appId, client_secret: secret, resource: 'https://management.core.windows.net/' },
        t.caPem,
      );
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
      const response = await postForm(
        v2,
        { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: 'https://management.core.windows.net//.default' },
        t.caPem,
      );
      assert.equal(response.status, 200, response.body);
      assert.equal(decodeJwt(response.json<{ access_token: string }>().access_token).aud, 'https://management.core.windows.net/');
    });

    it('echoes client-request-id as the correlation id, as Entra does for MSAL', async () => {
      const correlation = randomUUID();
      const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: 'wrong', scope: `${VAULT}/.default` }, t.caPem, {
        'client-request-id': correlation,
      });
      assert.equal(response.headers['client-request-id'], correlation);
      assert.equal(response.json<{ correlation_id: string }>().correlation_id, correlation);
    });

    it('accepts client_secret_basic and the tenant domain name', async () => {
      const basic = Buffer.from(`${appId}:${encodeURIComponent(secret)}`).toString('base64');
      const response = await postForm(`${t.url}/openmsi.local/oauth2/v2.0/token`, { grant_type: 'client_credentials', scope: `${VAULT}/.default` }, t.caPem, {
        authorization: `Basic ${basic}`,
      });
      assert.equal(response.status, 200, response.body);
      // The form may repeat the same client id.
      const repeated = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, scope: `${VAULT}/.default` }, t.caPem, {
        authorization: `Basic ${basic}`,
      });
      assert.equal(repeated.status, 200, repeated.body);
    });

    it('accepts PS256 (x5t#S256) and RS256 (x5t) client assertions and refuses a replay', async () => {
      for (const alg of ['PS256', 'RS256'] as const) {
        const jwt = await assertion({ alg });
        const form = {
          grant_type: 'client_credentials',
          client_id: appId,
          client_assertion_type: JWT_BEARER,
          client_assertion: jwt,
          scope: `${VAULT}/.default`,
        };
        const first = await postForm(v2, form, t.caPem);
        assert.equal(first.status, 200, first.body);
        assert.equal(decodeJwt(first.json<{ access_token: string }>().access_token)['appidacr'], '2');
        expectError(await postForm(v2, form, t.caPem), 401, 'invalid_client', 700229);
      }
    });

    it('finds the certificate by a kid holding its SHA-1 or SHA-256 thumbprint in hex, in either case', async () => {
      const der = new X509Certificate(certPem).raw;
      for (const kid of [createHash('sha1').update(der).digest('hex').toUpperCase(), createHash('sha256').update(der).digest('hex')]) {
        const jwt = await assertion({ header: { alg: 'PS256', typ: 'JWT', kid } });
        const response = await postForm(
          v2,
          { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
          t.caPem,
        );
        assert.equal(response.status, 200, response.body);
      }
      // A kid, x5t or x5t#S256 naming no registered certificate finds nothing.
      for (const header of [
        { kid: 'ab'.repeat(20) },
        { x5t: Buffer.alloc(20, 1).toString('base64url') },
        { 'x5t#S256': Buffer.alloc(32, 1).toString('base64url') },
      ]) {
        const jwt = await assertion({ header: { alg: 'PS256', typ: 'JWT', ...header } });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          700027,
        );
      }
    });

    it('accepts an assertion addressed to either token endpoint or issuer of the tenant, by id or domain', async () => {
      const audiences = [
        v1,
        `${t.url}/openmsi.local/oauth2/v2.0/token`,
        `${t.url}/openmsi.local/oauth2/token`,
        `${t.url}/${t.tenantId}/`,
        `${t.url}/${t.tenantId}/v2.0`,
      ];
      for (const aud of audiences) {
        const response = await postForm(
          v2,
          {
            grant_type: 'client_credentials',
            client_id: appId,
            client_assertion_type: JWT_BEARER,
            client_assertion: await signedAssertion({ aud }),
            scope: `${VAULT}/.default`,
          },
          t.caPem,
        );
        assert.equal(response.status, 200, `${aud}: ${response.body}`);
      }
    });

    describe('bad input gets a clear, correctly coded error and the server keeps serving', () => {
      it('wrong secret', async () => {
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: 'not-the-secret', scope: `${VAULT}/.default` }, t.caPem),
          401,
          'invalid_client',
          7000215,
        );
      });
      it('unknown client', async () => {
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: randomUUID(), client_secret: secret, scope: `${VAULT}/.default` }, t.caPem),
          400,
          'unauthorized_client',
          700016,
        );
      });
      it('unknown tenant', async () => {
        expectError(
          await postForm(
            `${t.url}/${randomUUID()}/oauth2/v2.0/token`,
            { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'invalid_request',
          90002,
        );
      });
      it('common is not a tenant for client credentials', async () => {
        expectError(
          await postForm(
            `${t.url}/common/oauth2/v2.0/token`,
            { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'invalid_request',
          90014,
        );
      });
      it('missing grant_type, client_id, credential', async () => {
        expectError(await postForm(v2, { client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem), 400, 'invalid_request', 900144);
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_secret: secret, scope: `${VAULT}/.default` }, t.caPem),
          400,
          'invalid_request',
          900144,
        );
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, scope: `${VAULT}/.default` }, t.caPem),
          401,
          'invalid_client',
          7000218,
        );
      });
      it('malformed bodies: duplicate parameter, JSON, not a form', async () => {
        const dup = await httpsRequest(v2, {
          method: 'POST',
          ca: t.caPem,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=client_credentials&client_id=${appId}&client_id=${appId}&client_secret=x&scope=a`,
        });
        expectError(dup, 400, 'invalid_request', 90015);
        const json = await httpsRequest(v2, {
          method: 'POST',
          ca: t.caPem,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials' }),
        });
        expectError(json, 400, 'invalid_request', 900561);
        const brokenJson = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'application/json' }, body: '{"grant_type":' });
        expectError(brokenJson, 400, 'invalid_request', 900561);
        const text = await httpsRequest(v2, { method: 'POST', ca: t.caPem, headers: { 'content-type': 'text/plain' }, body: 'hello' });
        expectError(text, 400, 'invalid_request', 900561);
        const empty = await httpsRequest(v2, { method: 'POST', ca: t.caPem });
        expectError(empty, 400, 'invalid_request', 900144);
      });
      it('oversized body', async () => {
        const big = await httpsRequest(v2, {
          method: 'POST',
          ca: t.caPem,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `grant_type=client_credentials&pad=${'a'.repeat(200 * 1024)}`,
        });
        expectError(big, 413, 'invalid_request', 900561);
      });
      it('unsupported grant', async () => {
        expectError(
          await postForm(
            v2,
            { grant_type: 'urn:ietf:params:oauth:grant-type:saml2-bearer', client_id: appId, assertion: 'a', scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'unsupported_grant_type',
          70003,
        );
        // The password grant is for public clients: an application's client id is refused (users' grants: user-grants.test.ts).
        expectError(
          await postForm(v2, { grant_type: 'password', client_id: appId, username: 'u', password: 'p', scope: `${VAULT}/.default` }, t.caPem),
          400,
          'unauthorized_client',
          700016,
        );
      });
      it('scope without /.default, several scopes, and a resource that is not a URI', async () => {
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: VAULT }, t.caPem),
          400,
          'invalid_scope',
          1002012,
        );
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default https://graph.microsoft.com/.default` },
            t.caPem,
          ),
          400,
          'invalid_scope',
          1002012,
        );
        expectError(
          await postForm(v1, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, resource: 'not a uri' }, t.caPem),
          400,
          'invalid_resource',
          500011,
        );
      });
      it('malformed assertion', async () => {
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: 'abc.def', scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'invalid_request',
          50027,
        );
        expectError(
          await postForm(
            v2,
            {
              grant_type: 'client_credentials',
              client_id: appId,
              client_assertion_type: 'urn:other',
              client_assertion: await assertion(),
              scope: `${VAULT}/.default`,
            },
            t.caPem,
          ),
          400,
          'invalid_request',
          50027,
        );
      });
      it('expired assertion', async () => {
        const now = Math.floor(Date.now() / 1000);
        const jwt = await assertion({ exp: now - 3600 });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          700024,
        );
      });
      it('assertion signed by an unregistered key', async () => {
        const other = await createClientCertificate({ commonName: 'stranger', years: 1, clock: t.ctx.clock });
        const otherDer = new X509Certificate(other.certPem).raw;
        const jwt = await assertion({
          key: createPrivateKey(other.keyPem),
          header: { alg: 'PS256', 'x5t#S256': createHash('sha256').update(otherDer).digest('base64url') },
        });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          700027,
        );
        // The registered thumbprint, but a signature from another key.
        const forged = await assertion({ key: createPrivateKey(other.keyPem) });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: forged, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          700027,
        );
      });
      it('assertions with a forbidden algorithm or the wrong audience', async () => {
        const hs = await new SignJWT({ jti: randomUUID() })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer(appId)
          .setSubject(appId)
          .setAudience(v2)
          .setExpirationTime('10m')
          .sign(new Uint8Array(32));
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: hs, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          5002738,
        );
        const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: appId, sub: appId, aud: v2, exp: 9999999999, jti: 'x' })).toString('base64url')}.`;
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: none, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          5002738,
        );
        const wrongAud = await assertion({ aud: 'https://login.microsoftonline.com/x/oauth2/v2.0/token' });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: wrongAud, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          50013,
        );
      });
      it("assertions whose iss or sub name another client, even one signed with the client's own registered certificate", async () => {
        const other = await registerTestApplication(t, 'token-test-other', { certificate: false });
        for (const [iss, sub] of [
          [other.appId, other.appId],
          [appId, other.appId],
          [other.appId, appId],
        ] as const) {
          const jwt = await signedAssertion({ iss, sub });
          expectError(
            await postForm(
              v2,
              { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
              t.caPem,
            ),
            401,
            'invalid_client',
            700021,
          );
        }
        // The same assertion presented as the other client: the certificate is not the other client's.
        const asOther = await signedAssertion({ iss: other.appId, sub: other.appId });
        expectError(
          await postForm(
            v2,
            {
              grant_type: 'client_credentials',
              client_id: other.appId,
              client_assertion_type: JWT_BEARER,
              client_assertion: asOther,
              scope: `${VAULT}/.default`,
            },
            t.caPem,
          ),
          401,
          'invalid_client',
          700027,
        );
      });
      it('assertions without jti, without exp, or valid for longer than 24 hours', async () => {
        const now = Math.floor(Date.now() / 1000);
        const cases: [string, Record<string, unknown>][] = [
          ['no jti', { jti: undefined }],
          ['empty jti', { jti: '' }],
          ['no exp', { exp: undefined }],
          ['25 hours from nbf', { nbf: now, exp: now + 25 * 3600 }],
          ['24 hours and a second from nbf', { nbf: now, exp: now + 24 * 3600 + 1 }],
          ['25 hours from now, no nbf', { nbf: undefined, exp: now + 25 * 3600 }],
          // The cap counts from nbf, not from now: an nbf an hour ago with exp 23.5 hours ahead lives 24.5 hours.
          ['24.5 hours from an nbf in the past', { nbf: now - 3600, exp: now + 23.5 * 3600 }],
        ];
        for (const [name, claims] of cases) {
          const response = await postForm(
            v2,
            {
              grant_type: 'client_credentials',
              client_id: appId,
              client_assertion_type: JWT_BEARER,
              client_assertion: await signedAssertion(claims),
              scope: `${VAULT}/.default`,
            },
            t.caPem,
          );
          assert.equal(response.status, 400, `${name}: ${response.body}`);
          expectError(response, 400, 'invalid_request', 50027);
        }
        // Exactly 24 hours is the cap, and is accepted.
        const longest = await signedAssertion({ nbf: now, exp: now + 24 * 3600 });
        const ok = await postForm(
          v2,
          { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: longest, scope: `${VAULT}/.default` },
          t.caPem,
        );
        assert.equal(ok.status, 200, ok.body);
      });
      it('assertions not valid yet, with no audience, or with a list of audiences', async () => {
        const now = Math.floor(Date.now() / 1000);
        const form = (jwt: string) => ({
          grant_type: 'client_credentials',
          client_id: appId,
          client_assertion_type: JWT_BEARER,
          client_assertion: jwt,
          scope: `${VAULT}/.default`,
        });
        expectError(await postForm(v2, form(await signedAssertion({ nbf: now + 3600, exp: now + 7200 })), t.caPem), 401, 'invalid_client', 700024);
        expectError(await postForm(v2, form(await signedAssertion({ aud: undefined })), t.caPem), 401, 'invalid_client', 50013);
        expectError(await postForm(v2, form(await signedAssertion({ aud: ['https://elsewhere.example/token'] })), t.caPem), 401, 'invalid_client', 50013);
        // A list that includes this token endpoint is accepted, as by Entra.
        const listed = await postForm(v2, form(await signedAssertion({ aud: ['https://elsewhere.example/token', v2] })), t.caPem);
        assert.equal(listed.status, 200, listed.body);
      });
      it('a replay is refused after the replay store is purged, until the assertion has expired', async () => {
        const jwt = await signedAssertion({ exp: Math.floor(Date.now() / 1000) + 600 });
        const form = {
          grant_type: 'client_credentials',
          client_id: appId,
          client_assertion_type: JWT_BEARER,
          client_assertion: jwt,
          scope: `${VAULT}/.default`,
        };
        assert.equal((await postForm(v2, form, t.caPem)).status, 200);
        // A purge that runs while the assertion is still valid (here: 9 minutes from now) must keep its record.
        await t.ctx.store.replay.purgeExpired(Date.now() + 9 * 60_000);
        expectError(await postForm(v2, form, t.caPem), 401, 'invalid_client', 700229);
      });
      it('an expired or not yet valid client secret (AADSTS7000222)', async () => {
        const past = new FakeClock(Date.now() - 2 * 365 * DAY);
        const expired = await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId, clock: past, years: 1 });
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: expired.secretText, scope: `${VAULT}/.default` }, t.caPem),
          401,
          'invalid_client',
          7000222,
        );
        // Expired a second ago.
        const justExpired = await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId, clock: past, endAt: Date.now() - 1000 });
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: appId, client_secret: justExpired.secretText, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          401,
          'invalid_client',
          7000222,
        );
        const future = new FakeClock(Date.now() + DAY);
        const notYet = await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId, clock: future });
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: notYet.secretText, scope: `${VAULT}/.default` }, t.caPem),
          401,
          'invalid_client',
          7000222,
        );
        // The app's current secret still works.
        assert.equal(
          (await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem)).status,
          200,
        );
      });
      it("a certificate credential outside its validity window, or outside the certificate's", async () => {
        const app = await registerTestApplication(t, 'token-test-cert-window', { certificate: false });
        const tryCert = async (cert: { certPem: string; keyPem: string }) => {
          const jwt = await signedAssertion({ iss: app.appId, sub: app.appId }, cert);
          return postForm(
            v2,
            { grant_type: 'client_credentials', client_id: app.appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
            t.caPem,
          );
        };
        // A certificate that expired (registered while it was valid).
        const past = new FakeClock(Date.now() - 2 * 365 * DAY);
        const old = await createClientCertificate({ commonName: 'expired', years: 1, clock: past });
        await addCertificateCredential(t.ctx.store, { appId: app.appId, certificatePem: old.certPem, clock: past });
        expectError(await tryCert(old), 401, 'invalid_client', 700027);
        // A certificate not valid yet.
        const future = await createClientCertificate({ commonName: 'future', years: 1, clock: new FakeClock(Date.now() + 2 * DAY) });
        await addCertificateCredential(t.ctx.store, { appId: app.appId, certificatePem: future.certPem, clock: t.ctx.clock });
        expectError(await tryCert(future), 401, 'invalid_client', 700027);
        // A credential row whose window is wider than its certificate's, and a valid certificate whose credential
        // window is over or not begun: both windows must hold.
        const current = () => createClientCertificate({ commonName: 'narrow', years: 1, clock: t.ctx.clock });
        const rows: [{ certPem: string; keyPem: string }, number, number][] = [
          [await createClientCertificate({ commonName: 'expired-wide', years: 1, clock: past }), Date.now() - 3 * 365 * DAY, Date.now() + DAY],
          [
            await createClientCertificate({ commonName: 'future-wide', years: 1, clock: new FakeClock(Date.now() + 2 * DAY) }),
            Date.now() - DAY,
            Date.now() + 365 * DAY,
          ],
          [await current(), Date.now() - 2 * DAY, Date.now() - DAY],
          [await current(), Date.now() + DAY, Date.now() + 2 * DAY],
        ];
        for (const [cert, startAt, endAt] of rows) {
          const der = new X509Certificate(cert.certPem).raw;
          await t.ctx.store.credentials.add({
            keyId: randomUUID(),
            appId: app.appId,
            type: 'AsymmetricX509Cert',
            displayName: 'narrow',
            hint: null,
            secretHash: null,
            thumbprintSha1: createHash('sha1').update(der).digest('hex'),
            thumbprintSha256: createHash('sha256').update(der).digest('hex'),
            certificate: der.toString('base64'),
            startAt,
            endAt,
            createdAt: Date.now(),
          });
          expectError(await tryCert(cert), 401, 'invalid_client', 700027);
        }
        // The same path accepts a certificate inside both windows.
        const good = await createClientCertificate({ commonName: 'good', years: 1, clock: t.ctx.clock });
        await addCertificateCredential(t.ctx.store, { appId: app.appId, certificatePem: good.certPem, clock: t.ctx.clock });
        assert.equal((await tryCert(good)).status, 200);
      });
      it("a secret and an assertion together, and a managed identity's client id used as an application's", async () => {
        expectError(
          await postForm(
            v2,
            {
              grant_type: 'client_credentials',
              client_id: appId,
              client_secret: secret,
              client_assertion_type: JWT_BEARER,
              client_assertion: await signedAssertion({}),
              scope: `${VAULT}/.default`,
            },
            t.caPem,
          ),
          400,
          'invalid_request',
          7000216,
        );
        await putResourceGroup(t.ctx.store, { subscriptionId: t.subscriptionId, name: 'token-test-mi', location: 'local', clock: t.ctx.clock });
        const identity = await putUserAssignedIdentity(t.ctx.store, {
          subscriptionId: t.subscriptionId,
          resourceGroup: 'token-test-mi',
          name: 'not-an-app',
          clock: t.ctx.clock,
        });
        // A managed identity is not a confidential client, whatever it is sent: it is not found as one.
        expectError(
          await postForm(
            v2,
            { grant_type: 'client_credentials', client_id: identity.principal.appId, client_secret: secret, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'unauthorized_client',
          700016,
        );
      });
      it('HTTP Basic naming one client and the form another', async () => {
        const other = await registerTestApplication(t, 'token-test-basic-other', { certificate: false });
        const basic = Buffer.from(`${appId}:${encodeURIComponent(secret)}`).toString('base64');
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: other.appId, scope: `${VAULT}/.default` }, t.caPem, {
            authorization: `Basic ${basic}`,
          }),
          401,
          'invalid_client',
          700021,
        );
        const otherBasic = Buffer.from(`${other.appId}:${encodeURIComponent(other.secret)}`).toString('base64');
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: appId, scope: `${VAULT}/.default` }, t.caPem, {
            authorization: `Basic ${otherBasic}`,
          }),
          401,
          'invalid_client',
          700021,
        );
      });
      it("a client of one tenant gets no token at another tenant's endpoint, and each gets its own tid", async () => {
        const tenantB = { id: randomUUID(), displayName: 'second', defaultDomain: `second-${randomUUID().slice(0, 8)}.local`, createdAt: Date.now() };
        await t.ctx.store.tenants.create(tenantB);
        const principalB = await createApplicationPrincipal(t.ctx.store, { tenantId: tenantB.id, displayName: 'tenant-b-app', clock: t.ctx.clock });
        const secretB = (await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId: principalB.appId, clock: t.ctx.clock })).secretText;
        const v2B = `${t.url}/${tenantB.id}/oauth2/v2.0/token`;
        expectError(
          await postForm(v2B, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem),
          400,
          'unauthorized_client',
          700016,
        );
        expectError(
          await postForm(
            `${t.url}/${tenantB.defaultDomain}/oauth2/v2.0/token`,
            { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` },
            t.caPem,
          ),
          400,
          'unauthorized_client',
          700016,
        );
        expectError(
          await postForm(v2, { grant_type: 'client_credentials', client_id: principalB.appId, client_secret: secretB, scope: `${VAULT}/.default` }, t.caPem),
          400,
          'unauthorized_client',
          700016,
        );
        // An assertion addressed to tenant B's endpoint, presented at B, for a client of A.
        const crossAssertion = await signedAssertion({ aud: v2B });
        expectError(
          await postForm(
            v2B,
            {
              grant_type: 'client_credentials',
              client_id: appId,
              client_assertion_type: JWT_BEARER,
              client_assertion: crossAssertion,
              scope: `${VAULT}/.default`,
            },
            t.caPem,
          ),
          400,
          'unauthorized_client',
          700016,
        );
        const own = await postForm(
          v2B,
          { grant_type: 'client_credentials', client_id: principalB.appId, client_secret: secretB, scope: `${VAULT}/.default` },
          t.caPem,
        );
        assert.equal(own.status, 200, own.body);
        const claims = decodeJwt(own.json<{ access_token: string }>().access_token);
        assert.equal(claims['tid'], tenantB.id);
        assert.equal(claims.iss, `${t.url}/${tenantB.id}/`);
      });
      it('still serves after all of that', async () => {
        const response = await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${VAULT}/.default` }, t.caPem);
        assert.equal(response.status, 200);
      });
    });

    it('audits issuance and refusals without secrets, and never logs secrets, assertions or tokens', async () => {
      const jwt = await assertion();
      const ok = await postForm(
        v2,
        { grant_type: 'client_credentials', client_id: appId, client_assertion_type: JWT_BEARER, client_assertion: jwt, scope: `${VAULT}/.default` },
        t.caPem,
      );
      const token = ok.json<{ access_token: string }>().access_token;
      await postForm(v2, { grant_type: 'client_credentials', client_id: appId, client_secret: `${secret}x`, scope: `${VAULT}/.default` }, t.caPem);
      await t.ctx.audit.flush();
      const events = await t.ctx.store.audit.list({ limit: 500 });
      assert.ok(events.some((e) => e.action === 'token.issued' && e.target === VAULT));
      // The audit row names how the client authenticated, and with which credential.
      const issuedRow = events.find((e) => e.action === 'token.issued' && e.detail['tokenId'] === decodeJwt(token)['uti']);
      assert.equal(issuedRow?.detail['credentialType'], 'certificate');
      const credentials = await t.ctx.store.credentials.listByApp(appId);
      assert.equal(credentials.find((c) => c.keyId === issuedRow?.detail['credentialId'])?.type, 'AsymmetricX509Cert');
      assert.ok(events.some((e) => e.action === 'token.denied' && e.detail['aadsts'] === 7000215));
      const everything = JSON.stringify(events) + t.logLines.join('\n');
      assert.ok(t.logLines.length > 0, 'the authority logged something');
      for (const needle of [secret, jwt, token, jwt.split('.')[2]!, token.split('.')[2]!]) {
        assert.equal(everything.includes(needle), false, 'a credential leaked into logs or audit');
      }
    });
  });
});
