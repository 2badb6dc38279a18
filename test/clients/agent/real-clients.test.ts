import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { agentRequest, openmsi, openmsiJson, removeDir, startAgentProcess, until, type AgentProcess } from '../../support/agent-process.js';
import { createTokenVerifier, remoteJwks } from '../../../src/shared/token-verifier.js';
import { armKey } from '../../../src/shared/ids.js';
import { DEAD_PROXY, parseDotenv, probe } from '../../support/clients.js';

const run = promisify(execFile);
const NODE_CLIENT = new URL('../sdk/fixtures/managed-identity-client.mjs', import.meta.url).pathname;
const PYTHON_CLIENT = new URL('../sdk/fixtures/python_managed_identity.py', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';
const AZ = '/usr/bin/az';

const pythonVersions = probe(PYTHON, ['-c', 'import azure.identity, msal; print(azure.identity._version.VERSION, msal.__version__)']);
const azInstalled = probe(AZ, ['--help']) !== undefined;

interface Identity {
  id: string;
  clientId: string;
  principalId: string;
}

/**
 * The acceptance matrix of the agent: unchanged Azure clients, configured only through the environment
 * `openmsi agent env` prints (or the IMDS override), get tokens that name the right identity and audience,
 * verified against the authority's JWKS independently of openmsi's code.
 */
for (const backend of STORE_BACKENDS)
  describe(`unchanged clients against openmsi agent (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let agent: AgentProcess;
    let appIdentity: Identity;
    let systemPrincipalId: string;
    let hostId: string;
    let workloadEnv: Record<string, string>;
    const base = (): NodeJS.ProcessEnv => {
      // A workload's own environment: no openmsi variables, no Azure credentials of the test runner.
      const env: NodeJS.ProcessEnv = {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HOME: process.env['HOME'] ?? '/tmp',
        NODE_EXTRA_CA_CERTS: t.caPath,
        ...DEAD_PROXY,
      };
      return env;
    };

    before(async () => {
      t = await startTestAuthority({ backend });
      await openmsiJson(t, ['group', 'create', '-n', 'hosts-rg', '-l', 'local']);
      appIdentity = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'app-id', '-g', 'hosts-rg']);
      const join = await openmsiJson<{ token: string; expiresOn: string }>(t, ['host', 'join-token', 'create', '-g', 'hosts-rg', '-n', 'build-01']);
      await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'hosts-rg', '-n', 'build-01', '--identities', '[system]', 'app-id']);
      const shown = await openmsiJson<{ principalId: string; type: string; userAssignedIdentities: Record<string, unknown> }>(t, [
        'vm',
        'identity',
        'show',
        '-g',
        'hosts-rg',
        '-n',
        'build-01',
      ]);
      systemPrincipalId = shown.principalId;
      hostId = `/subscriptions/${t.subscriptionId}/resourceGroups/hosts-rg/providers/Microsoft.HybridCompute/machines/build-01`;
      agent = await startAgentProcess(t, { joinToken: join.token });
      const env = await openmsi(t, ['agent', 'env', '--data-dir', agent.dataDir, '--shell', 'dotenv']);
      assert.equal(env.code, 0, env.stderr);
      workloadEnv = parseDotenv(env.stdout);
    });
    after(async () => {
      await agent?.stop();
      if (agent !== undefined) removeDir(agent.dataDir);
      await t?.close();
    });

    async function nodeClient(config: Record<string, unknown>, env: Record<string, string>) {
      const { stdout } = await run(process.execPath, [NODE_CLIENT, JSON.stringify({ authority: t.url, tenantId: t.tenantId, ...config })], {
        env: { ...base(), ...env },
        timeout: 60_000,
      });
      return JSON.parse(stdout) as { expiresOnTimestamp: number; payload: Record<string, unknown>; protectedHeader: Record<string, unknown> };
    }

    async function verify(token: string, audience: string) {
      const verifier = createTokenVerifier({
        jwks: remoteJwks(`${t.url}/${t.tenantId}/discovery/v2.0/keys`, { ca: t.caPem }),
        issuers: [`${t.url}/${t.tenantId}/`],
        audiences: [audience],
      });
      return (await verifier.verify(token)).claims;
    }

    it('agent env names the App Service endpoint on loopback and a secret header, and no CA variables for plain loopback http', () => {
      assert.equal(workloadEnv['IDENTITY_ENDPOINT'], `http://127.0.0.1:${agent.port}/msi/token`);
      assert.match(workloadEnv['IDENTITY_HEADER'] ?? '', /^[A-Za-z0-9_-]{32,}$/);
      assert.ok(workloadEnv['MSI_ENDPOINT']?.startsWith(`http://127.0.0.1:${agent.port}/`));
    });

    it('@azure/identity ManagedIdentityCredential via the App Service variables: the system-assigned identity', async () => {
      const result = await nodeClient(
        { kind: 'managed', scope: 'https://vault.azure.net/.default' },
        { IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT']!, IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER']! },
      );
      assert.equal(result.payload['oid'], systemPrincipalId);
      assert.equal(result.payload['aud'], 'https://vault.azure.net');
      assert.equal(result.payload['tid'], t.tenantId);
      assert.equal(armKey(String(result.payload['xms_mirid'])), armKey(hostId), JSON.stringify(result.payload));
      assert.ok(result.expiresOnTimestamp > Date.now() + 45 * 60 * 1000, `expiresOnTimestamp ${String(result.expiresOnTimestamp)}`);
    });

    it('@azure/identity ManagedIdentityCredential via the App Service variables: a user-assigned identity by clientId and by resourceId', async () => {
      const env = { IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT']!, IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER']! };
      const byClientId = await nodeClient({ kind: 'managed', clientId: appIdentity.clientId, scope: 'https://management.azure.com/.default' }, env);
      assert.equal(byClientId.payload['oid'], appIdentity.principalId);
      assert.equal(byClientId.payload['appid'], appIdentity.clientId);
      assert.equal(byClientId.payload['aud'], 'https://management.azure.com');
      const byResourceId = await nodeClient({ kind: 'managed', resourceId: appIdentity.id, scope: 'https://storage.azure.com/.default' }, env);
      assert.equal(byResourceId.payload['oid'], appIdentity.principalId);
      assert.equal(armKey(String(byResourceId.payload['xms_mirid'])), armKey(appIdentity.id));
    });

    it('@azure/identity ManagedIdentityCredential via AZURE_POD_IDENTITY_AUTHORITY_HOST (the IMDS surface)', async () => {
      const result = await nodeClient(
        { kind: 'managed', clientId: appIdentity.clientId, scope: 'https://vault.azure.net/.default' },
        { AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${agent.port}` },
      );
      assert.equal(result.payload['oid'], appIdentity.principalId);
      assert.equal(result.payload['aud'], 'https://vault.azure.net');
    });

    it('@azure/identity DefaultAzureCredential with no options picks the agent up from the environment', async () => {
      const result = await nodeClient(
        { kind: 'default', scope: 'https://vault.azure.net/.default' },
        { IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT']!, IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER']! },
      );
      assert.equal(result.payload['oid'], systemPrincipalId);
    });

    it(
      `Python azure-identity ${pythonVersions ?? ''} ManagedIdentityCredential via the App Service variables`,
      { skip: pythonVersions === undefined ? `${PYTHON} cannot import azure.identity (apt-get install python3-azure)` : false },
      async () => {
        const env = { ...base(), IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT']!, IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER']! };
        const system = JSON.parse(
          (await run(PYTHON, [PYTHON_CLIENT, JSON.stringify({ scope: 'https://vault.azure.net/.default' })], { env, timeout: 60_000 })).stdout,
        ) as { token: string; expiresOn: number };
        assert.equal((await verify(system.token, 'https://vault.azure.net')).oid, systemPrincipalId);
        assert.ok(system.expiresOn > Date.now() / 1000 + 45 * 60, `expires_on ${String(system.expiresOn)}`);
        const user = JSON.parse(
          (
            await run(PYTHON, [PYTHON_CLIENT, JSON.stringify({ scope: 'https://vault.azure.net/.default', clientId: appIdentity.clientId })], {
              env,
              timeout: 60_000,
            })
          ).stdout,
        ) as { token: string };
        assert.equal((await verify(user.token, 'https://vault.azure.net')).oid, appIdentity.principalId);
      },
    );

    it('curl as the seeds do: IMDS with Metadata: true, and Cloud Shell GET /oauth2/token?resource= on localhost:PORT', async () => {
      // Asynchronous: the authority runs in this process and must keep answering while curl waits.
      const curl = async (args: string[]) => (await run('curl', args, { encoding: 'utf8', timeout: 30_000 })).stdout;
      const imds = JSON.parse(
        await curl([
          '-sS',
          '--noproxy',
          '*',
          '-H',
          'Metadata: true',
          `http://127.0.0.1:${agent.port}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net`,
        ]),
      ) as Record<string, unknown>;
      assert.equal(imds['token_type'], 'Bearer');
      assert.equal(imds['resource'], 'https://vault.azure.net');
      assert.equal(typeof imds['expires_on'], 'string');
      assert.equal((await verify(String(imds['access_token']), 'https://vault.azure.net')).oid, systemPrincipalId);
      const cloudShell = JSON.parse(
        await curl(['-sS', '--noproxy', '*', '-H', 'Metadata: true', `http://localhost:${agent.port}/oauth2/token?resource=https://management.azure.com/`]),
      ) as Record<string, unknown>;
      assert.equal(cloudShell['resource'], 'https://management.azure.com/', JSON.stringify(cloudShell));
      assert.equal((await verify(String(cloudShell['access_token']), 'https://management.azure.com/')).oid, systemPrincipalId);
    });

    it(
      'Debian azure-cli 2.45: az login --identity (MSI_ENDPOINT) is refused subscriptions without a role, and with Reader logs in, shows the account and gets a vault token',
      { skip: azInstalled ? false : `${AZ} missing (apt-get install azure-cli)` },
      async (ctx) => {
        const configDir = mkdtempSync(join(tmpdir(), 'openmsi-az-'));
        try {
          // No first-run version probe (there is no switch; a seeded versionCheck.json suppresses it) and no telemetry.
          writeFileSync(
            join(configDir, 'versionCheck.json'),
            JSON.stringify({
              versions: { 'azure-cli': { local: '2.45.0' }, core: { local: '2.45.0' }, telemetry: { local: '1.0.8' } },
              update_time: '2026-11-30 00:00:00.000000',
            }),
          );
          const env = {
            ...base(),
            AZURE_CONFIG_DIR: configDir,
            AZURE_CORE_COLLECT_TELEMETRY: '0',
            REQUESTS_CA_BUNDLE: t.caPath,
            MSI_ENDPOINT: `http://127.0.0.1:${agent.port}/oauth2/token`,
          };
          const az = (args: string[]) =>
            new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise) => {
              execFile(AZ, args, { env, timeout: 120_000 }, (error, stdout, stderr) =>
                resolvePromise({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
              );
            });
          // ARM is this authority's management API, so az's only non-MSI request stays on loopback.
          const register = await az([
            'cloud',
            'register',
            '-n',
            'OpenMSI',
            '--endpoint-resource-manager',
            `${t.url}/`,
            '--endpoint-active-directory',
            t.url,
            '--endpoint-active-directory-resource-id',
            'https://management.core.windows.net/',
            '--endpoint-active-directory-graph-resource-id',
            'https://graph.microsoft.com/',
          ]);
          assert.equal(register.code, 0, register.stderr);
          assert.equal((await az(['cloud', 'set', '-n', 'OpenMSI'])).code, 0);
          const login = await az(['login', '--identity']);
          // The token step succeeds (the agent audits it); az then lists subscriptions through ARM, which
          // openmsi authorises by RBAC (issue 8): as ARM, the list holds only the subscriptions the identity may
          // read, so an identity with no role gets an empty list and az stops there.
          // The agent uploads its audit once per window, so the record arrives within a window, not at once.
          let audit: Record<string, unknown>[] = [];
          const servesArm = (e: Record<string, unknown>) =>
            e['action'] === 'agent.token.served' &&
            (e['detail'] as Record<string, unknown>)['surface'] === 'cloud-shell' &&
            (e['detail'] as Record<string, unknown>)['audience'] === 'https://management.core.windows.net/';
          await until("the agent's record of az's token", async () => {
            audit = await openmsiJson<Record<string, unknown>[]>(t, ['audit', 'list', '--host', 'build-01', '--since', '10m']);
            return audit.some(servesArm) ? true : undefined;
          }).catch((error: unknown) => assert.fail(`${String(error)}: ${JSON.stringify(audit, null, 1)}${login.stderr}`));
          ctx.diagnostic(`az login --identity exited ${String(login.code)}: ${login.stderr.trim().slice(0, 400)}`);
          // Where az stops: ARM's GET /subscriptions, filtered by RBAC (issue 8), is empty for an identity with no role.
          assert.equal(login.code, 1);
          assert.match(login.stderr, /No access was configured for the VM, hence no subscriptions were found/);
          // Given Reader on the subscription, the same unchanged az logs in and gets tokens through the agent.
          const granted = await openmsi(t, [
            'role',
            'assignment',
            'create',
            '--assignee',
            systemPrincipalId,
            '--role',
            'Reader',
            '--scope',
            `/subscriptions/${t.subscriptionId}`,
          ]);
          assert.equal(granted.code, 0, granted.stderr);
          const relogin = await az(['login', '--identity']);
          assert.equal(relogin.code, 0, relogin.stderr);
          const account = JSON.parse((await az(['account', 'show', '-o', 'json'])).stdout) as {
            id: string;
            tenantId: string;
            user: { name: string; type: string };
          };
          assert.equal(account.id, t.subscriptionId);
          assert.equal(account.tenantId, t.tenantId);
          assert.equal(account.user.type, 'servicePrincipal');
          const token = await az(['account', 'get-access-token', '--resource', 'https://vault.azure.net', '-o', 'json']);
          assert.equal(token.code, 0, token.stderr);
          const claims = await verify((JSON.parse(token.stdout) as { accessToken: string }).accessToken, 'https://vault.azure.net');
          assert.equal(claims.oid, systemPrincipalId);
        } finally {
          removeDir(configDir);
        }
      },
    );

    it(
      "@azure/identity ManagedIdentityCredential via Azure Arc's challenge (agent --arc, IDENTITY_ENDPOINT + IMDS_ENDPOINT)",
      { skip: process.getuid?.() === 0 ? false : 'Azure Arc clients read the challenge file only under /var/opt/azcmagent/tokens, which needs root' },
      async () => {
        const join = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'hosts-rg', '-n', 'arc-01']);
        const arc = await startAgentProcess(t, { joinToken: join.token, extra: ['--arc'] });
        try {
          const shown = await openmsiJson<{ principalId: string }>(t, ['vm', 'identity', 'show', '-g', 'hosts-rg', '-n', 'arc-01']);
          const result = await nodeClient(
            { kind: 'managed', scope: 'https://vault.azure.net/.default' },
            { IDENTITY_ENDPOINT: `http://127.0.0.1:${arc.port}/metadata/identity/oauth2/token`, IMDS_ENDPOINT: `http://127.0.0.1:${arc.port}` },
          );
          assert.equal(result.payload['oid'], shown.principalId);
          assert.equal(
            armKey(String(result.payload['xms_mirid'])),
            armKey(`/subscriptions/${t.subscriptionId}/resourceGroups/hosts-rg/providers/Microsoft.HybridCompute/machines/arc-01`),
          );
        } finally {
          await arc.stop();
          removeDir(arc.dataDir);
        }
      },
    );

    it("the agent answers the seeds' raw requests on every loopback spelling it allows", async () => {
      const answer = await agentRequest(agent.port, '/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net', {
        headers: { Metadata: 'true', Host: `localhost:${agent.port}` },
      });
      assert.equal(answer.status, 200, answer.body);
    });
  });
