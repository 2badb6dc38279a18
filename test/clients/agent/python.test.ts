import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { createTestHost, startTestAgent, type TestAgent, type TestHost } from '../../support/world.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

function skipReason(): string | false {
  try {
    execFileSync(PYTHON, ['-c', 'import msrestazure.azure_active_directory, azure.identity'], { stdio: 'ignore' });
    return false;
  } catch {
    return `${PYTHON} has no msrestazure / azure-identity (Debian python3-msrestazure, python3-azure)`;
  }
}

/** Debian's Python clients, unchanged: msrestazure (what azure-cli 2.45 calls with MSI_ENDPOINT) and azure-identity. */
describe('Debian Python clients against the agent', { skip: skipReason() }, () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;
  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
    a = await startTestAgent(t, host);
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
  });

  const clean = () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of [
      'IDENTITY_ENDPOINT',
      'IDENTITY_HEADER',
      'MSI_ENDPOINT',
      'MSI_SECRET',
      'AZURE_CLIENT_ID',
      'AZURE_POD_IDENTITY_AUTHORITY_HOST',
      'IMDS_ENDPOINT',
    ])
      delete env[name];
    return env;
  };

  it("msrestazure get_msi_token (azure-cli 2.45's MSI_ENDPOINT path: POST resource= with Metadata: true)", async () => {
    const script =
      'import json; from msrestazure.azure_active_directory import get_msi_token; print(json.dumps(get_msi_token("https://management.core.windows.net/")[2]))';
    const { stdout } = await run(PYTHON, ['-c', script], { env: { ...clean(), MSI_ENDPOINT: `${a.agent.url}/oauth2/token` }, timeout: 60_000 });
    const entry = JSON.parse(stdout) as Record<string, string>;
    assert.equal(entry['resource'], 'https://management.core.windows.net/');
    const claims = decodeJwt(entry['access_token']!);
    assert.equal(claims['oid'], host.system.objectId);
    assert.equal(claims['tid'], t.tenantId, 'az decodes tid from the token');
  });

  it('azure-identity ManagedIdentityCredential via App Service env vars (system and user-assigned)', async () => {
    const script = [
      'import json, sys',
      'from azure.identity import ManagedIdentityCredential',
      'cid = sys.argv[1] or None',
      'c = ManagedIdentityCredential(client_id=cid) if cid else ManagedIdentityCredential()',
      't = c.get_token("https://vault.azure.net/.default")',
      'print(json.dumps({"token": t.token, "expires_on": t.expires_on}))',
    ].join('\n');
    const env = { ...clean(), IDENTITY_ENDPOINT: `${a.agent.url}/msi/token`, IDENTITY_HEADER: a.secret };
    for (const [clientId, objectId] of [
      ['', host.system.objectId],
      [host.uami.clientId, host.uami.objectId],
    ] as const) {
      const { stdout } = await run(PYTHON, ['-c', script, clientId], { env, timeout: 60_000 });
      const result = JSON.parse(stdout) as { token: string; expires_on: number };
      assert.equal(decodeJwt(result.token)['oid'], objectId);
      assert.ok(result.expires_on > Date.now() / 1000 + 1800);
    }
  });
});
