import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { FakeClock, DAY } from '../../src/shared/clock.js';
import { newGuid } from '../../src/shared/ids.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { createCertificateAuthority } from '../../src/pki/ca.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';
import { createTestDatabase } from '../support/pg-database.js';
import { DirectoryError, type DirectoryErrorCode } from '../../src/directory/errors.js';
import { graphServicePrincipalView } from '../../src/management/principals.js';
import { armResourceView } from '../../src/management/resources.js';
import { createApplicationPrincipal, deleteApplicationPrincipal, findManagedIdentityPrincipal } from '../../src/directory/principals.js';
import { addCertificateCredential, addPasswordCredential, generateClientSecret, removeCredential, resetCredentials } from '../../src/directory/credentials.js';
import { createClientCertificate } from '../../src/pki/client-certificate.js';
import {
  deleteResource,
  deleteResourceGroup,
  deleteUserAssignedIdentity,
  getResource,
  listResourceGroups,
  listUserAssignedIdentities,
  putResource,
  putResourceGroup,
  putUserAssignedIdentity,
  validateResourceGroupName,
} from '../../src/directory/resources.js';

/** The directory refuses with a domain error: a stable code, no HTTP status (the APIs map codes to statuses). */
function rejectsWith(code: DirectoryErrorCode) {
  return (err: unknown) => {
    assert.ok(err instanceof DirectoryError, `expected a DirectoryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal('status' in err, false);
    return true;
  };
}

const adminUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];

directorySuite('directory (sqlite)', async () => ({ store: await openStore(':memory:'), drop: () => Promise.resolve() }));
if (adminUrl === undefined || adminUrl === '') {
  void test('directory (postgres)', { skip: 'OPENMSI_TEST_POSTGRES_URL not set' }, () => {});
} else {
  directorySuite('directory (postgres)', async () => {
    const database = await createTestDatabase(adminUrl);
    return { store: await openStore(database.url), drop: () => database.drop() };
  });
}

function directorySuite(name: string, open: () => Promise<{ store: Store; drop: () => Promise<void> }>): void {
  void describe(name, () => {
    let store: Store;
    let drop: () => Promise<void>;
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const masterKey = MasterKey.random();
    const tenantId = newGuid();
    const subscriptionId = newGuid();
    const otherTenantId = newGuid();
    const otherSubscriptionId = newGuid();

    before(async () => {
      ({ store, drop } = await open());
      await store.tenants.create({ id: tenantId, displayName: 'Test', defaultDomain: 'test.local', createdAt: clock.now() });
      await store.tenants.create({ id: otherTenantId, displayName: 'Other', defaultDomain: 'other.local', createdAt: clock.now() });
      await store.subscriptions.create({ id: subscriptionId, tenantId, displayName: 'Test sub', state: 'Enabled', createdAt: clock.now() });
      await store.subscriptions.create({
        id: otherSubscriptionId,
        tenantId: otherTenantId,
        displayName: 'Other sub',
        state: 'Enabled',
        createdAt: clock.now(),
      });
    });
    after(async () => {
      await store.close();
      await drop();
    });

    void describe('principals', () => {
      void it('creates application principals with fresh GUIDs and shows them like Graph', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'ci-pipeline', clock });
        assert.equal(sp.kind, 'Application');
        assert.match(sp.objectId, /^[0-9a-f-]{36}$/);
        assert.match(sp.appId, /^[0-9a-f-]{36}$/);
        assert.notEqual(sp.objectId, sp.appId);
        assert.equal(sp.isDirectoryAdmin, false);
        assert.deepEqual(await store.servicePrincipals.getByAppId(sp.appId), sp);
        const view = graphServicePrincipalView(sp);
        assert.equal(view.id, sp.objectId);
        assert.equal(view.servicePrincipalType, 'Application');
        assert.equal(view.appOwnerOrganizationId, tenantId);
        assert.deepEqual(view.servicePrincipalNames, [sp.appId]);
        assert.deepEqual(view.alternativeNames, []);
        assert.equal(view.accountEnabled, true);
      });

      void it('rejects empty display names and unknown tenants', async () => {
        await assert.rejects(createApplicationPrincipal(store, { tenantId, displayName: ' ', clock }), rejectsWith('Request_BadRequest'));
        await assert.rejects(createApplicationPrincipal(store, { tenantId: newGuid(), displayName: 'x', clock }), rejectsWith('Request_BadRequest'));
      });

      void it('deletes application principals with their credentials', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'short-lived', clock });
        await addPasswordCredential(store, masterKey, { appId: sp.appId, clock });
        assert.equal((await store.credentials.listByApp(sp.appId)).length, 1);
        assert.equal((await deleteApplicationPrincipal(store, sp.objectId))?.objectId, sp.objectId);
        assert.equal(await store.servicePrincipals.getByObjectId(sp.objectId), undefined);
        assert.equal((await store.credentials.listByApp(sp.appId)).length, 0);
        assert.equal(await deleteApplicationPrincipal(store, sp.objectId), undefined);
      });
    });

    void describe('credentials', () => {
      void it('generates high-entropy, Entra-looking secrets', () => {
        const seen = new Set<string>();
        for (let i = 0; i < 200; i++) {
          const s = generateClientSecret();
          assert.match(s, /^[A-Za-z0-9_.~-]{3}8Q~[A-Za-z0-9_.~-]{43}$/);
          seen.add(s);
        }
        assert.equal(seen.size, 200);
        // 43 characters after the (shown) hint and marker, 66 symbols each: > 256 bits.
        assert.ok(43 * Math.log2(66) >= 256);
      });

      void it('stores only a keyed hash of a password and shows the secret once', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'pw-app', clock });
        const result = await addPasswordCredential(store, masterKey, { appId: sp.appId, displayName: 'deploy', years: 2, clock });
        assert.equal(result.hint, result.secretText.slice(0, 3));
        assert.equal(result.displayName, 'deploy');
        assert.equal(result.startDateTime, new Date(clock.now()).toISOString());
        assert.equal(result.endDateTime, new Date(Date.UTC(2028, 0, 1)).toISOString());
        const [row] = await store.credentials.listByApp(sp.appId);
        assert.ok(row);
        assert.equal(row.keyId, result.keyId);
        assert.equal(row.type, 'Password');
        assert.ok(row.secretHash);
        assert.ok(!JSON.stringify(row).includes(result.secretText), 'the stored row must not contain the secret');
        assert.ok(masterKey.verifySecret(result.secretText, row.secretHash));
        assert.ok(!masterKey.verifySecret(generateClientSecret(), row.secretHash));
        assert.ok(!MasterKey.random().verifySecret(result.secretText, row.secretHash), 'the hash is keyed by the master key');
      });

      void it('rejects bad lifetimes and credentials for managed identities', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'years-app', clock });
        for (const years of [0, -1, 1.5, 101]) {
          await assert.rejects(addPasswordCredential(store, masterKey, { appId: sp.appId, years, clock }), rejectsWith('Request_BadRequest'));
        }
        await assert.rejects(addPasswordCredential(store, masterKey, { appId: newGuid(), clock }), rejectsWith('Request_ResourceNotFound'));
        await putResourceGroup(store, { subscriptionId, name: 'cred-rg', location: 'westeurope', clock });
        const { principal } = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'cred-rg', name: 'mi-nocreds', clock });
        await assert.rejects(addPasswordCredential(store, masterKey, { appId: principal.appId, clock }), rejectsWith('Request_BadRequest'));
      });

      void it('registers certificates with their thumbprints and validity', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'cert-app', clock });
        const { certPem, keyPem } = await createClientCertificate({ commonName: 'cert-app', years: 1, clock });
        assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
        assert.match(certPem, /^-----BEGIN CERTIFICATE-----\n/);
        const result = await addCertificateCredential(store, { appId: sp.appId, certificatePem: certPem, clock });
        const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
        const [row] = await store.credentials.listByApp(sp.appId);
        assert.ok(row);
        assert.equal(row.type, 'AsymmetricX509Cert');
        assert.equal(row.certificate, der.toString('base64'));
        assert.equal(row.thumbprintSha1, createHash('sha1').update(der).digest('hex'));
        assert.equal(row.thumbprintSha256, createHash('sha256').update(der).digest('hex'));
        assert.equal(result.customKeyIdentifier, row.thumbprintSha1?.toUpperCase());
        assert.ok(row.startAt < clock.now() && row.endAt >= clock.now() + 364 * DAY);
        // The same certificate twice is refused; base64 DER is accepted as well as PEM.
        await assert.rejects(
          addCertificateCredential(store, { appId: sp.appId, certificatePem: der.toString('base64'), clock }),
          rejectsWith('Request_BadRequest'),
        );
        const other = await createClientCertificate({ commonName: 'cert-app-2', clock });
        await addCertificateCredential(store, { appId: sp.appId, certificatePem: Buffer.from(other.certPem).toString('base64'), clock });
        assert.equal((await store.credentials.listByApp(sp.appId)).length, 2);
      });

      void it('rejects non-certificates, non-RSA and expired certificates', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'bad-cert-app', clock });
        for (const junk of ['', 'hello', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', Buffer.from('not a cert').toString('base64')]) {
          await assert.rejects(addCertificateCredential(store, { appId: sp.appId, certificatePem: junk, clock }), rejectsWith('InvalidKeyCredential'));
        }
        const ec = await createCertificateAuthority({ clock });
        await assert.rejects(addCertificateCredential(store, { appId: sp.appId, certificatePem: ec.certPem, clock }), /RSA key/);
        const old = await createClientCertificate({ commonName: 'old', years: 1, clock: new FakeClock(Date.UTC(2020, 0, 1)) });
        await assert.rejects(addCertificateCredential(store, { appId: sp.appId, certificatePem: old.certPem, clock }), /expired/);
        assert.equal((await store.credentials.listByApp(sp.appId)).length, 0);
      });

      void it('resets credentials like az ad sp credential reset (replace, or --append)', async () => {
        const sp = await createApplicationPrincipal(store, { tenantId, displayName: 'reset-app', clock });
        const first = await addPasswordCredential(store, masterKey, { appId: sp.appId, clock });
        const second = await resetCredentials(store, masterKey, { appId: sp.appId, clock });
        assert.equal(second.removed, 1);
        assert.ok(second.password);
        let rows = await store.credentials.listByApp(sp.appId);
        assert.deepEqual(
          rows.map((r) => r.keyId),
          [second.password.keyId],
        );
        assert.ok(!rows.some((r) => r.keyId === first.keyId));
        const third = await resetCredentials(store, masterKey, { appId: sp.objectId, append: true, years: 3, displayName: 'appended', clock });
        assert.equal(third.removed, 0);
        rows = await store.credentials.listByApp(sp.appId);
        assert.equal(rows.length, 2);
        const { certPem } = await createClientCertificate({ commonName: 'reset-app', clock });
        const fourth = await resetCredentials(store, masterKey, { appId: sp.appId, certificatePem: certPem, clock });
        assert.equal(fourth.password, null);
        assert.ok(fourth.certificate);
        rows = await store.credentials.listByApp(sp.appId);
        assert.deepEqual(
          rows.map((r) => r.type),
          ['AsymmetricX509Cert'],
        );
        // A bad certificate leaves the existing credentials alone.
        await assert.rejects(resetCredentials(store, masterKey, { appId: sp.appId, certificatePem: 'junk', clock }), rejectsWith('InvalidKeyCredential'));
        assert.equal((await store.credentials.listByApp(sp.appId)).length, 1);
        assert.equal(await removeCredential(store, { appId: sp.appId, keyId: fourth.certificate.keyId }), true);
        assert.equal(await removeCredential(store, { appId: sp.appId, keyId: fourth.certificate.keyId }), false);
      });
    });

    void describe('resource groups', () => {
      void it('validates names like ARM', () => {
        for (const ok of ['a', 'rg-1', 'My_RG.(test)', 'grüppe', 'x'.repeat(90)]) assert.equal(validateResourceGroupName(ok), ok);
        for (const bad of ['', 'bad*name', 'ends.', 'x'.repeat(91), 'has space', 'a/b']) {
          assert.throws(() => validateResourceGroupName(bad), rejectsWith('InvalidResourceGroup'));
        }
      });

      void it('creates (201 semantics), updates (200) and refuses to move a group', async () => {
        const created = await putResourceGroup(store, { subscriptionId, name: 'App-RG', location: 'West Europe', tags: { env: 'dev' }, clock });
        assert.equal(created.created, true);
        assert.equal(created.group.location, 'westeurope');
        assert.equal(created.group.id, `/subscriptions/${subscriptionId}/resourceGroups/App-RG`);
        const updated = await putResourceGroup(store, { subscriptionId, name: 'app-rg', location: 'westeurope', tags: { env: 'prod' }, clock });
        assert.equal(updated.created, false);
        assert.equal(updated.group.name, 'App-RG', 'keeps the casing it was created with');
        assert.deepEqual(updated.group.tags, { env: 'prod' });
        await assert.rejects(
          putResourceGroup(store, { subscriptionId, name: 'app-rg', location: 'eastus', clock }),
          rejectsWith('InvalidResourceGroupLocation'),
        );
        await assert.rejects(putResourceGroup(store, { subscriptionId, name: 'x', location: '', clock }), rejectsWith('LocationRequired'));
        await assert.rejects(putResourceGroup(store, { subscriptionId, name: 'x', location: 'l', tags: { a: 1 }, clock }), rejectsWith('InvalidTag'));
        await assert.rejects(putResourceGroup(store, { subscriptionId: newGuid(), name: 'x', location: 'l', clock }), rejectsWith('SubscriptionNotFound'));
        assert.ok((await listResourceGroups(store, subscriptionId)).some((g) => g.name === 'App-RG'));
      });
    });

    void describe('managed identities', () => {
      void it('creates user-assigned identities with principals findable by object id, client id and resource id', async () => {
        await putResourceGroup(store, { subscriptionId, name: 'mi-rg', location: 'westeurope', clock });
        const { resource, principal, created } = await putUserAssignedIdentity(store, {
          subscriptionId,
          resourceGroup: 'MI-RG',
          name: 'app-id',
          tags: { a: 'b' },
          clock,
        });
        assert.equal(created, true);
        assert.equal(resource.id, `/subscriptions/${subscriptionId}/resourceGroups/mi-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id`);
        assert.equal(resource.location, 'westeurope', 'defaults to the group location');
        assert.deepEqual(resource.properties, { tenantId, principalId: principal.objectId, clientId: principal.appId });
        assert.equal(principal.kind, 'ManagedIdentity');
        assert.equal(principal.displayName, 'app-id');
        assert.deepEqual(principal.managedIdentity, { type: 'UserAssigned', resourceId: resource.id });
        for (const key of [principal.objectId, principal.appId, resource.id, resource.id.toUpperCase()]) {
          assert.equal((await findManagedIdentityPrincipal(store, key))?.objectId, principal.objectId, key);
        }
        const view = graphServicePrincipalView(principal);
        assert.equal(view.servicePrincipalType, 'ManagedIdentity');
        assert.deepEqual(view.alternativeNames, ['isExplicit=True', resource.id]);
        const hash = createHash('sha256').update(resource.id.toLowerCase()).digest('base64');
        assert.deepEqual(view.servicePrincipalNames, [principal.appId, `https://identity.azure.net/${hash}`]);

        const again = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'mi-rg', name: 'APP-ID', clock });
        assert.equal(again.created, false);
        assert.equal(again.principal.objectId, principal.objectId, 'an update keeps the principal');
        assert.deepEqual(again.resource.tags, {});
        assert.equal((await listUserAssignedIdentities(store, { subscriptionId, resourceGroup: 'mi-rg' })).length, 1);
      });

      void it('validates identity names and requires the group', async () => {
        for (const name of ['ab', '-abc', 'a b c', 'x'.repeat(129), 'abc.def']) {
          await assert.rejects(putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'mi-rg', name, clock }), rejectsWith('InvalidResourceName'));
        }
        await assert.rejects(
          putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'nope', name: 'abc', clock }),
          rejectsWith('ResourceGroupNotFound'),
        );
      });

      void it('creates and removes system-assigned principals with the resource', async () => {
        await putResourceGroup(store, { subscriptionId, name: 'vm-rg', location: 'westeurope', clock });
        const uami = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'vm-rg', name: 'shared-id', clock });
        const vm = await putResource(store, {
          subscriptionId,
          resourceGroup: 'vm-rg',
          type: 'microsoft.compute/VIRTUALMACHINES',
          name: 'vm1',
          properties: { hardwareProfile: { vmSize: 'Standard_B1s' }, provisioningState: 'Failed' },
          identity: { type: 'SystemAssigned' },
          clock,
        });
        assert.equal(vm.created, true);
        assert.equal(vm.resource.type, 'Microsoft.Compute/virtualMachines');
        const samiId = vm.systemPrincipalCreated;
        assert.ok(samiId);
        const sami = await store.servicePrincipals.getByObjectId(samiId);
        assert.deepEqual(sami?.managedIdentity, { type: 'SystemAssigned', resourceId: vm.resource.id });
        assert.equal(sami?.displayName, 'vm1');
        assert.equal((await findManagedIdentityPrincipal(store, vm.resource.id))?.objectId, samiId);
        assert.deepEqual(graphServicePrincipalView(sami).alternativeNames, ['isExplicit=False', vm.resource.id]);

        // Add a user-assigned identity; the system principal stays.
        const both = await putResource(store, {
          subscriptionId,
          resourceGroup: 'vm-rg',
          type: 'Microsoft.Compute/virtualMachines',
          name: 'VM1',
          identity: { type: 'SystemAssigned,UserAssigned', userAssignedIdentities: { [uami.resource.id.toLowerCase()]: {} } },
          clock,
        });
        assert.equal(both.created, false);
        assert.equal(both.systemPrincipalCreated, null);
        assert.equal(both.resource.systemPrincipalId, samiId);
        const view = await armResourceView(store, both.resource, tenantId);
        assert.equal(view.identity?.type, 'SystemAssigned, UserAssigned');
        assert.equal(view.identity?.principalId, samiId);
        assert.equal(view.identity?.tenantId, tenantId);
        assert.deepEqual(view.identity?.userAssignedIdentities, {
          [uami.resource.id]: { principalId: uami.principal.objectId, clientId: uami.principal.appId },
        });
        assert.equal(view.properties['provisioningState'], 'Succeeded');

        // Drop the system identity: its principal is deleted.
        const userOnly = await putResource(store, {
          subscriptionId,
          resourceGroup: 'vm-rg',
          type: 'Microsoft.Compute/virtualMachines',
          name: 'vm1',
          identity: { type: 'UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
          clock,
        });
        assert.equal(userOnly.systemPrincipalDeleted, samiId);
        assert.equal(await store.servicePrincipals.getByObjectId(samiId), undefined);
        assert.equal(await findManagedIdentityPrincipal(store, vm.resource.id), undefined);
        const userView = await armResourceView(store, userOnly.resource, tenantId);
        assert.equal(userView.identity?.type, 'UserAssigned');
        assert.equal(userView.identity?.principalId, undefined);

        // Re-enable, then delete the resource: the new principal goes with it.
        const again = await putResource(store, {
          subscriptionId,
          resourceGroup: 'vm-rg',
          type: 'Microsoft.Compute/virtualMachines',
          name: 'vm1',
          identity: { type: 'SystemAssigned' },
          clock,
        });
        const newSami = again.systemPrincipalCreated;
        assert.ok(newSami && newSami !== samiId);
        const deleted = await deleteResource(store, { subscriptionId, resourceGroup: 'vm-rg', type: 'Microsoft.Compute/virtualMachines', name: 'vm1', clock });
        assert.deepEqual(deleted?.deletedPrincipalIds, [newSami]);
        assert.equal(await store.servicePrincipals.getByObjectId(newSami), undefined);
        assert.equal(
          await deleteResource(store, { subscriptionId, resourceGroup: 'vm-rg', type: 'Microsoft.Compute/virtualMachines', name: 'vm1', clock }),
          undefined,
        );
        await assert.rejects(
          getResource(store, { subscriptionId, resourceGroup: 'vm-rg', type: 'Microsoft.Compute/virtualMachines', name: 'vm1' }),
          rejectsWith('ResourceNotFound'),
        );
      });

      void it('rejects bad identity requests, unknown types and identities from another tenant', async () => {
        const base = { subscriptionId, resourceGroup: 'vm-rg', type: 'Microsoft.Web/sites', name: 'site1', clock };
        for (const identity of [
          'SystemAssigned',
          { type: 'Bogus' },
          { type: 'None, SystemAssigned' },
          { type: 'UserAssigned' },
          {
            type: 'SystemAssigned',
            userAssignedIdentities: { '/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z': {} },
          },
          { type: 'UserAssigned', userAssignedIdentities: { '/not/an/id': {} } },
          { type: 'UserAssigned', userAssignedIdentities: [] },
        ]) {
          await assert.rejects(putResource(store, { ...base, identity }), rejectsWith('InvalidIdentity'), JSON.stringify(identity));
        }
        const missing = `/subscriptions/${subscriptionId}/resourceGroups/vm-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/missing`;
        await assert.rejects(
          putResource(store, { ...base, identity: { type: 'UserAssigned', userAssignedIdentities: { [missing]: {} } } }),
          rejectsWith('InvalidUserAssignedIdentity'),
        );
        await putResourceGroup(store, { subscriptionId: otherSubscriptionId, name: 'foreign-rg', location: 'westeurope', clock });
        const foreign = await putUserAssignedIdentity(store, { subscriptionId: otherSubscriptionId, resourceGroup: 'foreign-rg', name: 'foreign-id', clock });
        await assert.rejects(
          putResource(store, { ...base, identity: { type: 'UserAssigned', userAssignedIdentities: { [foreign.resource.id]: {} } } }),
          rejectsWith('InvalidUserAssignedIdentity'),
        );
        await assert.rejects(putResource(store, { ...base, type: 'Microsoft.Fake/things' }), rejectsWith('NoRegisteredProviderFound'));
        await assert.rejects(
          putResource(store, { ...base, type: 'Microsoft.ManagedIdentity/userAssignedIdentities' }),
          rejectsWith('NoRegisteredProviderFound'),
        );
        await assert.rejects(putResource(store, { ...base, name: 'bad name' }), rejectsWith('InvalidResourceName'));
        await assert.rejects(putResource(store, { ...base, properties: [] }), rejectsWith('InvalidRequestContent'));
        // Nothing was created by any of the failures.
        assert.equal((await store.resources.list({ subscriptionId, resourceGroup: 'vm-rg', type: 'Microsoft.Web/sites' })).length, 0);
      });

      void it('deleting a user-assigned identity detaches it everywhere and deletes its principal', async () => {
        await putResourceGroup(store, { subscriptionId, name: 'id-rg', location: 'westeurope', clock });
        await putResourceGroup(store, { subscriptionId, name: 'apps-rg', location: 'westeurope', clock });
        const uami = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'id-rg', name: 'shared', clock });
        const other = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'id-rg', name: 'other', clock });
        const identity = { type: 'UserAssigned', userAssignedIdentities: { [uami.resource.id]: {}, [other.resource.id]: {} } };
        for (const name of ['app1', 'app2']) {
          await putResource(store, { subscriptionId, resourceGroup: 'apps-rg', type: 'Microsoft.App/containerApps', name, identity, clock });
        }
        const deleted = await deleteUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'id-rg', name: 'shared', clock });
        assert.deepEqual(deleted?.deletedPrincipalIds, [uami.principal.objectId]);
        assert.equal(deleted?.detachedFrom.length, 2);
        assert.equal(await store.servicePrincipals.getByObjectId(uami.principal.objectId), undefined);
        for (const name of ['app1', 'app2']) {
          const app = await getResource(store, { subscriptionId, resourceGroup: 'apps-rg', type: 'Microsoft.App/containerApps', name });
          assert.deepEqual(app.userAssignedIdentityIds, [other.resource.id]);
        }
        assert.equal(await deleteUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'id-rg', name: 'shared', clock }), undefined);
      });

      void it('deleting a resource group deletes everything in it, principals included', async () => {
        await putResourceGroup(store, { subscriptionId, name: 'doomed', location: 'westeurope', clock });
        await putResourceGroup(store, { subscriptionId, name: 'survivor', location: 'westeurope', clock });
        const uami = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'doomed', name: 'doomed-id', clock });
        const vm = await putResource(store, {
          subscriptionId,
          resourceGroup: 'doomed',
          type: 'Microsoft.HybridCompute/machines',
          name: 'm1',
          identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
          clock,
        });
        const outside = await putResource(store, {
          subscriptionId,
          resourceGroup: 'survivor',
          type: 'Microsoft.Web/sites',
          name: 'site',
          identity: { type: 'UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
          clock,
        });
        const result = await deleteResourceGroup(store, { subscriptionId, name: 'DOOMED', clock });
        assert.ok(result);
        assert.equal(result.deletedResourceIds.length, 2);
        assert.deepEqual(new Set(result.deletedPrincipalIds), new Set([uami.principal.objectId, vm.systemPrincipalCreated]));
        assert.deepEqual(result.detachedFrom, [outside.resource.id]);
        for (const id of result.deletedPrincipalIds) assert.equal(await store.servicePrincipals.getByObjectId(id), undefined);
        assert.equal(await store.resourceGroups.get(subscriptionId, 'doomed'), undefined);
        assert.equal((await store.resources.list({ subscriptionId, resourceGroup: 'doomed' })).length, 0);
        const survivor = await getResource(store, { subscriptionId, resourceGroup: 'survivor', type: 'Microsoft.Web/sites', name: 'site' });
        assert.deepEqual(survivor.userAssignedIdentityIds, []);
        assert.equal(await deleteResourceGroup(store, { subscriptionId, name: 'doomed', clock }), undefined);
      });
    });
  });
}
