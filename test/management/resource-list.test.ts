import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority, acrossBackends } from '../support/authority.js';
import { BUILTIN_ROLE_IDS as ROLE } from '../../src/rbac/builtin-roles.js';
import { assignRoleInStore } from '../rbac/authz/helpers.js';

const ARM = 'https://management.azure.com/';
const execFileAsync = promisify(execFile);

interface Listed {
  id: string;
  name: string;
  type: string;
}

acrossBackends('generic resource lists (az resource list, azure-mgmt-keyvault vaults.list)', (backend) => {
  void describe(`generic resource lists (az resource list, azure-mgmt-keyvault vaults.list) on ${backend}`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let arm: string;
    let sub: string;

    const call = (method: 'GET' | 'PUT', url: string, options: { token?: string; body?: unknown } = {}) =>
      t.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${options.token ?? arm}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
      });
    const put = async (url: string, body: unknown) => {
      const response = await call('PUT', url, { body });
      assert.ok(response.statusCode === 200 || response.statusCode === 201, response.body);
    };
    const list = async (path: string, token?: string): Promise<string[]> => {
      const response = await call('GET', path, token === undefined ? {} : { token });
      assert.equal(response.statusCode, 200, response.body);
      return response
        .json<{ value: Listed[] }>()
        .value.map((r) => `${r.type}:${r.name}`)
        .sort();
    };

    before(async () => {
      t = await startTestAuthority({ backend });
      arm = await t.adminToken(ARM);
      sub = t.subscriptionId;
      for (const rg of ['list-a', 'list-b']) {
        await put(`/subscriptions/${sub}/resourcegroups/${rg}?api-version=2021-04-01`, { location: 'westeurope' });
        await put(`/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/kv-${rg}?api-version=2023-07-01`, {
          location: 'westeurope',
          properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' } },
        });
        await put(`/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-${rg}?api-version=2023-01-31`, {
          location: 'westeurope',
        });
      }
      await put(`/subscriptions/${sub}/resourceGroups/list-a/providers/Microsoft.HybridCompute/machines/m-list-a?api-version=2022-12-27`, {
        location: 'westeurope',
      });
    });
    after(async () => {
      await t.close();
    });

    void it('list every resource of the subscription or group, Key Vault vaults included', async () => {
      assert.deepEqual(await list(`/subscriptions/${sub}/resourceGroups/list-a/resources?api-version=2021-04-01`), [
        'Microsoft.HybridCompute/machines:m-list-a',
        'Microsoft.KeyVault/vaults:kv-list-a',
        'Microsoft.ManagedIdentity/userAssignedIdentities:id-list-a',
      ]);
      const all = await list(`/subscriptions/${sub}/resources?api-version=2021-04-01`);
      for (const expected of [
        'Microsoft.KeyVault/vaults:kv-list-a',
        'Microsoft.KeyVault/vaults:kv-list-b',
        'Microsoft.ManagedIdentity/userAssignedIdentities:id-list-b',
      ]) {
        assert.ok(all.includes(expected), `${expected} in ${all.join(', ')}`);
      }
      const vault = (await call('GET', `/subscriptions/${sub}/resourceGroups/list-b/resources?api-version=2021-04-01`))
        .json<{ value: Record<string, unknown>[] }>()
        .value.find((r) => r.name === 'kv-list-b');
      assert.deepEqual(vault, {
        id: `/subscriptions/${sub}/resourceGroups/list-b/providers/Microsoft.KeyVault/vaults/kv-list-b`,
        name: 'kv-list-b',
        type: 'Microsoft.KeyVault/vaults',
        location: 'westeurope',
        tags: {},
      });
    });

    void it('honour $filter (resourceType, name, resourceGroup eq, any case, joined with and) and $top', async () => {
      // What azure-mgmt-keyvault's vaults.list() sends (az keyvault list; az keyvault show -n without -g).
      const vaults = `/subscriptions/${sub}/resources?$filter=${encodeURIComponent("resourceType eq 'Microsoft.KeyVault/vaults'")}&$top=100&api-version=2015-11-01`;
      assert.deepEqual(await list(vaults), ['Microsoft.KeyVault/vaults:kv-list-a', 'Microsoft.KeyVault/vaults:kv-list-b']);
      const spelled = `/subscriptions/${sub}/resources?$filter=${encodeURIComponent("ResourceType EQ 'microsoft.keyvault/VAULTS' and resourceGroup eq 'LIST-B'")}&api-version=2021-04-01`;
      assert.deepEqual(await list(spelled), ['Microsoft.KeyVault/vaults:kv-list-b']);
      const byName = `/subscriptions/${sub}/resources?$filter=${encodeURIComponent("name eq 'id-list-a'")}&api-version=2021-04-01`;
      assert.deepEqual(await list(byName), ['Microsoft.ManagedIdentity/userAssignedIdentities:id-list-a']);
      assert.equal((await list(`/subscriptions/${sub}/resources?$top=1&api-version=2021-04-01`)).length, 1);
      // What az resource list sends without a filter flag: an empty $filter, which filters nothing.
      assert.deepEqual(
        await list(`/subscriptions/${sub}/resourceGroups/list-a/resources?$filter=&api-version=2021-04-01`),
        await list(`/subscriptions/${sub}/resourceGroups/list-a/resources?api-version=2021-04-01`),
      );
      assert.equal((await list(`/subscriptions/${sub}/resourceGroups/list-a/resources?$filter=&api-version=2021-04-01`)).length, 3);
    });

    void it('refuse a $filter or $top they cannot honour, instead of ignoring it', async () => {
      for (const filter of [
        "resourceType ne 'x'",
        "tagName eq 'env'",
        "substringof('kv', name)",
        "name eq 'a' or name eq 'b'",
        "name eq 'unterminated",
        'and',
        "name eq 'a' and",
      ]) {
        const response = await call('GET', `/subscriptions/${sub}/resources?$filter=${encodeURIComponent(filter)}&api-version=2021-04-01`);
        assert.equal(response.statusCode, 400, filter);
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'InvalidFilterInQueryString', filter);
      }
      for (const top of ['0', '-1', 'ten', '1.5']) {
        const response = await call('GET', `/subscriptions/${sub}/resources?$top=${top}&api-version=2021-04-01`);
        assert.equal(response.statusCode, 400, top);
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'InvalidTopInQueryString', top);
      }
    });

    void it('invariant: a generic list shows only what the caller may read (Reader of one group sees that group, vault included)', async () => {
      const app = await registerTestApplication(t, 'list-reader', { certificate: false });
      await assignRoleInStore(t, `/subscriptions/${sub}/resourceGroups/list-b`, ROLE.Reader, app.objectId);
      const issued = await t.app.inject({
        method: 'POST',
        url: `/${t.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: app.secret, scope: `${ARM}.default` }).toString(),
      });
      const token = issued.json<{ access_token: string }>().access_token;
      assert.deepEqual(await list(`/subscriptions/${sub}/resources?api-version=2021-04-01`, token), [
        'Microsoft.KeyVault/vaults:kv-list-b',
        'Microsoft.ManagedIdentity/userAssignedIdentities:id-list-b',
      ]);
      const refused = await call('GET', `/subscriptions/${sub}/resourceGroups/list-a/resources?api-version=2021-04-01`, { token });
      assert.equal(refused.statusCode, 403, refused.body);
    });
  });
});

// The real client: Debian's azure-mgmt-keyvault, whose vaults.list() az keyvault list/show call.
const python = '/usr/bin/python3';
const havePython = spawnSync(python, ['-c', 'import azure.mgmt.keyvault, azure.identity'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
void describe('azure-mgmt-keyvault vaults.list() finds vaults of every group', { skip: havePython ? false : 'Debian python3-azure not installed' }, () => {
  void it('lists the vaults by the generic resource list', async () => {
    const t = await startTestAuthority({ backend: 'sqlite' });
    try {
      const arm = await t.adminToken(ARM);
      const put = (url: string, body: unknown) =>
        t.app.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${arm}`, 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      await put(`/subscriptions/${t.subscriptionId}/resourcegroups/py-rg?api-version=2021-04-01`, { location: 'westeurope' });
      const made = await put(`/subscriptions/${t.subscriptionId}/resourceGroups/py-rg/providers/Microsoft.KeyVault/vaults/py-kv?api-version=2023-07-01`, {
        location: 'westeurope',
        properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' } },
      });
      assert.ok(made.statusCode < 300, made.body);
      const app = await registerTestApplication(t, 'py-lister', { certificate: false });
      await assignRoleInStore(t, `/subscriptions/${t.subscriptionId}`, ROLE.Reader, app.objectId);
      const script = String.raw`
import os, sys
from azure.identity import ClientSecretCredential
from azure.mgmt.keyvault import KeyVaultManagementClient
cred = ClientSecretCredential(os.environ['T'], os.environ['A'], os.environ['S'], authority=os.environ['U'], instance_discovery=False)
client = KeyVaultManagementClient(cred, os.environ['SUB'], base_url=os.environ['U'], credential_scopes=['https://management.azure.com/.default'])
print(','.join(sorted(v.id.split('/')[-1] + '@' + v.id.split('/')[4] for v in client.vaults.list())))
`;
      // Asynchronously: the authority answers from this process.
      const run = await execFileAsync(python, ['-c', script], {
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          PATH: process.env.PATH ?? '',
          REQUESTS_CA_BUNDLE: t.caPath,
          T: t.tenantId,
          A: app.appId,
          S: app.secret,
          U: t.url,
          SUB: t.subscriptionId,
          // Anything not on loopback goes to a closed loopback port and fails: tests never leave the machine.
          HTTPS_PROXY: 'http://127.0.0.1:9',
          HTTP_PROXY: 'http://127.0.0.1:9',
          NO_PROXY: 'localhost,127.0.0.1',
        },
      });
      assert.equal(run.stdout.trim(), 'py-kv@py-rg', run.stderr);
    } finally {
      await t.close();
    }
  });
});
