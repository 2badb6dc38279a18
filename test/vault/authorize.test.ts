import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accessPolicyGrants, authorize } from '../../src/vault/authorize.js';
import { KEY_OPERATIONS, SECRET_OPERATIONS, type VaultContext } from '../../src/vault/contracts.js';
import { VaultError } from '../../src/vault/errors.js';
import type { AccessPolicyEntry, Vault } from '../../src/store/types.js';
import type { AuthorizationDecision } from '../../src/rbac/contracts.js';
import { vaultRecord } from '../support/vault.js';

const TENANT = '11111111-1111-4111-8111-111111111111';
const OTHER_TENANT = '22222222-2222-4222-8222-222222222222';
const OID = '33333333-3333-4333-8333-333333333333';
const APP = 'abcdef44-4444-4444-8444-44444444abcd';
const caller = { objectId: OID, tenantId: TENANT, appId: APP, issuer: `https://localhost:8443/${TENANT}/` };

const vault = (policies: AccessPolicyEntry[], rbac = false): Vault =>
  vaultRecord('kv', TENANT, { id: 'v' }, { enableRbacAuthorization: rbac, accessPolicies: policies });

function entry(overrides: Partial<AccessPolicyEntry> & { secrets?: string[]; keys?: string[] } = {}): AccessPolicyEntry {
  const { secrets = ['get'], keys = [], ...rest } = overrides;
  return { tenantId: TENANT, objectId: OID, permissions: { keys, secrets, certificates: [], storage: [] }, ...rest };
}

describe('vault access policies', () => {
  it('grant a listed permission (case-insensitively) or all, to the named object of the named tenant only', () => {
    assert.equal(accessPolicyGrants(vault([entry()]), caller, SECRET_OPERATIONS.get), true);
    assert.equal(
      accessPolicyGrants(vault([entry({ objectId: OID.toUpperCase(), tenantId: TENANT.toUpperCase(), secrets: ['GET'] })]), caller, SECRET_OPERATIONS.get),
      true,
    );
    assert.equal(accessPolicyGrants(vault([entry({ secrets: ['all'] })]), caller, SECRET_OPERATIONS.purge), true);
    assert.equal(accessPolicyGrants(vault([entry()]), caller, SECRET_OPERATIONS.set), false, 'another permission');
    assert.equal(
      accessPolicyGrants(vault([entry({ objectId: '55555555-5555-4555-8555-555555555555' })]), caller, SECRET_OPERATIONS.get),
      false,
      'another object',
    );
    assert.equal(accessPolicyGrants(vault([entry({ tenantId: OTHER_TENANT })]), caller, SECRET_OPERATIONS.get), false, 'the same object id in another tenant');
    assert.equal(accessPolicyGrants(vault([]), caller, SECRET_OPERATIONS.get), false, 'no entry, no access');
  });

  it('invariant: object and tenant ids compare case-insensitively both ways, and any one matching entry among others grants', () => {
    // Ids with hex letters, so that a lost case fold on either side shows.
    const oid = 'abcdefab-cdef-4abc-8def-abcdefabcdef';
    const tid = 'fedcbafe-dcba-4fed-8cba-fedcbafedcba';
    const lower = { ...caller, objectId: oid, tenantId: tid };
    const upper = { ...caller, objectId: oid.toUpperCase(), tenantId: tid.toUpperCase() };
    for (const [who, id] of [
      ['lower-case caller', lower],
      ['upper-case caller', upper],
    ] as const) {
      for (const e of [entry({ objectId: oid, tenantId: tid }), entry({ objectId: oid.toUpperCase(), tenantId: tid.toUpperCase() })]) {
        assert.equal(
          accessPolicyGrants(vault([entry({ objectId: '55555555-5555-4555-8555-555555555555' }), e]), id, SECRET_OPERATIONS.get),
          true,
          `${who}, entry ${e.objectId}`,
        );
      }
    }
    assert.equal(
      accessPolicyGrants(vault([entry({ secrets: ['list'] }), entry({ secrets: ['set', 'GET'] })]), caller, SECRET_OPERATIONS.get),
      true,
      'a later entry of the same caller',
    );
    assert.equal(accessPolicyGrants(vault([entry({ secrets: [] })]), caller, SECRET_OPERATIONS.get), false, 'an entry with no secret permission');
  });

  it('key operations are granted by the keys list only, one permission each; the rotation policy takes either name Azure uses', () => {
    assert.equal(accessPolicyGrants(vault([entry({ secrets: ['all'] })]), caller, KEY_OPERATIONS.get), false, 'secret permissions never reach keys');
    assert.equal(accessPolicyGrants(vault([entry({ secrets: [], keys: ['get'] })]), caller, SECRET_OPERATIONS.get), false, 'nor key permissions secrets');
    for (const [name, op] of Object.entries(KEY_OPERATIONS)) {
      for (const permission of op.permissions) {
        assert.equal(accessPolicyGrants(vault([entry({ keys: [permission.toUpperCase()] })]), caller, op), true, `${name} by ${permission}`);
      }
      const others = ['get', 'list', 'update', 'create', 'import', 'delete', 'recover', 'backup', 'restore', 'decrypt', 'encrypt', 'unwrapkey', 'wrapkey']
        .concat(['verify', 'sign', 'purge', 'release', 'rotate', 'getrotationpolicy', 'setrotationpolicy'])
        .filter((p) => !op.permissions.includes(p));
      assert.equal(accessPolicyGrants(vault([entry({ keys: others })]), caller, op), false, `${name} is not granted by the other nineteen permissions`);
      assert.equal(accessPolicyGrants(vault([entry({ keys: ['all'] })]), caller, op), true, `${name} by all`);
    }
    assert.deepEqual(KEY_OPERATIONS.getRotationPolicy.permissions, ['getrotationpolicy', 'get']);
    assert.deepEqual(KEY_OPERATIONS.setRotationPolicy.permissions, ['setrotationpolicy', 'update']);
  });

  it('a compound-identity entry holds only for the application it names', () => {
    assert.equal(accessPolicyGrants(vault([entry({ applicationId: APP.toUpperCase() })]), caller, SECRET_OPERATIONS.get), true);
    assert.equal(
      accessPolicyGrants(vault([entry({ applicationId: APP })]), { ...caller, appId: APP.toUpperCase() }, SECRET_OPERATIONS.get),
      true,
      'ids compare case-insensitively',
    );
    assert.equal(accessPolicyGrants(vault([entry({ applicationId: '66666666-6666-4666-8666-666666666666' })]), caller, SECRET_OPERATIONS.get), false);
    assert.equal(
      accessPolicyGrants(vault([entry({ applicationId: APP })]), { ...caller, appId: undefined }, SECRET_OPERATIONS.get),
      false,
      'a token without appid',
    );
  });

  it('a refusal names the caller as Key Vault does', async () => {
    const refused = await authorize({} as VaultContext, vault([]), caller, SECRET_OPERATIONS.get, 'scope').then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(refused instanceof VaultError);
    assert.equal(refused.status, 403);
    assert.match(
      refused.message,
      new RegExp(
        `^The user, group or application 'appid=${APP};oid=${OID};numgroups=0;iss=https://localhost:8443/${TENANT}/' does not have secrets get permission on key vault 'kv;location=local'`,
      ),
    );
  });
});

describe('vault RBAC refusals', () => {
  const ctxWith = (decision: AuthorizationDecision) => ({ authorizer: { check: () => Promise.resolve(decision) } }) as unknown as VaultContext;

  it('name the caller, action and resource, and say whether a deny assignment decided', async () => {
    const rbac = vault([], true);
    const notGranted = await authorize(
      ctxWith({ allowed: false, reason: 'not-granted' }),
      rbac,
      caller,
      SECRET_OPERATIONS.get,
      `${rbac.resourceId}/secrets/S`,
    ).catch((e: unknown) => e as VaultError);
    assert.ok(notGranted instanceof VaultError);
    assert.match(notGranted.message, new RegExp(`\\r\\nCaller: appid=${APP};oid=${OID};iss=https://localhost:8443/${TENANT}/\\r\\n`));
    assert.match(notGranted.message, /Action: 'Microsoft\.KeyVault\/vaults\/secrets\/getSecret\/action'/);
    assert.match(notGranted.message, /DenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC'/);
    // A role that would grant is beside the point once a deny assignment matched: the message names it.
    const denied = await authorize(
      ctxWith({ allowed: false, reason: 'denied', assignmentId: 'deny-1' }),
      rbac,
      caller,
      SECRET_OPERATIONS.get,
      rbac.resourceId,
    ).catch((e: unknown) => e as VaultError);
    assert.match((denied as VaultError).message, /DenyAssignmentId: deny-1\r\nDecisionReason: 'DeniedWithDenyAssignment'/);
    // An assignment id on a refusal that no deny assignment decided is not shown as one.
    const odd = await authorize(
      ctxWith({ allowed: false, reason: 'not-granted', assignmentId: 'role-1' }),
      rbac,
      caller,
      SECRET_OPERATIONS.get,
      rbac.resourceId,
    ).catch((e: unknown) => e as VaultError);
    assert.match((odd as VaultError).message, /DenyAssignmentId: null/);
    await authorize(ctxWith({ allowed: true, reason: 'granted' }), rbac, caller, SECRET_OPERATIONS.get, rbac.resourceId);
  });

  it('invariant: asks the authoriser for the operation as a data action of the caller at the scope, and an access-policy vault never asks it', async () => {
    const asked: unknown[] = [];
    const ctx = { authorizer: { check: (q: unknown) => (asked.push(q), Promise.resolve({ allowed: true, reason: 'granted' })) } } as unknown as VaultContext;
    const rbac = vault([], true);
    await authorize(ctx, rbac, caller, SECRET_OPERATIONS.set, `${rbac.resourceId}/secrets/S`);
    assert.deepEqual(asked, [
      {
        tenantId: TENANT,
        principalId: OID,
        action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action',
        isDataAction: true,
        scope: `${rbac.resourceId}/secrets/S`,
      },
    ]);
    // Access policies decide alone: an authoriser that would grant is not asked.
    const refused = await authorize(ctx, vault([entry({ secrets: ['get'] })]), caller, SECRET_OPERATIONS.set, 'scope').catch((e: unknown) => e);
    assert.ok(refused instanceof VaultError && refused.status === 403);
    await authorize(ctx, vault([entry({ secrets: ['set'] })]), caller, SECRET_OPERATIONS.set, 'scope');
    assert.equal(asked.length, 1);
  });

  it("invariant: RBAC is evaluated in the vault's tenant, whatever tenant the caller names", async () => {
    const asked: string[] = [];
    const ctx = {
      authorizer: {
        check: (q: { tenantId: string }) => (asked.push(q.tenantId), Promise.resolve({ allowed: q.tenantId === OTHER_TENANT, reason: 'granted' })),
      },
    } as unknown as VaultContext;
    const rbac = vault([], true);
    // A caller of another tenant whose own tenant would grant: the vault's tenant is asked, and refuses.
    const refused = await authorize(ctx, rbac, { ...caller, tenantId: OTHER_TENANT }, SECRET_OPERATIONS.get, rbac.resourceId).catch((e: unknown) => e);
    assert.ok(refused instanceof VaultError && refused.status === 403, String(refused));
    assert.deepEqual(asked, [TENANT]);
  });
});
