import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assignRoleInStore, deleteAssignmentInStore, timeUntil } from '../rbac/authz/helpers.js';
import { STORE_BACKENDS, backendSuiteOptions, type TestApplication } from '../support/authority.js';
import { startVaultHarness, V, type VaultHarness } from './harness.js';

const SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';
const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';

for (const backend of STORE_BACKENDS)
  describe(`vault data plane: authorisation, lifecycle, audit (${backend})`, backendSuiteOptions(backend), () => {
    let h: VaultHarness;
    let officer: TestApplication;
    let reader: TestApplication;
    let officerToken: string;
    let readerToken: string;
    before(async () => {
      h = await startVaultHarness({ backend });
      const kv = await h.createVault('kv1');
      await h.createVault('kv2');
      officer = await h.app_('officer');
      reader = await h.app_('reader');
      await assignRoleInStore(h.t, kv.resourceId, SECRETS_OFFICER, officer.objectId);
      officerToken = await h.token(officer);
      readerToken = await h.token(reader);
      assert.equal((await h.call('kv1', 'PUT', `/secrets/s1?${V}`, officerToken, { value: 'TOP-SECRET-VALUE' })).statusCode, 200);
    });
    after(async () => h.close());

    it('RBAC: no role → 403 ForbiddenByRbac; Secrets User reads, cannot set; removal refused again within a second', async () => {
      const kv = (await h.ctx.store.vaults.getByName('kv1'))!;
      const denied = await h.call('kv1', 'GET', `/secrets/s1?${V}`, readerToken);
      assert.equal(denied.statusCode, 403);
      const err = denied.json().error;
      assert.equal(err.code, 'Forbidden');
      assert.equal(err.innererror.code, 'ForbiddenByRbac');
      assert.match(err.message, /^Caller is not authorized to perform action on resource\.\r\n/);
      assert.ok(err.message.includes(`Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n`));
      assert.ok(err.message.includes(`Resource: '${kv.resourceId.toLowerCase()}/secrets/s1'`));
      const id = await assignRoleInStore(h.t, kv.resourceId, SECRETS_USER, reader.objectId);
      assert.ok((await timeUntil(async () => (await h.call('kv1', 'GET', `/secrets/s1?${V}`, readerToken)).statusCode === 200, 1000)) !== undefined);
      assert.equal((await h.call('kv1', 'GET', `/secrets?${V}`, readerToken)).statusCode, 200);
      const set = await h.call('kv1', 'PUT', `/secrets/s2?${V}`, readerToken, { value: 'x' });
      assert.equal(set.statusCode, 403);
      assert.equal(set.json().error.innererror.code, 'ForbiddenByRbac');
      await deleteAssignmentInStore(h.t, id);
      const took = await timeUntil(async () => (await h.call('kv1', 'GET', `/secrets/s1?${V}`, readerToken)).statusCode === 403, 1000);
      assert.ok(took !== undefined && took < 1000, `refused again after ${String(took)} ms`);
    });

    it('access policies: AccessDenied without an entry, get/list grant reads only, removal applies within a second', async () => {
      const vault = await h.createVault('kvap', {
        rbac: false,
        policies: [{ tenantId: h.t.tenantId, objectId: officer.objectId, permissions: { keys: [], secrets: ['all'], certificates: [], storage: [] } }],
      });
      assert.equal((await h.call('kvap', 'PUT', `/secrets/s1?${V}`, officerToken, { value: 'v' })).statusCode, 200);
      const denied = await h.call('kvap', 'GET', `/secrets/s1?${V}`, readerToken);
      assert.equal(denied.statusCode, 403);
      assert.equal(denied.json().error.innererror.code, 'AccessDenied');
      assert.equal(
        denied.json().error.message,
        `The user, group or application 'appid=${reader.appId};oid=${reader.objectId};numgroups=0;iss=${h.t.ctx.urls.v1Issuer(h.t.tenantId)}' does not have secrets get permission on key vault 'kvap;location=westeurope'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
      );
      const readerEntry = {
        tenantId: h.t.tenantId,
        objectId: reader.objectId,
        permissions: { keys: [], secrets: ['get', 'list'], certificates: [], storage: [] },
      };
      vault.properties.accessPolicies.push(readerEntry);
      await h.ctx.store.vaults.put(vault);
      assert.ok((await timeUntil(async () => (await h.call('kvap', 'GET', `/secrets/s1?${V}`, readerToken)).statusCode === 200, 1000)) !== undefined);
      assert.equal((await h.call('kvap', 'PUT', `/secrets/s1?${V}`, readerToken, { value: 'x' })).json().error.innererror.code, 'AccessDenied');
      vault.properties.accessPolicies.pop();
      await h.ctx.store.vaults.put(vault);
      const took = await timeUntil(async () => (await h.call('kvap', 'GET', `/secrets/s1?${V}`, readerToken)).statusCode === 403, 1000);
      assert.ok(took !== undefined && took < 1000);
    });

    it('hot path: repeated reads read neither the vault nor the secret from the store', async () => {
      await h.call('kv1', 'GET', `/secrets/s1?${V}`, officerToken);
      const before = h.vaultLookups();
      const reads = h.secretReads();
      for (let i = 0; i < 20; i++) assert.equal((await h.call('kv1', 'GET', `/secrets/s1?${V}`, officerToken)).statusCode, 200);
      assert.equal(h.vaultLookups(), before);
      assert.equal(h.secretReads(), reads);
    });

    it('a cached secret is dropped by any write to it: a new version, attributes, delete, and a write by another process', async () => {
      const read = async () => h.call('kv1', 'GET', `/secrets/cached?${V}`, officerToken);
      assert.equal((await h.call('kv1', 'PUT', `/secrets/cached?${V}`, officerToken, { value: 'one' })).statusCode, 200);
      assert.equal((await read()).json().value, 'one');
      assert.equal((await h.call('kv1', 'PUT', `/secrets/cached?${V}`, officerToken, { value: 'two' })).statusCode, 200);
      assert.equal((await read()).json().value, 'two', 'a new version is read at once');
      const version = String((await read()).json().id)
        .split('/')
        .pop()!;
      assert.equal((await h.call('kv1', 'PATCH', `/secrets/cached/${version}?${V}`, officerToken, { attributes: { enabled: false } })).statusCode, 200);
      assert.equal((await read()).statusCode, 403, 'disabling applies at once');
      // A write that does not go through this data plane (another replica, the CLI on the same store): the store's
      // change notice alone must drop the cached read.
      await h.t.ctx.store.secrets.update(h.vaultId('kv1'), 'cached', version, { enabled: true, updatedAt: Date.now() });
      assert.equal((await read()).statusCode, 200, 'a write through the store applies at once');
      assert.equal((await h.call('kv1', 'DELETE', `/secrets/cached?${V}`, officerToken)).statusCode, 200);
      assert.equal((await read()).statusCode, 404, 'a deleted secret is not served from memory');
      assert.equal((await h.call('kv1', 'DELETE', `/deletedsecrets/cached?${V}`, officerToken)).statusCode, 204);
    });

    it('versions, update, disabled, expired, paging', async () => {
      for (let i = 0; i < 27; i++)
        assert.equal((await h.call('kv1', 'PUT', `/secrets/paged${String(i)}?${V}`, officerToken, { value: `v${String(i)}` })).statusCode, 200);
      const ids: string[] = [];
      let url: string | null = `/secrets?${V}&maxresults=10`;
      while (url !== null) {
        const r = await h.call('kv1', 'GET', url, officerToken);
        assert.equal(r.statusCode, 200, r.body);
        const page = r.json<{ value: { id: string; value?: string }[]; nextLink: string | null }>();
        assert.ok(page.value.length <= 10);
        for (const item of page.value) assert.equal(item.value, undefined);
        ids.push(...page.value.map((i) => i.id));
        url = page.nextLink === null ? null : page.nextLink.replace(/^https:\/\/[^/]+/, '');
        if (page.nextLink !== null)
          assert.match(page.nextLink, /^https:\/\/kv1\.vault\.localhost:8443\/secrets\?api-version=7\.4&\$skiptoken=[\w-]+&maxresults=10$/);
      }
      assert.equal(new Set(ids).size, ids.length);
      assert.ok(ids.length >= 28);
      assert.equal((await h.call('kv1', 'GET', `/secrets?${V}&maxresults=26`, officerToken)).statusCode, 400);
      assert.equal((await h.call('kv1', 'GET', `/secrets?${V}&$SkipToken=%%%`, officerToken)).statusCode, 400);

      const first = (await h.call('kv1', 'PUT', `/secrets/multi?${V}`, officerToken, { value: 'one' })).json();
      for (let i = 0; i < 26; i++) await h.call('kv1', 'PUT', `/secrets/multi?${V}`, officerToken, { value: `n${String(i)}` });
      const p1 = (await h.call('kv1', 'GET', `/secrets/multi/versions?${V}`, officerToken)).json();
      assert.equal(p1.value.length, 25);
      const p2 = (await h.call('kv1', 'GET', p1.nextLink.replace(/^https:\/\/[^/]+/, ''), officerToken)).json();
      assert.equal(p2.value.length, 2);
      assert.equal(p2.nextLink, null);

      const version = first.id.split('/').at(-1);
      const patched = await h.call('kv1', 'PATCH', `/secrets/multi/${version}?${V}`, officerToken, { attributes: { enabled: false }, contentType: 'ct' });
      assert.equal(patched.statusCode, 200, patched.body);
      assert.equal(patched.json().value, undefined);
      assert.equal(patched.json().attributes.enabled, false);
      const disabled = await h.call('kv1', 'GET', `/secrets/multi/${version}?${V}`, officerToken);
      assert.equal(disabled.statusCode, 403);
      assert.deepEqual(disabled.json(), {
        error: { code: 'Forbidden', message: 'Operation get is not allowed on a disabled secret.', innererror: { code: 'SecretDisabled' } },
      });

      const expired = await h.call('kv1', 'PUT', `/secrets/old?${V}`, officerToken, { value: 'stale', attributes: { exp: 1000, nbf: 10 } });
      assert.equal(expired.json().attributes.exp, 1000);
      assert.equal((await h.call('kv1', 'GET', `/secrets/old?${V}`, officerToken)).json().value, 'stale');
    });

    it('soft delete, 409 on reuse, recover, purge, purge protection, backup and restore into another vault', async () => {
      const del = await h.call('kv1', 'DELETE', `/secrets/s1?${V}`, officerToken);
      assert.equal(del.statusCode, 200, del.body);
      const d = del.json();
      assert.equal(d.recoveryId, 'https://kv1.vault.localhost:8443/deletedsecrets/s1');
      assert.equal(d.scheduledPurgeDate - d.deletedDate, 90 * 86400);
      assert.equal((await h.call('kv1', 'GET', `/secrets/s1?${V}`, officerToken)).json().error.code, 'SecretNotFound');
      const reuse = await h.call('kv1', 'PUT', `/secrets/s1?${V}`, officerToken, { value: 'again' });
      assert.equal(reuse.statusCode, 409);
      assert.equal(reuse.json().error.innererror.code, 'ObjectIsDeletedButRecoverable');
      assert.equal((await h.call('kv1', 'GET', `/deletedsecrets/s1?${V}`, officerToken)).statusCode, 200);
      assert.equal((await h.call('kv1', 'GET', `/deletedsecrets?${V}`, officerToken)).json().value.length, 1);
      assert.equal((await h.call('kv1', 'POST', `/deletedsecrets/s1/recover?${V}`, officerToken)).statusCode, 200);
      assert.equal((await h.call('kv1', 'GET', `/secrets/s1?${V}`, officerToken)).json().value, 'TOP-SECRET-VALUE');
      const nf = await h.call('kv1', 'GET', `/deletedsecrets/s1?${V}`, officerToken);
      assert.deepEqual(nf.json(), { error: { code: 'SecretNotFound', message: 'Deleted Secret not found: s1' } });

      const backup = await h.call('kv1', 'POST', `/secrets/s1/backup?${V}`, officerToken);
      assert.equal(backup.statusCode, 200);
      const blob = backup.json().value as string;
      assert.ok(!Buffer.from(blob, 'base64url').toString('latin1').includes('TOP-SECRET-VALUE'));
      await h.call('kv1', 'DELETE', `/secrets/s1?${V}`, officerToken);
      assert.equal((await h.call('kv1', 'DELETE', `/deletedsecrets/s1?${V}`, officerToken)).statusCode, 204);
      assert.equal((await h.call('kv1', 'GET', `/deletedsecrets/s1?${V}`, officerToken)).statusCode, 404);

      const kv2 = (await h.ctx.store.vaults.getByName('kv2'))!;
      await assignRoleInStore(h.t, kv2.resourceId, SECRETS_OFFICER, officer.objectId);
      const restored = await h.call('kv2', 'POST', `/secrets/restore?${V}`, officerToken, { value: blob });
      assert.equal(restored.statusCode, 200, restored.body);
      assert.match(restored.json().id, /^https:\/\/kv2\.vault\.localhost:8443\/secrets\/s1\//);
      assert.equal((await h.call('kv2', 'GET', `/secrets/s1?${V}`, officerToken)).json().value, 'TOP-SECRET-VALUE');
      assert.equal((await h.call('kv2', 'POST', `/secrets/restore?${V}`, officerToken, { value: blob })).statusCode, 409);
      assert.equal((await h.call('kv2', 'POST', `/secrets/restore?${V}`, officerToken, { value: 'AAAA' })).json().error.code, 'BadParameter');

      const pp = await h.createVault('kvpp', { purgeProtection: true, retentionDays: 7 });
      await assignRoleInStore(h.t, pp.resourceId, SECRETS_OFFICER, officer.objectId);
      const s = await h.call('kvpp', 'PUT', `/secrets/p?${V}`, officerToken, { value: 'v' });
      assert.equal(s.json().attributes.recoveryLevel, 'CustomizedRecoverable');
      await h.call('kvpp', 'DELETE', `/secrets/p?${V}`, officerToken);
      const purge = await h.call('kvpp', 'DELETE', `/deletedsecrets/p?${V}`, officerToken);
      assert.equal(purge.statusCode, 403);
      assert.match(purge.json().error.message, /^Operation "purge" is not allowed because purge protection is enabled for this vault\./);
    });

    it('audits every operation, folding reads, and never logs or audits a value or a token', async () => {
      await h.app.close(); // flushes the read window
      await h.t.ctx.audit.flush();
      const events = await h.t.ctx.store.audit.list({ limit: 1000 });
      const vaultEvents = events.filter((e) => e.action.startsWith('vault.secrets.'));
      assert.ok(vaultEvents.some((e) => e.action === 'vault.secrets.set' && e.detail['secret'] === 's1' && e.detail['decision'] === 'allowed'));
      assert.ok(vaultEvents.some((e) => e.action === 'vault.secrets.get' && e.detail['decision'] === 'denied' && e.detail['status'] === 403));
      assert.ok(vaultEvents.some((e) => e.action === 'vault.secrets.get' && typeof e.detail['count'] === 'number' && e.detail['count'] > 1));
      const everything = JSON.stringify(events) + h.logLines.join('\n') + h.t.logLines.join('\n');
      assert.ok(!everything.includes('TOP-SECRET-VALUE'));
      assert.ok(!everything.includes(officerToken));
      assert.ok(!everything.includes(officerToken.split('.')[2]!));
    });
  });
