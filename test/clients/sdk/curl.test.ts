import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';

const run = promisify(execFile);

/** The seeds' "before managed identity" PowerShell call, as the equivalent curl form POST to the v1 endpoint. */
describe('curl against the v1 token endpoint', () => {
  let t: TestAuthority;
  let appId: string;
  let secret: string;

  before(async () => {
    t = await startTestAuthority();
    ({ appId, secret } = await registerTestApplication(t, 'seed-spn', { certificate: false }));
  });
  after(async () => {
    await t.close();
  });

  it('returns an access token for https://vault.azure.net', async () => {
    const { stdout } = await run(
      'curl',
      [
        '--silent',
        '--show-error',
        '--fail-with-body',
        '--cacert',
        t.caPath,
        '-H',
        'accept: application/json',
        '--data-urlencode',
        `client_id=${appId}`,
        '--data-urlencode',
        `client_secret=${secret}`,
        '--data-urlencode',
        'grant_type=client_credentials',
        '--data-urlencode',
        'resource=https://vault.azure.net',
        `${t.url}/${t.tenantId}/oauth2/token`,
      ],
      { timeout: 30_000 },
    );
    const body = JSON.parse(stdout) as Record<string, string>;
    assert.equal(body['token_type'], 'Bearer');
    assert.equal(body['resource'], 'https://vault.azure.net');
    assert.equal(decodeJwt(body['access_token']!).aud, 'https://vault.azure.net');
  });
});
