/**
 * Workload identity federation with unchanged clients (spec §6 T-A2-1, T-B-2): a loopback OIDC issuer with its
 * own CA stands in for a Kubernetes cluster; the federated credentials and the issuer's setting are made with the
 * CLI; then @azure/identity 4.13.1 WorkloadIdentityCredential and DefaultAzureCredential (environment only, tenant
 * `adfs`) and Debian Python's ClientAssertionCredential get tokens for a user-assigned identity and an application
 * and read a vault secret with them. Every proxy-bound request is recorded and refused: none may happen.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { openmsiJson } from '../../support/agent-process.js';
import { loopbackOnlyProxyEnv, probe, refusingProxy, type CreatedIdentity, type SdkClientResult } from '../../support/clients.js';
import { startTestOidcIssuer, type TestOidcIssuer } from '../../support/oidc-issuer.js';

const run = promisify(execFile);
const NODE_CLIENT = new URL('./fixtures/workload-identity-client.mjs', import.meta.url).pathname;
const RESOLVER = new URL('../vault/fixtures/resolve-localhost.mjs', import.meta.url).pathname;
const PYTHON_CLIENT = new URL('./fixtures/python_client_assertion.py', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';
const pythonVersion = probe(PYTHON, ['-c', 'import azure.identity, azure.keyvault.secrets; print(azure.identity._version.VERSION)']);
const SUBJECT = 'system:serviceaccount:apps:web';

describe('unchanged SDK workloads with federated credentials (sqlite)', { timeout: 300_000 }, () => {
  let t: TestAuthority;
  let issuer: TestOidcIssuer;
  let proxy: Awaited<ReturnType<typeof refusingProxy>>;
  let uami: CreatedIdentity;
  let appId: string;
  let vaultUri: string;
  let tokenFile: string;
  let tokenFileWithNewline: string;

  before(async () => {
    t = await startTestAuthority();
    issuer = await startTestOidcIssuer({ dir: t.dataDir, subject: SUBJECT });
    proxy = await refusingProxy();
    await openmsiJson(t, ['group', 'create', '-n', 'apps', '-l', 'local']);
    uami = await openmsiJson<CreatedIdentity>(t, ['identity', 'create', '-n', 'web', '-g', 'apps']);
    const vault = await openmsiJson<{ id: string; properties: { vaultUri: string } }>(t, ['keyvault', 'create', '-g', 'apps', '-n', 'kv-federated']);
    vaultUri = vault.properties.vaultUri;
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', uami.principalId, '--role', 'Key Vault Secrets Officer', '--scope', vault.id]);
    // The issuer's CA is trusted for its discovery and JWKS only (the in-process authority cannot take
    // NODE_EXTRA_CA_CERTS after it started; test/authority/federation/issuer-keys.test.ts covers that path).
    await openmsiJson(t, ['federation', 'issuer', 'set', '--issuer', issuer.issuer, '--ca', `@${issuer.caPath}`]);
    const fic = await openmsiJson<Record<string, unknown>>(t, [
      'identity',
      'federated-credential',
      'create',
      '--identity-name',
      'web',
      '-g',
      'apps',
      '-n',
      'cluster-1',
      '--issuer',
      issuer.issuer,
      '--subject',
      SUBJECT,
    ]);
    assert.deepEqual(fic['audiences'], ['api://AzureADTokenExchange']);
    const app = await openmsiJson<{ appId: string }>(t, ['ad', 'sp', 'create-for-rbac', '--name', 'ci-workload']);
    appId = app.appId;
    const parameters = join(t.dataDir, 'fic.json');
    writeFileSync(parameters, JSON.stringify({ name: 'cluster-1', issuer: issuer.issuer, subject: SUBJECT, audiences: ['api://AzureADTokenExchange'] }));
    const created = await openmsiJson<Record<string, unknown>>(t, [
      'ad',
      'app',
      'federated-credential',
      'create',
      '--id',
      appId,
      '--parameters',
      `@${parameters}`,
    ]);
    assert.equal(created['subject'], SUBJECT);
    const sp = await openmsiJson<{ id: string }>(t, ['ad', 'sp', 'show', '--id', appId]);
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', sp.id, '--role', 'Key Vault Secrets User', '--scope', vault.id]);
    // The projected service-account token, as kubelet writes it (no newline) and with the newline Python keeps.
    const assertion = await issuer.sign();
    tokenFile = join(t.dataDir, 'azure-identity-token');
    writeFileSync(tokenFile, assertion);
    tokenFileWithNewline = join(t.dataDir, 'azure-identity-token-nl');
    writeFileSync(tokenFileWithNewline, `${assertion}\n`);
  });
  after(async () => {
    await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
    await issuer.close();
    await t.close();
  });

  /** Only what the Azure Workload Identity webhook sets (tenant `adfs`), the CA, and the recording proxy. */
  const workloadEnv = (clientId: string, file: string, caVariable: 'NODE_EXTRA_CA_CERTS' | 'REQUESTS_CA_BUNDLE'): NodeJS.ProcessEnv => ({
    PATH: '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    AZURE_CLIENT_ID: clientId,
    AZURE_TENANT_ID: 'adfs',
    AZURE_FEDERATED_TOKEN_FILE: file,
    AZURE_AUTHORITY_HOST: t.url,
    [caVariable]: t.caPath,
    ...loopbackOnlyProxyEnv(proxy.url),
  });

  async function node(credential: 'workload' | 'default', clientId: string, step: { name: string; set?: string }): Promise<SdkClientResult> {
    const { stdout } = await run(process.execPath, ['--import', RESOLVER, NODE_CLIENT, JSON.stringify({ credential, vault: vaultUri, ...step })], {
      env: workloadEnv(clientId, tokenFile, 'NODE_EXTRA_CA_CERTS'),
      timeout: 120_000,
    });
    return JSON.parse(stdout) as SdkClientResult;
  }

  it('WorkloadIdentityCredential (environment only, tenant adfs) gets the user-assigned identity’s token and writes and reads a secret', async () => {
    const result = await node('workload', uami.clientId, { name: 'db-password', set: 's3cret' });
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.value, 's3cret');
    assert.equal(result.claims?.['appid'], uami.clientId);
    assert.equal(result.claims?.['oid'], uami.principalId);
    assert.equal(result.claims?.['tid'], t.tenantId);
    assert.equal(result.claims?.['xms_mirid'], uami.id);
  });

  it('DefaultAzureCredential (environment only) does the same, for the identity and for the application', async () => {
    const forIdentity = await node('default', uami.clientId, { name: 'db-password' });
    assert.ok(forIdentity.ok, JSON.stringify(forIdentity));
    assert.equal(forIdentity.value, 's3cret');
    assert.equal(forIdentity.claims?.['appid'], uami.clientId);
    const forApp = await node('default', appId, { name: 'db-password' });
    assert.ok(forApp.ok, JSON.stringify(forApp));
    assert.equal(forApp.value, 's3cret');
    assert.equal(forApp.claims?.['appid'], appId);
  });

  it('a workload whose subject has no federated credential is refused with AADSTS700213 in the SDK’s error', async () => {
    writeFileSync(join(t.dataDir, 'other-token'), await issuer.sign({ sub: 'system:serviceaccount:apps:intruder' }));
    const { stdout } = await run(
      process.execPath,
      ['--import', RESOLVER, NODE_CLIENT, JSON.stringify({ credential: 'workload', vault: vaultUri, name: 'db-password' })],
      {
        env: workloadEnv(uami.clientId, join(t.dataDir, 'other-token'), 'NODE_EXTRA_CA_CERTS'),
        timeout: 120_000,
      },
    );
    const result = JSON.parse(stdout) as SdkClientResult;
    assert.equal(result.ok, false);
    assert.match(result.message ?? '', /700213/);
  });

  for (const [who, clientId] of [
    ['user-assigned identity', () => uami.clientId],
    ['application', () => appId],
  ] as const) {
    it(
      `Python ClientAssertionCredential (${pythonVersion ?? 'not installed'}) gets the ${who}’s token from the raw token file (trailing newline) and reads the secret`,
      { skip: pythonVersion === undefined ? `${PYTHON} cannot import azure.identity and azure.keyvault.secrets` : false },
      async () => {
        const { stdout } = await run(PYTHON, [PYTHON_CLIENT, JSON.stringify({ vault: vaultUri, name: 'db-password' })], {
          env: workloadEnv(clientId(), tokenFileWithNewline, 'REQUESTS_CA_BUNDLE'),
          timeout: 120_000,
        });
        const result = JSON.parse(stdout) as SdkClientResult;
        assert.ok(result.ok, JSON.stringify(result));
        assert.equal(result.value, 's3cret');
        assert.equal(decodeJwt(result.token ?? '')['appid'], clientId());
      },
    );
  }

  it(
    'Python: a token whose subject differs only in case is refused with AADSTS7002138 in ClientAuthenticationError',
    { skip: pythonVersion === undefined ? `${PYTHON} cannot import azure.identity` : false },
    async () => {
      const file = join(t.dataDir, 'case-token');
      writeFileSync(file, `${await issuer.sign({ sub: SUBJECT.toUpperCase() })}\n`);
      const { stdout } = await run(PYTHON, [PYTHON_CLIENT, JSON.stringify({ vault: vaultUri, name: 'db-password' })], {
        env: workloadEnv(uami.clientId, file, 'REQUESTS_CA_BUNDLE'),
        timeout: 120_000,
      });
      const result = JSON.parse(stdout) as SdkClientResult;
      assert.equal(result.ok, false);
      assert.match(result.message ?? '', /AADSTS7002138/);
    },
  );

  it('no client sent a single request off the machine', () => {
    assert.deepEqual(proxy.attempts, []);
  });
});
