import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { newGuid } from '../../src/shared/ids.js';
import { createApplicationPrincipal, deleteApplicationPrincipal } from '../../src/directory/principals.js';
import { addPasswordCredential } from '../../src/directory/credentials.js';
import { createClientCertificate } from '../../src/pki/client-certificate.js';

const ARM = 'https://management.azure.com/';
const GRAPH = 'https://graph.microsoft.com';
const V = 'api-version=2023-01-31';

interface ErrorBody {
  error: { code: string; message: string };
}

void describe('management API', () => {
  let t: TestAuthority;
  let arm: string;
  let graph: string;
  let sub: string;
  const secretsSeen: string[] = [];

  before(async () => {
    t = await startTestAuthority();
    arm = await t.adminToken(ARM);
    graph = await t.adminToken(GRAPH);
    sub = t.subscriptionId;
    secretsSeen.push(t.admin.clientSecret);
  });
  after(async () => {
    await t.close();
  });

  function call(method: string, url: string, options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
    const token = options.token === undefined ? (url.startsWith('/v1.0/') ? graph : arm) : options.token;
    const headers: Record<string, string> = { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...options.headers };
    let payload: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] ??= 'application/json';
      payload = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    }
    return t.app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
  }

  function expectError(response: LightMyRequestResponse, status: number, code: string): ErrorBody {
    assert.equal(response.statusCode, status, response.body);
    const body = response.json<ErrorBody>();
    assert.equal(body.error.code, code, response.body);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(body.error.message.length > 0);
    return body;
  }

  async function tokenFor(clientId: string, clientSecret: string, scope: string) {
    return t.app.inject({
      method: 'POST',
      url: `/${t.tenantId}/oauth2/v2.0/token`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, scope }).toString(),
    });
  }

  void describe('subscriptions', () => {
    void it('lists and shows the tenant subscriptions', async () => {
      const list = await call('GET', `/subscriptions?api-version=2022-12-01`);
      assert.equal(list.statusCode, 200, list.body);
      const { value } = list.json<{ value: { id: string; subscriptionId: string; tenantId: string; state: string; displayName: string }[] }>();
      const mine = value.find((s) => s.subscriptionId === sub);
      assert.ok(mine);
      assert.equal(mine.id, `/subscriptions/${sub}`);
      assert.equal(mine.tenantId, t.tenantId);
      assert.equal(mine.state, 'Enabled');
      const one = await call('GET', `/subscriptions/${sub}?api-version=2022-12-01`);
      assert.deepEqual(one.json(), mine);
      expectError(await call('GET', `/subscriptions/${newGuid()}?api-version=2022-12-01`), 404, 'SubscriptionNotFound');
    });

    void it("refuses a subscription of another tenant with ARM's wrong-tenant 401", async () => {
      const tenantId = newGuid();
      const subscriptionId = newGuid();
      await t.ctx.store.tenants.create({ id: tenantId, displayName: 'Elsewhere', defaultDomain: 'elsewhere.local', createdAt: Date.now() });
      await t.ctx.store.subscriptions.create({ id: subscriptionId, tenantId, displayName: 'Foreign', state: 'Enabled', createdAt: Date.now() });
      const response = await call('GET', `/subscriptions/${subscriptionId}/resourcegroups?${V}`);
      expectError(response, 401, 'InvalidAuthenticationTokenTenant');
      assert.equal(response.headers['www-authenticate'], `Bearer authorization_uri="${t.ctx.urls.origin}/${tenantId}", error="invalid_token"`);
      const list = await call('GET', `/subscriptions?api-version=2022-12-01`);
      assert.ok(!list.json<{ value: { subscriptionId: string }[] }>().value.some((s) => s.subscriptionId === subscriptionId));
    });
  });

  void describe('resource groups', () => {
    void it('creates (201), updates (200), shows, lists and deletes (200, then 204)', async () => {
      const url = `/subscriptions/${sub}/resourcegroups/App-RG?api-version=2021-04-01`;
      const created = await call('PUT', url, { body: { location: 'West Europe', tags: { env: 'dev' } } });
      assert.equal(created.statusCode, 201, created.body);
      assert.deepEqual(created.json(), {
        id: `/subscriptions/${sub}/resourceGroups/App-RG`,
        name: 'App-RG',
        type: 'Microsoft.Resources/resourceGroups',
        location: 'westeurope',
        tags: { env: 'dev' },
        properties: { provisioningState: 'Succeeded' },
      });
      const updated = await call('PUT', `/subscriptions/${sub}/resourceGroups/app-rg?api-version=2021-04-01`, { body: { location: 'westeurope', tags: {} } });
      assert.equal(updated.statusCode, 200, updated.body);
      assert.equal(updated.json<{ name: string }>().name, 'App-RG');
      const shown = await call('GET', `/Subscriptions/${sub}/ResourceGroups/APP-RG?api-version=2021-04-01`);
      assert.equal(shown.statusCode, 200, shown.body);
      assert.deepEqual(shown.json<{ tags: object }>().tags, {});
      const list = await call('GET', `/subscriptions/${sub}/resourceGroups?api-version=2021-04-01`);
      assert.ok(list.json<{ value: { name: string }[] }>().value.some((g) => g.name === 'App-RG'));
      expectError(await call('PUT', url, { body: { location: 'eastus' } }), 409, 'InvalidResourceGroupLocation');
      const deleted = await call('DELETE', url);
      assert.equal(deleted.statusCode, 200, deleted.body);
      assert.equal((await call('DELETE', url)).statusCode, 204);
      expectError(await call('GET', url), 404, 'ResourceGroupNotFound');
    });

    void it('rejects bad names, bodies and api-versions with clear 4xx errors', async () => {
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/bad*name?${V}`, { body: { location: 'x' } }), 400, 'InvalidResourceGroup');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ends.?${V}`, { body: { location: 'x' } }), 400, 'InvalidResourceGroup');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/${'x'.repeat(91)}?${V}`, { body: { location: 'x' } }), 400, 'InvalidResourceGroup');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: '{"location": ' }), 400, 'InvalidRequestContent');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: '[]' }), 400, 'InvalidRequestContent');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`), 400, 'InvalidRequestContent');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: {} }), 400, 'LocationRequired');
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: { location: 'x', tags: 'a=b' } }), 400, 'InvalidTag');
      expectError(
        await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: 'location=x', headers: { 'content-type': 'text/plain' } }),
        415,
        'UnsupportedMediaType',
      );
      expectError(
        await call('PUT', `/subscriptions/${sub}/resourcegroups/ok?${V}`, { body: { location: 'x', tags: { big: 'y'.repeat(200) }, pad: 'z'.repeat(70_000) } }),
        413,
        'RequestEntityTooLarge',
      );
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups`), 400, 'MissingApiVersionParameter');
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups?api-version=latest`), 400, 'InvalidApiVersionParameter');
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups?api-version=2021-04-01&api-version=2022-01-01`), 400, 'InvalidApiVersionParameter');
      // Nothing was created by any of them, and the server keeps serving.
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups/ok?${V}`), 404, 'ResourceGroupNotFound');
      assert.equal((await call('GET', `/subscriptions?${V}`)).statusCode, 200);
    });
  });

  void describe('user-assigned identities', () => {
    void it('runs the whole lifecycle through case-insensitive ARM paths (api%2Dversion too)', async () => {
      assert.equal((await call('PUT', `/subscriptions/${sub}/resourcegroups/mi-rg?${V}`, { body: { location: 'westeurope' } })).statusCode, 201);
      const path = `/subscriptions/${sub}/resourceGroups/mi-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id`;
      const created = await call('PUT', `${path}?api%2Dversion=2023-01-31`, { body: { location: 'westeurope', tags: { team: 'a' } } });
      assert.equal(created.statusCode, 201, created.body);
      const identity = created.json<{
        id: string;
        name: string;
        type: string;
        location: string;
        tags: object;
        properties: { tenantId: string; principalId: string; clientId: string };
      }>();
      assert.equal(identity.id, path);
      assert.equal(identity.name, 'app-id');
      assert.equal(identity.type, 'Microsoft.ManagedIdentity/userAssignedIdentities');
      assert.equal(identity.properties.tenantId, t.tenantId);
      const principal = await t.ctx.store.servicePrincipals.getByObjectId(identity.properties.principalId);
      assert.equal(principal?.appId, identity.properties.clientId);
      assert.deepEqual(principal?.managedIdentity, { type: 'UserAssigned', resourceId: path });

      const mixed = `/SUBSCRIPTIONS/${sub}/RESOURCEGROUPS/MI-RG/PROVIDERS/microsoft.managedidentity/USERASSIGNEDIDENTITIES/app-id?api-version=2023-01-31`;
      const shown = await call('GET', mixed);
      assert.equal(shown.statusCode, 200, shown.body);
      assert.deepEqual(shown.json(), identity);
      const again = await call('PUT', `${path}?${V}`, { body: { location: 'westeurope' } });
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json<typeof identity>().properties.principalId, identity.properties.principalId);

      const inGroup = await call('GET', `/subscriptions/${sub}/resourceGroups/mi-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?${V}`);
      assert.deepEqual(
        inGroup.json<{ value: { id: string }[] }>().value.map((i) => i.id),
        [path],
      );
      const inSub = await call('GET', `/subscriptions/${sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?${V}`);
      assert.ok(inSub.json<{ value: { id: string }[] }>().value.some((i) => i.id === path));

      // Findable through the Graph-shaped API by resource id, client id and object id.
      const filter = encodeURIComponent(`alternativeNames/any(x:x eq '${path.toLowerCase()}')`);
      const byResource = await call('GET', `/v1.0/servicePrincipals?$filter=${filter}`);
      assert.equal(byResource.statusCode, 200, byResource.body);
      const found = byResource.json<{ value: { id: string; servicePrincipalType: string; alternativeNames: string[]; servicePrincipalNames: string[] }[] }>()
        .value;
      assert.equal(found.length, 1);
      assert.equal(found[0]?.id, identity.properties.principalId);
      assert.equal(found[0]?.servicePrincipalType, 'ManagedIdentity');
      assert.deepEqual(found[0]?.alternativeNames, ['isExplicit=True', path]);
      assert.match(found[0]?.servicePrincipalNames[1] ?? '', /^https:\/\/identity\.azure\.net\/[A-Za-z0-9+/]+=*$/);
      const byApp = await call('GET', `/v1.0/servicePrincipals(appId='${identity.properties.clientId}')`);
      assert.equal(byApp.json<{ id: string }>().id, identity.properties.principalId);
      const byObject = await call('GET', `/v1.0/servicePrincipals/${identity.properties.principalId}`);
      assert.equal(byObject.json<{ appId: string }>().appId, identity.properties.clientId);
      const miOnly = await call('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent("servicePrincipalType eq 'ManagedIdentity'")}`);
      assert.ok(miOnly.json<{ value: { servicePrincipalType: string }[] }>().value.every((p) => p.servicePrincipalType === 'ManagedIdentity'));

      const deleted = await call('DELETE', `${path}?${V}`);
      assert.equal(deleted.statusCode, 200, deleted.body);
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(identity.properties.principalId), undefined);
      assert.equal((await call('DELETE', `${path}?${V}`)).statusCode, 204);
      expectError(await call('GET', `${path}?${V}`), 404, 'ResourceNotFound');
      expectError(await call('GET', `/v1.0/servicePrincipals/${identity.properties.principalId}`), 404, 'Request_ResourceNotFound');
    });

    void it('validates identity names and the group', async () => {
      const base = `/subscriptions/${sub}/resourceGroups/mi-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities`;
      for (const name of ['ab', '-abc', 'a.b.c', 'x'.repeat(129)]) {
        expectError(await call('PUT', `${base}/${name}?${V}`, { body: { location: 'westeurope' } }), 400, 'InvalidResourceName');
      }
      expectError(
        await call('PUT', `/subscriptions/${sub}/resourceGroups/nope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/abc?${V}`, { body: {} }),
        404,
        'ResourceGroupNotFound',
      );
    });
  });

  void describe('resources with identities', () => {
    void it('creates a system-assigned principal with the resource and deletes it with the identity or the group', async () => {
      assert.equal((await call('PUT', `/subscriptions/${sub}/resourcegroups/vm-rg?${V}`, { body: { location: 'westeurope' } })).statusCode, 201);
      const uami = (
        await call('PUT', `/subscriptions/${sub}/resourceGroups/vm-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vm-id?${V}`, { body: {} })
      ).json<{ id: string; properties: { principalId: string; clientId: string } }>();
      const vm = `/subscriptions/${sub}/resourceGroups/vm-rg/providers/Microsoft.Compute/virtualMachines/vm1`;
      const created = await call('PUT', `${vm}?api-version=2024-03-01`, {
        body: {
          location: 'westeurope',
          identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.id]: {} } },
          properties: { hardwareProfile: { vmSize: 'Standard_B1s' } },
        },
      });
      assert.equal(created.statusCode, 201, created.body);
      const body = created.json<{
        id: string;
        type: string;
        identity: { type: string; principalId: string; tenantId: string; userAssignedIdentities: Record<string, { principalId: string; clientId: string }> };
        properties: Record<string, unknown>;
      }>();
      assert.equal(body.id, vm);
      assert.equal(body.type, 'Microsoft.Compute/virtualMachines');
      assert.equal(body.identity.type, 'SystemAssigned, UserAssigned');
      assert.equal(body.identity.tenantId, t.tenantId);
      assert.deepEqual(body.identity.userAssignedIdentities, { [uami.id]: { principalId: uami.properties.principalId, clientId: uami.properties.clientId } });
      assert.deepEqual(body.properties, { hardwareProfile: { vmSize: 'Standard_B1s' }, provisioningState: 'Succeeded' });
      const sami = body.identity.principalId;
      assert.ok(await t.ctx.store.servicePrincipals.getByObjectId(sami));

      // Mixed-case GET of the generic resource.
      const shown = await call('GET', `/subscriptions/${sub}/resourcegroups/VM-RG/providers/microsoft.compute/virtualmachines/VM1?api-version=2024-03-01`);
      assert.equal(shown.statusCode, 200, shown.body);
      assert.equal(shown.json<{ identity: { principalId: string } }>().identity.principalId, sami);

      // A PUT without SystemAssigned removes the principal: nothing can be issued for it any more.
      const userOnly = await call('PUT', `${vm}?api-version=2024-03-01`, {
        body: { location: 'westeurope', identity: { type: 'UserAssigned', userAssignedIdentities: { [uami.id]: {} } } },
      });
      assert.equal(userOnly.statusCode, 200, userOnly.body);
      assert.equal(userOnly.json<{ identity: { type: string } }>().identity.type, 'UserAssigned');
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(sami), undefined);

      const again = await call('PUT', `${vm}?api-version=2024-03-01`, { body: { location: 'westeurope', identity: { type: 'SystemAssigned' } } });
      const sami2 = again.json<{ identity: { principalId: string } }>().identity.principalId;
      assert.notEqual(sami2, sami);
      const list = await call('GET', `/subscriptions/${sub}/resourceGroups/vm-rg/providers/Microsoft.Compute/virtualMachines?api-version=2024-03-01`);
      assert.deepEqual(
        list.json<{ value: { id: string }[] }>().value.map((r) => r.id),
        [vm],
      );
      const all = await call('GET', `/subscriptions/${sub}/resourceGroups/vm-rg/resources?api-version=2024-03-01`);
      assert.equal(all.json<{ value: unknown[] }>().value.length, 2);

      // Deleting the group deletes the VM, the identity and both principals.
      assert.equal((await call('DELETE', `/subscriptions/${sub}/resourcegroups/vm-rg?${V}`)).statusCode, 200);
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(sami2), undefined);
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(uami.properties.principalId), undefined);
      assert.equal(await t.ctx.store.resources.get(vm), undefined);
    });

    void it('refuses unknown types and bad identities', async () => {
      assert.equal((await call('PUT', `/subscriptions/${sub}/resourcegroups/types-rg?${V}`, { body: { location: 'westeurope' } })).statusCode, 201);
      const base = `/subscriptions/${sub}/resourceGroups/types-rg/providers`;
      expectError(await call('PUT', `${base}/Microsoft.Fake/things/x?${V}`, { body: { location: 'westeurope' } }), 400, 'NoRegisteredProviderFound');
      expectError(await call('GET', `${base}/Microsoft.Fake/things/x?${V}`), 404, 'NoRegisteredProviderFound');
      expectError(await call('PUT', `${base}/Microsoft.Web/sites/s1?${V}`, { body: { identity: { type: 'Magic' } } }), 400, 'InvalidIdentity');
      const missing = `${base}/Microsoft.ManagedIdentity/userAssignedIdentities/missing`;
      expectError(
        await call('PUT', `${base}/Microsoft.Web/sites/s1?${V}`, { body: { identity: { type: 'UserAssigned', userAssignedIdentities: { [missing]: {} } } } }),
        400,
        'InvalidUserAssignedIdentity',
      );
      expectError(await call('GET', `${base}/Microsoft.Web/sites/s1?${V}`), 404, 'ResourceNotFound');
    });
  });

  void describe('service principals and credentials', () => {
    void it('create-for-rbac: the secret works at the token endpoint and is stored only as a hash', async () => {
      const created = await call('POST', '/v1.0/servicePrincipals', { body: { displayName: 'ci-pipeline' } });
      assert.equal(created.statusCode, 201, created.body);
      const sp = created.json<{ id: string; appId: string; displayName: string; servicePrincipalType: string; servicePrincipalNames: string[] }>();
      assert.equal(sp.displayName, 'ci-pipeline');
      assert.equal(sp.servicePrincipalType, 'Application');
      assert.deepEqual(sp.servicePrincipalNames, [sp.appId]);

      const added = await call('POST', `/v1.0/servicePrincipals/${sp.id}/addPassword`, { body: { passwordCredential: { displayName: 'rbac' } } });
      assert.equal(added.statusCode, 200, added.body);
      const password = added.json<{ keyId: string; secretText: string; hint: string; startDateTime: string; endDateTime: string; displayName: string }>();
      secretsSeen.push(password.secretText);
      assert.match(password.secretText, /^[A-Za-z0-9_.~-]{3}8Q~[A-Za-z0-9_.~-]{43}$/);
      assert.equal(password.hint, password.secretText.slice(0, 3));
      assert.equal(password.displayName, 'rbac');
      assert.ok(Date.parse(password.endDateTime) > Date.parse(password.startDateTime));

      const rows = await t.ctx.store.credentials.listByApp(sp.appId);
      assert.equal(rows.length, 1);
      assert.ok(!JSON.stringify(rows).includes(password.secretText), 'no stored row holds the secret');
      assert.ok(t.ctx.masterKey.verifySecret(password.secretText, rows[0]!.secretHash!));

      const ok = await tokenFor(sp.appId, password.secretText, 'https://vault.azure.net/.default');
      assert.equal(ok.statusCode, 200, ok.body);
      const wrong = await tokenFor(
        sp.appId,
        password.secretText.slice(0, -1) + (password.secretText.endsWith('A') ? 'B' : 'A'),
        'https://vault.azure.net/.default',
      );
      assert.equal(wrong.statusCode, 401, wrong.body);

      // Reading it back never shows a secret.
      const shown = await call('GET', `/v1.0/servicePrincipals/${sp.id}`);
      assert.ok(!shown.body.includes(password.secretText));
      assert.equal(shown.json<{ passwordCredentials: { keyId: string; secretText: null }[] }>().passwordCredentials[0]?.secretText, null);

      // credential reset replaces the old secret.
      const reset = await call('POST', `/v1.0/servicePrincipals/${sp.appId}/resetCredentials`, { body: { years: 2 } });
      assert.equal(reset.statusCode, 200, reset.body);
      const next = reset.json<{ appId: string; password: string; tenant: string; removedCredentials: number }>();
      secretsSeen.push(next.password);
      assert.equal(next.appId, sp.appId);
      assert.equal(next.tenant, t.tenantId);
      assert.equal(next.removedCredentials, 1);
      assert.equal((await tokenFor(sp.appId, password.secretText, 'https://vault.azure.net/.default')).statusCode, 401);
      assert.equal((await tokenFor(sp.appId, next.password, 'https://vault.azure.net/.default')).statusCode, 200);

      // A certificate, as base64 DER (Graph's addKey).
      const { certPem } = await createClientCertificate({ commonName: 'ci-pipeline', clock: t.ctx.clock });
      const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64');
      const addKey = await call('POST', `/v1.0/servicePrincipals/${sp.id}/addKey`, {
        body: { keyCredential: { type: 'AsymmetricX509Cert', usage: 'Verify', key: der } },
      });
      assert.equal(addKey.statusCode, 200, addKey.body);
      assert.match(addKey.json<{ customKeyIdentifier: string }>().customKeyIdentifier, /^[0-9A-F]{40}$/);
      expectError(
        await call('POST', `/v1.0/servicePrincipals/${sp.id}/addKey`, { body: { keyCredential: { key: 'bm90IGEgY2VydA==' } } }),
        400,
        'InvalidKeyCredential',
      );
      assert.equal((await t.ctx.store.credentials.listByApp(sp.appId)).length, 2);

      // Found by display name (exact and prefix, as az ad sp list --display-name sends).
      for (const filter of [
        "displayName eq 'ci-pipeline'",
        "startswith(displayName,'ci-pip')",
        `appId eq '${sp.appId}' and servicePrincipalType eq 'Application'`,
      ]) {
        const found = await call('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent(filter)}`);
        assert.equal(found.statusCode, 200, found.body);
        assert.deepEqual(
          found.json<{ value: { id: string }[] }>().value.map((p) => p.id),
          [sp.id],
          filter,
        );
      }
      expectError(await call('GET', `/v1.0/servicePrincipals?$filter=${encodeURIComponent('displayName ne 1')}`), 400, 'Request_UnsupportedQuery');

      // Deleting the principal removes it (and its credentials): no more tokens.
      assert.equal((await call('DELETE', `/v1.0/servicePrincipals/${sp.id}`)).statusCode, 204);
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(sp.id), undefined);
      assert.equal((await t.ctx.store.credentials.listByApp(sp.appId)).length, 0);
      assert.equal((await tokenFor(sp.appId, next.password, 'https://vault.azure.net/.default')).statusCode, 400);
      expectError(await call('DELETE', `/v1.0/servicePrincipals/${sp.id}`), 404, 'Request_ResourceNotFound');
    });

    void it('removes a password or a key credential by keyId (204), audited, and says when there is none', async () => {
      const sp = (await call('POST', '/v1.0/servicePrincipals', { body: { displayName: 'remove-creds' } })).json<{ id: string; appId: string }>();
      const password = (await call('POST', `/v1.0/servicePrincipals/${sp.id}/addPassword`, { body: {} })).json<{ keyId: string; secretText: string }>();
      secretsSeen.push(password.secretText);
      const { certPem } = await createClientCertificate({ commonName: 'remove-creds', clock: t.ctx.clock });
      const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64');
      const key = (await call('POST', `/v1.0/servicePrincipals/${sp.id}/addKey`, { body: { keyCredential: { key: der } } })).json<{ keyId: string }>();

      // Each route removes only its own kind.
      expectError(await call('POST', `/v1.0/servicePrincipals/${sp.id}/removeKey`, { body: { keyId: password.keyId } }), 400, 'Request_BadRequest');
      const removedPassword = await call('POST', `/v1.0/servicePrincipals/${sp.id}/removePassword`, { body: { keyId: password.keyId } });
      assert.equal(removedPassword.statusCode, 204, removedPassword.body);
      assert.equal(removedPassword.body, '');
      assert.equal((await tokenFor(sp.appId, password.secretText, 'https://vault.azure.net/.default')).statusCode, 401);
      expectError(await call('POST', `/v1.0/servicePrincipals/${sp.id}/removePassword`, { body: { keyId: password.keyId } }), 400, 'Request_BadRequest');
      assert.equal((await call('POST', `/v1.0/servicePrincipals/${sp.appId}/removeKey`, { body: { keyId: key.keyId } })).statusCode, 204);
      assert.deepEqual(await t.ctx.store.credentials.listByApp(sp.appId), []);
      expectError(await call('POST', `/v1.0/servicePrincipals/${sp.id}/removeKey`, { body: {} }), 400, 'Request_BadRequest');

      await t.ctx.audit.flush();
      const removed = (await t.ctx.store.audit.list({ action: 'credential.removed' })).filter((e) => e.target === sp.appId || e.target === sp.id);
      assert.deepEqual(removed.map((e) => e.outcome).sort(), ['failure', 'failure', 'failure', 'success', 'success']);
    });

    void it('rejects bad Graph requests', async () => {
      expectError(await call('POST', '/v1.0/servicePrincipals', { body: {} }), 400, 'Request_BadRequest');
      expectError(await call('POST', '/v1.0/servicePrincipals', { body: '{bad json' }), 400, 'InvalidRequestContent');
      expectError(await call('GET', `/v1.0/servicePrincipals/${newGuid()}`), 404, 'Request_ResourceNotFound');
      expectError(await call('GET', '/v1.0/devices'), 400, 'BadRequest');
      // `/v1.0/applications` is served (how az resolves an app id for its federated credentials): only `appId eq '…'` filters.
      assert.equal((await call('GET', '/v1.0/applications')).statusCode, 200);
      expectError(await call('GET', `/v1.0/applications?$filter=${encodeURIComponent("displayName eq 'x'")}`), 400, 'Request_BadRequest');
      expectError(await call('DELETE', `/v1.0/servicePrincipals/${t.admin.objectId}`), 400, 'Request_BadRequest');
      // Managed-identity principals are deleted with their resource.
      assert.equal((await call('PUT', `/subscriptions/${sub}/resourcegroups/graph-rg?${V}`, { body: { location: 'westeurope' } })).statusCode, 201);
      const mi = (
        await call('PUT', `/subscriptions/${sub}/resourceGroups/graph-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/graph-id?${V}`, {
          body: {},
        })
      ).json<{ properties: { principalId: string } }>();
      expectError(await call('DELETE', `/v1.0/servicePrincipals/${mi.properties.principalId}`), 400, 'Request_BadRequest');
      expectError(await call('POST', `/v1.0/servicePrincipals/${mi.properties.principalId}/addPassword`, { body: {} }), 400, 'Request_BadRequest');
    });
  });

  void describe('authentication and authorisation', () => {
    void it('answers 401 with a Bearer challenge without a token or with a bad one', async () => {
      const url = `/subscriptions/${sub}/resourcegroups?${V}`;
      const challenge = `Bearer authorization_uri="${t.ctx.urls.origin}/${t.tenantId}", error="invalid_token"`;
      const none = await call('GET', url, { token: null });
      expectError(none, 401, 'AuthenticationFailed');
      assert.equal(none.headers['www-authenticate'], challenge);
      const garbage = await call('GET', url, { token: 'not-a-jwt' });
      expectError(garbage, 401, 'InvalidAuthenticationToken');
      assert.equal(garbage.headers['www-authenticate'], challenge);
      const tampered = await call('GET', url, { token: arm.slice(0, -4) + (arm.endsWith('AAAA') ? 'BBBB' : 'AAAA') });
      expectError(tampered, 401, 'InvalidAuthenticationToken');
      expectError(
        await call('GET', url, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, token: null }),
        401,
        'AuthenticationFailed',
      );
      // A Graph token is not an ARM token, and the other way round.
      expectError(await call('GET', url, { token: graph }), 401, 'InvalidAuthenticationTokenAudience');
      expectError(await call('GET', '/v1.0/servicePrincipals', { token: arm }), 401, 'InvalidAuthenticationToken');
      expectError(await call('GET', '/v1.0/servicePrincipals', { token: null }), 401, 'InvalidAuthenticationToken');
      expectError(await call('GET', '/openmsi/keys', { token: null }), 401, 'AuthenticationFailed');
      // A directory admin's valid token for any other resource (Key Vault, Storage) opens neither family.
      for (const audience of ['https://vault.azure.net', 'https://storage.azure.com/']) {
        const other = await t.adminToken(audience);
        expectError(await call('GET', url, { token: other }), 401, 'InvalidAuthenticationTokenAudience');
        expectError(await call('GET', '/openmsi/keys', { token: other }), 401, 'InvalidAuthenticationTokenAudience');
        expectError(await call('GET', '/v1.0/servicePrincipals', { token: other }), 401, 'InvalidAuthenticationToken');
      }
      // ARM's other resource URI is accepted, as ARM does.
      const classic = await t.adminToken('https://management.core.windows.net/');
      assert.equal((await call('GET', url, { token: classic })).statusCode, 200);
      // An unauthenticated request is refused before its body is even read.
      expectError(await call('PUT', `/subscriptions/${sub}/resourcegroups/x?${V}`, { token: null, body: '{not json' }), 401, 'AuthenticationFailed');
    });

    void it("accepts on /v1.0 a token for the server's own origin (what az asks for when its cloud names the server as Graph), and nowhere else", async () => {
      const armUrl = `/subscriptions/${sub}/resourcegroups?${V}`;
      // The resource exactly as az sends it (t.adminToken drops a trailing slash): scope `{resource}/.default`.
      const tokenForResource = async (resource: string): Promise<string> => {
        const response = await tokenFor(t.admin.clientId, t.admin.clientSecret, `${resource}/.default`);
        assert.equal(response.statusCode, 200, response.body);
        return response.json<{ access_token: string }>().access_token;
      };
      const origins = t.ctx.urls.advertisedOrigins().map((o) => o.origin);
      assert.ok(origins.includes(t.ctx.urls.origin), origins.join(' '));
      // az sends the resource as registered, trailing slash kept (`https://localhost:8443/`); both spellings pass.
      for (const audience of [`${t.ctx.urls.origin}/`, t.ctx.urls.origin, ...origins.filter((o) => o !== t.ctx.urls.origin).map((o) => `${o}/`)]) {
        const token = await tokenForResource(audience);
        assert.equal(JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')).aud, audience);
        const list = await call('GET', '/v1.0/servicePrincipals', { token });
        assert.equal(list.statusCode, 200, `${audience}: ${list.body}`);
        // It is not an ARM token: ARM paths and openmsi's own endpoints still take ARM's audiences only.
        expectError(await call('GET', armUrl, { token }), 401, 'InvalidAuthenticationTokenAudience');
        expectError(await call('GET', '/openmsi/keys', { token }), 401, 'InvalidAuthenticationTokenAudience');
      }
      // Another origin (another port, another host) or a path on ours is not ours: refused, whatever the Host header says.
      const port = new URL(t.ctx.urls.origin).port;
      for (const audience of [`https://localhost:${String(Number(port) + 1)}/`, 'https://attacker.example/', `${t.ctx.urls.origin}/v1.0`]) {
        const token = await tokenForResource(audience);
        const refused = expectError(await call('GET', '/v1.0/servicePrincipals', { token }), 401, 'InvalidAuthenticationToken');
        assert.match(refused.error.message, /https:\/\/graph\.microsoft\.com/);
        const forged = await call('GET', '/v1.0/servicePrincipals', { token, headers: { host: new URL(audience).host } });
        assert.equal(forged.statusCode, 401, audience);
      }
      // A vault token (the vault's resource on the server's port) never opens the directory.
      const vaultToken = await tokenForResource(`https://${t.ctx.vaultDomain}:${port}`);
      expectError(await call('GET', '/v1.0/servicePrincipals', { token: vaultToken }), 401, 'InvalidAuthenticationToken');
    });

    void it('answers /v1.0/me as Graph answers an app-only token: 400 BadRequest, after authentication', async () => {
      for (const url of ['/v1.0/me', '/v1.0/me/ownedObjects', '/v1.0/ME']) {
        const me = expectError(await call('GET', url), 400, 'BadRequest');
        assert.equal(me.error.message, '/me request is only valid with delegated authentication flow.');
        expectError(await call('GET', url, { token: null }), 401, 'InvalidAuthenticationToken');
        expectError(await call('GET', url, { token: arm }), 401, 'InvalidAuthenticationToken');
      }
    });

    void it('accepts only a well-formed Bearer header: nothing before the scheme, nothing after the token', async () => {
      const url = `/subscriptions/${sub}/resourcegroups?${V}`;
      const missing = expectError(await call('GET', url, { token: null, headers: { authorization: '   ' } }), 401, 'AuthenticationFailed');
      assert.match(missing.error.message, /header is missing/);
      for (const authorization of [`xBearer ${arm}`, `Basic Bearer ${arm}`, `Bearer ${arm} trailing`, `Bearer ${arm}!`, `Bearer${arm}`]) {
        const refused = expectError(await call('GET', url, { token: null, headers: { authorization } }), 401, 'AuthenticationFailed');
        assert.match(refused.error.message, /'Bearer <token>' format/, authorization.slice(0, 20));
      }
      // RFC 6750: one or more spaces (or tabs) after the scheme, any case, trailing whitespace tolerated.
      for (const authorization of [`Bearer  ${arm}`, `bearer\t${arm}`, `BEARER ${arm}  `]) {
        assert.equal((await call('GET', url, { token: null, headers: { authorization } })).statusCode, 200, JSON.stringify(authorization.slice(0, 8)));
      }
    });

    void it("refuses a deleted principal's still-unexpired token with 401, not an error", async () => {
      const clock = t.ctx.clock;
      const sp = await createApplicationPrincipal(t.ctx.store, { tenantId: t.tenantId, displayName: 'soon-deleted', clock });
      const { secretText } = await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId: sp.appId, clock });
      secretsSeen.push(secretText);
      const armToken = (await tokenFor(sp.appId, secretText, 'https://management.azure.com//.default')).json<{ access_token: string }>().access_token;
      const graphToken = (await tokenFor(sp.appId, secretText, 'https://graph.microsoft.com/.default')).json<{ access_token: string }>().access_token;
      await deleteApplicationPrincipal(t.ctx.store, sp.objectId);
      const arm401 = expectError(await call('GET', `/subscriptions/${sub}/resourcegroups?${V}`, { token: armToken }), 401, 'InvalidAuthenticationToken');
      assert.match(arm401.error.message, new RegExp(`principal '${sp.objectId}'.*does not exist`));
      assert.equal((await call('GET', '/v1.0/servicePrincipals', { token: graphToken })).statusCode, 401);
    });

    void it('answers 403 to a valid token of a principal that is not a directory admin, and audits the attempt', async () => {
      const clock = t.ctx.clock;
      const sp = await createApplicationPrincipal(t.ctx.store, { tenantId: t.tenantId, displayName: 'not-an-admin', clock });
      const { secretText } = await addPasswordCredential(t.ctx.store, t.ctx.masterKey, { appId: sp.appId, clock });
      secretsSeen.push(secretText);
      const armToken = (await tokenFor(sp.appId, secretText, 'https://management.azure.com//.default')).json<{ access_token: string }>().access_token;
      const graphToken = (await tokenFor(sp.appId, secretText, 'https://graph.microsoft.com/.default')).json<{ access_token: string }>().access_token;
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups?${V}`, { token: armToken }), 403, 'AuthorizationFailed');
      expectError(
        await call('PUT', `/subscriptions/${sub}/resourcegroups/sneaky?${V}`, { token: armToken, body: { location: 'westeurope' } }),
        403,
        'AuthorizationFailed',
      );
      expectError(await call('POST', '/v1.0/servicePrincipals', { token: graphToken, body: { displayName: 'x' } }), 403, 'Authorization_RequestDenied');
      expectError(await call('POST', '/openmsi/keys/rotate', { token: armToken, body: {} }), 403, 'AuthorizationFailed');
      await t.ctx.audit.flush();
      const denied = await t.ctx.store.audit.list({ action: 'management.denied' });
      assert.ok(denied.some((e) => e.actor === sp.objectId && e.outcome === 'failure'));
      expectError(await call('GET', `/subscriptions/${sub}/resourcegroups/sneaky?${V}`), 404, 'ResourceGroupNotFound');
    });
  });

  void describe('keys', () => {
    void it('lists key metadata only and rotates on request', async () => {
      const before = await call('GET', '/openmsi/keys');
      assert.equal(before.statusCode, 200, before.body);
      const keys = before.json<{ value: { kid: string; state: string; published: boolean; createdAt: string }[] }>().value;
      assert.ok(keys.some((k) => k.state === 'current' && k.published));
      assert.ok(!/privateKey|"d":|"p":|"q":/.test(before.body), 'no private material');
      const rotated = await call('POST', '/openmsi/keys/rotate', { body: { revokePrevious: false } });
      assert.equal(rotated.statusCode, 200, rotated.body);
      const result = rotated.json<{ current: string; previous: string | null; revoked: boolean }>();
      assert.notEqual(result.current, result.previous);
      assert.equal(result.revoked, false);
      const after = (await call('GET', '/openmsi/keys')).json<{ value: { kid: string; state: string }[] }>().value;
      assert.equal(after.find((k) => k.kid === result.current)?.state, 'current');
      assert.equal(after.find((k) => k.kid === result.previous)?.state, 'retired');
      expectError(await call('POST', '/openmsi/keys/rotate', { body: { revokePrevious: 'yes' } }), 400, 'InvalidRequestContent');
      // Tokens signed before the rotation keep working.
      assert.equal((await call('GET', `/subscriptions?${V}`)).statusCode, 200);
    });
  });

  void describe('audit', () => {
    void it('records every mutation, never with a secret', async () => {
      await t.ctx.audit.flush();
      const response = await call('GET', '/openmsi/audit?limit=1000');
      assert.equal(response.statusCode, 200, response.body);
      const events = response.json<{ value: { action: string; actor: string; outcome: string; target: string; at: string }[] }>().value;
      const actions = new Set(events.filter((e) => e.actor === t.admin.objectId && e.outcome === 'success').map((e) => e.action));
      for (const action of [
        'resourceGroup.created',
        'resourceGroup.updated',
        'resourceGroup.deleted',
        'identity.created',
        'identity.updated',
        'identity.deleted',
        'resource.created',
        'resource.updated',
        'servicePrincipal.created',
        'servicePrincipal.deleted',
        'credential.added',
        'credentials.reset',
        'keys.rotation.requested',
      ]) {
        assert.ok(actions.has(action), `missing audit event ${action}`);
      }
      assert.ok(
        events.some((e) => e.outcome === 'failure' && e.action === 'resourceGroup.write'),
        'failed mutations are audited too',
      );
      const filtered = await call('GET', '/openmsi/audit?action=identity.created&limit=5');
      assert.ok(filtered.json<{ value: { action: string }[] }>().value.every((e) => e.action === 'identity.created'));
      expectError(await call('GET', '/openmsi/audit?limit=0'), 400, 'InvalidQueryParameter');
      expectError(await call('GET', '/openmsi/audit?since=yesterday'), 400, 'InvalidQueryParameter');

      const everything = JSON.stringify(await t.ctx.store.audit.list({ limit: 100_000 }));
      assert.ok(secretsSeen.length >= 4);
      for (const secret of secretsSeen) assert.ok(!everything.includes(secret), 'an audit event contains a secret');
      // Nor any log line; and no request above hit an internal error.
      const logs = t.logLines.join('\n');
      for (const secret of secretsSeen) assert.ok(!logs.includes(secret), 'a log line contains a secret');
      assert.ok(!logs.includes('management request failed'), 'a management request failed with a 500');
    });
  });
});
