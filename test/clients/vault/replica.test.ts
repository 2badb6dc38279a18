import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { vaultRequest } from '../../support/vault.js';
import { assignRoleInStore, deleteAssignmentInStore, timeUntil } from '../../rbac/authz/helpers.js';
import { createVaultReplica, type VaultReplica } from '../../../src/server/vault-replica.js';
import { systemClock } from '../../../src/shared/clock.js';
import { ALLOW_PERMISSION_MODEL_CHANGE, putVault } from '../../../src/directory/vaults.js';
import { putResourceGroup } from '../../../src/directory/resources.js';

const SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';

/**
 * `openmsi vault`: the data plane alone, on the PostgreSQL store of a running server. It verifies the server's
 * tokens from the shared store's keys (no call to the server), serves what the server's vault holds, and a role
 * removed through the server is refused by the replica within the documented bound.
 */
describe('openmsi vault replica on a shared PostgreSQL store', backendSuiteOptions('postgres'), () => {
  let t: TestAuthority;
  let replica: VaultReplica;
  let port: number;
  let token: string;
  let vaultId: string;
  let assignment: string;

  before(async () => {
    t = await startTestAuthority({ backend: 'postgres' });
    const store = t.ctx.store;
    await putResourceGroup(store, { subscriptionId: t.subscriptionId, name: 'rg', location: 'local', clock: systemClock });
    const { vault } = await putVault(store, {
      subscriptionId: t.subscriptionId,
      resourceGroup: 'rg',
      name: 'kv-replica',
      properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
      clock: systemClock,
      permissionModelChange: ALLOW_PERMISSION_MODEL_CHANGE,
    });
    vaultId = vault.resourceId;
    const reader = await registerTestApplication(t, 'replica-reader', { certificate: false });
    assignment = await assignRoleInStore(t, vaultId, SECRETS_USER, reader.objectId);
    const officer = await registerTestApplication(t, 'replica-officer', { certificate: false });
    await assignRoleInStore(t, vaultId, 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7', officer.objectId);
    const grant = async (app: { appId: string; secret: string }) => {
      const response = await t.app.inject({
        method: 'POST',
        url: `/${t.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: app.appId,
          client_secret: app.secret,
          scope: 'https://vault.azure.net/.default',
        }).toString(),
      });
      assert.equal(response.statusCode, 200, response.body);
      return response.json<{ access_token: string }>().access_token;
    };
    token = await grant(reader);
    // Written through the server's own data plane: the replica must serve what the server wrote.
    const set = await t.authority.vaultApp.inject({
      method: 'PUT',
      url: '/secrets/shared?api-version=7.4',
      headers: {
        host: `kv-replica.vault.localhost:${new URL(t.url).port}`,
        authorization: `Bearer ${await grant(officer)}`,
        'content-type': 'application/json',
      },
      payload: JSON.stringify({ value: 'written by the server' }),
    });
    assert.equal(set.statusCode, 200, set.body);
    replica = await createVaultReplica({ dataDir: t.dataDir, port: 0, host: '127.0.0.1' });
    port = await replica.listen();
  });
  after(async () => {
    await replica?.close();
    await t?.close();
  });

  const read = () =>
    vaultRequest(`https://kv-replica.vault.localhost:${String(port)}/secrets/shared?api-version=7.4`, {
      ca: t.caPem,
      headers: { authorization: `Bearer ${token}` },
    });

  it('serves the server’s secrets with the server’s tokens over its own TLS listener', async () => {
    const response = await read();
    assert.equal(response.status, 200, response.body);
    assert.equal(response.json<{ value: string }>().value, 'written by the server');
  });

  it('challenges for the replica’s own port, naming the server as the authority', async () => {
    const response = await vaultRequest(`https://kv-replica.vault.localhost:${String(port)}/secrets/shared?api-version=7.4`, { ca: t.caPem });
    assert.equal(response.status, 401);
    assert.equal(response.headers['www-authenticate'], `Bearer authorization="${t.url}/${t.tenantId}", resource="https://vault.localhost:${String(port)}"`);
  });

  it('a role removed through the server is refused by the replica (LISTEN/NOTIFY)', async () => {
    await deleteAssignmentInStore(t, assignment);
    const took = await timeUntil(async () => (await read()).status === 403, 10_000, 20);
    assert.ok(took !== undefined, 'the replica kept serving after the role was removed');
    assert.equal((await read()).json<{ error: { innererror: { code: string } } }>().error.innererror.code, 'ForbiddenByRbac');
  });
});
