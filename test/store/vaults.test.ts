import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { KEY_CHANNEL, VAULT_CHANNEL, type SecretVersion, type Store, type Vault } from '../../src/store/types.js';
import { newGuid } from '../../src/shared/ids.js';
import { STORE_BACKENDS, backendSuiteOptions } from '../support/authority.js';
import { createTestDatabase, type TestDatabase } from '../support/pg-database.js';
import { untilTrue } from '../support/poll.js';

const T0 = Date.UTC(2026, 0, 1);

function vaultFixture(overrides: Partial<Vault> = {}): Vault {
  const name = overrides.name ?? `kv-${randomBytes(4).toString('hex')}`;
  const subscriptionId = overrides.subscriptionId ?? newGuid();
  return {
    id: newGuid(),
    resourceId: `/subscriptions/${subscriptionId}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${name}`,
    name,
    tenantId: newGuid(),
    subscriptionId,
    resourceGroup: 'RG',
    location: 'local',
    tags: { team: 'a' },
    properties: {
      tenantId: newGuid(),
      sku: { family: 'A', name: 'standard' },
      enableRbacAuthorization: true,
      accessPolicies: [],
      enableSoftDelete: true,
      softDeleteRetentionInDays: 90,
      enablePurgeProtection: null,
      publicNetworkAccess: 'Enabled',
    },
    deletedAt: null,
    scheduledPurgeAt: null,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

let versionCounter = 0;
function versionFixture(vaultId: string, name: string, overrides: Partial<SecretVersion> = {}): SecretVersion {
  versionCounter += 1;
  return {
    vaultId,
    name,
    // Increasing ids, so "latest" and id order agree unless a test says otherwise.
    version: `${String(versionCounter).padStart(8, '0')}${randomBytes(12).toString('hex')}`,
    sealedValue: `sealed-${randomBytes(4).toString('hex')}`,
    contentType: null,
    tags: null,
    enabled: true,
    notBefore: null,
    expires: null,
    createdAt: T0 + versionCounter,
    updatedAt: T0 + versionCounter,
    ...overrides,
  };
}

for (const backend of STORE_BACKENDS)
  describe(`vault, secret and key stores (${backend})`, backendSuiteOptions(backend), () => {
    let store: Store;
    let dir: string | undefined;
    let database: TestDatabase | undefined;

    before(async () => {
      if (backend === 'postgres') {
        database = await createTestDatabase(process.env['OPENMSI_TEST_POSTGRES_URL']!);
        store = await openStore(database.url);
      } else {
        dir = mkdtempSync(join(tmpdir(), 'openmsi-vault-store-'));
        store = await openStore(join(dir, 'store.db'));
      }
    });
    after(async () => {
      await store?.close();
      await database?.drop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    });

    describe('vaults', () => {
      it('put creates then updates by id; names are unique case-insensitively across ids, active or deleted', async () => {
        const vault = vaultFixture({ name: `Kv-Case-${randomBytes(3).toString('hex')}` });
        assert.equal(await store.vaults.put(vault), 'created');
        assert.deepEqual(await store.vaults.getByName(vault.name.toLowerCase()), vault);
        assert.deepEqual(await store.vaults.get(vault.id), vault);
        const changed = { ...vault, tags: { team: 'b' }, properties: { ...vault.properties, enableRbacAuthorization: false }, updatedAt: T0 + 5 };
        assert.equal(await store.vaults.put(changed), 'updated');
        assert.deepEqual(await store.vaults.get(vault.id), changed);
        assert.equal(await store.vaults.put(vaultFixture({ name: vault.name.toUpperCase() })), 'conflict');
        assert.ok(await store.vaults.softDelete(vault.id, T0 + 10, T0 + 100));
        assert.equal(await store.vaults.put(vaultFixture({ name: vault.name })), 'conflict', 'a soft-deleted name is still taken');
        assert.deepEqual(await store.vaults.get(vault.id), { ...changed, deletedAt: T0 + 10, scheduledPurgeAt: T0 + 100, updatedAt: T0 + 10 });
      });

      it('lists active vaults by subscription and group, deleted ones apart; soft delete and recover change state once', async () => {
        const subscriptionId = newGuid();
        const a = vaultFixture({ subscriptionId, name: `a-${randomBytes(3).toString('hex')}`, resourceGroup: 'One' });
        const b = vaultFixture({ subscriptionId, name: `b-${randomBytes(3).toString('hex')}`, resourceGroup: 'Two' });
        for (const v of [a, b]) await store.vaults.put(v);
        assert.deepEqual(
          (await store.vaults.list({ subscriptionId: subscriptionId.toUpperCase() })).map((v) => v.name),
          [a.name, b.name],
        );
        assert.deepEqual(
          (await store.vaults.list({ subscriptionId, resourceGroup: 'one' })).map((v) => v.name),
          [a.name],
        );
        assert.equal(await store.vaults.softDelete(a.id, T0 + 1, T0 + 2), true);
        assert.equal(await store.vaults.softDelete(a.id, T0 + 1, T0 + 2), false);
        assert.deepEqual(
          (await store.vaults.list({ subscriptionId })).map((v) => v.name),
          [b.name],
        );
        assert.deepEqual(
          (await store.vaults.list({ subscriptionId, deleted: true })).map((v) => v.name),
          [a.name],
        );
        assert.equal(await store.vaults.recover(b.id, T0 + 3), false, 'an active vault is not recovered');
        assert.equal(await store.vaults.recover(a.id, T0 + 3), true);
        assert.equal((await store.vaults.get(a.id))?.deletedAt, null);
      });

      it('purge removes the vault and all its secrets; listPurgeDue names soft-deleted vaults past their date', async () => {
        const vault = vaultFixture();
        await store.vaults.put(vault);
        await store.secrets.addVersion(versionFixture(vault.id, 'one'));
        await store.secrets.addVersion(versionFixture(vault.id, 'two'));
        await store.secrets.softDelete(vault.id, 'two', T0, T0 + 1);
        await store.vaults.softDelete(vault.id, T0, T0 + 50);
        const due = (await store.vaults.listPurgeDue(T0 + 50)).map((v) => v.id);
        assert.ok(due.includes(vault.id));
        assert.ok(!(await store.vaults.listPurgeDue(T0 + 49)).some((v) => v.id === vault.id));
        assert.equal(await store.vaults.purge(vault.id), true);
        assert.equal(await store.vaults.get(vault.id), undefined);
        assert.deepEqual(await store.secrets.list(vault.id, { deleted: false, limit: 25 }), []);
        assert.deepEqual(await store.secrets.list(vault.id, { deleted: true, limit: 25 }), []);
        assert.equal(await store.vaults.purge(vault.id), false);
      });

      it('every change publishes the vault id on the vault channel after commit, and nothing when a transaction rolls back', async () => {
        const heard: string[] = [];
        const unsubscribe = store.notifications.subscribe(VAULT_CHANNEL, (payload) => heard.push(payload));
        await store.notifications.ready();
        try {
          const vault = vaultFixture();
          await store.vaults.put(vault);
          await store.vaults.softDelete(vault.id, T0, T0 + 1);
          await store.vaults.recover(vault.id, T0 + 2);
          const other = vaultFixture();
          await assert.rejects(
            store.transaction(async (tx) => {
              await tx.vaults.put(other);
              throw new Error('roll back');
            }),
          );
          await store.vaults.purge(vault.id);
          // PostgreSQL also delivers through LISTEN (possibly a second time); wait for it, bounded.
          await untilTrue('four announcements of the vault', () => heard.filter((id) => id === vault.id).length >= 4, 20_000, 20);
          await new Promise((r) => setTimeout(r, 100));
          assert.ok(!heard.includes(other.id), 'a rolled-back put is never announced');
          assert.equal(await store.vaults.get(other.id), undefined);
        } finally {
          unsubscribe();
        }
      });
    });

    // Keys share secrets' lifecycle and store implementation (vault-object-store.ts); each kind runs it on its own tables.
    for (const kind of ['secrets', 'keys'] as const)
      describe(kind, () => {
        let vault: Vault;
        before(async () => {
          vault = vaultFixture();
          await store.vaults.put(vault);
        });

        it('versions: the latest is the last added; names are case-insensitive and keep the first spelling', async () => {
          const v1 = versionFixture(vault.id, 'Db-Password', { contentType: 'text/plain', tags: { a: '1' } });
          const v2 = versionFixture(vault.id, 'db-password', { notBefore: 100, expires: 200 });
          assert.equal(await store[kind].addVersion(v1), 'added');
          assert.equal(await store[kind].addVersion(v2), 'added');
          const latest = await store[kind].get(vault.id, 'DB-PASSWORD');
          assert.equal(latest?.entry.name, 'Db-Password');
          assert.deepEqual(latest?.version, { ...v2, name: 'Db-Password' });
          assert.deepEqual(latest?.entry.latest, latest?.version);
          const first = await store[kind].get(vault.id, 'db-password', v1.version.toUpperCase());
          assert.deepEqual(first?.version, v1);
          assert.equal(first?.entry.latest.version, v2.version, 'the entry names the latest even when an older version is read');
          assert.equal(await store[kind].get(vault.id, 'db-password', 'f'.repeat(32)), undefined);
          assert.equal(await store[kind].get(vault.id, 'missing'), undefined);
          assert.equal(await store[kind].get(newGuid(), 'db-password'), undefined, 'secrets belong to their vault');
        });

        it('update changes only what the patch names (null clears) and bumps updated', async () => {
          const v = versionFixture(vault.id, `upd-${randomBytes(3).toString('hex')}`, { contentType: 'x', tags: { k: 'v' }, expires: 500 });
          await store[kind].addVersion(v);
          const updated = await store[kind].update(vault.id, v.name, v.version, { enabled: false, tags: null, updatedAt: T0 + 999 });
          assert.deepEqual(updated, { ...v, enabled: false, tags: null, updatedAt: T0 + 999 });
          assert.deepEqual((await store[kind].get(vault.id, v.name))?.version, updated);
          const again = await store[kind].update(vault.id, v.name, v.version, { contentType: null, expires: null, notBefore: 7, updatedAt: T0 + 1000 });
          assert.deepEqual(again, { ...v, enabled: false, tags: null, contentType: null, expires: null, notBefore: 7, updatedAt: T0 + 1000 });
          assert.equal(await store[kind].update(vault.id, v.name, 'a'.repeat(32), { enabled: true, updatedAt: T0 }), undefined);
        });

        it('list and list versions page by keyset over more than 25 items', async () => {
          const own = vaultFixture();
          await store.vaults.put(own);
          const names = Array.from({ length: 30 }, (_, i) => `Page-${String(i).padStart(2, '0')}`);
          for (const name of [...names].reverse()) await store[kind].addVersion(versionFixture(own.id, name));
          const seen: string[] = [];
          let after: string | undefined;
          for (;;) {
            const page = await store[kind].list(own.id, { deleted: false, limit: 25, ...(after === undefined ? {} : { afterName: after }) });
            seen.push(...page.map((e) => e.name));
            if (page.length < 25) break;
            after = page.at(-1)!.name.toLowerCase();
          }
          assert.deepEqual(seen, names);
          const versions: string[] = [];
          for (let i = 0; i < 27; i++) {
            const v = versionFixture(own.id, 'rotating');
            versions.push(v.version);
            await store[kind].addVersion(v);
          }
          const page1 = await store[kind].listVersions(own.id, 'ROTATING', { limit: 25 });
          const page2 = await store[kind].listVersions(own.id, 'rotating', { limit: 25, afterVersion: page1.at(-1)!.version });
          assert.deepEqual(
            [...page1, ...page2].map((v) => v.version),
            [...versions].sort(),
          );
          assert.deepEqual(
            (await store[kind].allVersions(own.id, 'rotating')).map((v) => v.version),
            versions,
            'allVersions in creation order',
          );
        });

        it('soft delete, get deleted, refused re-set, recover, purge', async () => {
          const name = `life-${randomBytes(3).toString('hex')}`;
          const v = versionFixture(vault.id, name);
          await store[kind].addVersion(v);
          const deleted = await store[kind].softDelete(vault.id, name.toUpperCase(), T0 + 1, T0 + 2);
          assert.deepEqual(deleted, { vaultId: vault.id, name, deletedAt: T0 + 1, scheduledPurgeAt: T0 + 2, latest: v });
          assert.equal(await store[kind].softDelete(vault.id, name, T0 + 1, T0 + 2), undefined, 'already deleted');
          assert.equal(await store[kind].get(vault.id, name), undefined);
          assert.deepEqual(await store[kind].listVersions(vault.id, name, { limit: 25 }), []);
          assert.deepEqual(await store[kind].getDeleted(vault.id, name), deleted);
          assert.ok((await store[kind].list(vault.id, { deleted: true, limit: 25 })).some((e) => e.name === name));
          assert.equal(await store[kind].addVersion(versionFixture(vault.id, name)), 'deleted');
          assert.equal((await store[kind].getDeleted(vault.id, name))?.latest.version, v.version, 'the refused version was not written');
          const recovered = await store[kind].recover(vault.id, name);
          assert.deepEqual(recovered, { vaultId: vault.id, name, deletedAt: null, scheduledPurgeAt: null, latest: v });
          assert.equal(await store[kind].recover(vault.id, name), undefined);
          assert.equal(await store[kind].purge(vault.id, name), false, 'only a soft-deleted secret is purged');
          await store[kind].softDelete(vault.id, name, T0, T0 + 1);
          assert.equal(await store[kind].purge(vault.id, name), true);
          assert.equal(await store[kind].getDeleted(vault.id, name), undefined);
          assert.equal(await store[kind].addVersion(versionFixture(vault.id, name)), 'added', 'a purged name is free again');
        });

        it('restore writes every version as a new secret, refusing a name that exists active or deleted', async () => {
          const name = `restored-${randomBytes(3).toString('hex')}`;
          const older = versionFixture(vault.id, name, { createdAt: T0 + 1 });
          const newer = versionFixture(vault.id, name, { createdAt: T0 + 2 });
          assert.equal(await store[kind].restore([newer, older]), 'restored');
          assert.equal((await store[kind].get(vault.id, name))?.version.version, newer.version);
          assert.equal((await store[kind].allVersions(vault.id, name)).length, 2);
          assert.equal(await store[kind].restore([versionFixture(vault.id, name)]), 'exists');
          await store[kind].softDelete(vault.id, name, T0, T0 + 1);
          assert.equal(await store[kind].restore([versionFixture(vault.id, name.toUpperCase())]), 'exists');
        });

        it('purgeDue removes soft-deleted secrets past their scheduled date, and only those', async () => {
          const own = vaultFixture();
          await store.vaults.put(own);
          for (const name of ['due', 'later', 'active']) await store[kind].addVersion(versionFixture(own.id, name));
          await store[kind].softDelete(own.id, 'due', T0, T0 + 10);
          await store[kind].softDelete(own.id, 'later', T0, T0 + 20);
          assert.ok((await store[kind].purgeDue(T0 + 10)) >= 1);
          assert.equal(await store[kind].getDeleted(own.id, 'due'), undefined);
          assert.ok((await store[kind].getDeleted(own.id, 'later')) !== undefined);
          assert.ok((await store[kind].get(own.id, 'active')) !== undefined);
        });
      });

    describe('keys only', () => {
      it('a key and a secret of one name are separate objects; vault purge removes both', async () => {
        const vault = vaultFixture();
        await store.vaults.put(vault);
        const secret = versionFixture(vault.id, 'shared');
        const key = versionFixture(vault.id, 'shared');
        await store.secrets.addVersion(secret);
        assert.equal(await store.keys.get(vault.id, 'shared'), undefined);
        await store.keys.addVersion(key);
        assert.equal((await store.keys.get(vault.id, 'shared'))?.version.sealedValue, key.sealedValue);
        assert.equal((await store.secrets.get(vault.id, 'shared'))?.version.sealedValue, secret.sealedValue);
        await store.vaults.softDelete(vault.id, T0, T0 + 1);
        assert.equal(await store.vaults.purge(vault.id), true);
        assert.equal(await store.keys.get(vault.id, 'shared'), undefined);
        assert.deepEqual(await store.keys.list(vault.id, { deleted: false, limit: 25 }), []);
      });

      it('rotation policies: set on active keys only, read back, listed for the scheduler, published, gone with a purge', async () => {
        const vault = vaultFixture();
        await store.vaults.put(vault);
        assert.equal(await store.keys.getRotationPolicy(vault.id, 'rot'), undefined);
        assert.equal(await store.keys.setRotationPolicy(vault.id, 'rot', '{}'), false, 'no key, nothing written');
        const v = versionFixture(vault.id, 'Rot');
        await store.keys.addVersion(v);
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'ROT'), { policy: null });
        const heard: string[] = [];
        const unsubscribe = store.notifications.subscribe(KEY_CHANNEL, (payload) => heard.push(payload));
        try {
          assert.equal(await store.keys.setRotationPolicy(vault.id, 'rot', '{"a":1}'), true);
        } finally {
          unsubscribe();
        }
        // This process hears it at once; on PostgreSQL its own NOTIFY may come back through LISTEN as well.
        assert.ok(heard.length >= 1 && heard.every((payload) => payload === `${vault.id}/rot`), JSON.stringify(heard));
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'rot'), { policy: '{"a":1}' });
        const listed = (await store.keys.listRotationPolicies()).filter((p) => p.vaultId === vault.id);
        assert.deepEqual(listed, [{ vaultId: vault.id, name: 'Rot', latestVersion: v.version, policy: '{"a":1}' }]);
        await store.keys.softDelete(vault.id, 'rot', T0, T0 + 1);
        assert.equal(await store.keys.getRotationPolicy(vault.id, 'rot'), undefined, 'a deleted key has no readable policy');
        assert.equal((await store.keys.listRotationPolicies()).filter((p) => p.vaultId === vault.id).length, 0, 'nor is it scheduled');
        await store.keys.recover(vault.id, 'rot');
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'rot'), { policy: '{"a":1}' }, 'recover keeps the policy');
        await store.keys.softDelete(vault.id, 'rot', T0, T0 + 1);
        await store.keys.purge(vault.id, 'rot');
        await store.keys.addVersion(versionFixture(vault.id, 'rot'));
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'rot'), { policy: null }, 'a purged key takes its policy with it');
      });

      it('a restored key carries its backup rotation policy from the same write; none when the backup had none; nothing on a conflict', async () => {
        const vault = vaultFixture();
        await store.vaults.put(vault);
        assert.equal(await store.keys.restore([versionFixture(vault.id, 'withPolicy')], '{"lifetimeActions":[]}'), 'restored');
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'withpolicy'), { policy: '{"lifetimeActions":[]}' });
        assert.equal(await store.keys.restore([versionFixture(vault.id, 'noPolicy')], null), 'restored');
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'nopolicy'), { policy: null });
        assert.equal(await store.keys.restore([versionFixture(vault.id, 'NOPOLICY')], '{"b":2}'), 'exists');
        assert.deepEqual(await store.keys.getRotationPolicy(vault.id, 'nopolicy'), { policy: null }, 'a refused restore writes no policy');
      });
    });
  });
