import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority, acrossBackends } from '../support/authority.js';
import { newGuid } from '../../src/shared/ids.js';
import { BUILTIN_ROLE_IDS as ROLE } from '../../src/rbac/builtin-roles.js';
import { assignRoleInStore } from '../rbac/authz/helpers.js';

const ARM = 'https://management.azure.com/';
const V = 'api-version=2023-07-01';
const DAY = 86_400_000;

interface ErrorBody {
  error: { code: string; message: string };
}

interface VaultView {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  properties: Record<string, unknown> & {
    accessPolicies: { tenantId: string; objectId: string; applicationId: string | null; permissions: Record<string, string[]> }[];
  };
}

interface DeletedView {
  id: string;
  name: string;
  type: string;
  properties: {
    vaultId: string;
    location: string;
    deletionDate: string;
    scheduledPurgeDate: string;
    tags: Record<string, string>;
    purgeProtectionEnabled: boolean;
  };
}

acrossBackends('vaults (Microsoft.KeyVault)', (backend) => {
  void describe(`vaults (Microsoft.KeyVault) on ${backend}`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let arm: string;
    let sub: string;
    let port: string;

    before(async () => {
      t = await startTestAuthority({ backend });
      arm = await t.adminToken(ARM);
      sub = t.subscriptionId;
      port = new URL(t.url).port;
      for (const rg of ['kv-rg', 'other-rg']) {
        const created = await call('PUT', `/subscriptions/${sub}/resourcegroups/${rg}?api-version=2021-04-01`, { body: { location: 'westeurope' } });
        assert.equal(created.statusCode, 201, created.body);
      }
    });
    after(async () => {
      await t.close();
    });

    function call(method: string, url: string, options: { token?: string; body?: unknown } = {}) {
      const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? arm}` };
      let payload: string | undefined;
      if (options.body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      }
      return t.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    }

    function expectError(response: LightMyRequestResponse, status: number, code: string): ErrorBody {
      assert.equal(response.statusCode, status, response.body);
      const body = response.json<ErrorBody>();
      assert.equal(body.error.code, code, response.body);
      assert.ok(body.error.message.length > 0);
      return body;
    }

    const vaultUrl = (name: string, rg = 'kv-rg') => `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.KeyVault/vaults/${name}?${V}`;
    /** What `az keyvault create` sends. */
    const azBody = (extra: Record<string, unknown> = {}) => ({
      location: 'westeurope',
      tags: { env: 'dev' },
      properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, accessPolicies: [], ...extra },
    });
    const createVault = async (name: string, extra: Record<string, unknown> = {}, rg = 'kv-rg') => {
      const response = await call('PUT', vaultUrl(name, rg), { body: azBody(extra) });
      assert.equal(response.statusCode, 201, response.body);
      return response.json<VaultView>();
    };

    void it("creates a vault from az's body and shows it as ARM does (RBAC by default, 90 days, vaultUri on the authority's port)", async () => {
      const created = await call('PUT', vaultUrl('App-Vault-1'), { body: azBody() });
      assert.equal(created.statusCode, 201, created.body);
      const view = created.json<VaultView>();
      const { systemData, ...rest } = view as VaultView & { systemData: { createdAt: string; lastModifiedAt: string } };
      assert.match(systemData.createdAt, /^\d{4}-\d\d-\d\dT/);
      assert.deepEqual(rest, {
        id: `/subscriptions/${sub}/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults/App-Vault-1`,
        name: 'App-Vault-1',
        type: 'Microsoft.KeyVault/vaults',
        location: 'westeurope',
        tags: { env: 'dev' },
        properties: {
          sku: { family: 'A', name: 'standard' },
          tenantId: t.tenantId,
          accessPolicies: [],
          vaultUri: `https://app-vault-1.vault.localhost:${port}/`,
          enabledForDeployment: false,
          enabledForDiskEncryption: false,
          enabledForTemplateDeployment: false,
          enableSoftDelete: true,
          softDeleteRetentionInDays: 90,
          enableRbacAuthorization: true,
          enablePurgeProtection: null,
          provisioningState: 'Succeeded',
          publicNetworkAccess: 'Enabled',
        },
      });
      const shown = await call('GET', vaultUrl('app-vault-1').replace('resourceGroups', 'resourcegroups'));
      assert.equal(shown.statusCode, 200, shown.body);
      assert.deepEqual(shown.json(), view);
      const again = await call('PUT', vaultUrl('App-Vault-1'), { body: azBody({ enableRbacAuthorization: false }) });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json<VaultView>().properties['enableRbacAuthorization'], false);

      const inGroup = await call('GET', `/subscriptions/${sub}/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults?${V}`);
      assert.equal(inGroup.statusCode, 200, inGroup.body);
      assert.ok(inGroup.json<{ value: VaultView[] }>().value.some((v) => v.name === 'App-Vault-1'));
      const inSubscription = await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/vaults?${V}`);
      assert.ok(inSubscription.json<{ value: VaultView[] }>().value.some((v) => v.name === 'App-Vault-1'));
      expectError(await call('GET', vaultUrl('no-such-vault')), 404, 'ResourceNotFound');
      expectError(await call('GET', vaultUrl('App-Vault-1', 'no-such-rg')), 404, 'ResourceGroupNotFound');
    });

    void it("refuses names outside Azure's rule with VaultNameNotValid, and a taken name (active or deleted) anywhere", async () => {
      for (const bad of ['ab', '1vault', 'a--b', 'vault-', 'x'.repeat(25), 'under_score']) {
        expectError(await call('PUT', vaultUrl(bad), { body: azBody() }), 400, 'VaultNameNotValid');
      }
      await createVault('taken-name');
      expectError(await call('PUT', vaultUrl('TAKEN-name', 'other-rg'), { body: azBody() }), 409, 'VaultAlreadyExists');
      const check = (name: string) =>
        call('POST', `/subscriptions/${sub}/providers/Microsoft.KeyVault/checkNameAvailability?${V}`, { body: { name, type: 'Microsoft.KeyVault/vaults' } });
      assert.deepEqual((await check('free-name')).json(), { nameAvailable: true });
      assert.equal((await check('taken-name')).json<{ reason: string }>().reason, 'AlreadyExists');
      assert.equal((await check('1bad')).json<{ reason: string }>().reason, 'AccountNameInvalid');
    });

    void it("requires the subscription's tenant, a valid sku, retention and access policies", async () => {
      const response = await call('PUT', vaultUrl('wrong-tenant'), { body: azBody({ tenantId: newGuid() }) });
      expectError(response, 400, 'BadRequest');
      expectError(await call('PUT', vaultUrl('no-sku'), { body: { location: 'westeurope', properties: { tenantId: t.tenantId } } }), 400, 'BadRequest');
      expectError(await call('PUT', vaultUrl('short-retention'), { body: azBody({ softDeleteRetentionInDays: 6 }) }), 400, 'BadRequest');
      expectError(
        await call('PUT', vaultUrl('bad-policy'), { body: azBody({ accessPolicies: [{ tenantId: t.tenantId, objectId: 'nope', permissions: {} }] }) }),
        400,
        'BadRequest',
      );
      expectError(
        await call('PUT', vaultUrl('bad-permission'), {
          body: azBody({ accessPolicies: [{ tenantId: t.tenantId, objectId: newGuid(), permissions: { secrets: ['get', 'steal'] } }] }),
        }),
        400,
        'BadRequest',
      );
      expectError(await call('PUT', vaultUrl('no-body')), 400, 'InvalidRequestContent');
      expectError(await call('GET', vaultUrl('wrong-tenant')), 404, 'ResourceNotFound');
    });

    void it('refuses a principal without rights with AuthorizationFailed and writes nothing', async () => {
      const app = await registerTestApplication(t, 'kv-nobody', { certificate: false });
      const token = await t.app.inject({
        method: 'POST',
        url: `/${t.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: app.secret, scope: `${ARM}.default` }).toString(),
      });
      const nobody = token.json<{ access_token: string }>().access_token;
      const refused = expectError(await call('PUT', vaultUrl('nobodys-vault'), { token: nobody, body: azBody() }), 403, 'AuthorizationFailed');
      assert.match(refused.error.message, /Microsoft\.KeyVault\/vaults\/write/);
      expectError(await call('GET', vaultUrl('nobodys-vault')), 404, 'ResourceNotFound');
      await createVault('guarded-vault');
      expectError(await call('GET', vaultUrl('guarded-vault'), { token: nobody }), 403, 'AuthorizationFailed');
      expectError(await call('DELETE', vaultUrl('guarded-vault'), { token: nobody }), 403, 'AuthorizationFailed');
      expectError(
        await call('PUT', vaultUrl('guarded-vault').replace('?', '/accessPolicies/add?'), { token: nobody, body: { properties: { accessPolicies: [] } } }),
        403,
        'AuthorizationFailed',
      );
      expectError(await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/deletedVaults?${V}`, { token: nobody }), 403, 'AuthorizationFailed');
      assert.equal((await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/vaults?${V}`, { token: nobody })).statusCode, 403);
    });

    /** A principal holding `roles` (built-in role GUID at scope), and its management token. */
    async function principalWith(name: string, roles: [string, string][]) {
      const app = await registerTestApplication(t, name, { certificate: false });
      for (const [role, scope] of roles) await assignRoleInStore(t, scope, role, app.objectId);
      const response = await t.app.inject({
        method: 'POST',
        url: `/${t.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.appId, client_secret: app.secret, scope: `${ARM}.default` }).toString(),
      });
      assert.equal(response.statusCode, 200, response.body);
      return { ...app, token: response.json<{ access_token: string }>().access_token };
    }

    void describe("invariant: changing a vault's permission model takes Microsoft.Authorization/roleAssignments/write at the vault", () => {
      const group = () => `/subscriptions/${sub}/resourceGroups/kv-rg`;
      const otherGroup = () => `/subscriptions/${sub}/resourceGroups/other-rg`;
      /** Who writes, what they hold, and whether they may change the model (every one of them may write the vault). */
      const writers: { name: string; roles: () => [string, string][]; mayChangeModel: boolean }[] = [
        { name: 'Contributor at the group', roles: () => [[ROLE.Contributor, group()]], mayChangeModel: false },
        { name: 'Contributor at the subscription', roles: () => [[ROLE.Contributor, `/subscriptions/${sub}`]], mayChangeModel: false },
        {
          name: 'Contributor at the group, Owner of another group',
          roles: () => [
            [ROLE.Contributor, group()],
            [ROLE.Owner, otherGroup()],
          ],
          mayChangeModel: false,
        },
        { name: 'Owner at the group', roles: () => [[ROLE.Owner, group()]], mayChangeModel: true },
        {
          name: 'Contributor and User Access Administrator at the group',
          roles: () => [
            [ROLE.Contributor, group()],
            [ROLE.UserAccessAdministrator, group()],
          ],
          mayChangeModel: true,
        },
        {
          name: 'Contributor at the group, RBAC Administrator at the root',
          roles: () => [
            [ROLE.Contributor, group()],
            [ROLE.RoleBasedAccessControlAdministrator, '/'],
          ],
          mayChangeModel: true,
        },
      ];
      /** Each way of writing a vault that changes its model (`from` → `to`). */
      const changes: { how: string; from: boolean; send: (self: string, to: boolean) => { method: 'PUT' | 'PATCH'; body: unknown } }[] = [
        {
          how: 'PATCH',
          from: true,
          send: (self, to) => ({ method: 'PATCH', body: { properties: { enableRbacAuthorization: to, accessPolicies: [policyFor(self)] } } }),
        },
        { how: 'PATCH', from: false, send: (_self, to) => ({ method: 'PATCH', body: { properties: { enableRbacAuthorization: to } } }) },
        { how: 'PUT', from: true, send: (self, to) => ({ method: 'PUT', body: azBody({ enableRbacAuthorization: to, accessPolicies: [policyFor(self)] }) }) },
        { how: 'PUT', from: false, send: (_self, to) => ({ method: 'PUT', body: azBody({ enableRbacAuthorization: to }) }) },
      ];
      const policyFor = (objectId: string) => ({ tenantId: t.tenantId, objectId, permissions: { secrets: ['all'] } });
      let n = 0;
      const freshVault = async (rbac: boolean) => {
        n += 1;
        const name = `model-vault-${String(n)}`;
        await createVault(name, { enableRbacAuthorization: rbac });
        return name;
      };
      const model = async (name: string) => (await call('GET', vaultUrl(name))).json<VaultView>().properties;

      for (const writer of writers) {
        void it(`${writer.name}: ${writer.mayChangeModel ? 'may' : 'may not'} change it, by PUT or PATCH, either way; may write everything else`, async () => {
          const who = await principalWith(`model-${writer.name.replace(/\W+/g, '-').toLowerCase()}`, writer.roles());
          for (const change of changes) {
            const name = await freshVault(change.from);
            const { method, body } = change.send(who.objectId, !change.from);
            const response = await call(method, vaultUrl(name), { token: who.token, body });
            const label = `${change.how} ${String(change.from)} → ${String(!change.from)}`;
            const after = await model(name);
            if (writer.mayChangeModel) {
              assert.equal(response.statusCode, 200, `${label}: ${response.body}`);
              assert.equal(after['enableRbacAuthorization'], !change.from, label);
            } else {
              const refused = expectError(response, 403, 'AuthorizationFailed');
              assert.equal(
                refused.error.message,
                `The client '${who.appId}' with object id '${who.objectId}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/${sub}/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults/${name}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
                label,
              );
              assert.equal(after['enableRbacAuthorization'], change.from, `${label}: the model is unchanged`);
              assert.deepEqual(after.accessPolicies, [], `${label}: nothing else was written either`);
            }
          }
          // What does not change the model needs only vaults/write: tags, the same model named again, a PUT
          // that leaves the model out (an existing vault keeps its own), and creating a vault of either model.
          for (const rbac of [true, false]) {
            const name = await freshVault(rbac);
            for (const body of [{ tags: { k: 'v' } }, { properties: { enableRbacAuthorization: rbac } }, { properties: { enableRbacAuthorization: null } }]) {
              const patched = await call('PATCH', vaultUrl(name), { token: who.token, body });
              assert.equal(patched.statusCode, 200, patched.body);
            }
            const { properties } = azBody();
            const put = await call('PUT', vaultUrl(name), {
              token: who.token,
              body: { location: 'westeurope', properties: { ...properties, enableRbacAuthorization: undefined } },
            });
            assert.equal(put.statusCode, 200, put.body);
            assert.equal((await model(name))['enableRbacAuthorization'], rbac, 'a PUT without the property keeps the model');
            n += 1;
            const created = await call('PUT', vaultUrl(`model-vault-${String(n)}`), { token: who.token, body: azBody({ enableRbacAuthorization: rbac }) });
            assert.equal(created.statusCode, 201, created.body);
          }
        });
      }

      void it('a refused change is audited as a failure with its code', async () => {
        const who = await principalWith('model-audited', [[ROLE.Contributor, group()]]);
        const name = await freshVault(true);
        expectError(
          await call('PATCH', vaultUrl(name), { token: who.token, body: { properties: { enableRbacAuthorization: false } } }),
          403,
          'AuthorizationFailed',
        );
        const events = (await call('GET', '/openmsi/audit?action=vault.updated&limit=200')).json<{
          value: { target: string; actor: string; outcome: string; detail: Record<string, unknown> }[];
        }>().value;
        assert.ok(
          events.some(
            (e) => e.target.endsWith(`/vaults/${name}`) && e.actor === who.objectId && e.outcome === 'failure' && e.detail['code'] === 'AuthorizationFailed',
          ),
          JSON.stringify(events),
        );
      });
    });

    void it('edits access policies with add, replace and remove, merging per object id', async () => {
      await createVault('policy-vault', { enableRbacAuthorization: false });
      const alice = newGuid();
      const bob = newGuid();
      const edit = (kind: string, accessPolicies: unknown[]) =>
        call('PUT', vaultUrl('policy-vault').replace('?', `/accessPolicies/${kind}?`), { body: { properties: { accessPolicies } } });
      const entry = (objectId: string, secrets: string[], keys: string[] = []) => ({ tenantId: t.tenantId, objectId, permissions: { secrets, keys } });
      const policies = async () => (await call('GET', vaultUrl('policy-vault'))).json<VaultView>().properties.accessPolicies;

      const added = await edit('add', [entry(alice, ['Get', 'list'])]);
      assert.equal(added.statusCode, 200, added.body);
      assert.equal(added.json<{ type: string }>().type, 'Microsoft.KeyVault/vaults/accessPolicies');
      assert.equal(added.json<{ name: string }>().name, 'add');
      assert.deepEqual(await policies(), [
        { tenantId: t.tenantId, objectId: alice, applicationId: null, permissions: { keys: [], secrets: ['get', 'list'], certificates: [], storage: [] } },
      ]);
      await edit('add', [entry(alice, ['set'], ['get']), entry(bob, ['all'])]);
      let now = await policies();
      assert.deepEqual(now[0]?.permissions['secrets'], ['get', 'list', 'set']);
      assert.deepEqual(now[0]?.permissions['keys'], ['get']);
      assert.deepEqual(now[1]?.permissions['secrets'], ['get', 'list', 'set', 'delete', 'recover', 'backup', 'restore', 'purge']);

      await edit('replace', [entry(alice, ['get'])]);
      now = await policies();
      assert.deepEqual(now[0]?.permissions['secrets'], ['get']);
      assert.deepEqual(now[0]?.permissions['keys'], []);

      await edit('remove', [entry(bob, ['purge', 'delete'])]);
      now = await policies();
      assert.deepEqual(now[1]?.permissions['secrets'], ['get', 'list', 'set', 'recover', 'backup', 'restore']);
      await edit('remove', [entry(alice, ['get'])]);
      now = await policies();
      assert.deepEqual(
        now.map((e) => e.objectId),
        [bob],
        'an entry left with no permissions is removed',
      );
      await edit('remove', [{ tenantId: t.tenantId, objectId: bob, permissions: {} }]);
      assert.deepEqual(await policies(), []);
      expectError(await edit('merge', [entry(alice, ['get'])]), 400, 'BadRequest');
      expectError(await edit('add', [entry('not-a-guid', ['get'])]), 400, 'BadRequest');
    });

    void it('soft-deletes, lists and shows deleted vaults, refuses the name, recovers, deletes again and purges', async () => {
      await createVault('soft-vault', { softDeleteRetentionInDays: 7 });
      const deleted = await call('DELETE', vaultUrl('soft-vault'));
      assert.equal(deleted.statusCode, 200, deleted.body);
      assert.equal((await call('DELETE', vaultUrl('soft-vault'))).statusCode, 204);
      expectError(await call('GET', vaultUrl('soft-vault')), 404, 'ResourceNotFound');

      const list = await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/deletedVaults?${V}`);
      assert.equal(list.statusCode, 200, list.body);
      const entry = list.json<{ value: DeletedView[] }>().value.find((v) => v.name === 'soft-vault');
      assert.ok(entry);
      assert.equal(entry.id, `/subscriptions/${sub}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/soft-vault`);
      assert.equal(entry.type, 'Microsoft.KeyVault/deletedVaults');
      assert.equal(entry.properties.vaultId, `/subscriptions/${sub}/resourceGroups/kv-rg/providers/Microsoft.KeyVault/vaults/soft-vault`);
      assert.equal(Date.parse(entry.properties.scheduledPurgeDate) - Date.parse(entry.properties.deletionDate), 7 * DAY);
      assert.equal(entry.properties.purgeProtectionEnabled, false);
      const one = await call('GET', `${entry.id}?${V}`);
      assert.equal(one.statusCode, 200, one.body);
      assert.deepEqual(one.json(), entry);
      expectError(
        await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/soft-vault?${V}`),
        404,
        'ResourceNotFound',
      );

      const reuse = expectError(await call('PUT', vaultUrl('soft-vault', 'other-rg'), { body: azBody() }), 409, 'ConflictError');
      assert.match(reuse.error.message, /already exists in deleted state/);
      expectError(await call('PUT', vaultUrl('soft-vault'), { body: azBody() }), 409, 'ConflictError');

      const recovered = await call('PUT', vaultUrl('soft-vault'), {
        body: { location: 'westeurope', properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' } },
      });
      assert.equal(recovered.statusCode, 200, recovered.body);
      assert.equal(recovered.json<VaultView>().properties['softDeleteRetentionInDays'], 7);
      assert.equal((await call('GET', vaultUrl('soft-vault'))).statusCode, 200);
      expectError(
        await call('PUT', vaultUrl('never-deleted'), { body: { location: 'westeurope', properties: { tenantId: t.tenantId, createMode: 'recover' } } }),
        404,
        'ResourceNotFound',
      );

      assert.equal((await call('DELETE', vaultUrl('soft-vault'))).statusCode, 200);
      const purged = await call('POST', `${entry.id}/purge?${V}`);
      assert.equal(purged.statusCode, 200, purged.body);
      expectError(await call('GET', `${entry.id}?${V}`), 404, 'ResourceNotFound');
      expectError(await call('POST', `${entry.id}/purge?${V}`), 404, 'ResourceNotFound');
      await createVault('soft-vault', {}, 'other-rg');
    });

    void it('keeps retention and purge protection as Azure does, and refuses to purge a protected vault', async () => {
      await createVault('locked-vault', { softDeleteRetentionInDays: 30, enablePurgeProtection: true });
      const changed = expectError(await call('PUT', vaultUrl('locked-vault'), { body: azBody({ softDeleteRetentionInDays: 60 }) }), 400, 'BadRequest');
      assert.match(changed.error.message, /softDeleteRetentionInDays/);
      const off = expectError(await call('PUT', vaultUrl('locked-vault'), { body: azBody({ enablePurgeProtection: false }) }), 400, 'BadRequest');
      assert.match(off.error.message, /"enablePurgeProtection" cannot be set to false/);
      expectError(await call('PATCH', vaultUrl('locked-vault'), { body: { properties: { softDeleteRetentionInDays: 7 } } }), 400, 'BadRequest');
      // A PUT that leaves them out keeps them.
      const kept = await call('PUT', vaultUrl('locked-vault'), { body: azBody() });
      assert.equal(kept.statusCode, 200, kept.body);
      assert.equal(kept.json<VaultView>().properties['softDeleteRetentionInDays'], 30);
      assert.equal(kept.json<VaultView>().properties['enablePurgeProtection'], true);

      const patched = await call('PATCH', vaultUrl('locked-vault'), { body: { tags: { team: 'a' }, properties: { enableRbacAuthorization: false } } });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.deepEqual(patched.json<VaultView>().tags, { team: 'a' });
      assert.equal(patched.json<VaultView>().properties['enableRbacAuthorization'], false);
      assert.equal(patched.json<VaultView>().properties['softDeleteRetentionInDays'], 30);

      assert.equal((await call('DELETE', vaultUrl('locked-vault'))).statusCode, 200);
      const id = `/subscriptions/${sub}/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/locked-vault`;
      assert.equal((await call('GET', `${id}?${V}`)).json<DeletedView>().properties.purgeProtectionEnabled, true);
      expectError(await call('POST', `${id}/purge?${V}`), 400, 'InvalidOperation');
      assert.equal((await call('GET', `${id}?${V}`)).statusCode, 200, 'still there');
    });

    void it("soft-deletes a group's vaults with the group; they recover once the group exists again", async () => {
      await call('PUT', `/subscriptions/${sub}/resourcegroups/doomed-rg?api-version=2021-04-01`, { body: { location: 'westeurope' } });
      await createVault('doomed-vault-1', {}, 'doomed-rg');
      await createVault('doomed-vault-2', {}, 'doomed-rg');
      const deleted = await call('DELETE', `/subscriptions/${sub}/resourcegroups/doomed-rg?api-version=2021-04-01`);
      assert.equal(deleted.statusCode, 200, deleted.body);
      const names = (await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/deletedVaults?${V}`))
        .json<{ value: DeletedView[] }>()
        .value.map((v) => v.name);
      assert.ok(names.includes('doomed-vault-1') && names.includes('doomed-vault-2'), names.join());
      assert.ok(
        !(await call('GET', `/subscriptions/${sub}/providers/Microsoft.KeyVault/vaults?${V}`))
          .json<{ value: VaultView[] }>()
          .value.some((v) => v.name.startsWith('doomed')),
      );
      const recover = { location: 'westeurope', properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' } };
      expectError(await call('PUT', vaultUrl('doomed-vault-1', 'doomed-rg'), { body: recover }), 404, 'ResourceGroupNotFound');
      await call('PUT', `/subscriptions/${sub}/resourcegroups/doomed-rg?api-version=2021-04-01`, { body: { location: 'westeurope' } });
      assert.equal((await call('PUT', vaultUrl('doomed-vault-1', 'doomed-rg'), { body: recover })).statusCode, 200);
    });

    void it('audits vault changes', async () => {
      await createVault('audited-vault');
      await call('DELETE', vaultUrl('audited-vault'));
      const events = (await call('GET', '/openmsi/audit?action=vault.created&limit=100')).json<{ value: { target: string; actor: string }[] }>().value;
      assert.ok(events.some((e) => e.target.endsWith('/vaults/audited-vault') && e.actor === t.admin.objectId));
      const deletions = (await call('GET', '/openmsi/audit?action=vault.deleted&limit=100')).json<{ value: { target: string }[] }>().value;
      assert.ok(deletions.some((e) => e.target.endsWith('/vaults/audited-vault')));
    });
  });
});
