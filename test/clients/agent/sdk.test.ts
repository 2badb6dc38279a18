import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { httpsRequest } from '../../support/https.js';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { createTestHost, startTestAgent, type TestAgent, type TestHost } from '../../support/world.js';

const run = promisify(execFile);
const FIXTURE = new URL('../../agent/fixtures/mi-client.mjs', import.meta.url).pathname;

/** Unchanged @azure/identity@4.13.1 ManagedIdentityCredential against the agent, in a child process. */
describe('@azure/identity 4.13.1 ManagedIdentityCredential against the agent', () => {
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

  async function tokens(env: NodeJS.ProcessEnv, options: Record<string, unknown>, scopes: string[]) {
    const clean: NodeJS.ProcessEnv = { ...process.env };
    for (const name of [
      'IDENTITY_ENDPOINT',
      'IDENTITY_HEADER',
      'MSI_ENDPOINT',
      'MSI_SECRET',
      'AZURE_CLIENT_ID',
      'AZURE_TENANT_ID',
      'AZURE_FEDERATED_TOKEN_FILE',
      'AZURE_POD_IDENTITY_AUTHORITY_HOST',
      'IMDS_ENDPOINT',
    ])
      delete clean[name];
    const { stdout } = await run(process.execPath, [FIXTURE, JSON.stringify({ options, scopes })], { env: { ...clean, ...env }, timeout: 60_000 });
    return JSON.parse(stdout) as { token: string; expiresOnTimestamp: number }[];
  }

  async function verify(token: string) {
    const keys = (await httpsRequest(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem })).json<JSONWebKeySet>();
    return (await jwtVerify(token, createLocalJWKSet(keys))).payload;
  }

  it('App Service env vars: system-assigned, and user-assigned by clientId and by resourceId', async () => {
    const env = { IDENTITY_ENDPOINT: `${a.agent.url}/msi/token`, IDENTITY_HEADER: a.secret };
    const [system] = await tokens(env, {}, ['https://vault.azure.net/.default']);
    const claims = await verify(system!.token);
    assert.equal(claims['oid'], host.system.objectId);
    assert.equal(claims.aud, 'https://vault.azure.net');
    assert.ok(system!.expiresOnTimestamp > Date.now() + 30 * 60_000);
    const [byClient] = await tokens(env, { clientId: host.uami.clientId }, ['https://storage.azure.com/.default']);
    assert.equal((await verify(byClient!.token))['oid'], host.uami.objectId);
    const [byResource] = await tokens(env, { resourceId: host.uami2.id }, ['https://management.azure.com/.default']);
    assert.equal((await verify(byResource!.token))['oid'], host.uami2.objectId);
  });

  it('IMDS via AZURE_POD_IDENTITY_AUTHORITY_HOST (lower-cased URL with a trailing slash)', async () => {
    const [token] = await tokens({ AZURE_POD_IDENTITY_AUTHORITY_HOST: a.agent.url }, { clientId: host.uami.clientId }, ['https://vault.azure.net/.default']);
    assert.equal((await verify(token!.token))['oid'], host.uami.objectId);
  });
});
