import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { backendSuiteOptions, startTestAuthority, type TestAuthority, acrossBackends } from '../../support/authority.js';
import { openmsi, openmsiJson, removeDir, startAgentProcess, type AgentProcess } from '../../support/agent-process.js';
import { DEAD_PROXY, parseDotenv, probe } from '../../support/clients.js';

const run = promisify(execFile);
const NODE_CLIENT = new URL('./fixtures/secret-client.mjs', import.meta.url).pathname;
const RESOLVER = new URL('./fixtures/resolve-localhost.mjs', import.meta.url).pathname;
const PYTHON_CLIENT = new URL('./fixtures/secret_client.py', import.meta.url).pathname;
const PYTHON = '/usr/bin/python3';

const pythonKeyVault = probe(PYTHON, ['-c', 'import azure.keyvault.secrets, azure.identity; print(azure.keyvault.secrets._version.VERSION)']);

interface Identity {
  id: string;
  clientId: string;
  principalId: string;
}
interface VaultView {
  id: string;
  name: string;
  properties: { vaultUri: string; enableRbacAuthorization: boolean };
}
type StepResult = { ok: boolean; status?: number; code?: string; inner?: string; message?: string } & Record<string, unknown>;

/**
 * The vault's acceptance matrix: unchanged Key Vault clients, with tokens from the agent's managed-identity
 * endpoints and no option of any kind, against `openmsi server` (authority, management API and vault on one
 * port). Only name resolution of `*.vault.localhost` is helped, in the client process, where this machine's
 * resolver does not map it.
 */
acrossBackends('unchanged Key Vault clients against the openmsi vault', (backend) => {
  describe(`unchanged Key Vault clients against the openmsi vault (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let agent: AgentProcess;
    let officer: Identity;
    let reader: Identity;
    let workloadEnv: Record<string, string>;
    let main: VaultView;
    let second: VaultView;
    let policies: VaultView;

    before(async () => {
      t = await startTestAuthority({ backend });
      await openmsiJson(t, ['group', 'create', '-n', 'apps', '-l', 'local']);
      officer = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'officer', '-g', 'apps']);
      reader = await openmsiJson<Identity>(t, ['identity', 'create', '-n', 'reader', '-g', 'apps']);
      const join = await openmsiJson<{ token: string }>(t, ['host', 'join-token', 'create', '-g', 'apps', '-n', 'web-01']);
      await openmsiJson(t, ['vm', 'identity', 'assign', '-g', 'apps', '-n', 'web-01', '--identities', 'officer', 'reader']);
      agent = await startAgentProcess(t, { joinToken: join.token });
      const env = await openmsi(t, ['agent', 'env', '--data-dir', agent.dataDir, '--shell', 'dotenv']);
      assert.equal(env.code, 0, env.stderr);
      workloadEnv = parseDotenv(env.stdout);

      main = await openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', `kv-main-${backend}`]);
      second = await openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', `kv-second-${backend}`]);
      policies = await openmsiJson<VaultView>(t, ['keyvault', 'create', '-g', 'apps', '-n', `kv-policy-${backend}`, '--enable-rbac-authorization', 'false']);
      for (const vault of [main, second]) {
        await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', officer.principalId, '--role', 'Key Vault Secrets Officer', '--scope', vault.id]);
      }
    });
    after(async () => {
      await agent?.stop();
      if (agent !== undefined) removeDir(agent.dataDir);
      await t?.close();
    });

    const workload = (): NodeJS.ProcessEnv => ({
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: process.env['HOME'] ?? '/tmp',
      NODE_EXTRA_CA_CERTS: t.caPath,
      IDENTITY_ENDPOINT: workloadEnv['IDENTITY_ENDPOINT'],
      IDENTITY_HEADER: workloadEnv['IDENTITY_HEADER'],
      ...DEAD_PROXY,
      // Vault hosts are reached directly (their names resolved in the client process): Node's pipeline needs the
      // `.localhost` entry to bypass the dead proxy for them, as it matches entries exactly.
      NO_PROXY: `${DEAD_PROXY.NO_PROXY},.localhost`,
      no_proxy: `${DEAD_PROXY.no_proxy},.localhost`,
    });

    async function secretClient(identity: Identity, vaults: VaultView[], steps: Record<string, unknown>[]): Promise<StepResult[]> {
      const config = { clientId: identity.clientId, vaults: vaults.map((v) => v.properties.vaultUri), steps };
      const { stdout } = await run(process.execPath, ['--import', RESOLVER, NODE_CLIENT, JSON.stringify(config)], {
        env: workload(),
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return JSON.parse(stdout) as StepResult[];
    }

    it('the vault URI is https://{name}.vault.localhost:{port}/ on the server port', () => {
      assert.equal(main.properties.vaultUri, `https://kv-main-${backend}.vault.localhost:${new URL(t.url).port}/`);
      assert.equal(main.properties.enableRbacAuthorization, true);
    });

    it('SecretClient + ManagedIdentityCredential: set, get, versions, update, paging over 25 secrets and 25 versions', async () => {
      const steps: Record<string, unknown>[] = [
        { op: 'set', name: 'ConnectionString', value: 'Server=db;Password=s3cret', options: { contentType: 'text/plain', tags: { env: 'test' } } },
        { op: 'get', name: 'ConnectionString' },
      ];
      for (let i = 0; i < 27; i += 1) steps.push({ op: 'set', name: `page-${String(i).padStart(2, '0')}`, value: `value-${String(i)}` });
      for (let i = 0; i < 27; i += 1) steps.push({ op: 'set', name: 'rotating', value: `generation-${String(i)}` });
      steps.push({ op: 'list' }, { op: 'listVersions', name: 'rotating' }, { op: 'get', name: 'rotating' }, { op: 'listPages', maxPageSize: 10 });
      const results = await secretClient(officer, [main], steps);
      for (const [i, r] of results.entries()) assert.ok(r.ok, `step ${String(i)} ${JSON.stringify(steps[i])}: ${JSON.stringify(r)}`);
      const [set, get] = results;
      assert.equal(get!['value'], 'Server=db;Password=s3cret');
      assert.equal(get!['contentType'], 'text/plain');
      assert.deepEqual(get!['tags'], { env: 'test' });
      assert.match(String(set!['version']), /^[0-9a-f]{32}$/);
      assert.equal(set!['id'], `${main.properties.vaultUri}secrets/ConnectionString/${String(set!['version'])}`);
      const list = results[2 + 54]!['names'] as string[];
      assert.equal(list.filter((n) => n.startsWith('page-')).length, 27);
      assert.equal((results[2 + 55]!['versions'] as string[]).length, 27);
      assert.equal(results[2 + 56]!['value'], 'generation-26');
      const pages = results[2 + 57]!['pages'] as number[];
      assert.ok(pages.length >= 3 && pages.every((n) => n <= 10), JSON.stringify(pages));
    });

    it('disabled and expired secrets: a disabled secret is 403 SecretDisabled; an expired one still reads, as Key Vault does', async () => {
      const results = await secretClient(
        officer,
        [main],
        [
          { op: 'set', name: 'switched-off', value: 'x' },
          { op: 'update', name: 'switched-off', version: undefined, options: { enabled: false } },
          { op: 'get', name: 'switched-off' },
          { op: 'set', name: 'expired', value: 'old', options: { expiresOn: new Date(Date.now() - 3_600_000).toISOString() } },
          { op: 'get', name: 'expired' },
        ],
      );
      assert.ok(results[0]!.ok && results[1]!.ok, JSON.stringify(results));
      assert.equal(results[1]!['enabled'], false);
      assert.deepEqual([results[2]!.ok, results[2]!.status, results[2]!.code, results[2]!.inner], [false, 403, 'Forbidden', 'SecretDisabled']);
      assert.ok(results[4]!.ok, JSON.stringify(results[4]));
      assert.equal(results[4]!['value'], 'old');
    });

    it('soft delete then recover; delete then purge; backup then restore into another vault', async () => {
      const results = await secretClient(
        officer,
        [main, second],
        [
          { op: 'set', name: 'to-recover', value: 'recover-me' },
          { op: 'delete', name: 'to-recover' },
          { op: 'getDeleted', name: 'to-recover' },
          { op: 'listDeleted' },
          { op: 'set', name: 'to-recover', value: 'refused' },
          { op: 'recover', name: 'to-recover' },
          { op: 'get', name: 'to-recover' },
          { op: 'set', name: 'to-purge', value: 'gone' },
          { op: 'delete', name: 'to-purge' },
          { op: 'purge', name: 'to-purge' },
          { op: 'getDeleted', name: 'to-purge' },
          { op: 'get', name: 'to-purge' },
          { op: 'set', name: 'portable', value: 'first' },
          { op: 'set', name: 'portable', value: 'second' },
          { op: 'backup', name: 'portable' },
        ],
      );
      const fine = [0, 1, 2, 3, 5, 6, 7, 8, 9, 12, 13, 14];
      for (const i of fine) assert.ok(results[i]!.ok, `step ${String(i)}: ${JSON.stringify(results[i])}`);
      assert.match(String(results[1]!['recoveryId']), new RegExp(`^${main.properties.vaultUri}deletedsecrets/to-recover$`));
      assert.ok((results[3]!['names'] as string[]).includes('to-recover'));
      assert.deepEqual([results[4]!.status, results[4]!.code], [409, 'Conflict']);
      assert.equal(results[6]!['value'], 'recover-me');
      assert.deepEqual([results[10]!.ok, results[10]!.status, results[10]!.code], [false, 404, 'SecretNotFound']);
      assert.deepEqual([results[11]!.ok, results[11]!.status], [false, 404]);

      const backup = String(results[14]!['backup']);
      assert.ok(!Buffer.from(backup, 'base64').toString('latin1').includes('second'), 'the backup blob holds no value in the clear');
      const restored = await secretClient(
        officer,
        [main, second],
        [
          { op: 'restore', vault: 1, backup },
          { op: 'get', vault: 1, name: 'portable' },
          { op: 'listVersions', vault: 1, name: 'portable' },
          { op: 'restore', vault: 0, backup },
        ],
      );
      assert.ok(restored[0]!.ok && restored[1]!.ok && restored[2]!.ok, JSON.stringify(restored));
      assert.equal(restored[1]!['value'], 'second');
      assert.equal((restored[2]!['versions'] as string[]).length, 2);
      assert.deepEqual([restored[3]!.ok, restored[3]!.status], [false, 409], 'restoring over an existing name is refused');
    });

    it('RBAC: no role → 403 ForbiddenByRbac; Key Vault Secrets User at the vault reads and cannot set; removed → refused again within a second', async () => {
      const seed = await secretClient(officer, [main], [{ op: 'set', name: 'shared', value: 'for-readers' }]);
      assert.ok(seed[0]!.ok);
      const before = await secretClient(reader, [main], [{ op: 'get', name: 'shared' }]);
      assert.deepEqual([before[0]!.status, before[0]!.code, before[0]!.inner], [403, 'Forbidden', 'ForbiddenByRbac']);

      const assignment = await openmsiJson<{ id: string }>(t, [
        'role',
        'assignment',
        'create',
        '--assignee',
        reader.principalId,
        '--role',
        'Key Vault Secrets User',
        '--scope',
        main.id,
      ]);
      const granted = await secretClient(reader, [main], [{ op: 'get', name: 'shared' }, { op: 'list' }, { op: 'set', name: 'shared', value: 'overwritten' }]);
      assert.equal(granted[0]!['value'], 'for-readers');
      assert.ok(granted[1]!.ok);
      assert.deepEqual([granted[2]!.status, granted[2]!.inner], [403, 'ForbiddenByRbac']);

      const removed = await openmsi(t, ['role', 'assignment', 'delete', '--ids', assignment.id]);
      assert.equal(removed.code, 0, removed.stderr);
      const removedAt = Date.now();
      const after = await secretClient(reader, [main], [{ op: 'get', name: 'shared' }]);
      // A fresh client process takes longer than a second to start; the refusal it meets proves the bound, the
      // in-process vault tests measure it.
      assert.deepEqual([after[0]!.status, after[0]!.inner], [403, 'ForbiddenByRbac'], `${String(Date.now() - removedAt)} ms after removal`);
    });

    it('access policies: no entry → 403 AccessDenied; get+list → reads and cannot set; policy removed → refused', async () => {
      const admin = await openmsiJson<{ principalId?: string; objectId?: string }>(t, [
        'keyvault',
        'set-policy',
        '-n',
        policies.name,
        '--object-id',
        officer.principalId,
        '--secret-permissions',
        'get',
        'list',
        'set',
        'delete',
      ]);
      assert.ok(admin !== undefined);
      const seeded = await secretClient(officer, [policies], [{ op: 'set', name: 'policy-secret', value: 'by-policy' }]);
      assert.ok(seeded[0]!.ok, JSON.stringify(seeded));
      const denied = await secretClient(reader, [policies], [{ op: 'get', name: 'policy-secret' }]);
      assert.deepEqual([denied[0]!.status, denied[0]!.code, denied[0]!.inner], [403, 'Forbidden', 'AccessDenied']);

      await openmsiJson(t, ['keyvault', 'set-policy', '-n', policies.name, '--object-id', reader.principalId, '--secret-permissions', 'get', 'list']);
      const granted = await secretClient(
        reader,
        [policies],
        [
          { op: 'get', name: 'policy-secret' },
          { op: 'set', name: 'policy-secret', value: 'no' },
        ],
      );
      assert.equal(granted[0]!['value'], 'by-policy');
      assert.deepEqual([granted[1]!.status, granted[1]!.inner], [403, 'AccessDenied']);

      const removed = await openmsi(t, ['keyvault', 'delete-policy', '-n', policies.name, '--object-id', reader.principalId]);
      assert.equal(removed.code, 0, removed.stderr);
      const after = await secretClient(reader, [policies], [{ op: 'get', name: 'policy-secret' }]);
      assert.deepEqual([after[0]!.status, after[0]!.inner], [403, 'AccessDenied']);
    });

    it(
      `Python azure-keyvault-secrets ${pythonKeyVault ?? ''} with ManagedIdentityCredential reads a secret`,
      { skip: pythonKeyVault === undefined ? `${PYTHON} cannot import azure.keyvault.secrets (apt-get install python3-azure)` : false },
      async () => {
        const seeded = await secretClient(officer, [main], [{ op: 'set', name: 'py-secret', value: 'from-python' }]);
        assert.ok(seeded[0]!.ok);
        const env = { ...workload(), REQUESTS_CA_BUNDLE: t.caPath };
        const { stdout } = await run(
          PYTHON,
          [PYTHON_CLIENT, JSON.stringify({ vault: main.properties.vaultUri, name: 'py-secret', clientId: officer.clientId })],
          { env, timeout: 60_000 },
        );
        assert.deepEqual(JSON.parse(stdout), { ok: true, value: 'from-python', version: JSON.parse(stdout).version });
      },
    );

    it("the seeds' raw calls with curl: an IMDS token with Metadata: true, then GET /secrets/NAME?api-version=2016-10-01 with the Bearer token", async () => {
      const seeded = await secretClient(officer, [main], [{ op: 'set', name: 'curl-secret', value: 'from-curl' }]);
      assert.ok(seeded[0]!.ok);
      const tokenJson = (
        await run(
          'curl',
          [
            '-sS',
            '-H',
            'Metadata: true',
            `http://127.0.0.1:${String(agent.port)}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=${officer.clientId}`,
          ],
          { env: workload() },
        )
      ).stdout;
      const token = (JSON.parse(tokenJson) as { access_token: string }).access_token;
      const vault = new URL(main.properties.vaultUri);
      const { stdout } = await run(
        'curl',
        [
          '-sS',
          '--cacert',
          t.caPath,
          '--resolve',
          `${vault.hostname}:${vault.port}:127.0.0.1`,
          '-H',
          `Authorization: Bearer ${token}`,
          `${main.properties.vaultUri}secrets/curl-secret?api-version=2016-10-01`,
        ],
        { env: workload() },
      );
      const body = JSON.parse(stdout) as { value: string; id: string };
      assert.equal(body.value, 'from-curl');
      assert.ok(body.id.startsWith(`${main.properties.vaultUri}secrets/curl-secret/`));
    });
  });
});
