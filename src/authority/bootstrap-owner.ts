/**
 * The bootstrap admin's rights: Owner at the tenant root (`/`), as an ordinary role assignment (it can be
 * listed, and another Owner can remove it). `openmsi init` creates it; an authority started on a data dir
 * made before RBAC existed creates it once (see {@link upgradeBootstrapOwners}).
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { newGuid } from '../shared/ids.js';
import { BUILTIN_ROLE_IDS } from '../rbac/builtin-roles.js';
import type { Repositories, Store } from '../store/types.js';

/** Assigns Owner at `/` to `principalId` (in the caller's transaction) and bumps the tenant's RBAC version. */
export async function assignBootstrapOwner(tx: Repositories, input: { tenantId: string; principalId: string; clock: Clock }): Promise<string> {
  const now = input.clock.now();
  const id = newGuid();
  await tx.roleAssignments.create({
    id,
    tenantId: input.tenantId,
    scope: '/',
    roleDefinitionId: BUILTIN_ROLE_IDS.Owner,
    principalId: input.principalId,
    principalType: 'ServicePrincipal',
    description: 'openmsi bootstrap admin',
    createdAt: now,
    createdBy: 'system',
    updatedAt: now,
    updatedBy: 'system',
  });
  await tx.rbacVersions.bump(input.tenantId);
  return id;
}

/**
 * Upgrade path for data dirs initialised before RBAC: in a tenant that has never had an RBAC write (version
 * 0), each directory admin (the bootstrap admin) without any role assignment is made Owner at `/`, so it keeps
 * the rights it had. Only then: once a tenant has RBAC state, removing an admin's assignment is respected and
 * not undone at the next start.
 */
export async function upgradeBootstrapOwners(store: Store, clock: Clock, logger: Logger): Promise<number> {
  let created = 0;
  for (const tenant of await store.tenants.list()) {
    if ((await store.rbacVersions.get(tenant.id)) !== 0) continue;
    const admins = (await store.servicePrincipals.list({ tenantId: tenant.id })).filter((p) => p.isDirectoryAdmin);
    for (const admin of admins) {
      const existing = await store.roleAssignments.list({ tenantId: tenant.id, principalIds: [admin.objectId] });
      if (existing.length > 0) continue;
      await store.transaction(async (tx) => {
        const id = await assignBootstrapOwner(tx, { tenantId: tenant.id, principalId: admin.objectId, clock });
        await tx.audit.append([
          {
            id: newGuid(),
            at: clock.now(),
            tenantId: tenant.id,
            actor: 'system',
            action: 'roleAssignment.created',
            target: `/providers/Microsoft.Authorization/roleAssignments/${id}`,
            outcome: 'success',
            detail: { reason: 'upgrade: the bootstrap admin is Owner at /', principalId: admin.objectId, roleDefinitionId: BUILTIN_ROLE_IDS.Owner, scope: '/' },
          },
        ]);
      });
      created += 1;
      logger.info({ tenantId: tenant.id, principalId: admin.objectId }, 'upgrade: the bootstrap admin is now Owner at / (role assignment created)');
    }
  }
  return created;
}
