import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority, acrossBackends } from '../../support/authority.js';

const run = promisify(execFile);
const FIXTURE = new URL('./fixtures/identity-client.mjs', import.meta.url).pathname;

interface ClientResult {
  scope: string;
  expiresOnTimestamp: number;
  payload: Record<string, unknown>;
  protectedHeader: Record<string, unknown>;
  v2Issuer: string;
}

/** Unchanged @azure/identity@4.13.1 credentials against a real authority, as the oracle for compatibility. */
acrossBackends('@azure/identity 4.13.1 against the authority', (backend) => {
  describe(`@azure/identity 4.13.1 against the authority (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let appId: string;
    let secret: string;
    let certPath: string;

    before(async () => {
      t = await startTestAuthority({ backend });
      ({ appId, secret, certPath } = await registerTestApplication(t, 'sdk-oracle'));
    });
    after(async () => {
      await t.close();
    });

    async function runClient(config: Record<string, unknown>): Promise<ClientResult[]> {
      const { stdout } = await run(process.execPath, [FIXTURE, JSON.stringify(config)], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: t.caPath, AZURE_AUTHORITY_HOST: '' },
        timeout: 60_000,
      });
      return JSON.parse(stdout) as ClientResult[];
    }

    function checkClaims(result: ClientResult, acr: '1' | '2') {
      assert.equal(result.payload['appid'], appId);
      assert.equal(result.payload['appidacr'], acr);
      assert.equal(result.payload['tid'], t.tenantId);
      assert.equal(result.payload['idtyp'], 'app');
      assert.equal(result.protectedHeader['alg'], 'RS256');
      assert.equal(result.protectedHeader['kid'], result.protectedHeader['x5t']);
      assert.equal(result.v2Issuer, `${t.url}/${t.tenantId}/v2.0`);
      assert.ok(result.expiresOnTimestamp > Date.now() + 50 * 60 * 1000);
    }

    it('ClientSecretCredential gets tokens that an independent verifier accepts', async () => {
      const results = await runClient({
        kind: 'secret',
        authorityHost: t.url,
        tenantId: t.tenantId,
        clientId: appId,
        secret,
        scopes: ['https://vault.azure.net/.default', 'https://management.azure.com/.default'],
      });
      assert.equal(results.length, 2);
      for (const result of results) checkClaims(result, '1');
      assert.equal(results[0]!.payload['aud'], 'https://vault.azure.net');
    });

    it('ClientCertificateCredential (PS256 + x5t#S256 assertions) gets tokens that an independent verifier accepts', async () => {
      const results = await runClient({
        kind: 'certificate',
        authorityHost: t.url,
        tenantId: t.tenantId,
        clientId: appId,
        certPath,
        scopes: ['https://vault.azure.net/.default'],
      });
      checkClaims(results[0]!, '2');
    });

    it('a wrong secret surfaces as an authentication error in the SDK', async () => {
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
  });
});
