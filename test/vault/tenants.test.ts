/**
 * The vault data plane across tenants and subscriptions: a valid token of another tenant of this authority,
 * whatever it holds in its own tenant, reads nothing from this tenant's vaults; and a secret backup restores
 * only into a vault of the subscription it was taken from (Key Vault's rule), never into another tenant's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_ROLE_IDS as ROLE } from '../../src/rbac/builtin-roles.js';
import type { TestApplication } from '../support/authority.js';
import { startVaultHarness, V, type TenantPlace, type VaultHarness } from './harness.js';

const VALUE = 'TENANT-A-ONLY-VALUE';

describe('vault data plane: tenant and subscription boundaries', () => {
  let h: VaultHarness;
  let tenantB: TenantPlace;
  let otherSubscriptionOfA: TenantPlace;
  let officerA: TestApplication;
  let tokenA: string;
  let adminB: TestApplication;
  let tokenB: string;
  before(async () => {
    h = await startVaultHarness();
    tenantB = await h.createPlace();
    otherSubscriptionOfA = await h.createPlace({ tenantId: h.t.tenantId });
    const kvA = await h.createVault('kv-a');
    officerA = await h.app_('officer-a');
    await h.assignRole(h.t.tenantId, kvA.resourceId, ROLE.KeyVaultSecretsOfficer, officerA.objectId);
    tokenA = await h.token(officerA);
    assert.equal((await h.call('kv-a', 'PUT', `/secrets/s1?${V}`, tokenA, { value: VALUE })).statusCode, 200);

    // Tenant B's principal: Key Vault Administrator (every data action) at B's root, and B's own vault.
    adminB = await h.app_('admin-b', tenantB.tenantId);
    await h.assignRole(tenantB.tenantId, '/', ROLE.KeyVaultAdministrator, adminB.objectId);
    await h.createVault('kv-b', { in: tenantB });
    tokenB = await h.token(adminB, undefined, tenantB.tenantId);
  });
  after(async () => h.close());

  it("control: tenant B's token and role are good in tenant B's own vault", async () => {
    const set = await h.call('kv-b', 'PUT', `/secrets/own?${V}`, tokenB, { value: 'b' });
    assert.equal(set.statusCode, 200, set.body);
    assert.equal((await h.call('kv-b', 'GET', `/secrets/own?${V}`, tokenB)).json<{ value: string }>().value, 'b');
  });

  it("invariant: a tenant-B principal holding a data role at B's / reads, lists and writes nothing in tenant A's vault, of either model", async () => {
    const policyEntryForB = {
      tenantId: tenantB.tenantId,
      objectId: adminB.objectId,
      permissions: { keys: [], secrets: ['all'], certificates: [], storage: [] },
    };
    await h.createVault('kv-a-policies', { rbac: false, policies: [policyEntryForB] });
    const before = await h.versionCount();
    for (const vault of ['kv-a', 'kv-a-policies']) {
      for (const [method, path, body] of [
        ['GET', `/secrets/s1?${V}`],
        ['GET', `/secrets?${V}`],
        ['GET', `/secrets/s1/versions?${V}`],
        ['GET', `/deletedsecrets?${V}`],
        ['POST', `/secrets/s1/backup?${V}`],
        ['PUT', `/secrets/planted?${V}`, { value: 'from-b' }],
        ['DELETE', `/secrets/s1?${V}`],
      ] as [string, string, unknown?][]) {
        const r = await h.call(vault, method, path, tokenB, body);
        const label = `${vault}: ${method} ${path}`;
        assert.equal(r.statusCode, 401, `${label}: ${r.body}`);
        assert.equal(r.json<{ error: { code: string } }>().error.code, 'Unauthorized', label);
        assert.match(
          r.json<{ error: { message: string } }>().error.message,
          new RegExp(`^AKV10032: Invalid issuer\\. Expected one of .*/${h.t.tenantId}/, found .*/${tenantB.tenantId}/\\.$`),
          label,
        );
        // The challenge names the vault's tenant, so a client can get the right token; and no value leaks.
        assert.match(String(r.headers['www-authenticate']), new RegExp(`authorization=".*/${h.t.tenantId}"`), label);
        assert.ok(!r.body.includes(VALUE), label);
      }
    }
    assert.equal(await h.versionCount(), before, 'nothing was written');
    assert.equal((await h.call('kv-a', 'GET', `/secrets/s1?${V}`, tokenA)).json<{ value: string }>().value, VALUE);
  });

  it('invariant: a backup restores only into a vault of the subscription it was taken from', async () => {
    const backup = await h.call('kv-a', 'POST', `/secrets/s1/backup?${V}`, tokenA);
    assert.equal(backup.statusCode, 200, backup.body);
    const blob = backup.json<{ value: string }>().value;

    // Another subscription of the same tenant, with the restorer holding restore rights there.
    const kvOtherSub = await h.createVault('kv-a-other-sub', { in: otherSubscriptionOfA });
    await h.assignRole(h.t.tenantId, kvOtherSub.resourceId, ROLE.KeyVaultSecretsOfficer, officerA.objectId);
    // Another tenant's vault, restored into by that tenant's administrator.
    const cases: { vault: string; token: string }[] = [
      { vault: 'kv-a-other-sub', token: tokenA },
      { vault: 'kv-b', token: tokenB },
    ];
    const before = await h.versionCount();
    for (const { vault, token } of cases) {
      const refused = await h.call(vault, 'POST', `/secrets/restore?${V}`, token, { value: blob });
      assert.equal(refused.statusCode, 400, `${vault}: ${refused.body}`);
      assert.deepEqual(refused.json(), {
        error: {
          code: 'BadParameter',
          message: 'Backup blob cannot be restored into this vault: a backup can only be restored into a key vault of the subscription it was taken from.',
        },
      });
      assert.equal((await h.call(vault, 'GET', `/secrets/s1?${V}`, token)).statusCode, 404, `${vault}: nothing restored`);
    }
    assert.equal(await h.versionCount(), before, 'nothing was written');

    // The same subscription: another vault restores it.
    const kvSameSub = await h.createVault('kv-a-same-sub');
    await h.assignRole(h.t.tenantId, kvSameSub.resourceId, ROLE.KeyVaultSecretsOfficer, officerA.objectId);
    const restored = await h.call('kv-a-same-sub', 'POST', `/secrets/restore?${V}`, tokenA, { value: blob });
    assert.equal(restored.statusCode, 200, restored.body);
    assert.equal((await h.call('kv-a-same-sub', 'GET', `/secrets/s1?${V}`, tokenA)).json<{ value: string }>().value, VALUE);
  });

  it('a first-format backup, which recorded no subscription, is refused everywhere', async () => {
    const body = {
      format: 'openmsi-secret-backup',
      v: 1,
      name: 'legacy',
      versions: [
        { version: 'e'.repeat(32), contentType: null, tags: null, enabled: true, notBefore: null, expires: null, createdAt: 1, updatedAt: 2, value: 'old' },
      ],
    };
    const blob = Buffer.from(`openmsi-secret-backup-v1.${h.ctx.masterKey.encrypt(JSON.stringify(body), 'vault-secret-backup:v1')}`, 'utf8').toString(
      'base64url',
    );
    const r = await h.call('kv-a', 'POST', `/secrets/restore?${V}`, tokenA, { value: blob });
    assert.equal(r.statusCode, 400, r.body);
    assert.match(r.json<{ error: { message: string } }>().error.message, /^Backup blob cannot be restored into this vault/);
    assert.equal((await h.call('kv-a', 'GET', `/secrets/legacy?${V}`, tokenA)).statusCode, 404);
  });
});
