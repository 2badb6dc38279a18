/**
 * The directory's RBAC functions on both backends: Azure's validation and error codes, nothing written on a
 * refusal, a version bump (and a change notice) on every RBAC-relevant write, and principal/group deletion
 * taking the principal's assignments and memberships with it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeClock } from '../../../src/shared/clock.js';
import { newGuid } from '../../../src/shared/ids.js';
import { RBAC_CHANNEL, type Store } from '../../../src/store/index.js';
import { createApplicationPrincipal, deleteApplicationPrincipal } from '../../../src/directory/principals.js';
import { putResourceGroup, putUserAssignedIdentity, deleteUserAssignedIdentity } from '../../../src/directory/resources.js';
import {
  createDenyAssignment,
  deleteRoleAssignment,
  deleteRoleDefinition,
  listRoleAssignments,
  putRoleAssignment,
  putRoleDefinition,
  type RbacDirectoryOptions,
} from '../../../src/directory/rbac.js';
import { addGroupMember, checkMemberGroups, createGroup, deleteGroup, removeGroupMember } from '../../../src/directory/groups.js';
import { DirectoryError } from '../../../src/directory/errors.js';
import { STORE_BACKENDS, backendSuiteOptions } from '../../support/authority.js';
import { TEST_BUILT_INS, storeOpener } from './helpers.js';

const READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7';
const T0 = Date.UTC(2026, 0, 1);

for (const backend of STORE_BACKENDS) {
  void describe(`rbac directory (${backend})`, { ...backendSuiteOptions(backend), timeout: 60_000 }, () => {
    const opener = storeOpener(backend);
    const clock = new FakeClock(T0);
    let store: Store;
    let tenantId: string;
    let subscriptionId: string;
    let options: RbacDirectoryOptions;

    before(async () => {
      store = await opener.open();
      tenantId = newGuid();
      subscriptionId = newGuid();
      await store.tenants.create({ id: tenantId, displayName: 'T', defaultDomain: `t${tenantId.slice(0, 8)}.test`, createdAt: T0 });
      await store.subscriptions.create({ id: subscriptionId, tenantId, displayName: 'S', state: 'Enabled', createdAt: T0 });
      await putResourceGroup(store, { subscriptionId, name: 'rg', location: 'westeurope', clock });
      options = { builtInRoles: TEST_BUILT_INS, clock, limits: { assignmentsPerSubscription: 3, customRolesPerTenant: 2 } };
    });
    after(async () => {
      await store.close();
    });

    /** Everything RBAC holds for the tenant, to show a refusal wrote nothing. */
    async function snapshot(): Promise<unknown> {
      return {
        assignments: await store.roleAssignments.list({ tenantId }),
        roles: await store.roleDefinitions.list(tenantId),
        denies: await store.denyAssignments.list(tenantId),
        memberships: await store.groups.listMemberships(tenantId),
        groups: await store.groups.list({ tenantId }),
        version: await store.rbacVersions.get(tenantId),
      };
    }

    async function refused(code: string, fn: () => Promise<unknown>): Promise<void> {
      const before = await snapshot();
      await assert.rejects(fn, (err: unknown) => {
        assert.ok(err instanceof DirectoryError, String(err));
        assert.equal(err.code, code, err.message);
        return true;
      });
      assert.deepEqual(await snapshot(), before, `${code}: nothing written`);
    }

    const app = () => createApplicationPrincipal(store, { tenantId, displayName: `app-${newGuid().slice(0, 6)}`, clock });

    void it('refuses bad role assignments with ARM codes and writes nothing', async () => {
      const sp = await app();
      const rg = `/subscriptions/${subscriptionId}/resourceGroups/rg`;
      const base = { tenantId, scope: rg, roleDefinitionId: READER, principalId: sp.objectId, by: 'admin' };
      await refused('InvalidRoleAssignmentRequest', () => putRoleAssignment(store, options, { ...base, condition: "@Resource[x] StringEquals 'y'" }));
      await refused('InvalidRoleAssignmentId', () => putRoleAssignment(store, options, { ...base, id: 'not-a-guid' }));
      await refused('MissingSubscription', () => putRoleAssignment(store, options, { ...base, scope: '/foo/bar' }));
      await refused('InvalidScope', () => putRoleAssignment(store, options, { ...base, scope: `/subscriptions/${subscriptionId}/resourceGroups` }));
      await refused('SubscriptionNotFound', () => putRoleAssignment(store, options, { ...base, scope: `/subscriptions/${newGuid()}` }));
      await refused('RoleDefinitionDoesNotExist', () => putRoleAssignment(store, options, { ...base, roleDefinitionId: newGuid() }));
      await refused('PrincipalNotFound', () => putRoleAssignment(store, options, { ...base, principalId: newGuid() }));
      await refused('UnmatchedPrincipalType', () => putRoleAssignment(store, options, { ...base, principalType: 'User' }));
      const narrow = await putRoleDefinition(store, options, {
        tenantId,
        roleName: 'Narrow',
        permissions: [{ actions: ['Microsoft.Compute/*/read'] }],
        assignableScopes: [rg],
        by: 'admin',
      });
      await refused('RoleDefinitionNotAssignableAtScope', () =>
        putRoleAssignment(store, options, { ...base, scope: `/subscriptions/${subscriptionId}`, roleDefinitionId: narrow.definition.id }),
      );
      const ok = await putRoleAssignment(store, options, {
        ...base,
        roleDefinitionId: `/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${READER}`,
      });
      assert.equal(ok.created, true);
      assert.equal(ok.assignment.principalType, 'ServicePrincipal');
      await refused('RoleAssignmentExists', () => putRoleAssignment(store, options, { ...base, scope: rg.toUpperCase() }));
      await refused('RoleAssignmentUpdateNotPermitted', () =>
        putRoleAssignment(store, options, { ...base, id: ok.assignment.id, scope: `/subscriptions/${subscriptionId}` }),
      );
      // The same PUT again is idempotent; a new description is an update.
      assert.equal((await putRoleAssignment(store, options, { ...base, id: ok.assignment.id })).created, false);
      assert.equal((await putRoleAssignment(store, options, { ...base, id: ok.assignment.id, description: 'why' })).assignment.description, 'why');
      // The limit (3 here, 4,000 in Azure) counts the subscription and everything below it.
      await putRoleAssignment(store, options, { ...base, scope: `/subscriptions/${subscriptionId}` });
      await putRoleAssignment(store, options, { ...base, scope: `${rg}/providers/Microsoft.KeyVault/vaults/v1` });
      await refused('RoleAssignmentLimitExceeded', () => putRoleAssignment(store, options, { ...base, scope: `${rg}/providers/Microsoft.KeyVault/vaults/v2` }));
      // Above subscriptions the per-subscription limit does not apply.
      await putRoleAssignment(store, options, { ...base, scope: '/' });
      const listed = await listRoleAssignments(store, { tenantId, scope: rg });
      assert.equal(listed.length, 4, 'at, above and below the group');
      assert.equal((await listRoleAssignments(store, { tenantId, scope: rg, atScope: true })).length, 3, 'at and above');
      for (const a of await store.roleAssignments.list({ tenantId })) await deleteRoleAssignment(store, { tenantId, id: a.id });
      await deleteRoleDefinition(store, options, { tenantId, id: narrow.definition.id });
    });

    void it('refuses bad custom roles with ARM codes and writes nothing', async () => {
      const base = {
        tenantId,
        roleName: 'Custom A',
        permissions: [{ actions: ['*/read'] }],
        assignableScopes: [`/subscriptions/${subscriptionId}`],
        by: 'admin',
      };
      await refused('InvalidRoleDefinition', () => putRoleDefinition(store, options, { ...base, assignableScopes: undefined }));
      await refused('InvalidRoleDefinition', () => putRoleDefinition(store, options, { ...base, assignableScopes: [] }));
      await refused('InvalidRoleDefinition', () => putRoleDefinition(store, options, { ...base, permissions: [{ actions: ['bad action'] }] }));
      await refused('InvalidScope', () => putRoleDefinition(store, options, { ...base, assignableScopes: ['/subscriptions/x/y'] }));
      await refused('CannotModifyBuiltInRole', () => putRoleDefinition(store, options, { ...base, id: READER }));
      await refused('RoleDefinitionWithSameNameExists', () => putRoleDefinition(store, options, { ...base, roleName: 'reader' }));
      const a = await putRoleDefinition(store, options, base);
      await refused('RoleDefinitionWithSameNameExists', () => putRoleDefinition(store, options, { ...base, roleName: 'CUSTOM a' }));
      const b = await putRoleDefinition(store, options, { ...base, roleName: 'Custom B' });
      await refused('RoleDefinitionLimitExceeded', () => putRoleDefinition(store, options, { ...base, roleName: 'Custom C' }));
      const updated = await putRoleDefinition(store, options, { ...base, id: a.definition.id, description: 'now described' });
      assert.equal(updated.created, false);
      assert.equal(updated.definition.description, 'now described');
      const sp = await app();
      const assignment = await putRoleAssignment(store, options, {
        tenantId,
        scope: `/subscriptions/${subscriptionId}`,
        roleDefinitionId: a.definition.id,
        principalId: sp.objectId,
        by: 'admin',
      });
      await refused('RoleDefinitionHasAssignments', () => deleteRoleDefinition(store, options, { tenantId, id: a.definition.id }));
      await refused('CannotModifyBuiltInRole', () => deleteRoleDefinition(store, options, { tenantId, id: READER }));
      await deleteRoleAssignment(store, { tenantId, id: assignment.assignment.id });
      assert.ok(await deleteRoleDefinition(store, options, { tenantId, id: a.definition.id }));
      assert.ok(await deleteRoleDefinition(store, options, { tenantId, id: b.definition.id }));
    });

    void it('refuses bad deny assignments and group changes and writes nothing', async () => {
      const deny = { tenantId, scope: `/subscriptions/${subscriptionId}`, by: 'admin' };
      const props = {
        denyAssignmentName: 'no deletes',
        permissions: [{ actions: ['*/delete'] }],
        principals: [{ id: '00000000-0000-0000-0000-000000000000', type: 'SystemDefined' }],
      };
      await refused('InvalidDenyAssignment', () => createDenyAssignment(store, options, { ...deny, properties: { ...props, principals: [] } }));
      await refused('InvalidDenyAssignment', () => createDenyAssignment(store, options, { ...deny, properties: { ...props, doNotApplyToChildScopes: 'yes' } }));
      await refused('MissingSubscription', () => createDenyAssignment(store, options, { ...deny, scope: 'nowhere', properties: props }));
      const created = await createDenyAssignment(store, options, { ...deny, properties: props });
      await refused('DenyAssignmentExists', () => createDenyAssignment(store, options, { ...deny, id: created.id, properties: props }));

      await refused('Request_BadRequest', () => createGroup(store, { tenantId, displayName: 'g', mailNickname: 'has space', clock }));
      const g = await createGroup(store, { tenantId, displayName: 'Ops', mailNickname: 'ops', clock });
      const h = await createGroup(store, { tenantId, displayName: 'All', mailNickname: 'all', clock });
      const sp = await app();
      await refused('Request_ResourceNotFound', () => addGroupMember(store, { tenantId, groupId: g.objectId, memberId: newGuid(), clock }));
      await refused('Request_ResourceNotFound', () => addGroupMember(store, { tenantId, groupId: newGuid(), memberId: sp.objectId, clock }));
      await refused('Request_BadRequest', () => addGroupMember(store, { tenantId, groupId: g.objectId, memberId: g.objectId, clock }));
      await addGroupMember(store, { tenantId, groupId: g.objectId, memberId: sp.objectId, clock });
      await refused('Request_BadRequest', () => addGroupMember(store, { tenantId, groupId: g.objectId, memberId: sp.objectId, clock }));
      await addGroupMember(store, { tenantId, groupId: h.objectId, memberId: g.objectId, clock });
      await refused('Request_BadRequest', () => addGroupMember(store, { tenantId, groupId: g.objectId, memberId: h.objectId, clock }));
      assert.deepEqual((await checkMemberGroups(store, tenantId, sp.objectId, [g.objectId, h.objectId, newGuid()])).sort(), [g.objectId, h.objectId].sort());
      await refused('Request_ResourceNotFound', () => removeGroupMember(store, { tenantId, groupId: h.objectId, memberId: sp.objectId }));
      await removeGroupMember(store, { tenantId, groupId: g.objectId, memberId: sp.objectId });
      await deleteGroup(store, tenantId, g.objectId);
      await deleteGroup(store, tenantId, h.objectId);
    });

    void it('bumps the version, and notifies after commit, on every RBAC-relevant write', async () => {
      const heard: string[] = [];
      const off = store.notifications.subscribe(RBAC_CHANNEL, (t) => {
        if (t === tenantId) heard.push(t);
      });
      try {
        const steps: Array<[string, () => Promise<unknown>]> = [];
        const sp = await app();
        let assignmentId = '';
        let roleId = '';
        let denyId = '';
        let groupId = '';
        steps.push([
          'role create',
          async () =>
            (roleId = (
              await putRoleDefinition(store, options, { tenantId, roleName: 'V', permissions: [{ actions: ['*/read'] }], assignableScopes: ['/'], by: 'a' })
            ).definition.id),
        ]);
        steps.push([
          'role update',
          () =>
            putRoleDefinition(store, options, {
              tenantId,
              id: roleId,
              roleName: 'V2',
              permissions: [{ actions: ['*/read'] }],
              assignableScopes: ['/'],
              by: 'a',
            }),
        ]);
        steps.push([
          'assignment create',
          async () =>
            (assignmentId = (await putRoleAssignment(store, options, { tenantId, scope: '/', roleDefinitionId: roleId, principalId: sp.objectId, by: 'a' }))
              .assignment.id),
        ]);
        steps.push(['assignment delete', () => deleteRoleAssignment(store, { tenantId, id: assignmentId })]);
        steps.push(['role delete', () => deleteRoleDefinition(store, options, { tenantId, id: roleId })]);
        steps.push([
          'deny create',
          async () =>
            (denyId = (
              await createDenyAssignment(store, options, {
                tenantId,
                scope: '/',
                by: 'a',
                properties: { denyAssignmentName: 'd', permissions: [{ actions: ['*'] }], principals: [{ id: sp.objectId }] },
              })
            ).id),
        ]);
        steps.push(['deny delete', async () => (await import('../../../src/directory/rbac.js')).deleteDenyAssignment(store, { tenantId, id: denyId })]);
        steps.push([
          'group create (no bump needed)',
          async () => (groupId = (await createGroup(store, { tenantId, displayName: 'G', mailNickname: 'g', clock })).objectId),
        ]);
        steps.push(['member add', () => addGroupMember(store, { tenantId, groupId, memberId: sp.objectId, clock })]);
        steps.push(['member remove', () => removeGroupMember(store, { tenantId, groupId, memberId: sp.objectId })]);
        steps.push(['group delete', () => deleteGroup(store, tenantId, groupId)]);
        steps.push(['principal delete', () => deleteApplicationPrincipal(store, sp.objectId)]);
        for (const [name, step] of steps) {
          const version = await store.rbacVersions.get(tenantId);
          const heardBefore = heard.length;
          await step();
          const bumped = (await store.rbacVersions.get(tenantId)) > version;
          if (name.includes('no bump')) continue;
          assert.ok(bumped, `${name} bumps the version`);
          assert.ok(heard.length > heardBefore, `${name} notifies`);
        }
      } finally {
        off();
      }
    });

    void it('deleting a principal deletes its assignments and memberships and bumps the version', async () => {
      const sp = await app();
      const g = await createGroup(store, { tenantId, displayName: 'Members', mailNickname: 'members', clock });
      await addGroupMember(store, { tenantId, groupId: g.objectId, memberId: sp.objectId, clock });
      await putRoleAssignment(store, options, { tenantId, scope: '/', roleDefinitionId: READER, principalId: sp.objectId, by: 'a' });
      await putRoleAssignment(store, options, { tenantId, scope: '/', roleDefinitionId: READER, principalId: g.objectId, by: 'a' });
      const version = await store.rbacVersions.get(tenantId);
      await deleteApplicationPrincipal(store, sp.objectId);
      assert.deepEqual(await store.roleAssignments.list({ tenantId, principalIds: [sp.objectId] }), []);
      assert.deepEqual(await store.groups.listGroupsOf(sp.objectId), []);
      assert.ok((await store.rbacVersions.get(tenantId)) > version);
      // A group's deletion takes its own assignments too.
      await deleteGroup(store, tenantId, g.objectId);
      assert.deepEqual(await store.roleAssignments.list({ tenantId, principalIds: [g.objectId] }), []);

      // A managed identity's principal goes with its resource, with its access.
      const uami = await putUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'rg', name: 'id1', clock });
      await putRoleAssignment(store, options, { tenantId, scope: '/', roleDefinitionId: READER, principalId: uami.principal.objectId, by: 'a' });
      const v2 = await store.rbacVersions.get(tenantId);
      await deleteUserAssignedIdentity(store, { subscriptionId, resourceGroup: 'rg', name: 'id1', clock });
      assert.deepEqual(await store.roleAssignments.list({ tenantId, principalIds: [uami.principal.objectId] }), []);
      assert.ok((await store.rbacVersions.get(tenantId)) > v2);
    });
  });
}
