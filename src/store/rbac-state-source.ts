/**
 * The production {@link RbacStateSource}: RBAC state read from the store, one tenant at a time, in one
 * consistent snapshot; change notices from the store's notifications (this process at once after commit;
 * other replicas through PostgreSQL LISTEN/NOTIFY).
 */
import { RBAC_CHANNEL, type Store } from './types.js';
import type { RbacState, RbacStateSource, RoleDefinition } from '../rbac/contracts.js';

export function createStoreRbacSource(store: Store, builtInRoles: readonly RoleDefinition[]): RbacStateSource {
  return {
    load(tenantId) {
      return store.transaction(
        async (tx): Promise<RbacState> => {
          const version = await tx.rbacVersions.get(tenantId);
          const custom = await tx.roleDefinitions.list(tenantId);
          const roleAssignments = await tx.roleAssignments.list({ tenantId });
          const denyAssignments = await tx.denyAssignments.list(tenantId);
          const groupMemberships = await tx.groups.listMemberships(tenantId);
          return {
            tenantId: tenantId.toLowerCase(),
            roleDefinitions: [
              ...builtInRoles,
              ...custom.map(({ id, roleName, roleType, description, permissions, assignableScopes, tenantId: t }) => ({
                id,
                roleName,
                roleType,
                description,
                permissions,
                assignableScopes,
                tenantId: t,
              })),
            ],
            roleAssignments: roleAssignments.map(({ updatedAt: _u, updatedBy: _b, ...a }) => a),
            denyAssignments: denyAssignments.map(({ createdAt: _c, createdBy: _b, ...d }) => d),
            groupMemberships,
            version,
          };
        },
        { isolation: 'repeatable read' },
      );
    },

    version(tenantId) {
      return store.rbacVersions.get(tenantId);
    },

    onChange(listener) {
      return store.notifications.subscribe(RBAC_CHANNEL, (tenantId) => listener(tenantId));
    },
  };
}
