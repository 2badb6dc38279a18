import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { createTokenVerifier, remoteJwks } from '../../../src/shared/token-verifier.js';
import { createUser } from '../../../src/directory/users.js';

const run = promisify(execFile);
const FIXTURE = new URL('./fixtures/python_identity_client.py', import.meta.url).pathname;
/** Debian's interpreter: python3-azure installs into its dist-packages (CI installs it, see .ci/run). */
const PYTHON = '/usr/bin/python3';

function pythonAzureIdentity(): string | undefined {
  try {
    return execFileSync(PYTHON, ['-c', 'import azure.identity, msal; print(azure.identity._version.VERSION, msal.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
const versions = pythonAzureIdentity();

/** Python azure-identity + MSAL Python as a second, independent client of the token endpoint. */
describe(
  `Python azure-identity ${versions ?? '(not installed)'} against the authority`,
  { skip: versions === undefined ? `${PYTHON} cannot import azure.identity (apt-get install python3-azure)` : false },
  () => {
    let t: TestAuthority;
    let appId: string;
    let secret: string;
    let certPath: string;

    before(async () => {
      t = await startTestAuthority();
      ({ appId, secret, certPath } = await registerTestApplication(t, 'python-oracle'));
    });
    after(async () => {
      await t.close();
    });

    async function runClient(config: Record<string, unknown>): Promise<{ scope: string; token: string; expiresOn: number }[]> {
      const { stdout } = await run(PYTHON, [FIXTURE, JSON.stringify(config)], {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          REQUESTS_CA_BUNDLE: t.caPath,
          // Anything not on loopback goes to a closed loopback port and fails: tests never leave the machine.
          HTTPS_PROXY: 'http://127.0.0.1:9',
          HTTP_PROXY: 'http://127.0.0.1:9',
          NO_PROXY: 'localhost,127.0.0.1',
        },
        timeout: 60_000,
      });
      return JSON.parse(stdout) as { scope: string; token: string; expiresOn: number }[];
    }

    async function verify(token: string, audience: string) {
      const verifier = createTokenVerifier({
        jwks: remoteJwks(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem }),
        issuers: [`${t.url}/${t.tenantId}/`],
        audiences: [audience],
      });
      return (await verifier.verify(token)).claims;
    }

    it('ClientSecretCredential gets a token', async () => {
      const [result] = await runClient({
        kind: 'secret',
        authorityHost: t.url,
        tenantId: t.tenantId,
        clientId: appId,
        secret,
        scopes: ['https://vault.azure.net/.default'],
      });
      const claims = await verify(result!.token, 'https://vault.azure.net');
      assert.equal(claims.appid, appId);
      assert.equal(claims.appidacr, '1');
      assert.ok(result!.expiresOn * 1000 > Date.now() + 50 * 60 * 1000);
    });

    // On the `adfs` alias: for a tenant id, MSAL Python 1.21 first asks `https://{host}/common/userrealm/...`
    // with the authority's port dropped (it dials localhost:443), so only an authority on port 443 would do.
    it('UsernamePasswordCredential (MSAL Python, the password grant) gets a user token on the adfs alias', async () => {
      const user = await createUser(t.ctx.store, {
        tenantId: t.tenantId,
        displayName: 'Python User',
        userPrincipalName: `py@${(await t.ctx.store.tenants.get(t.tenantId))!.defaultDomain}`,
        password: 'Pyth0n-Passw0rd!',
        clock: t.ctx.clock,
      });
      for (const tenantId of ['adfs']) {
        const [result] = await runClient({
          kind: 'userpass',
          authorityHost: t.url,
          tenantId,
          clientId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46',
          username: user.userPrincipalName,
          password: 'Pyth0n-Passw0rd!',
          scopes: ['https://vault.azure.net/.default'],
        });
        const claims = await verify(result!.token, 'https://vault.azure.net');
        assert.equal(claims.oid, user.objectId, tenantId);
        assert.equal(claims.idtyp, 'user');
        assert.equal(claims['upn'], user.userPrincipalName);
      }
    });

    it('CertificateCredential (MSAL Python: RS256 + x5t assertions) gets a token', async () => {
      const [result] = await runClient({
        kind: 'certificate',
        authorityHost: t.url,
        tenantId: t.tenantId,
        clientId: appId,
        certPath,
        scopes: ['https://management.azure.com/.default'],
      });
      const claims = await verify(result!.token, 'https://management.azure.com');
      assert.equal(claims.appidacr, '2');
    });

    it("a wrong secret is reported with Entra's code", async () => {
      await assert.rejects(
        runClient({
          kind: 'secret',
          authorityHost: t.url,
          tenantId: t.tenantId,
          clientId: appId,
          secret: 'wrong',
          scopes: ['https://vault.azure.net/.default'],
        }),
        /AADSTS7000215/,
      );
    });
  },
);
