/**
 * The bootstrap admin is Owner at `/` by a role assignment: `openmsi init` creates it, and a data dir from
 * before RBAC gets it once at start (never again after the tenant has RBAC state).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../../src/store/open.js';
import { systemClock } from '../../../src/shared/clock.js';
import { createLogger } from '../../../src/shared/logger.js';
import { newGuid } from '../../../src/shared/ids.js';
import { createApplicationPrincipal } from '../../../src/directory/principals.js';
import { upgradeBootstrapOwners } from '../../../src/authority/bootstrap-owner.js';
import { startTestAuthority } from '../../support/authority.js';
import { ROLE } from './helpers.js';

const logger = createLogger({ level: 'silent' });

describe('the bootstrap admin is Owner at /', () => {
  it('openmsi init assigns it', async () => {
    const t = await startTestAuthority();
    try {
      const assignments = await t.ctx.store.roleAssignments.list({ tenantId: t.tenantId, principalIds: [t.admin.objectId] });
      assert.deepEqual(
        assignments.map((a) => [a.scope, a.roleDefinitionId.toLowerCase()]),
        [['/', ROLE.Owner]],
      );
    } finally {
      await t.close();
    }
  });

  it('a data dir from before RBAC gets it once at start, and a removed one is not put back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-upgrade-'));
    const store = await openStore(join(dir, 'store.db'));
    try {
      const tenantId = newGuid();
      await store.tenants.create({ id: tenantId, displayName: 'old', defaultDomain: 'old.local', createdAt: Date.now() });
      const admin = await createApplicationPrincipal(store, { tenantId, displayName: 'openmsi-bootstrap-admin', isDirectoryAdmin: true, clock: systemClock });
      await createApplicationPrincipal(store, { tenantId, displayName: 'someone-else', clock: systemClock });

      assert.equal(await upgradeBootstrapOwners(store, systemClock, logger), 1);
      const [assignment, ...rest] = await store.roleAssignments.list({ tenantId });
      assert.equal(rest.length, 0);
      assert.equal(assignment?.principalId, admin.objectId);
      assert.equal(assignment?.scope, '/');
      assert.equal(assignment?.roleDefinitionId.toLowerCase(), ROLE.Owner);
      assert.ok((await store.rbacVersions.get(tenantId)) > 0);
      assert.ok((await store.audit.list({ tenantId, limit: 10 })).some((e) => e.action === 'roleAssignment.created'));

      // Idempotent, and once the tenant has RBAC state a removed assignment stays removed.
      assert.equal(await upgradeBootstrapOwners(store, systemClock, logger), 0);
      await store.transaction(async (tx) => {
        await tx.roleAssignments.delete(tenantId, assignment?.id ?? '');
        await tx.rbacVersions.bump(tenantId);
      });
      assert.equal(await upgradeBootstrapOwners(store, systemClock, logger), 0);
      assert.deepEqual(await store.roleAssignments.list({ tenantId }), []);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
