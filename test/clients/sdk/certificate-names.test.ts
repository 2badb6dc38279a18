import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { request } from 'node:https';
import { createServer, isIP } from 'node:net';
import { promisify } from 'node:util';
import { SignJWT, decodeJwt } from 'jose';
import {
  backendSuiteOptions,
  registerTestApplication,
  startTestAuthority,
  type TestApplication,
  type TestAuthority,
  acrossBackends,
} from '../../support/authority.js';
import { httpsRequest } from '../../support/https.js';
import { createTokenVerifier, remoteJwks } from '../../../src/shared/token-verifier.js';

const run = promisify(execFile);
const FIXTURE = new URL('./fixtures/identity-client.mjs', import.meta.url).pathname;

/** Anything that is not for the authority goes to a closed loopback port and fails: nothing leaves the machine. */
const DEAD_PROXY = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1,::1,[::1]' };

/** Whether this machine has an IPv6 loopback to test `::1` on. */
async function ipv6Loopback(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err) => resolve(`no IPv6 loopback on this machine (${err.message})`));
    server.listen(0, '::1', () => server.close(() => resolve(undefined)));
  });
}
const noIpv6 = await ipv6Loopback();
if (noIpv6 !== undefined) process.stdout.write(`# skipping the ::1 cases: ${noIpv6}\n`);
/**
 * @azure/identity 4.13.1's HTTP client (@typespec/ts-http-runtime's nodeHttpClient) hands `url.hostname`,
 * brackets included, to `https.request`, which looks up "[::1]" in DNS: it cannot reach any IPv6 literal.
 */
const SDK_NO_IPV6_LITERAL =
  '@azure/identity 4.13.1 cannot dial an IPv6 literal (getaddrinfo ENOTFOUND [::1]); the ::1 suite below checks the server without a client library';

interface ClientResult {
  payload: Record<string, unknown>;
  v2Issuer: string;
}

/**
 * MSAL requires the discovery document's issuer to have the origin of the authority host it was given, so
 * each name of the server certificate must be advertised as itself; the token `iss` stays one value.
 */
acrossBackends('@azure/identity 4.13.1 on every certificate name', (backend) => {
  describe(`@azure/identity 4.13.1 on every certificate name (${backend})`, { ...backendSuiteOptions(backend), timeout: 240_000 }, () => {
    let t: TestAuthority;
    let appId: string;
    let secret: string;
    let certPath: string;
    let port: string;

    before(async () => {
      t = await startTestAuthority({ backend });
      ({ appId, secret, certPath } = await registerTestApplication(t, 'names-oracle'));
      port = new URL(t.url).port;
    });
    after(async () => {
      await t.close();
    });

    async function runClient(config: Record<string, unknown>): Promise<ClientResult> {
      const { stdout } = await run(process.execPath, [FIXTURE, JSON.stringify(config)], {
        env: { ...process.env, ...DEAD_PROXY, NODE_EXTRA_CA_CERTS: t.caPath, AZURE_AUTHORITY_HOST: '' },
        timeout: 60_000,
      });
      return (JSON.parse(stdout) as ClientResult[])[0]!;
    }

    /** The shared verifier, configured as the README says: the canonical issuer, whatever name the client used. */
    async function verifyShared(token: string): Promise<void> {
      const verifier = createTokenVerifier({
        jwks: remoteJwks(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem }),
        issuers: [`${t.url}/${t.tenantId}/`],
        audiences: ['https://vault.azure.net'],
      });
      await verifier.verify(token);
    }

    for (const name of ['localhost', '127.0.0.1', '[::1]']) {
      const skip = name === '[::1]' ? (noIpv6 ?? SDK_NO_IPV6_LITERAL) : false;
      it(`ClientSecretCredential and ClientCertificateCredential work with authorityHost https://${name}:PORT`, { skip }, async () => {
        const authorityHost = `https://${name}:${port}`;
        const common = { authorityHost, tenantId: t.tenantId, clientId: appId, scopes: ['https://vault.azure.net/.default'] };
        const bySecret = await runClient({ kind: 'secret', secret, ...common });
        // The certificate assertion is addressed to this name's token endpoint.
        const byCertificate = await runClient({ kind: 'certificate', certPath, ...common });
        for (const result of [bySecret, byCertificate]) {
          assert.equal(result.v2Issuer, `${authorityHost}/${t.tenantId}/v2.0`);
          assert.equal(result.payload['iss'], `${t.url}/${t.tenantId}/`, 'one stable token issuer, on the canonical origin');
          assert.equal(result.payload['tid'], t.tenantId);
          assert.equal(result.payload['appid'], appId);
        }
        assert.deepEqual([bySecret.payload['appidacr'], byCertificate.payload['appidacr']], ['1', '2']);
        const accessToken = await t.authority.app.inject({
          method: 'POST',
          url: `/${t.tenantId}/oauth2/v2.0/token`,
          headers: { 'content-type': 'application/x-www-form-urlencoded', host: `${name}:${port}` },
          payload: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: appId,
            client_secret: secret,
            scope: 'https://vault.azure.net/.default',
          }).toString(),
        });
        await verifyShared(accessToken.json<{ access_token: string }>().access_token);
      });
    }

    it('advertises the canonical origin to a Host header that is not a certificate name on the bound port', async () => {
      for (const host of ['evil.example', `evil.example:${port}`, '127.0.0.1:1', `localhost:${port}/x`]) {
        const doc = await getJson(`https://127.0.0.1:${port}/${t.tenantId}/v2.0/.well-known/openid-configuration`, host);
        assert.equal(doc['issuer'], `${t.url}/${t.tenantId}/v2.0`, host);
        assert.equal(doc['token_endpoint'], `${t.url}/${t.tenantId}/oauth2/v2.0/token`, host);
        assert.equal(doc['jwks_uri'], `${t.url}/${t.tenantId}/discovery/v2.0/keys`, host);
      }
      const v1 = (await httpsRequest(`https://127.0.0.1:${port}/${t.tenantId}/.well-known/openid-configuration`, { ca: t.caPem })).json<
        Record<string, string>
      >();
      assert.equal(v1['token_endpoint'], `https://127.0.0.1:${port}/${t.tenantId}/oauth2/token`);
      assert.equal(v1['issuer'], `${t.url}/${t.tenantId}/`, "the v1 document's issuer is the tokens' iss on every name");
    });

    /**
     * GETs a document over TLS checked against the URL's own name, with an optional forged Host header. An IP goes
     * without SNI (names only: RFC 6066, Node's DEP0123), not one taken from the Host header, and is checked as the host.
     */
    function getJson(url: string, host?: string): Promise<Record<string, string>> {
      const target = new URL(url);
      return new Promise((resolve, reject) => {
        const req = request(
          target,
          {
            ca: t.caPem,
            servername: target.hostname.startsWith('[') ? undefined : isIP(target.hostname) !== 0 ? '' : target.hostname,
            headers: host === undefined ? {} : { host },
            timeout: 10_000,
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>));
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error('request timed out')));
        req.on('error', reject);
        req.end();
      });
    }
  });
});

/**
 * Neither real client can dial an IPv6 literal authority: @azure/identity (above) and MSAL Python 1.21, which
 * rebuilds the URL as `https://::1:PORT` ("Failed to parse"). So on ::1 the documents and the token endpoint
 * are checked directly, with an assertion shaped as MSAL builds it (addressed to the token endpoint it dialled).
 */
describe('the ::1 certificate name, without a client library', { skip: noIpv6 ?? false, timeout: 120_000 }, () => {
  let t: TestAuthority;
  let app: TestApplication;

  before(async () => {
    t = await startTestAuthority({ host: '::1' });
    app = await registerTestApplication(t, 'ipv6-oracle');
  });
  after(async () => {
    await t.close();
  });

  it('advertises https://[::1]:PORT and accepts an assertion addressed to its token endpoint', async () => {
    assert.match(t.url, /^https:\/\/\[::1\]:\d+$/);
    const doc = await send(`${t.url}/${t.tenantId}/v2.0/.well-known/openid-configuration`);
    assert.equal(doc['issuer'], `${t.url}/${t.tenantId}/v2.0`);
    const tokenEndpoint = `${t.url}/${t.tenantId}/oauth2/v2.0/token`;
    assert.equal(doc['token_endpoint'], tokenEndpoint);
    const cert = new X509Certificate(app.certPem);
    const assertion = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'PS256', typ: 'JWT', 'x5t#S256': createHash('sha256').update(cert.raw).digest('base64url') })
      .setIssuer(app.appId)
      .setSubject(app.appId)
      .setAudience(tokenEndpoint)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(createPrivateKey(app.keyPem));
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: app.appId,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'https://vault.azure.net/.default',
    }).toString();
    const response = await send(tokenEndpoint, form);
    assert.equal(typeof response['access_token'], 'string', JSON.stringify(response));
    assert.equal(decodeJwt(response['access_token']!).iss, `${t.url}/${t.tenantId}/`);
  });

  function send(url: string, form?: string): Promise<Record<string, string>> {
    return new Promise((resolve, reject) => {
      const headers = form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' };
      const req = request(new URL(url), { method: form === undefined ? 'GET' : 'POST', ca: t.caPem, headers, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, string>));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end(form);
    });
  }
});
