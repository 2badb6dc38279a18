/**
 * The RBAC aggregates of the store, its version counter and change notices, and the store-backed RBAC state
 * source, on both backends (and across two store instances on one PostgreSQL database).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { newGuid } from '../../../src/shared/ids.js';
import { RBAC_CHANNEL, type CustomRoleDefinition, type Store, type StoredRoleAssignment } from '../../../src/store/index.js';
import { createStoreRbacSource } from '../../../src/store/rbac-state-source.js';
import { STORE_BACKENDS, backendSuiteOptions } from '../../support/authority.js';
import { TEST_BUILT_INS, storeOpener } from './helpers.js';

const T0 = Date.UTC(2026, 0, 1);
const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';

function role(tenantId: string, overrides: Partial<CustomRoleDefinition> = {}): CustomRoleDefinition {
  return {
    id: newGuid(),
    roleName: `Role ${newGuid().slice(0, 8)}`,
    roleType: 'CustomRole',
    description: 'd',
    permissions: [{ actions: ['Microsoft.Compute/*/read'], notActions: [], dataActions: [], notDataActions: [] }],
    assignableScopes: [`/subscriptions/${newGuid()}`],
    tenantId,
    createdAt: T0,
    createdBy: 'admin',
    updatedAt: T0,
    updatedBy: 'admin',
    ...overrides,
  };
}

function assignment(tenantId: string, overrides: Partial<StoredRoleAssignment> = {}): StoredRoleAssignment {
  return {
    id: newGuid(),
    tenantId,
    scope: `/subscriptions/${newGuid()}/resourceGroups/RG`,
    roleDefinitionId: READER,
    principalId: newGuid(),
    principalType: 'ServicePrincipal',
    description: null,
    createdAt: T0,
    createdBy: 'admin',
    updatedAt: T0,
    updatedBy: 'admin',
    ...overrides,
  };
}

/** Resolves with the first payload on the channel that satisfies `match`. */
function nextNotice(store: Store, match: (payload: string) => boolean): { promise: Promise<string>; cancel(): void } {
  let cancel = (): void => {};
  const promise = new Promise<string>((resolve) => {
    const off = store.notifications.subscribe(RBAC_CHANNEL, (payload) => {
      if (!match(payload)) return;
      off();
      resolve(payload);
    });
    cancel = off;
  });
  return { promise, cancel };
}

for (const backend of STORE_BACKENDS) {
  void describe(`rbac store (${backend})`, { ...backendSuiteOptions(backend), timeout: 60_000 }, () => {
    const opener = storeOpener(backend);
    let store: Store;
    before(async () => {
      store = await opener.open();
    });
    after(async () => {
      await store.close();
    });

    void it('role definitions: create, names unique per tenant case-insensitively, update, list, count, delete', async () => {
      const tenant = newGuid();
      const a = role(tenant, { roleName: 'Vm Reader' });
      assert.equal(await store.roleDefinitions.create(a), true);
      assert.equal(await store.roleDefinitions.create(role(tenant, { roleName: 'VM READER' })), false);
      assert.equal(await store.roleDefinitions.create(role(newGuid(), { roleName: 'VM READER' })), true, 'another tenant may use the name');
      assert.deepEqual(await store.roleDefinitions.get(tenant, a.id.toUpperCase()), a);
      assert.deepEqual(await store.roleDefinitions.getByName(tenant, 'vm reader'), a);
      const b = role(tenant);
      assert.equal(await store.roleDefinitions.create(b), true);
      assert.equal(await store.roleDefinitions.update({ ...b, roleName: 'vm reader' }), false, 'rename onto another role');
      const updated = { ...b, description: 'new', updatedAt: T0 + 1, assignableScopes: ['/'] };
      assert.equal(await store.roleDefinitions.update(updated), true);
      assert.deepEqual(await store.roleDefinitions.get(tenant, b.id), updated);
      assert.equal(await store.roleDefinitions.count(tenant), 2);
      assert.equal((await store.roleDefinitions.list(tenant)).length, 2);
      assert.equal(await store.roleDefinitions.delete(tenant, a.id), true);
      assert.equal(await store.roleDefinitions.delete(tenant, a.id), false);
      assert.equal(await store.roleDefinitions.count(tenant), 1);
    });

    void it('role assignments: unique (scope case-insensitively, role, principal), filters, counts, deletes', async () => {
      const tenant = newGuid();
      const sub = newGuid();
      const a = assignment(tenant, { scope: `/subscriptions/${sub}/resourceGroups/RG` });
      assert.equal(await store.roleAssignments.create(a), true);
      assert.equal(await store.roleAssignments.create({ ...a, id: newGuid(), scope: a.scope.toLowerCase() }), false, 'same triple');
      assert.equal(await store.roleAssignments.create({ ...assignment(tenant), id: a.id }), false, 'same id');
      const b = assignment(tenant, { scope: `/subscriptions/${sub}`, principalId: a.principalId, roleDefinitionId: newGuid() });
      assert.equal(await store.roleAssignments.create(b), true);
      const c = assignment(tenant, { scope: '/' });
      assert.equal(await store.roleAssignments.create(c), true);
      assert.deepEqual(await store.roleAssignments.get(tenant, a.id.toUpperCase()), a);
      assert.equal(await store.roleAssignments.get(newGuid(), a.id), undefined, 'other tenant');
      assert.deepEqual(await store.roleAssignments.find(tenant, a.scope.toUpperCase(), READER, a.principalId), a);
      assert.deepEqual((await store.roleAssignments.list({ tenantId: tenant, principalIds: [a.principalId] })).map((x) => x.id).sort(), [a.id, b.id].sort());
      assert.deepEqual(
        (await store.roleAssignments.list({ tenantId: tenant, scope: `/SUBSCRIPTIONS/${sub}` })).map((x) => x.id),
        [b.id],
      );
      assert.deepEqual(await store.roleAssignments.list({ tenantId: tenant, principalIds: [] }), []);
      assert.equal((await store.roleAssignments.list({ tenantId: tenant })).length, 3);
      assert.equal(await store.roleAssignments.countInSubscription(tenant, sub.toUpperCase()), 2);
      assert.equal(await store.roleAssignments.countByRoleDefinition(tenant, READER), 2);
      assert.equal(await store.roleAssignments.updateDescription(tenant, a.id, 'why', T0 + 5, 'me'), true);
      assert.deepEqual(await store.roleAssignments.get(tenant, a.id), { ...a, description: 'why', updatedAt: T0 + 5, updatedBy: 'me' });
      assert.equal(await store.roleAssignments.deleteByPrincipal(a.principalId.toUpperCase()), 2);
      assert.equal(await store.roleAssignments.delete(tenant, c.id), true);
      assert.equal(await store.roleAssignments.delete(tenant, c.id), false);
      assert.deepEqual(await store.roleAssignments.list({ tenantId: tenant }), []);
    });

    void it('deny assignments: create, unique name per scope, get, list, delete', async () => {
      const tenant = newGuid();
      const deny = {
        id: newGuid(),
        tenantId: tenant,
        denyAssignmentName: 'No deletes',
        description: 'd',
        scope: `/subscriptions/${newGuid()}`,
        permissions: [{ actions: ['*/delete'], notActions: [], dataActions: [], notDataActions: [] }],
        principals: [{ id: '00000000-0000-0000-0000-000000000000', type: 'SystemDefined' as const }],
        excludePrincipals: [{ id: newGuid(), type: 'ServicePrincipal' as const }],
        doNotApplyToChildScopes: true,
        isSystemProtected: false,
        createdAt: T0,
        createdBy: 'admin',
      };
      assert.equal(await store.denyAssignments.create(deny), true);
      assert.equal(await store.denyAssignments.create({ ...deny, id: newGuid(), denyAssignmentName: 'NO DELETES' }), false);
      assert.deepEqual(await store.denyAssignments.get(tenant, deny.id), deny);
      assert.deepEqual(await store.denyAssignments.list(tenant), [deny]);
      assert.equal(await store.denyAssignments.delete(tenant, deny.id), true);
      assert.deepEqual(await store.denyAssignments.list(tenant), []);
    });

    void it('groups: create, list by name, members (unique pair, nested), memberships, delete cascades', async () => {
      const tenant = newGuid();
      const g1 = { objectId: newGuid(), tenantId: tenant, displayName: 'Ops', mailNickname: 'ops', description: null, createdAt: T0 };
      const g2 = { ...g1, objectId: newGuid(), displayName: 'Dev', mailNickname: 'dev', description: 'devs' };
      await store.groups.create(g1);
      await store.groups.create(g2);
      assert.deepEqual(await store.groups.get(g1.objectId.toUpperCase()), g1);
      assert.deepEqual(await store.groups.list({ tenantId: tenant, displayName: 'OPS' }), [g1]);
      const sp = newGuid();
      assert.equal(await store.groups.addMember({ groupId: g1.objectId, memberId: sp, tenantId: tenant, createdAt: T0 }), true);
      assert.equal(await store.groups.addMember({ groupId: g1.objectId, memberId: sp.toUpperCase(), tenantId: tenant, createdAt: T0 }), false);
      assert.equal(await store.groups.addMember({ groupId: g2.objectId, memberId: g1.objectId, tenantId: tenant, createdAt: T0 }), true);
      assert.equal(await store.groups.addMember({ groupId: g2.objectId, memberId: sp, tenantId: tenant, createdAt: T0 }), true);
      assert.deepEqual(await store.groups.listMembers(g1.objectId), [sp]);
      assert.deepEqual((await store.groups.listGroupsOf(sp)).sort(), [g1.objectId, g2.objectId].sort());
      assert.equal((await store.groups.listMemberships(tenant)).length, 3);
      assert.equal(await store.groups.removeMember(g2.objectId, sp), true);
      assert.equal(await store.groups.removeMember(g2.objectId, sp), false);
      assert.equal(await store.groups.delete(g1.objectId), true);
      assert.deepEqual(await store.groups.listMemberships(tenant), [], 'its members and its own membership are gone');
      assert.equal(await store.groups.addMember({ groupId: g2.objectId, memberId: sp, tenantId: tenant, createdAt: T0 }), true);
      assert.equal(await store.groups.removeMemberEverywhere(sp), 1);
    });

    void it('rbac versions: start at 0, bump per tenant, roll back with their transaction', async () => {
      const tenant = newGuid();
      assert.equal(await store.rbacVersions.get(tenant), 0);
      assert.equal(await store.rbacVersions.bump(tenant), 1);
      assert.equal(await store.rbacVersions.bump(tenant.toUpperCase()), 2);
      assert.equal(await store.rbacVersions.get(newGuid()), 0);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.rbacVersions.bump(tenant);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await store.rbacVersions.get(tenant), 2);
    });

    void it('notifies this process after commit, never for a rolled-back transaction', async () => {
      const tenant = newGuid();
      const heard: string[] = [];
      const off = store.notifications.subscribe(RBAC_CHANNEL, (payload) => {
        if (payload === tenant) heard.push(payload);
      });
      try {
        await store.transaction(async (tx) => {
          await tx.rbacVersions.bump(tenant);
          await tx.rbacVersions.bump(tenant);
          assert.deepEqual(heard, [], 'nothing before commit');
        });
        // At commit (PostgreSQL may echo it once more through LISTEN).
        assert.ok(heard.length >= 1, 'heard at commit');
        await store
          .transaction(async (tx) => {
            await tx.rbacVersions.bump(tenant);
            throw new Error('no');
          })
          .catch(() => undefined);
        await store.rbacVersions.bump(tenant);
        assert.ok(heard.length >= 2, 'an autocommitted bump is heard too');
      } finally {
        off();
      }
    });

    void it('the state source loads a tenant consistently and reports its version and changes', async () => {
      const tenant = newGuid();
      const source = createStoreRbacSource(store, TEST_BUILT_INS);
      const custom = role(tenant);
      const changes: string[] = [];
      const off = source.onChange((t) => changes.push(t));
      try {
        await store.transaction(async (tx) => {
          await tx.roleDefinitions.create(custom);
          await tx.roleAssignments.create(assignment(tenant, { roleDefinitionId: custom.id }));
          await tx.groups.create({ objectId: newGuid(), tenantId: tenant, displayName: 'g', mailNickname: 'g', description: null, createdAt: T0 });
          await tx.rbacVersions.bump(tenant);
        });
        assert.ok(changes.includes(tenant));
        const state = await source.load(tenant);
        assert.equal(state.version, 1);
        assert.equal(await source.version(tenant), 1);
        assert.equal(state.roleDefinitions.length, TEST_BUILT_INS.length + 1);
        assert.deepEqual(state.roleDefinitions.at(-1), {
          id: custom.id,
          roleName: custom.roleName,
          roleType: 'CustomRole',
          description: custom.description,
          permissions: custom.permissions,
          assignableScopes: custom.assignableScopes,
          tenantId: tenant,
        });
        assert.equal(state.roleAssignments.length, 1);
        assert.equal('updatedAt' in (state.roleAssignments[0] ?? {}), false);
        assert.deepEqual(state.denyAssignments, []);
      } finally {
        off();
      }
    });
  });
}

void describe('rbac notifications across two PostgreSQL store instances', { ...backendSuiteOptions('postgres'), timeout: 60_000 }, () => {
  const opener = storeOpener('postgres');
  let writer: Store;
  let reader: Store;
  before(async () => {
    writer = await opener.open();
    reader = await opener.open();
  });
  after(async () => {
    await reader.close();
    await writer.close();
  });

  void it('a change committed through one store reaches the other, and a rolled-back one does not', async (t) => {
    const tenant = newGuid();
    const source = createStoreRbacSource(reader, TEST_BUILT_INS);
    const heard: string[] = [];
    const off = source.onChange((payload) => {
      if (payload === tenant) heard.push(payload);
    });
    try {
      await reader.notifications.ready();
      // A rolled-back bump notifies nobody.
      await writer
        .transaction(async (tx) => {
          await tx.rbacVersions.bump(tenant);
          throw new Error('no');
        })
        .catch(() => undefined);
      const notice = nextNotice(reader, (p) => p === tenant);
      const started = performance.now();
      await writer.transaction(async (tx) => {
        await tx.roleAssignments.create(assignment(tenant));
        await tx.rbacVersions.bump(tenant);
      });
      await notice.promise;
      t.diagnostic(`cross-instance notice after ${(performance.now() - started).toFixed(1)} ms`);
      assert.equal(heard.length, 1, 'only the committed change was heard');
      assert.equal(await source.version(tenant), 1);
      assert.equal((await source.load(tenant)).roleAssignments.length, 1);
    } finally {
      off();
    }
  });
});
