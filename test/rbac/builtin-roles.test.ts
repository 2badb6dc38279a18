import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_ROLE_IDS, BUILTIN_ROLES, builtinRoleById, builtinRoleByName } from '../../src/rbac/builtin-roles.js';
import { isGuid } from '../../src/shared/ids.js';

describe('built-in roles', () => {
  it('have unique lower-case GUIDs and unique names, assignable at the root, tenant-less', () => {
    const ids = new Set<string>();
    const names = new Set<string>();
    for (const r of BUILTIN_ROLES) {
      assert.ok(isGuid(r.id) && r.id === r.id.toLowerCase(), r.id);
      assert.ok(!ids.has(r.id), `duplicate ${r.id}`);
      assert.ok(!names.has(r.roleName.toLowerCase()), `duplicate ${r.roleName}`);
      ids.add(r.id);
      names.add(r.roleName.toLowerCase());
      assert.equal(r.roleType, 'BuiltInRole');
      assert.deepEqual(r.assignableScopes, ['/']);
      assert.equal(r.tenantId, null);
      assert.ok(r.description.length > 0 && r.permissions.length > 0);
    }
    assert.equal(BUILTIN_ROLES.length, Object.keys(BUILTIN_ROLE_IDS).length);
  });

  it('carry Azure’s GUIDs for the roles people know', () => {
    assert.equal(builtinRoleByName('owner')?.id, '8e3af657-a8ff-443c-a75c-2fe8c4bcb635');
    assert.equal(builtinRoleByName('Contributor')?.id, 'b24988ac-6180-42a0-ab88-20f7382dd24c');
    assert.equal(builtinRoleByName('Reader')?.id, 'acdd72a7-3385-48ef-bd42-f606fba81ae7');
    assert.equal(builtinRoleByName('Key Vault Secrets User')?.id, '4633458b-17de-408a-b874-0445c86b69e6');
    assert.equal(builtinRoleByName('AcrPull')?.id, '7f951dda-4ed3-4680-a7ca-43fe172d538d');
    assert.equal(
      builtinRoleById('/providers/Microsoft.Authorization/roleDefinitions/E40EC5CA-96E0-45A2-B4FF-59039F2C2B59')?.roleName,
      'Managed Identity Contributor',
    );
    assert.equal(builtinRoleByName('No Such Role'), undefined);
  });

  it('are frozen', () => {
    assert.throws(() => BUILTIN_ROLES[0]!.permissions[0]!.actions.push('x'));
  });
});
