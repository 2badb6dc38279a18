import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { httpsRequest } from '../support/https.js';

describe('discovery, JWKS and instance discovery', () => {
  let t: TestAuthority;
  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  it('serves the v2 document with an issuer on the authority origin and every field msal requires', async () => {
    for (const segment of [t.tenantId, 'openmsi.local']) {
      const response = await httpsRequest(`${t.url}/${segment}/v2.0/.well-known/openid-configuration`, { ca: t.caPem });
      assert.equal(response.status, 200);
      const doc = response.json<Record<string, string>>();
      assert.equal(doc['issuer'], `${t.url}/${t.tenantId}/v2.0`);
      assert.equal(doc['token_endpoint'], `${t.url}/${t.tenantId}/oauth2/v2.0/token`);
      assert.equal(doc['authorization_endpoint'], `${t.url}/${t.tenantId}/oauth2/v2.0/authorize`);
      assert.equal(doc['jwks_uri'], `${t.url}/${segment}/discovery/v2.0/keys`);
    }
    const common = (await httpsRequest(`${t.url}/common/v2.0/.well-known/openid-configuration`, { ca: t.caPem })).json<Record<string, string>>();
    assert.equal(common['issuer'], `${t.url}/{tenantid}/v2.0`);
  });

  it("serves the v1 document whose issuer is the access tokens' iss", async () => {
    const doc = (await httpsRequest(`${t.url}/${t.tenantId}/.well-known/openid-configuration`, { ca: t.caPem })).json<Record<string, string>>();
    assert.equal(doc['issuer'], `${t.url}/${t.tenantId}/`);
    assert.equal(doc['token_endpoint'], `${t.url}/${t.tenantId}/oauth2/token`);
  });

  it('publishes the current and next signing keys with kid = x5t = the certificate thumbprint', async () => {
    const response = await httpsRequest(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem });
    assert.equal(response.status, 200);
    assert.match(String(response.headers['cache-control']), /max-age=3600/);
    const { keys } = response.json<{ keys: Record<string, unknown>[] }>();
    assert.equal(keys.length, 2, 'current + pre-published next key');
    for (const key of keys) {
      assert.equal(key['kty'], 'RSA');
      assert.equal(key['use'], 'sig');
      assert.equal(key['e'], 'AQAB');
      assert.equal(key['kid'], key['x5t']);
      const [der] = key['x5c'] as string[];
      const thumbprint = createHash('sha1').update(Buffer.from(der!, 'base64')).digest('base64url');
      assert.equal(key['x5t'], thumbprint);
      assert.ok(new X509Certificate(Buffer.from(der!, 'base64')).publicKey.asymmetricKeyType === 'rsa');
      assert.equal(key['d'], undefined, 'never private material');
    }
    const v1 = await httpsRequest(`${t.url}/${t.tenantId}/discovery/keys`, { ca: t.caPem });
    assert.deepEqual(v1.json(), response.json());
  });

  it('answers MSAL instance discovery for its own host only', async () => {
    const authorize = encodeURIComponent(`${t.url}/${t.tenantId}/oauth2/v2.0/authorize`);
    const ok = await httpsRequest(`${t.url}/common/discovery/instance?api-version=1.1&authorization_endpoint=${authorize}`, { ca: t.caPem });
    assert.equal(ok.status, 200);
    const body = ok.json<{ tenant_discovery_endpoint: string; metadata: { aliases: string[] }[] }>();
    assert.equal(body.tenant_discovery_endpoint, `${t.url}/${t.tenantId}/v2.0/.well-known/openid-configuration`);
    assert.deepEqual(body.metadata[0]!.aliases, [new URL(t.url).host]);
    const foreign = await httpsRequest(
      `${t.url}/common/discovery/instance?authorization_endpoint=${encodeURIComponent('https://evil.example/x/oauth2/v2.0/authorize')}`,
      { ca: t.caPem },
    );
    assert.equal(foreign.status, 400);
    assert.equal(foreign.json<{ error: string }>().error, 'invalid_request');
  });

  it('answers an unknown tenant with an Entra-shaped 400', async () => {
    const response = await httpsRequest(`${t.url}/${randomUUID()}/v2.0/.well-known/openid-configuration`, { ca: t.caPem });
    assert.equal(response.status, 400);
    const body = response.json<{ error: string; error_codes: number[] }>();
    assert.equal(body.error, 'invalid_request');
    assert.deepEqual(body.error_codes, [90002]);
  });

  it('sends no CORS headers and refuses plain HTTP', async () => {
    const response = await httpsRequest(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem, headers: { origin: 'https://evil.example' } });
    assert.equal(response.headers['access-control-allow-origin'], undefined);
    const { request } = await import('node:http');
    const plain = await new Promise<string>((resolve) => {
      const req = request(t.url.replace('https:', 'http:'), { timeout: 5000 }, (res) => resolve(`status ${String(res.statusCode)}`));
      req.on('error', (err) => resolve(`error ${err.message}`));
      req.end();
    });
    assert.doesNotMatch(plain, /status 200/);
  });
});
