import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
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
const NODE_FIXTURE = new URL('./fixtures/default-credential.mjs', import.meta.url).pathname;
const PYTHON_FIXTURE = new URL('./fixtures/python_default_credential.py', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';
const SCOPE = 'https://vault.azure.net/.default';

/** Anything that is not for the authority goes to a closed loopback port and fails: nothing leaves the machine. */
const DEAD_PROXY = { HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: 'localhost,127.0.0.1' };

function pythonAzureIdentity(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-c', 'import azure.identity, msal; print(azure.identity._version.VERSION, msal.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
const pythonVersions = pythonAzureIdentity();
const noPython = pythonVersions === undefined ? `${PYTHON} cannot import azure.identity (apt-get install python3-azure)` : false;

/**
 * `AZURE_TENANT_ID=adfs`: MSAL skips instance discovery at login.microsoftonline.com for it, so an unchanged
 * `DefaultAzureCredential` works offline from environment variables alone against the default tenant.
 */
acrossBackends('the adfs tenant alias', (backend) => {
  describe(`the adfs tenant alias (${backend})`, { ...backendSuiteOptions(backend), timeout: 240_000 }, () => {
    let t: TestAuthority;
    let app: TestApplication;

    before(async () => {
      t = await startTestAuthority({ backend });
      app = await registerTestApplication(t, 'adfs-oracle');
    });
    after(async () => {
      await t.close();
    });

    /** Only what a deployment sets: the credential, the authority host, the CA, and a dead proxy. */
    function credentialEnv(credential: 'secret' | 'certificate'): Record<string, string> {
      return {
        AZURE_TENANT_ID: 'adfs',
        AZURE_CLIENT_ID: app.appId,
        ...(credential === 'secret' ? { AZURE_CLIENT_SECRET: app.secret } : { AZURE_CLIENT_CERTIFICATE_PATH: app.certPath }),
        AZURE_AUTHORITY_HOST: t.url,
        ...DEAD_PROXY,
      };
    }

    /** The shared verifier, configured with the one issuer tokens carry: the default tenant's v1 issuer. */
    async function verify(token: string) {
      const verifier = createTokenVerifier({
        jwks: remoteJwks(`${t.url}/adfs/discovery/keys`, { ca: t.caPem }),
        issuers: [`${t.url}/${t.tenantId}/`],
        audiences: ['https://vault.azure.net'],
      });
      return (await verifier.verify(token)).claims;
    }

    it('serves discovery documents whose issuer and endpoints are under /adfs', async () => {
      const v1 = (await httpsRequest(`${t.url}/adfs/.well-known/openid-configuration`, { ca: t.caPem })).json<Record<string, string>>();
      assert.equal(v1['issuer'], `${t.url}/adfs/`);
      assert.equal(v1['token_endpoint'], `${t.url}/adfs/oauth2/v2.0/token`, 'the endpoint MSAL Python posts to without discovery');
      assert.equal(v1['jwks_uri'], `${t.url}/adfs/discovery/keys`);
      const v2 = (await httpsRequest(`${t.url}/ADFS/v2.0/.well-known/openid-configuration`, { ca: t.caPem })).json<Record<string, string>>();
      assert.equal(v2['issuer'], `${t.url}/adfs/v2.0`);
      assert.equal(v2['token_endpoint'], `${t.url}/adfs/oauth2/v2.0/token`);
      const keys = await httpsRequest(`${t.url}/adfs/discovery/v2.0/keys`, { ca: t.caPem });
      assert.deepEqual(keys.json(), (await httpsRequest(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem })).json());
    });

    it('issues v1 and v2 tokens at /adfs for the default tenant, with its id in tid and the stable iss', async () => {
      for (const path of ['oauth2/token', 'oauth2/v2.0/token']) {
        const form = {
          grant_type: 'client_credentials',
          client_id: app.appId,
          client_secret: app.secret,
          ...(path === 'oauth2/token' ? { resource: 'https://vault.azure.net' } : { scope: SCOPE }),
        };
        const response = await httpsRequest(`${t.url}/adfs/${path}`, {
          method: 'POST',
          ca: t.caPem,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams(form).toString(),
        });
        assert.equal(response.status, 200, response.body);
        const claims = await verify(response.json<{ access_token: string }>().access_token);
        assert.equal(claims.tid, t.tenantId);
      }
    });

    for (const credential of ['secret', 'certificate'] as const) {
      it(`unchanged DefaultAzureCredential (Node) gets a token from environment variables alone, with a ${credential}`, async () => {
        const { stdout } = await run(process.execPath, [NODE_FIXTURE, SCOPE, `${t.url}/${t.tenantId}/`], {
          env: { ...credentialEnv(credential), NODE_EXTRA_CA_CERTS: t.caPath },
          timeout: 90_000,
        });
        const { payload } = JSON.parse(stdout) as { payload: Record<string, unknown> };
        assert.equal(payload['tid'], t.tenantId);
        assert.equal(payload['appid'], app.appId);
        assert.equal(payload['appidacr'], credential === 'secret' ? '1' : '2');
      });

      it(
        `unchanged DefaultAzureCredential (Python ${pythonVersions ?? ''}) gets a token from environment variables alone, with a ${credential}`,
        { skip: noPython },
        async () => {
          const { stdout } = await run(PYTHON, [PYTHON_FIXTURE, SCOPE], {
            env: { ...credentialEnv(credential), PATH: '/usr/bin:/bin', REQUESTS_CA_BUNDLE: t.caPath },
            timeout: 90_000,
          });
          const claims = await verify((JSON.parse(stdout) as { token: string }).token);
          assert.equal(claims.tid, t.tenantId);
          assert.equal(claims.appid, app.appId);
          assert.equal(claims.appidacr, credential === 'secret' ? '1' : '2');
        },
      );
    }
  });
});
