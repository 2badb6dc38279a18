/**
 * The store conformance suite: every method of every aggregate interface, run unchanged against each backend
 * (test/store/sqlite.test.ts, test/store/postgres.test.ts). Not a test file itself.
 *
 * The suite opens one store for all its tests, so each test makes its own rows (random ids) and never
 * depends on another test's data. Methods that act on a whole table (purges, unfiltered lists) are checked
 * against what the table held just before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MAX_FEDERATED_CREDENTIALS, putFederatedCredential } from '../../src/directory/federated-credentials.js';
import { formatArmResourceId, newGuid, resourceGroupId } from '../../src/shared/ids.js';
import type {
  AuditEvent,
  ClientCredential,
  FederatedCredential,
  FederationIssuer,
  FederationLink,
  HostCredential,
  JoinToken,
  Repositories,
  Resource,
  ResourceGroup,
  ServicePrincipal,
  SigningKeyRecord,
  Store,
  Subscription,
  Tenant,
  RefreshTokenRecord,
  User,
} from '../../src/store/types.js';
import { PRINCIPAL_CHANNEL } from '../../src/store/types.js';

export interface ConformanceOptions {
  /**
   * Opens a second store on the same data, as another replica would. Only backends that allow several
   * processes on one database (PostgreSQL) provide it; races are then also run across the two stores.
   */
  openReplica?: () => Promise<Store>;
}

const T0 = Date.UTC(2026, 0, 1);
const MIUAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const VM = 'Microsoft.Compute/virtualMachines';

function uid(): string {
  return randomBytes(5).toString('hex');
}

/** Upper-cases an ARM id, to check that lookups ignore case. */
function shout(id: string): string {
  return id.toUpperCase();
}

function tenantFixture(overrides: Partial<Tenant> = {}): Tenant {
  const id = newGuid();
  return { id, displayName: `Tenant ${id.slice(0, 8)}`, defaultDomain: `t${uid()}.openmsi.test`, createdAt: T0, ...overrides };
}

function subscriptionFixture(tenantId: string, overrides: Partial<Subscription> = {}): Subscription {
  return { id: newGuid(), tenantId, displayName: 'Sub', state: 'Enabled', createdAt: T0, ...overrides };
}

function groupFixture(subscriptionId: string, name: string, overrides: Partial<ResourceGroup> = {}): ResourceGroup {
  return {
    id: resourceGroupId(subscriptionId, name),
    subscriptionId,
    name,
    location: 'westeurope',
    tags: {},
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

function resourceFixture(subscriptionId: string, resourceGroup: string, type: string, name: string, overrides: Partial<Resource> = {}): Resource {
  return {
    id: formatArmResourceId({ subscriptionId, resourceGroup, type, name }),
    subscriptionId,
    resourceGroup,
    type,
    name,
    location: 'westeurope',
    tags: {},
    properties: {},
    systemPrincipalId: null,
    userAssignedIdentityIds: [],
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

function principalFixture(tenantId: string, overrides: Partial<ServicePrincipal> = {}): ServicePrincipal {
  return {
    objectId: newGuid(),
    tenantId,
    appId: newGuid(),
    displayName: `app-${uid()}`,
    kind: 'Application',
    managedIdentity: null,
    isDirectoryAdmin: false,
    createdAt: T0,
    ...overrides,
  };
}

function signingKeyFixture(overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  const kid = `kid-${uid()}`;
  return {
    kid,
    state: 'next',
    alg: 'RS256',
    privateKeyEnc: `enc:${uid()}`,
    publicJwk: { kty: 'RSA', kid, n: 'AQAB', e: 'AQAB', use: 'sig', alg: 'RS256', x5c: ['MIIB'] },
    createdAt: T0,
    activatedAt: null,
    retiredAt: null,
    publishUntil: null,
    revokedAt: null,
    ...overrides,
  };
}

function auditFixture(action: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: newGuid(),
    at: T0,
    tenantId: null,
    actor: 'system',
    action,
    target: 'target',
    outcome: 'success',
    detail: {},
    ...overrides,
  };
}

export function storeConformanceSuite(name: string, open: () => Promise<Store>, options: ConformanceOptions = {}): void {
  void describe(name, { timeout: 120_000 }, () => {
    let store: Store;

    before(async () => {
      store = await open();
    });
    after(async () => {
      await store?.close();
    });

    /** A tenant and a subscription under it. */
    async function seedSubscription(repos: Repositories = store): Promise<{ tenant: Tenant; subscription: Subscription }> {
      const tenant = tenantFixture();
      await repos.tenants.create(tenant);
      const subscription = subscriptionFixture(tenant.id);
      await repos.subscriptions.create(subscription);
      return { tenant, subscription };
    }

    /** A subscription with one resource group `rg-<random>` (mixed case on purpose). */
    async function seedGroup(): Promise<{ tenant: Tenant; subscription: Subscription; group: ResourceGroup }> {
      const seeded = await seedSubscription();
      const group = groupFixture(seeded.subscription.id, `Rg-Mixed-${uid()}`);
      await store.resourceGroups.put(group);
      return { ...seeded, group };
    }

    /** Runs `fn` on the store, and also on a second replica when the backend has one. */
    async function withReplicas<T>(fn: (stores: Store[]) => Promise<T>): Promise<T> {
      if (options.openReplica === undefined) return fn([store]);
      const replica = await options.openReplica();
      try {
        return await fn([store, replica]);
      } finally {
        await replica.close();
      }
    }

    void describe('tenants', () => {
      void it('creates, then gets by id and by default domain, case-insensitively', async () => {
        const tenant = tenantFixture({ defaultDomain: `Contoso-${uid()}.Example.COM` });
        await store.tenants.create(tenant);
        const expected = { ...tenant, defaultDomain: tenant.defaultDomain.toLowerCase() };
        assert.deepEqual(await store.tenants.get(tenant.id), expected);
        assert.deepEqual(await store.tenants.get(tenant.id.toUpperCase()), expected);
        assert.deepEqual(await store.tenants.get(tenant.defaultDomain), expected);
        assert.deepEqual(await store.tenants.get(tenant.defaultDomain.toLowerCase()), expected);
        assert.deepEqual(await store.tenants.get(tenant.defaultDomain.toUpperCase()), expected);
      });

      void it('returns undefined for an unknown id or domain', async () => {
        assert.equal(await store.tenants.get(newGuid()), undefined);
        assert.equal(await store.tenants.get(`nowhere-${uid()}.example`), undefined);
      });

      void it('rejects a duplicate id and a duplicate domain in any case', async () => {
        const tenant = tenantFixture();
        await store.tenants.create(tenant);
        await assert.rejects(store.tenants.create(tenantFixture({ id: tenant.id })));
        await assert.rejects(store.tenants.create(tenantFixture({ defaultDomain: tenant.defaultDomain.toUpperCase() })));
      });

      void it('lists tenants in creation order', async () => {
        const a = tenantFixture({ createdAt: T0 + 2 });
        const b = tenantFixture({ createdAt: T0 + 1 });
        await store.tenants.create(a);
        await store.tenants.create(b);
        const all = await store.tenants.list();
        const ids = all.map((t) => t.id);
        assert.ok(ids.includes(a.id) && ids.includes(b.id));
        assert.ok(ids.indexOf(b.id) < ids.indexOf(a.id), 'older tenant first');
        for (let i = 1; i < all.length; i++) assert.ok(all[i - 1]!.createdAt <= all[i]!.createdAt);
      });
    });

    void describe('subscriptions', () => {
      void it('creates and gets, case-insensitively', async () => {
        const { subscription } = await seedSubscription();
        assert.deepEqual(await store.subscriptions.get(subscription.id), subscription);
        assert.deepEqual(await store.subscriptions.get(subscription.id.toUpperCase()), subscription);
        assert.equal(await store.subscriptions.get(newGuid()), undefined);
      });

      void it('keeps the state', async () => {
        const { tenant } = await seedSubscription();
        const disabled = subscriptionFixture(tenant.id, { state: 'Disabled', displayName: 'Off' });
        await store.subscriptions.create(disabled);
        assert.equal((await store.subscriptions.get(disabled.id))?.state, 'Disabled');
      });

      void it('lists only the subscriptions of one tenant', async () => {
        const { tenant, subscription } = await seedSubscription();
        const second = subscriptionFixture(tenant.id, { createdAt: T0 + 5 });
        await store.subscriptions.create(second);
        await seedSubscription(); // another tenant's
        assert.deepEqual(await store.subscriptions.listByTenant(tenant.id), [subscription, second]);
        assert.deepEqual(await store.subscriptions.listByTenant(tenant.id.toUpperCase()), [subscription, second]);
        assert.deepEqual(await store.subscriptions.listByTenant(newGuid()), []);
      });

      void it('refuses a subscription of an unknown tenant (foreign keys are enforced)', async () => {
        await assert.rejects(store.subscriptions.create(subscriptionFixture(newGuid())));
      });
    });

    void describe('resource groups', () => {
      void it('put creates, then updates in place keeping createdAt and the original casing', async () => {
        const { subscription } = await seedSubscription();
        const group = groupFixture(subscription.id, 'My-Group', { tags: { env: 'dev' }, createdAt: T0, updatedAt: T0 });
        assert.equal(await store.resourceGroups.put(group), 'created');

        const renamedCase = groupFixture(subscription.id, 'MY-GROUP', {
          location: 'northeurope',
          tags: { env: 'prod', owner: 'me' },
          createdAt: T0 + 1000,
          updatedAt: T0 + 2000,
        });
        assert.equal(await store.resourceGroups.put(renamedCase), 'updated');
        assert.deepEqual(await store.resourceGroups.get(subscription.id, 'my-group'), {
          ...group,
          location: 'northeurope',
          tags: { env: 'prod', owner: 'me' },
          createdAt: T0,
          updatedAt: T0 + 2000,
        });
      });

      void it('gets by subscription and name case-insensitively', async () => {
        const { subscription, group } = await seedGroup();
        assert.deepEqual(await store.resourceGroups.get(subscription.id.toUpperCase(), group.name.toUpperCase()), group);
        assert.deepEqual(await store.resourceGroups.get(subscription.id, group.name.toLowerCase()), group);
        assert.equal(await store.resourceGroups.get(subscription.id, 'no-such-group'), undefined);
      });

      void it('lists the groups of one subscription only', async () => {
        const { subscription, group } = await seedGroup();
        const second = groupFixture(subscription.id, `another-${uid()}`);
        await store.resourceGroups.put(second);
        await seedGroup(); // elsewhere
        const listed = await store.resourceGroups.list(subscription.id);
        assert.deepEqual(listed.map((g) => g.id).sort(), [group.id, second.id].sort());
        assert.deepEqual(await store.resourceGroups.list(newGuid()), []);
      });

      void it('rejects an id that does not match subscription and name', async () => {
        const { subscription } = await seedSubscription();
        await assert.rejects(store.resourceGroups.put(groupFixture(subscription.id, 'a', { id: resourceGroupId(subscription.id, 'b') })));
        assert.equal(await store.resourceGroups.get(subscription.id, 'a'), undefined);
      });

      void it('deletes, case-insensitively, reporting whether a row went', async () => {
        const { subscription, group } = await seedGroup();
        assert.equal(await store.resourceGroups.delete(subscription.id, group.name.toUpperCase()), true);
        assert.equal(await store.resourceGroups.get(subscription.id, group.name), undefined);
        assert.equal(await store.resourceGroups.delete(subscription.id, group.name), false);
      });

      void it('refuses to delete a group that still holds resources', async () => {
        const { subscription, group } = await seedGroup();
        await store.resources.put(resourceFixture(subscription.id, group.name, VM, 'vm1'));
        await assert.rejects(store.resourceGroups.delete(subscription.id, group.name));
        assert.ok(await store.resourceGroups.get(subscription.id, group.name));
      });
    });

    void describe('resources', () => {
      void it('put creates, then replaces keeping createdAt; every field round-trips', async () => {
        const { subscription, group } = await seedGroup();
        const vm = resourceFixture(subscription.id, group.name, VM, 'Vm-One', {
          tags: { a: '1', 'with space': 'x' },
          properties: { nested: { list: [1, 'two', null, true], n: 1.5 }, empty: {} },
          systemPrincipalId: newGuid(),
          createdAt: T0,
          updatedAt: T0,
        });
        assert.equal(await store.resources.put(vm), 'created');
        assert.deepEqual(await store.resources.get(vm.id), vm);

        const replaced: Resource = {
          ...vm,
          location: 'eastus',
          tags: {},
          properties: { replaced: true },
          systemPrincipalId: null,
          createdAt: T0 + 999,
          updatedAt: T0 + 5000,
        };
        assert.equal(await store.resources.put(replaced), 'updated');
        assert.deepEqual(await store.resources.get(vm.id), { ...replaced, createdAt: T0 });
      });

      void it('gets by ARM id case-insensitively, with the group name from the id', async () => {
        const { subscription, group } = await seedGroup();
        const vm = resourceFixture(subscription.id, group.name, VM, 'CamelVm');
        await store.resources.put(vm);
        for (const variant of [vm.id, vm.id.toLowerCase(), shout(vm.id)]) {
          const got = await store.resources.get(variant);
          assert.deepEqual(got, vm, variant);
          assert.equal(got?.resourceGroup, group.name);
        }
        assert.equal(await store.resources.get(`${vm.id}-missing`), undefined);
      });

      void it('lists by subscription, group and type, case-insensitively', async () => {
        const { subscription, group } = await seedGroup();
        const other = groupFixture(subscription.id, `Other-${uid()}`);
        await store.resourceGroups.put(other);
        const vm1 = resourceFixture(subscription.id, group.name, VM, 'vm1');
        const vm2 = resourceFixture(subscription.id, other.name, VM, 'vm2');
        const id1 = resourceFixture(subscription.id, group.name, MIUAMI, 'id1');
        for (const r of [vm1, vm2, id1]) await store.resources.put(r);
        const ids = (rs: Resource[]): string[] => rs.map((r) => r.id).sort();

        assert.deepEqual(ids(await store.resources.list({ subscriptionId: subscription.id })), ids([vm1, vm2, id1]));
        assert.deepEqual(ids(await store.resources.list({ subscriptionId: subscription.id.toUpperCase() })), ids([vm1, vm2, id1]));
        assert.deepEqual(ids(await store.resources.list({ subscriptionId: subscription.id, resourceGroup: group.name.toUpperCase() })), ids([vm1, id1]));
        assert.deepEqual(ids(await store.resources.list({ subscriptionId: subscription.id, type: VM.toLowerCase() })), ids([vm1, vm2]));
        assert.deepEqual(ids(await store.resources.list({ subscriptionId: subscription.id, resourceGroup: other.name, type: VM })), ids([vm2]));
        assert.deepEqual(await store.resources.list({ subscriptionId: subscription.id, type: 'Microsoft.Nothing/here' }), []);
        assert.deepEqual(await store.resources.list({ subscriptionId: newGuid() }), []);
        // Listed resources are complete, attachments included.
        const listed = await store.resources.list({ subscriptionId: subscription.id, resourceGroup: group.name, type: VM });
        assert.deepEqual(listed, [vm1]);
      });

      void it('attaches user-assigned identities, replaces the set, and lists what an identity is attached to', async () => {
        const { subscription, group } = await seedGroup();
        const idA = resourceFixture(subscription.id, group.name, MIUAMI, 'Identity-A');
        const idB = resourceFixture(subscription.id, group.name, MIUAMI, 'Identity-B');
        const idC = resourceFixture(subscription.id, group.name, MIUAMI, 'Identity-C');
        for (const r of [idA, idB, idC]) await store.resources.put(r);

        // Attach by ids in other casings, with a duplicate: stored once each, returned in canonical casing.
        const vm = resourceFixture(subscription.id, group.name, VM, 'vm', {
          userAssignedIdentityIds: [idA.id.toLowerCase(), shout(idB.id), idA.id],
        });
        assert.equal(await store.resources.put(vm), 'created');
        assert.deepEqual((await store.resources.get(vm.id))?.userAssignedIdentityIds.sort(), [idA.id, idB.id].sort());
        assert.deepEqual(await store.resources.listAttachedTo(idA.id), [vm.id]);
        assert.deepEqual(await store.resources.listAttachedTo(shout(idB.id)), [vm.id]);
        assert.deepEqual(await store.resources.listAttachedTo(idC.id), []);

        // A second resource shares identity A.
        const vm2 = resourceFixture(subscription.id, group.name, VM, 'vm2', { userAssignedIdentityIds: [idA.id] });
        await store.resources.put(vm2);
        assert.deepEqual((await store.resources.listAttachedTo(idA.id)).sort(), [vm.id, vm2.id].sort());

        // Replace the set on the first: B stays, A goes, C comes.
        assert.equal(await store.resources.put({ ...vm, userAssignedIdentityIds: [idC.id, idB.id] }), 'updated');
        assert.deepEqual((await store.resources.get(vm.id))?.userAssignedIdentityIds.sort(), [idB.id, idC.id].sort());
        assert.deepEqual(await store.resources.listAttachedTo(idA.id), [vm2.id]);
        assert.deepEqual(await store.resources.listAttachedTo(idC.id), [vm.id]);

        // And clear it.
        await store.resources.put({ ...vm, userAssignedIdentityIds: [] });
        assert.deepEqual((await store.resources.get(vm.id))?.userAssignedIdentityIds, []);
        assert.deepEqual(await store.resources.listAttachedTo(idB.id), []);
      });

      void it('put is atomic: attaching an unknown identity fails and leaves nothing behind', async () => {
        const { subscription, group } = await seedGroup();
        const known = resourceFixture(subscription.id, group.name, MIUAMI, 'known');
        await store.resources.put(known);
        const ghost = resourceFixture(subscription.id, group.name, MIUAMI, 'ghost');
        const vm = resourceFixture(subscription.id, group.name, VM, 'vm', { userAssignedIdentityIds: [known.id, ghost.id] });
        await assert.rejects(store.resources.put(vm));
        assert.equal(await store.resources.get(vm.id), undefined);
        assert.deepEqual(await store.resources.listAttachedTo(known.id), []);

        // On update too: the old row and attachments survive a failed replacement.
        await store.resources.put({ ...vm, userAssignedIdentityIds: [known.id] });
        await assert.rejects(store.resources.put({ ...vm, location: 'changed', userAssignedIdentityIds: [ghost.id] }));
        const after = await store.resources.get(vm.id);
        assert.equal(after?.location, vm.location);
        assert.deepEqual(after?.userAssignedIdentityIds, [known.id]);
      });

      void it('put joins the caller transaction', async () => {
        const { subscription, group } = await seedGroup();
        const uami = resourceFixture(subscription.id, group.name, MIUAMI, 'uami');
        const vm = resourceFixture(subscription.id, group.name, VM, 'vm', { userAssignedIdentityIds: [uami.id] });
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.resources.put(uami);
            await tx.resources.put(vm);
            assert.deepEqual((await tx.resources.get(vm.id))?.userAssignedIdentityIds, [uami.id]);
            throw new Error('abort');
          }),
          /abort/,
        );
        assert.equal(await store.resources.get(vm.id), undefined);
        assert.equal(await store.resources.get(uami.id), undefined);
        assert.deepEqual(await store.resources.listAttachedTo(uami.id), []);
      });

      void it('delete cascades attachments both ways: as the resource and as the identity', async () => {
        const { subscription, group } = await seedGroup();
        const idA = resourceFixture(subscription.id, group.name, MIUAMI, 'a');
        const idB = resourceFixture(subscription.id, group.name, MIUAMI, 'b');
        for (const r of [idA, idB]) await store.resources.put(r);
        const vm = resourceFixture(subscription.id, group.name, VM, 'vm', { userAssignedIdentityIds: [idA.id, idB.id] });
        const vm2 = resourceFixture(subscription.id, group.name, VM, 'vm2', { userAssignedIdentityIds: [idA.id] });
        await store.resources.put(vm);
        await store.resources.put(vm2);

        // The identity goes: it disappears from every resource it was attached to.
        assert.equal(await store.resources.delete(shout(idA.id)), true);
        assert.deepEqual((await store.resources.get(vm.id))?.userAssignedIdentityIds, [idB.id]);
        assert.deepEqual((await store.resources.get(vm2.id))?.userAssignedIdentityIds, []);
        assert.deepEqual(await store.resources.listAttachedTo(idA.id), []);

        // The resource goes: its own attachments go with it, the identity stays.
        assert.equal(await store.resources.delete(vm.id.toLowerCase()), true);
        assert.equal(await store.resources.get(vm.id), undefined);
        assert.deepEqual(await store.resources.listAttachedTo(idB.id), []);
        assert.ok(await store.resources.get(idB.id));

        // Re-creating the deleted identity does not resurrect old attachments.
        await store.resources.put(idA);
        assert.deepEqual(await store.resources.listAttachedTo(idA.id), []);

        assert.equal(await store.resources.delete(vm.id), false);
      });

      void it('refuses a resource in a group that does not exist', async () => {
        const { subscription } = await seedSubscription();
        const orphan = resourceFixture(subscription.id, 'no-such-group', VM, 'vm');
        await assert.rejects(store.resources.put(orphan));
        assert.equal(await store.resources.get(orphan.id), undefined);
      });

      void it('nested resource ids keep their group', async () => {
        const { subscription, group } = await seedGroup();
        const parent = resourceFixture(subscription.id, group.name, VM, 'host');
        const child: Resource = {
          ...resourceFixture(subscription.id, group.name, `${VM}/extensions`, 'ext'),
          id: `${parent.id}/extensions/Ext`,
          name: 'Ext',
        };
        await store.resources.put(child);
        const got = await store.resources.get(shout(child.id));
        assert.equal(got?.resourceGroup, group.name);
        assert.deepEqual(
          (await store.resources.list({ subscriptionId: subscription.id, resourceGroup: group.name })).map((r) => r.id),
          [child.id],
        );
      });
    });

    void describe('service principals', () => {
      void it('creates and gets by object id and app id, case-insensitively', async () => {
        const { tenant } = await seedSubscription();
        const app = principalFixture(tenant.id, { isDirectoryAdmin: true });
        await store.servicePrincipals.create(app);
        assert.deepEqual(await store.servicePrincipals.getByObjectId(app.objectId), app);
        assert.deepEqual(await store.servicePrincipals.getByObjectId(app.objectId.toUpperCase()), app);
        assert.deepEqual(await store.servicePrincipals.getByAppId(app.appId), app);
        assert.deepEqual(await store.servicePrincipals.getByAppId(app.appId.toUpperCase()), app);
        assert.equal(await store.servicePrincipals.getByObjectId(newGuid()), undefined);
        assert.equal(await store.servicePrincipals.getByAppId(newGuid()), undefined);
      });

      void it('finds managed identities by resource id (case-insensitive) and type', async () => {
        const { tenant, subscription } = await seedSubscription();
        const uamiId = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: 'Rg', type: MIUAMI, name: 'Uami' });
        const vmId = formatArmResourceId({ subscriptionId: subscription.id, resourceGroup: 'Rg', type: VM, name: 'Vm' });
        const uami = principalFixture(tenant.id, { kind: 'ManagedIdentity', managedIdentity: { type: 'UserAssigned', resourceId: uamiId } });
        const system = principalFixture(tenant.id, { kind: 'ManagedIdentity', managedIdentity: { type: 'SystemAssigned', resourceId: vmId } });
        await store.servicePrincipals.create(uami);
        await store.servicePrincipals.create(system);

        assert.deepEqual(await store.servicePrincipals.getByManagedIdentityResource(shout(uamiId), 'UserAssigned'), uami);
        assert.deepEqual(await store.servicePrincipals.getByManagedIdentityResource(vmId.toLowerCase(), 'SystemAssigned'), system);
        assert.equal(await store.servicePrincipals.getByManagedIdentityResource(uamiId, 'SystemAssigned'), undefined);
        assert.equal(await store.servicePrincipals.getByManagedIdentityResource(`${vmId}x`, 'SystemAssigned'), undefined);
        // The resource id keeps its casing.
        assert.equal((await store.servicePrincipals.getByObjectId(uami.objectId))?.managedIdentity?.resourceId, uamiId);
      });

      void it('lists by tenant, kind and display name (case-insensitive)', async () => {
        const { tenant } = await seedSubscription();
        const a = principalFixture(tenant.id, { displayName: 'Build Agent', createdAt: T0 + 1 });
        const b = principalFixture(tenant.id, { displayName: 'other', createdAt: T0 + 2 });
        const mi = principalFixture(tenant.id, {
          displayName: 'build agent',
          kind: 'ManagedIdentity',
          managedIdentity: { type: 'UserAssigned', resourceId: `/subscriptions/${newGuid()}/resourceGroups/r/providers/${MIUAMI}/x` },
          createdAt: T0 + 3,
        });
        for (const p of [a, b, mi]) await store.servicePrincipals.create(p);
        const { tenant: elsewhere } = await seedSubscription();
        await store.servicePrincipals.create(principalFixture(elsewhere.id, { displayName: 'Build Agent' }));

        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id }), [a, b, mi]);
        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id, kind: 'Application' }), [a, b]);
        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id, kind: 'ManagedIdentity' }), [mi]);
        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id, displayName: 'BUILD AGENT' }), [a, mi]);
        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id, kind: 'Application', displayName: 'build agent' }), [a]);
        assert.deepEqual(await store.servicePrincipals.list({ tenantId: tenant.id, displayName: 'nobody' }), []);
      });

      void it('rejects a duplicate app id; deletes', async () => {
        const { tenant } = await seedSubscription();
        const app = principalFixture(tenant.id);
        await store.servicePrincipals.create(app);
        await assert.rejects(store.servicePrincipals.create(principalFixture(tenant.id, { appId: app.appId })));
        assert.equal(await store.servicePrincipals.delete(app.objectId.toUpperCase()), true);
        assert.equal(await store.servicePrincipals.getByAppId(app.appId), undefined);
        assert.equal(await store.servicePrincipals.delete(app.objectId), false);
      });
    });

    void describe('client credentials', () => {
      function password(appId: string, overrides: Partial<ClientCredential> = {}): ClientCredential {
        return {
          keyId: newGuid(),
          appId,
          type: 'Password',
          displayName: 'ci secret',
          hint: 'abc',
          secretHash: `hash-${uid()}`,
          thumbprintSha1: null,
          thumbprintSha256: null,
          certificate: null,
          startAt: T0,
          endAt: T0 + 86_400_000,
          createdAt: T0,
          ...overrides,
        };
      }

      void it('adds and lists by app in creation order, every field round-tripping', async () => {
        const appId = newGuid();
        const secret = password(appId, { createdAt: T0 + 1 });
        const cert: ClientCredential = {
          ...password(appId),
          type: 'AsymmetricX509Cert',
          hint: null,
          secretHash: null,
          thumbprintSha1: 'a'.repeat(40),
          thumbprintSha256: 'b'.repeat(64),
          certificate: 'MIIBkTCB+w==',
          createdAt: T0 + 2,
        };
        await store.credentials.add(cert);
        await store.credentials.add(secret);
        await store.credentials.add(password(newGuid())); // another app's
        assert.deepEqual(await store.credentials.listByApp(appId), [secret, cert]);
        assert.deepEqual(await store.credentials.listByApp(appId.toUpperCase()), [secret, cert]);
        assert.deepEqual(await store.credentials.listByApp(newGuid()), []);
      });

      void it('deletes one, and all of an app', async () => {
        const appId = newGuid();
        const creds = [password(appId), password(appId), password(appId)];
        for (const c of creds) await store.credentials.add(c);
        const bystander = password(newGuid());
        await store.credentials.add(bystander);

        assert.equal(await store.credentials.delete(creds[0]!.keyId), true);
        assert.equal(await store.credentials.delete(creds[0]!.keyId), false);
        assert.equal(await store.credentials.deleteByApp(appId), 2);
        assert.equal(await store.credentials.deleteByApp(appId), 0);
        assert.deepEqual(await store.credentials.listByApp(appId), []);
        assert.deepEqual(await store.credentials.listByApp(bystander.appId), [bystander]);
      });

      void it('rejects a duplicate key id', async () => {
        const c = password(newGuid());
        await store.credentials.add(c);
        await assert.rejects(store.credentials.add({ ...c, appId: newGuid() }));
      });
    });

    void describe('signing keys', () => {
      void it('inserts and lists, every field round-tripping', async () => {
        const key = signingKeyFixture({ state: 'retired', activatedAt: T0 + 1, retiredAt: T0 + 2, publishUntil: T0 + 3 });
        await store.signingKeys.insert(key);
        const listed = await store.signingKeys.list();
        assert.deepEqual(
          listed.find((k) => k.kid === key.kid),
          key,
        );
        for (let i = 1; i < listed.length; i++) assert.ok(listed[i - 1]!.createdAt <= listed[i]!.createdAt);
        await assert.rejects(store.signingKeys.insert(key));
      });

      void it('transition is compare-and-set on the state', async () => {
        const key = signingKeyFixture();
        await store.signingKeys.insert(key);
        assert.equal(await store.signingKeys.transition(key.kid, 'next', { state: 'current', activatedAt: T0 + 10 }), true);
        // The same transition again: the key is no longer `next`.
        assert.equal(await store.signingKeys.transition(key.kid, 'next', { state: 'current', activatedAt: T0 + 99 }), false);
        let got = (await store.signingKeys.list()).find((k) => k.kid === key.kid);
        assert.equal(got?.state, 'current');
        assert.equal(got?.activatedAt, T0 + 10);

        // Changing only timestamps, state kept.
        assert.equal(await store.signingKeys.transition(key.kid, 'current', { publishUntil: T0 + 50 }), true);
        assert.equal(await store.signingKeys.transition(key.kid, 'current', { state: 'retired', retiredAt: T0 + 20 }), true);
        got = (await store.signingKeys.list()).find((k) => k.kid === key.kid);
        assert.deepEqual(got, { ...key, state: 'retired', activatedAt: T0 + 10, retiredAt: T0 + 20, publishUntil: T0 + 50 });

        // No changes: reports whether the precondition holds, writes nothing.
        assert.equal(await store.signingKeys.transition(key.kid, 'retired', {}), true);
        assert.equal(await store.signingKeys.transition(key.kid, 'current', {}), false);
        assert.equal(await store.signingKeys.transition(`missing-${uid()}`, 'next', { state: 'current' }), false);
      });

      void it('of concurrent transitions from the same state exactly one wins', async () => {
        const key = signingKeyFixture();
        await store.signingKeys.insert(key);
        const results = await withReplicas((stores) =>
          Promise.all(
            Array.from({ length: 16 }, (_, i) => stores[i % stores.length]!.signingKeys.transition(key.kid, 'next', { state: 'current', activatedAt: T0 + i })),
          ),
        );
        assert.equal(results.filter(Boolean).length, 1);
        const winner = results.indexOf(true);
        assert.equal((await store.signingKeys.list()).find((k) => k.kid === key.kid)?.activatedAt, T0 + winner);
      });

      void it('purge removes revoked keys and retired keys past publishUntil, before the cut-off', async () => {
        const base = T0 + 1_000_000;
        const revokedOld = signingKeyFixture({ state: 'revoked', revokedAt: base - 1 });
        const revokedNew = signingKeyFixture({ state: 'revoked', revokedAt: base + 1 });
        const retiredOld = signingKeyFixture({ state: 'retired', retiredAt: base - 100, publishUntil: base - 1 });
        const retiredAtCutoff = signingKeyFixture({ state: 'retired', retiredAt: base - 100, publishUntil: base });
        const retiredNew = signingKeyFixture({ state: 'retired', retiredAt: base - 100, publishUntil: base + 1 });
        const current = signingKeyFixture({ state: 'current', activatedAt: 0, publishUntil: 0, revokedAt: 0 });
        const next = signingKeyFixture({ state: 'next' });
        const all = [revokedOld, revokedNew, retiredOld, retiredAtCutoff, retiredNew, current, next];
        for (const k of all) await store.signingKeys.insert(k);

        // Other tests' keys are in the table too: work out what must go from what is there.
        const beforePurge = await store.signingKeys.list();
        const doomed = beforePurge.filter(
          (k) =>
            (k.state === 'revoked' && k.revokedAt !== null && k.revokedAt < base) ||
            (k.state === 'retired' && k.publishUntil !== null && k.publishUntil < base),
        );
        assert.ok(doomed.some((k) => k.kid === revokedOld.kid) && doomed.some((k) => k.kid === retiredOld.kid));
        assert.equal(await store.signingKeys.purge(base), doomed.length);

        const remaining = new Set((await store.signingKeys.list()).map((k) => k.kid));
        assert.deepEqual(
          all.filter((k) => remaining.has(k.kid)).map((k) => k.kid),
          [revokedNew, retiredAtCutoff, retiredNew, current, next].map((k) => k.kid),
        );
        assert.equal(remaining.size, beforePurge.length - doomed.length);
      });
    });

    void describe('replay', () => {
      // Far-future expiries, so the purge test (which uses tiny timestamps) never removes these.
      const FAR = 8_000_000_000_000;

      void it('remember is true the first time and false after', async () => {
        const key = `jti-${uid()}`;
        assert.equal(await store.replay.remember(key, FAR), true);
        assert.equal(await store.replay.remember(key, FAR), false);
        assert.equal(await store.replay.remember(key, FAR + 1), false);
        assert.equal(await store.replay.remember(`${key}-other`, FAR), true);
      });

      void it('of concurrent remembers of one key exactly one is true', async () => {
        for (let round = 0; round < 3; round++) {
          const key = `race-${uid()}`;
          const results = await withReplicas((stores) =>
            Promise.all(Array.from({ length: 24 }, (_, i) => stores[i % stores.length]!.replay.remember(key, FAR))),
          );
          assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
        }
      });

      void it('invariant: a jti is accepted once in total: concurrent remembers of many keys, several times each, across replicas (group commit)', async () => {
        // Calls of one event-loop turn share one insert on each replica (replay-store.ts): a key named twice in a
        // batch, a key another replica's batch holds, and a key recorded earlier must each still win exactly once.
        const tag = uid();
        const earlier = `${tag}-earlier`;
        assert.equal(await store.replay.remember(earlier, FAR), true);
        const keys = [earlier, ...Array.from({ length: 150 }, (_, i) => `${tag}-${i}`)];
        const results = await withReplicas((stores) =>
          Promise.all(
            keys.flatMap((key, k) =>
              Array.from({ length: 4 }, async (_, i) => ({ key, first: await stores[(k + i) % stores.length]!.replay.remember(key, FAR) })),
            ),
          ),
        );
        for (const key of keys) {
          const wins = results.filter((r) => r.key === key && r.first).length;
          assert.equal(wins, key === earlier ? 0 : 1, key);
        }
      });

      void it('purgeExpired forgets entries that expired before now, and only those', async () => {
        const tag = uid();
        assert.equal(await store.replay.remember(`${tag}-1`, 1000), true);
        assert.equal(await store.replay.remember(`${tag}-2`, 2000), true);
        assert.equal(await store.replay.remember(`${tag}-3`, 3000), true);
        // Nothing else in the table expires this early.
        assert.equal(await store.replay.purgeExpired(2000), 1);
        assert.equal(await store.replay.remember(`${tag}-1`, FAR), true, 'purged entry can be remembered again');
        assert.equal(await store.replay.remember(`${tag}-2`, FAR), false, 'expiring exactly now is kept');
        assert.equal(await store.replay.purgeExpired(3001), 2);
        assert.equal(await store.replay.remember(`${tag}-3`, FAR), true);
        assert.equal(await store.replay.purgeExpired(3001), 0);
      });
    });

    void describe('locks', () => {
      void it('exclusive: one holder at a time on every replica; a waiter gets the lock once it is released; names are independent', async () => {
        await withReplicas(async (stores) => {
          const name = `lock-${uid()}`;
          let release!: () => void;
          const held = new Promise<void>((resolve) => (release = resolve));
          let entered!: () => void;
          const inside = new Promise<void>((resolve) => (entered = resolve));
          const first = stores[0]!.locks.exclusive(name, async () => {
            entered();
            await held;
            return 'first';
          });
          await inside;
          let waiter: Promise<unknown>;
          try {
            for (const replica of stores) {
              assert.deepEqual(await replica.locks.exclusive(name, () => Promise.resolve('second')), { acquired: false });
              assert.deepEqual(await replica.locks.exclusive(`${name}-other`, () => Promise.resolve('other')), { acquired: true, value: 'other' });
            }
            assert.deepEqual(
              await stores.at(-1)!.locks.exclusive(name, () => Promise.resolve('late'), { waitMs: 120 }),
              { acquired: false },
              'waited, still held',
            );
            waiter = stores.at(-1)!.locks.exclusive(name, () => Promise.resolve('waiter'), { waitMs: 10_000 });
          } finally {
            // Also when an assertion failed: closing the store would otherwise wait for the holder.
            release();
          }
          assert.deepEqual(await first, { acquired: true, value: 'first' });
          assert.deepEqual(await waiter, { acquired: true, value: 'waiter' });
          // Released after a failure too.
          await assert.rejects(
            stores[0]!.locks.exclusive(name, () => Promise.reject(new Error('boom'))),
            /boom/,
          );
          for (const replica of stores) assert.deepEqual(await replica.locks.exclusive(name, () => Promise.resolve(1)), { acquired: true, value: 1 });
        });
      });
    });

    // The token endpoint's throttle and the enrolment rate limit count the same way, in tables of their own.
    for (const counters of ['authFailures', 'enrolmentFailures'] as const) {
      void describe(counters, () => {
        const FAR = 8_000_000_000_000;

        void it('increment counts per key and window, starting at one', async () => {
          const key = `client:${uid()}`;
          assert.equal(await store[counters].increment(key, 60_000, FAR), 1);
          assert.equal(await store[counters].increment(key, 60_000, FAR), 2);
          assert.equal(await store[counters].increment(key, 120_000, FAR), 1, 'another window counts afresh');
          assert.equal(await store[counters].increment(`${key}-other`, 60_000, FAR), 1, 'another key counts afresh');
          assert.equal(await store[counters].increment(key, 60_000, FAR), 3);
        });

        void it('count reads the failures of a window without adding one, 0 for none', async () => {
          const key = `host:${uid()}`;
          assert.equal(await store[counters].count(key, 60_000), 0);
          await store[counters].increment(key, 60_000, FAR);
          await store[counters].increment(key, 60_000, FAR);
          assert.equal(await store[counters].count(key, 60_000), 2);
          assert.equal(await store[counters].count(key, 60_000), 2, 'reading does not count');
          assert.equal(await store[counters].count(key, 0), 0, 'another window');
        });

        void it('of concurrent increments of one key each sees a distinct count, on every replica', async () => {
          const key = `source:${uid()}`;
          const counts = await withReplicas((stores) =>
            Promise.all(Array.from({ length: 40 }, (_, i) => stores[i % stores.length]![counters].increment(key, 0, FAR))),
          );
          assert.deepEqual(
            [...counts].sort((a, b) => a - b),
            Array.from({ length: 40 }, (_, i) => i + 1),
          );
        });

        void it('purgeExpired forgets windows that expired before now, and only those', async () => {
          const tag = uid();
          await store[counters].increment(`${tag}-1`, 0, 1000);
          await store[counters].increment(`${tag}-2`, 0, 2000);
          await store[counters].increment(`${tag}-2`, 0, 2000);
          // Nothing else in the table expires this early.
          assert.equal(await store[counters].purgeExpired(2000), 1);
          assert.equal(await store[counters].increment(`${tag}-1`, 0, FAR), 1, 'a purged window counts afresh');
          assert.equal(await store[counters].increment(`${tag}-2`, 0, 2000), 3, 'expiring exactly now is kept');
          assert.equal(await store[counters].purgeExpired(2001), 1);
          assert.equal(await store[counters].purgeExpired(2001), 0);
        });
      });
    }

    void it('the token endpoint throttle and the enrolment rate limit count apart', async () => {
      const key = `source:${uid()}`;
      // Nothing else in either table expires this early.
      const EXPIRES = 4000;
      assert.equal(await store.authFailures.increment(key, 0, EXPIRES), 1);
      assert.equal(await store.authFailures.increment(key, 0, EXPIRES), 2);
      assert.equal(await store.enrolmentFailures.count(key, 0), 0);
      assert.equal(await store.enrolmentFailures.increment(key, 0, EXPIRES), 1);
      assert.equal(await store.authFailures.count(key, 0), 2);
      assert.equal(await store.enrolmentFailures.purgeExpired(EXPIRES + 1), 1);
      assert.equal(await store.authFailures.count(key, 0), 2, 'purging one leaves the other');
    });

    void describe('audit', () => {
      void it('appends many at once and lists newest first, every field round-tripping', async () => {
        const action = `test.${uid()}.order`;
        const events = [
          auditFixture(action, { at: T0 + 1, detail: { n: 1, nested: { ok: true } }, tenantId: newGuid() }),
          auditFixture(action, { at: T0 + 2, outcome: 'failure', actor: newGuid(), target: '/subscriptions/x' }),
          auditFixture(action, { at: T0 + 3 }),
        ];
        await store.audit.append(events);
        const later = auditFixture(action, { at: T0 + 3 });
        await store.audit.append([later]);
        assert.deepEqual(await store.audit.list({ action }), [later, events[2]!, events[1]!, events[0]!]);
        // Unfiltered: the newest event in the whole table is the one just written.
        assert.deepEqual((await store.audit.list({ limit: 1 }))[0], later);
      });

      void it('filters by tenant before the limit, keeping installation-wide events', async () => {
        const action = `test.${uid()}.tenant`;
        const mine = newGuid();
        const theirs = newGuid();
        const own = auditFixture(action, { at: T0 + 1, tenantId: mine });
        const global = auditFixture(action, { at: T0 + 2, tenantId: null });
        const others = Array.from({ length: 5 }, (_, i) => auditFixture(action, { at: T0 + 10 + i, tenantId: theirs }));
        await store.audit.append([own, global, ...others]);
        // The other tenant's newer events must not push this tenant's out of a small page.
        assert.deepEqual(
          (await store.audit.list({ action, tenantId: mine.toUpperCase(), limit: 2 })).map((e) => e.id),
          [global.id, own.id],
        );
      });

      void it('orders by insertion, not by timestamp', async () => {
        const action = `test.${uid()}.seq`;
        const first = auditFixture(action, { at: T0 + 100 });
        const second = auditFixture(action, { at: T0 + 50 });
        await store.audit.append([first]);
        await store.audit.append([second]);
        assert.deepEqual(
          (await store.audit.list({ action })).map((e) => e.id),
          [second.id, first.id],
        );
      });

      void it('filters by since and action, and limits', async () => {
        const action = `test.${uid()}.filter`;
        const otherAction = `${action}.other`;
        const base = T0 + 10_000_000;
        const events = Array.from({ length: 6 }, (_, i) => auditFixture(i % 2 === 0 ? action : otherAction, { at: base + i }));
        await store.audit.append(events);
        const ids = (es: AuditEvent[]): string[] => es.map((e) => e.id);

        assert.deepEqual(ids(await store.audit.list({ action })), ids([events[4]!, events[2]!, events[0]!]));
        assert.deepEqual(ids(await store.audit.list({ action, since: base + 2 })), ids([events[4]!, events[2]!]));
        assert.deepEqual(ids(await store.audit.list({ action, limit: 1 })), ids([events[4]!]));
        assert.deepEqual(await store.audit.list({ action, limit: 0 }), []);
        assert.deepEqual(await store.audit.list({ action: `${action}.none` }), []);
        const since = await store.audit.list({ since: base + 3, limit: 1000 });
        assert.ok(since.every((e) => e.at >= base + 3));
        for (const e of [events[3]!, events[4]!, events[5]!]) assert.ok(since.some((s) => s.id === e.id));
      });

      void it('append of nothing is a no-op; a batch is all-or-nothing', async () => {
        await store.audit.append([]);
        const action = `test.${uid()}.atomic`;
        const dup = auditFixture(action);
        await store.audit.append([dup]);
        await assert.rejects(store.audit.append([auditFixture(action), auditFixture(action), dup]));
        assert.deepEqual(
          (await store.audit.list({ action })).map((e) => e.id),
          [dup.id],
        );
      });

      void it('appends a large batch in order', async () => {
        const action = `test.${uid()}.large`;
        const events = Array.from({ length: 2500 }, (_, i) => auditFixture(action, { at: T0 + i, detail: { i } }));
        await store.audit.append(events);
        const listed = await store.audit.list({ action, limit: 5000 });
        assert.equal(listed.length, events.length);
        assert.deepEqual(
          listed.map((e) => e.id),
          events.map((e) => e.id).reverse(),
        );
      });
    });

    void describe('audit: idempotent appends and involving filters', () => {
      void it('appendIgnoringDuplicates stores each id once and counts what was new', async () => {
        const action = `test.${uid()}.idem`;
        const batch = Array.from({ length: 3 }, (_, i) => auditFixture(action, { at: T0 + i, detail: { i } }));
        assert.equal(await store.audit.appendIgnoringDuplicates(batch), 3);
        assert.equal(await store.audit.appendIgnoringDuplicates(batch), 0);
        const extra = auditFixture(action, { at: T0 + 9 });
        assert.equal(await store.audit.appendIgnoringDuplicates([batch[0]!, extra]), 1);
        assert.equal(await store.audit.appendIgnoringDuplicates([]), 0);
        const listed = await store.audit.list({ action, limit: 100 });
        assert.deepEqual(
          listed.map((e) => e.id),
          [extra.id, batch[2]!.id, batch[1]!.id, batch[0]!.id],
        );
        // The first copy wins: a retried record with other content does not overwrite it.
        assert.equal(await store.audit.appendIgnoringDuplicates([{ ...batch[1]!, detail: { changed: true } }]), 0);
        assert.deepEqual((await store.audit.list({ action, limit: 100 })).find((e) => e.id === batch[1]!.id)?.detail, { i: 1 });
      });

      void it('appendIgnoringDuplicates of a large batch with repeats, and concurrently on every replica', async () => {
        const action = `test.${uid()}.idem-large`;
        const batch = Array.from({ length: 2200 }, (_, i) => auditFixture(action, { at: T0 + i }));
        await store.audit.append(batch.slice(0, 100));
        assert.equal(await store.audit.appendIgnoringDuplicates(batch), 2100);
        const again = Array.from({ length: 20 }, (_, i) => auditFixture(action, { at: T0 + 5000 + i }));
        await withReplicas(async (stores) => {
          const counts = await Promise.all(stores.flatMap((s) => [s.audit.appendIgnoringDuplicates(again), s.audit.appendIgnoringDuplicates(again)]));
          assert.equal(
            counts.reduce((a, b) => a + b, 0),
            20,
          );
        });
        assert.equal((await store.audit.list({ action, limit: 5000 })).length, 2220);
      });

      void it('involving matches actor or target case-insensitively, every entry must match', async () => {
        const action = `test.${uid()}.involving`;
        const identity = newGuid();
        const host = `/subscriptions/${newGuid()}/resourceGroups/Rg/providers/Microsoft.HybridCompute/machines/Box`;
        const asActor = auditFixture(action, { at: T0 + 1, actor: identity, target: host });
        const asTarget = auditFixture(action, { at: T0 + 2, actor: 'system', target: identity });
        const hostOnly = auditFixture(action, { at: T0 + 3, actor: host.toLowerCase(), target: 'x' });
        const neither = auditFixture(action, { at: T0 + 4 });
        await store.audit.append([asActor, asTarget, hostOnly, neither]);
        const ids = (es: AuditEvent[]) => es.map((e) => e.id);
        assert.deepEqual(ids(await store.audit.list({ action, involving: [[identity.toUpperCase()]] })), [asTarget.id, asActor.id]);
        assert.deepEqual(ids(await store.audit.list({ action, involving: [[host.toUpperCase()]] })), [hostOnly.id, asActor.id]);
        assert.deepEqual(ids(await store.audit.list({ action, involving: [[identity], [host]] })), [asActor.id]);
        assert.deepEqual(ids(await store.audit.list({ action, involving: [['nobody', identity]] })), [asTarget.id, asActor.id]);
        assert.deepEqual(await store.audit.list({ action, involving: [[]] }), []);
        assert.equal((await store.audit.list({ action, involving: [] })).length, 4);
      });
    });

    void describe('join tokens', () => {
      function joinToken(overrides: Partial<JoinToken> = {}): JoinToken {
        return {
          id: `jt_${uid()}`,
          secretHash: randomBytes(32).toString('base64url'),
          tenantId: newGuid(),
          hostResourceId: `/subscriptions/${newGuid()}/resourceGroups/Hosts/providers/Microsoft.HybridCompute/machines/Box-${uid()}`,
          createdBy: newGuid(),
          createdAt: T0,
          expiresAt: T0 + 600_000,
          usedAt: null,
          ...overrides,
        };
      }

      void it('creates and gets, every field round-tripping; rejects a duplicate id', async () => {
        const token = joinToken();
        await store.joinTokens.create(token);
        assert.deepEqual(await store.joinTokens.get(token.id), token);
        assert.equal(await store.joinTokens.get(`missing-${uid()}`), undefined);
        await assert.rejects(store.joinTokens.create(token));
      });

      void it('consume is single use and refuses an expired token', async () => {
        const token = joinToken();
        await store.joinTokens.create(token);
        assert.equal(await store.joinTokens.consume(token.id, T0 + 10), true);
        assert.equal(await store.joinTokens.consume(token.id, T0 + 20), false);
        assert.equal((await store.joinTokens.get(token.id))?.usedAt, T0 + 10);
        const expired = joinToken();
        await store.joinTokens.create(expired);
        assert.equal(await store.joinTokens.consume(expired.id, expired.expiresAt), false);
        assert.equal((await store.joinTokens.get(expired.id))?.usedAt, null);
        assert.equal(await store.joinTokens.consume(`missing-${uid()}`, T0), false);
      });

      void it('of concurrent consumes (on every replica) exactly one wins', async () => {
        const token = joinToken();
        await store.joinTokens.create(token);
        await withReplicas(async (stores) => {
          const results = await Promise.all(Array.from({ length: 10 }, (_, i) => stores[i % stores.length]!.joinTokens.consume(token.id, T0 + i + 1)));
          assert.equal(results.filter(Boolean).length, 1);
        });
      });

      void it('purgeExpired deletes tokens that expired before the cut-off, used or not', async () => {
        const base = T0 - 10_000_000_000 - Math.floor(Math.random() * 1_000_000);
        const old = joinToken({ expiresAt: base });
        const oldUsed = joinToken({ expiresAt: base + 1, usedAt: base - 5 });
        const live = joinToken({ expiresAt: base + 100 });
        for (const t of [old, oldUsed, live]) await store.joinTokens.create(t);
        assert.ok((await store.joinTokens.purgeExpired(base + 2)) >= 2);
        assert.equal(await store.joinTokens.get(old.id), undefined);
        assert.equal(await store.joinTokens.get(oldUsed.id), undefined);
        assert.deepEqual(await store.joinTokens.get(live.id), live);
      });
    });

    void describe('host credentials', () => {
      function hostCredential(hostResourceId: string, overrides: Partial<HostCredential> = {}): HostCredential {
        const keyId = `Kid_${uid()}`;
        return {
          keyId,
          hostResourceId,
          publicJwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'BB', kid: keyId },
          createdAt: T0,
          expiresAt: T0 + 1000,
          revokedAt: null,
          ...overrides,
        };
      }

      void it('adds, gets, and lists by host case-insensitively', async () => {
        const host = formatArmResourceId({ subscriptionId: newGuid(), resourceGroup: 'Hosts', type: 'Microsoft.HybridCompute/machines', name: 'Box-1' });
        const a = hostCredential(host, { createdAt: T0 + 1 });
        const b = hostCredential(host, { createdAt: T0 + 2, revokedAt: T0 + 3 });
        await store.hostCredentials.add(b);
        await store.hostCredentials.add(a);
        await store.hostCredentials.add(hostCredential(`${host}-2`));
        assert.deepEqual(await store.hostCredentials.get(a.keyId), a);
        assert.equal(await store.hostCredentials.get(`missing-${uid()}`), undefined);
        assert.deepEqual(await store.hostCredentials.listByHost(host), [a, b]);
        assert.deepEqual(await store.hostCredentials.listByHost(shout(host)), [a, b]);
        assert.deepEqual(await store.hostCredentials.listByHost(`${host}-3`), []);
        await assert.rejects(store.hostCredentials.add(a));
      });

      void it('revoke records the first revocation only', async () => {
        const c = hostCredential(`/subscriptions/${newGuid()}/resourceGroups/h/providers/Microsoft.HybridCompute/machines/m`);
        await store.hostCredentials.add(c);
        assert.equal(await store.hostCredentials.revoke(c.keyId, T0 + 500), true);
        assert.equal(await store.hostCredentials.revoke(c.keyId, T0 + 900), false);
        assert.equal((await store.hostCredentials.get(c.keyId))?.revokedAt, T0 + 500);
        assert.equal(await store.hostCredentials.revoke(`missing-${uid()}`, T0), false);
      });

      void it('revokeByHost revokes every unrevoked credential of one host, case-insensitively, keeping earlier revocations', async () => {
        const host = formatArmResourceId({ subscriptionId: newGuid(), resourceGroup: 'Hosts', type: 'Microsoft.HybridCompute/machines', name: `Box-${uid()}` });
        const a = hostCredential(host);
        const b = hostCredential(host, { revokedAt: T0 + 1 });
        const other = hostCredential(`${host}-other`);
        for (const c of [a, b, other]) await store.hostCredentials.add(c);
        assert.equal(await store.hostCredentials.revokeByHost(shout(host), T0 + 50), 1);
        assert.equal((await store.hostCredentials.get(a.keyId))?.revokedAt, T0 + 50);
        assert.equal((await store.hostCredentials.get(b.keyId))?.revokedAt, T0 + 1);
        assert.equal((await store.hostCredentials.get(other.keyId))?.revokedAt, null);
        assert.equal(await store.hostCredentials.revokeByHost(host, T0 + 60), 0);
      });
    });

    void describe('federated credentials', () => {
      const fic = (ownerId: string, name: string, over: Partial<FederatedCredential> = {}): FederatedCredential => ({
        id: newGuid(),
        ownerId,
        name,
        issuer: 'https://issuer.example/c1',
        subject: `system:serviceaccount:ns:${name}`,
        claimsMatchingExpression: null,
        audiences: ['api://AzureADTokenExchange'],
        description: null,
        createdAt: T0,
        updatedAt: T0,
        ...over,
      });

      void it('puts (created, then updated keeping id and createdAt), gets by name case-insensitively and by id, lists by owner and by exact issuer', async () => {
        const owner = newGuid();
        const first = fic(owner, 'Cluster-One');
        assert.equal(await store.federatedCredentials.put(first), 'created');
        assert.equal(await store.federatedCredentials.put({ ...first, id: newGuid(), subject: 'changed', createdAt: T0 + 5, updatedAt: T0 + 10 }), 'updated');
        const got = await store.federatedCredentials.get(owner.toUpperCase(), 'cluster-one');
        assert.deepEqual(got, { ...first, subject: 'changed', updatedAt: T0 + 10 });
        assert.deepEqual(await store.federatedCredentials.getById(owner, first.id), got);
        const flexible = fic(owner, 'flex', {
          issuer: 'https://issuer.example/c1/',
          subject: null,
          claimsMatchingExpression: { value: "claims['sub'] matches 'x*'", languageVersion: 1 },
          description: 'd',
        });
        await store.federatedCredentials.put(flexible);
        await store.federatedCredentials.put(fic(newGuid(), 'other-owner'));
        assert.deepEqual(
          (await store.federatedCredentials.list(owner)).map((c) => c.name),
          ['Cluster-One', 'flex'],
        );
        assert.deepEqual(await store.federatedCredentials.listByIssuer(owner, 'https://issuer.example/c1/'), [flexible]);
        assert.deepEqual(await store.federatedCredentials.listByIssuer(owner, 'https://ISSUER.example/c1/'), [], 'issuers compare exactly');
      });

      void it(`of ${String(MAX_FEDERATED_CREDENTIALS + 5)} concurrent creates for one owner (on every replica) exactly ${String(MAX_FEDERATED_CREDENTIALS)} succeed`, async () => {
        // putFederatedCredential checks the per-owner limit and then inserts, in one transaction; lockOwner makes
        // that check-then-insert exclusive per owner (a READ COMMITTED transaction alone lets all of them see 0).
        const owner = { objectId: newGuid() } as ServicePrincipal;
        const clock = { now: () => T0 };
        const fields = (i: number) => ({
          issuer: 'https://issuer.example/race',
          subject: `system:serviceaccount:ns:sa-${String(i)}`,
          claimsMatchingExpression: null,
          audiences: ['api://AzureADTokenExchange'],
          description: null,
        });
        await withReplicas(async (stores) => {
          const results = await Promise.allSettled(
            Array.from({ length: MAX_FEDERATED_CREDENTIALS + 5 }, (_, i) =>
              putFederatedCredential(stores[i % stores.length]!, { owner, name: `race-${String(i)}`, fields: fields(i), family: 'arm', clock }),
            ),
          );
          const failures = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
          assert.equal(results.length - failures.length, MAX_FEDERATED_CREDENTIALS);
          for (const f of failures) assert.match(f, /limit of 20 federated identity credentials/);
        });
        assert.equal((await store.federatedCredentials.list(owner.objectId)).length, MAX_FEDERATED_CREDENTIALS);
      });

      void it('deletes one by name and all of an owner', async () => {
        const owner = newGuid();
        for (const name of ['a-1', 'b-2', 'c-3']) await store.federatedCredentials.put(fic(owner, name));
        assert.equal(await store.federatedCredentials.delete(owner, 'A-1'), true);
        assert.equal(await store.federatedCredentials.delete(owner, 'a-1'), false);
        assert.equal(await store.federatedCredentials.deleteByOwner(owner), 2);
        assert.deepEqual(await store.federatedCredentials.list(owner), []);
      });

      void it('issuer settings: put (created, updated keeping createdAt), get exactly, list, delete', async () => {
        const issuer = `https://issuer-${uid()}.example/x`;
        const setting: FederationIssuer = {
          issuer,
          jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'k' }] },
          jwksUri: null,
          ca: null,
          algorithms: ['RS256'],
          createdAt: T0,
          updatedAt: T0,
        };
        assert.equal(await store.federationIssuers.put(setting), 'created');
        const changed = { ...setting, jwks: null, jwksUri: `${issuer}/keys`, ca: 'PEM', algorithms: ['RS256', 'ES256'], createdAt: T0 + 1, updatedAt: T0 + 2 };
        assert.equal(await store.federationIssuers.put(changed), 'updated');
        assert.deepEqual(await store.federationIssuers.get(issuer), { ...changed, createdAt: T0 });
        assert.equal(await store.federationIssuers.get(issuer.toUpperCase()), undefined);
        assert.ok((await store.federationIssuers.list()).some((i) => i.issuer === issuer));
        assert.equal(await store.federationIssuers.delete(issuer), true);
        assert.equal(await store.federationIssuers.delete(issuer), false);
      });

      void it('upstream links (outbound): put (created, updated keeping createdAt), get by any-case owner, getMany, delete', async () => {
        const owner = newGuid();
        const link: FederationLink = {
          ownerId: owner,
          tenantId: newGuid(),
          clientId: newGuid(),
          authorityHost: 'https://login.microsoftonline.com',
          issuer: null,
          createdAt: T0,
          updatedAt: T0,
        };
        assert.equal(await store.federationLinks.put(link), 'created');
        const changed = {
          ...link,
          clientId: newGuid(),
          authorityHost: 'https://localhost:9443',
          issuer: 'https://oidc.example/openmsi',
          createdAt: T0 + 5,
          updatedAt: T0 + 9,
        };
        assert.equal(await store.federationLinks.put(changed), 'updated');
        assert.deepEqual(await store.federationLinks.get(owner.toUpperCase()), { ...changed, ownerId: owner.toLowerCase(), createdAt: T0 });
        const other = newGuid();
        await store.federationLinks.put({ ...link, ownerId: other });
        const many = await store.federationLinks.getMany([owner.toUpperCase(), other, newGuid()]);
        assert.deepEqual(many.map((l) => l.ownerId).sort(), [owner.toLowerCase(), other.toLowerCase()].sort());
        assert.deepEqual(await store.federationLinks.getMany([]), []);
        assert.equal(await store.federationLinks.delete(owner), true);
        assert.equal(await store.federationLinks.delete(owner), false);
        assert.equal(await store.federationLinks.get(owner), undefined);
      });
    });

    void describe('users', () => {
      const userFixture = (tenantId: string, overrides: Partial<User> = {}): User => ({
        objectId: newGuid(),
        tenantId,
        userPrincipalName: `Ada.${uid()}@Contoso.Example`,
        displayName: 'Ada Lovelace',
        mail: null,
        accountEnabled: true,
        passwordHash: `scrypt$${uid()}`,
        forceChangePasswordNextSignIn: false,
        passwordChangedAt: T0,
        createdAt: T0,
        ...overrides,
      });

      void it('creates, gets by object id and by UPN case-insensitively, lists by tenant in creation order', async () => {
        const { tenant } = await seedSubscription();
        const a = userFixture(tenant.id, { createdAt: T0 + 1, mail: 'ada@contoso.example' });
        const b = userFixture(tenant.id, { createdAt: T0 + 2, forceChangePasswordNextSignIn: true, accountEnabled: false });
        await store.users.create(b);
        await store.users.create(a);
        const { tenant: elsewhere } = await seedSubscription();
        await store.users.create(userFixture(elsewhere.id));
        assert.deepEqual(await store.users.getByObjectId(a.objectId.toUpperCase()), a);
        assert.deepEqual(await store.users.getByUserPrincipalName(a.userPrincipalName.toUpperCase()), a);
        assert.deepEqual(await store.users.getByUserPrincipalName(b.userPrincipalName.toLowerCase()), b);
        assert.equal(await store.users.getByUserPrincipalName(`x${a.userPrincipalName}`), undefined);
        assert.equal(await store.users.getByObjectId(newGuid()), undefined);
        assert.deepEqual(await store.users.list(tenant.id.toUpperCase()), [a, b]);
      });

      void it('refuses a UPN taken in any casing', async () => {
        const { tenant } = await seedSubscription();
        const a = userFixture(tenant.id);
        await store.users.create(a);
        await assert.rejects(store.users.create(userFixture(tenant.id, { userPrincipalName: a.userPrincipalName.toUpperCase() })));
      });

      void it('updates only what it is given; undefined for an unknown user', async () => {
        const { tenant } = await seedSubscription();
        const a = userFixture(tenant.id, { mail: 'a@contoso.example' });
        await store.users.create(a);
        const changed = await store.users.update(a.objectId.toUpperCase(), { displayName: 'Ada K.', passwordHash: 'scrypt$new', passwordChangedAt: T0 + 5 });
        assert.deepEqual(changed, { ...a, displayName: 'Ada K.', passwordHash: 'scrypt$new', passwordChangedAt: T0 + 5 });
        assert.deepEqual(await store.users.update(a.objectId, { mail: null, forceChangePasswordNextSignIn: true }), {
          ...a,
          displayName: 'Ada K.',
          passwordHash: 'scrypt$new',
          passwordChangedAt: T0 + 5,
          mail: null,
          forceChangePasswordNextSignIn: true,
        });
        assert.equal(await store.users.update(newGuid(), { displayName: 'x' }), undefined);
      });

      void it('deleting or disabling publishes the object id on the principal channel; other changes do not', async () => {
        const heard: string[] = [];
        const unsubscribe = store.notifications.subscribe(PRINCIPAL_CHANNEL, (payload) => heard.push(payload));
        await store.notifications.ready();
        try {
          const { tenant } = await seedSubscription();
          const a = userFixture(tenant.id);
          const b = userFixture(tenant.id);
          await store.users.create(a);
          await store.users.create(b);
          await store.users.update(a.objectId, { displayName: 'renamed' });
          await store.users.update(a.objectId, { accountEnabled: false });
          await store.users.update(a.objectId, { accountEnabled: false });
          assert.equal(await store.users.delete(b.objectId.toUpperCase()), true);
          assert.equal(await store.users.delete(b.objectId), false);
          assert.equal(await store.users.getByObjectId(b.objectId), undefined);
          const deadline = Date.now() + 5000;
          while (!(heard.includes(a.objectId) && heard.includes(b.objectId)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual([...new Set(heard.filter((h) => h === a.objectId || h === b.objectId))].sort(), [a.objectId, b.objectId].sort());
        } finally {
          unsubscribe();
        }
      });
    });

    void describe('refresh tokens', () => {
      const tokenFixture = (overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord => ({
        tokenHash: `h-${uid()}`,
        familyId: newGuid(),
        userId: newGuid(),
        tenantId: newGuid(),
        clientId: newGuid(),
        scope: 'https://management.core.windows.net//.default offline_access openid profile',
        issuedAt: T0,
        expiresAt: T0 + 1000,
        usedAt: null,
        revokedAt: null,
        ...overrides,
      });

      void it('stores and gets by hash; markUsed wins once, then never (a replay), nor on a revoked token', async () => {
        const t = tokenFixture();
        await store.refreshTokens.create(t);
        assert.deepEqual(await store.refreshTokens.get(t.tokenHash), t);
        assert.equal(await store.refreshTokens.get(`${t.tokenHash}x`), undefined);
        assert.equal(await store.refreshTokens.markUsed(t.tokenHash, T0 + 1), true);
        assert.equal(await store.refreshTokens.markUsed(t.tokenHash, T0 + 2), false);
        assert.equal((await store.refreshTokens.get(t.tokenHash))?.usedAt, T0 + 1);
        const revoked = tokenFixture({ revokedAt: T0 });
        await store.refreshTokens.create(revoked);
        assert.equal(await store.refreshTokens.markUsed(revoked.tokenHash, T0 + 1), false);
        assert.equal(await store.refreshTokens.markUsed('no-such-hash', T0), false);
      });

      void it('concurrent exchanges of one token: exactly one wins, on every replica', async () => {
        await withReplicas(async (stores) => {
          const t = tokenFixture();
          await store.refreshTokens.create(t);
          const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => stores[i % stores.length]!.refreshTokens.markUsed(t.tokenHash, T0 + i)));
          assert.equal(wins.filter(Boolean).length, 1);
        });
      });

      void it('revokes a family and a user, leaving the others; purges the expired', async () => {
        const family = newGuid();
        const user = newGuid();
        const a = tokenFixture({ familyId: family, userId: user });
        const b = tokenFixture({ familyId: family, userId: user, usedAt: T0 });
        const c = tokenFixture({ userId: user });
        const d = tokenFixture();
        for (const t of [a, b, c, d]) await store.refreshTokens.create(t);
        assert.equal(await store.refreshTokens.revokeFamily(family, T0 + 3), 2);
        assert.equal(await store.refreshTokens.revokeFamily(family, T0 + 4), 0);
        assert.equal((await store.refreshTokens.get(a.tokenHash))?.revokedAt, T0 + 3);
        assert.equal((await store.refreshTokens.get(c.tokenHash))?.revokedAt, null);
        assert.equal(await store.refreshTokens.revokeUser(user.toUpperCase(), T0 + 5), 1);
        assert.equal((await store.refreshTokens.get(c.tokenHash))?.revokedAt, T0 + 5);
        assert.equal((await store.refreshTokens.get(d.tokenHash))?.revokedAt, null);
        const old = tokenFixture({ expiresAt: 5 });
        await store.refreshTokens.create(old);
        assert.ok((await store.refreshTokens.purgeExpired(6)) >= 1);
        assert.equal(await store.refreshTokens.get(old.tokenHash), undefined);
        assert.ok(await store.refreshTokens.get(d.tokenHash));
      });
    });

    void describe('transactions', () => {
      void it('commits everything written in the callback and returns its value', async () => {
        const tenant = tenantFixture();
        const subscription = subscriptionFixture(tenant.id);
        const action = `test.${uid()}.tx`;
        const result = await store.transaction(async (tx) => {
          await tx.tenants.create(tenant);
          await tx.subscriptions.create(subscription);
          await tx.audit.append([auditFixture(action)]);
          // Reads inside see the transaction's own writes.
          assert.deepEqual(await tx.subscriptions.get(subscription.id), subscription);
          return 42;
        });
        assert.equal(result, 42);
        assert.deepEqual(await store.tenants.get(tenant.id), tenant);
        assert.deepEqual(await store.subscriptions.get(subscription.id), subscription);
        assert.equal((await store.audit.list({ action })).length, 1);
      });

      void it('rolls back everything when the callback throws, rethrowing its error', async () => {
        const tenant = tenantFixture();
        const subscription = subscriptionFixture(tenant.id);
        const key = signingKeyFixture();
        const action = `test.${uid()}.rollback`;
        const replayKey = `tx-${uid()}`;
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.tenants.create(tenant);
            await tx.subscriptions.create(subscription);
            await tx.signingKeys.insert(key);
            await tx.audit.append([auditFixture(action)]);
            assert.equal(await tx.replay.remember(replayKey, 8_000_000_000_000), true);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.tenants.get(tenant.id), undefined);
        assert.equal(await store.subscriptions.get(subscription.id), undefined);
        assert.equal(
          (await store.signingKeys.list()).find((k) => k.kid === key.kid),
          undefined,
        );
        assert.deepEqual(await store.audit.list({ action }), []);
        assert.equal(await store.replay.remember(replayKey, 8_000_000_000_000), true, 'the rolled-back entry is gone');
      });

      void it('rolls back when a statement fails inside', async () => {
        const tenant = tenantFixture();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.tenants.create(tenant);
            await tx.subscriptions.create(subscriptionFixture(newGuid())); // unknown tenant: foreign key
          }),
        );
        assert.equal(await store.tenants.get(tenant.id), undefined);
      });

      void it('rejects using the store itself (not tx) inside a transaction, instead of deadlocking', async () => {
        const tenant = tenantFixture();
        await store.transaction(async (tx) => {
          await tx.tenants.create(tenant);
          await assert.rejects(store.tenants.get(tenant.id), { name: 'StoreMisuseError' });
          await assert.rejects(
            store.transaction(() => Promise.resolve()),
            { name: 'StoreMisuseError' },
          );
        });
        assert.deepEqual(await store.tenants.get(tenant.id), tenant);
      });

      void it('runs concurrent transactions without losing any', async () => {
        const tenants = Array.from({ length: 8 }, () => tenantFixture());
        await Promise.all(
          tenants.map((t) =>
            store.transaction(async (tx) => {
              await tx.tenants.create(t);
              await tx.subscriptions.create(subscriptionFixture(t.id));
            }),
          ),
        );
        for (const t of tenants) {
          assert.deepEqual(await store.tenants.get(t.id), t);
          assert.equal((await store.subscriptions.listByTenant(t.id)).length, 1);
        }
      });
    });

    void describe('sign-in codes', () => {
      void it('authorization codes: stored by hash, markUsed wins once across concurrent redemptions, purged after expiry', async () => {
        const code = {
          codeHash: `ac-${uid()}`,
          tenantId: newGuid(),
          clientId: newGuid(),
          redirectUri: 'http://localhost:8400',
          codeChallenge: 'c'.repeat(43),
          codeChallengeMethod: 'S256' as const,
          userId: newGuid(),
          nonce: 'n',
          familyId: newGuid(),
          createdAt: T0,
          expiresAt: T0 + 1000,
          usedAt: null,
        };
        await store.authorizationCodes.create(code);
        assert.deepEqual(await store.authorizationCodes.get(code.codeHash), code);
        assert.equal(await store.authorizationCodes.get(`${code.codeHash}x`), undefined);
        const wins = await Promise.all([1, 2, 3].map((i) => store.authorizationCodes.markUsed(code.codeHash, T0 + i)));
        assert.equal(wins.filter(Boolean).length, 1);
        assert.notEqual((await store.authorizationCodes.get(code.codeHash))?.usedAt, null);
        assert.ok((await store.authorizationCodes.purgeExpired(T0 + 1001)) >= 1);
        assert.equal(await store.authorizationCodes.get(code.codeHash), undefined);
      });

      void it('device codes: by hash and user code; decided once while pending and unexpired; polls slowed to the interval; redeemed once; counted per source', async () => {
        const source = `10.9.${String(randomBytes(1)[0])}.${uid().slice(0, 6)}`;
        const record = {
          deviceCodeHash: `dc-${uid()}`,
          userCode: uid().slice(0, 9).toUpperCase(),
          tenantId: newGuid(),
          clientId: newGuid(),
          scope: 'https://management.core.windows.net//.default offline_access',
          source,
          status: 'pending' as const,
          userId: null,
          intervalSeconds: 5,
          lastPollAt: null,
          createdAt: T0,
          expiresAt: T0 + 900_000,
        };
        await store.deviceCodes.create(record);
        assert.deepEqual(await store.deviceCodes.getByDeviceCode(record.deviceCodeHash), record);
        assert.deepEqual(await store.deviceCodes.getByUserCode(record.userCode), record);
        assert.equal(await store.deviceCodes.countFromSource(source, T0), 1);
        assert.equal(await store.deviceCodes.countFromSource(source, T0 + 1), 0);
        assert.equal(await store.deviceCodes.recordPoll(record.deviceCodeHash, T0 + 1000), true);
        assert.equal(await store.deviceCodes.recordPoll(record.deviceCodeHash, T0 + 5999), false);
        assert.equal(await store.deviceCodes.recordPoll(record.deviceCodeHash, T0 + 6000), true);
        assert.equal(await store.deviceCodes.redeem(record.deviceCodeHash), false, 'a pending code is not redeemable');
        assert.equal(await store.deviceCodes.decide(record.userCode, { status: 'approved', userId: 'u1' }, T0 + 900_000), false, 'expired');
        const decisions = await Promise.all([
          store.deviceCodes.decide(record.userCode, { status: 'approved', userId: 'u1' }, T0 + 7000),
          store.deviceCodes.decide(record.userCode, { status: 'declined' }, T0 + 7000),
        ]);
        assert.equal(decisions.filter(Boolean).length, 1);
        const decided = await store.deviceCodes.getByUserCode(record.userCode);
        if (decided?.status === 'approved') {
          assert.equal(decided.userId, 'u1');
          const redeemed = await Promise.all([store.deviceCodes.redeem(record.deviceCodeHash), store.deviceCodes.redeem(record.deviceCodeHash)]);
          assert.equal(redeemed.filter(Boolean).length, 1);
          assert.equal((await store.deviceCodes.getByDeviceCode(record.deviceCodeHash))?.status, 'redeemed');
        } else assert.equal(decided?.status, 'declined');
        assert.ok((await store.deviceCodes.purgeExpired(T0 + 900_001)) >= 1);
        assert.equal(await store.deviceCodes.getByUserCode(record.userCode), undefined);
      });
    });

    void it('reports its dialect', () => {
      assert.ok(store.dialect === 'sqlite' || store.dialect === 'postgres');
    });
  });
}
