/**
 * Revocation bounds of the vault's caches (docs/security.md, "Revocation bounds per cache"): whatever a key
 * revocation, a principal's deletion, a role change or an access-policy change invalidates is refused within
 * 1 s — by the vault served in the authority's own process (SQLite, PostgreSQL), and by an `openmsi vault`
 * replica on the same PostgreSQL store, which hears of the change only through LISTEN/NOTIFY.
 *
 * Every case first makes the vault cache what the change must invalidate (a verified token, a decision, a
 * vault's access policies: one successful read), then makes the change and polls, bounded, until it is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeProtectedHeader } from 'jose';
import { backendSkipReason, captureLogs, registerTestApplication, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { vaultRequest } from '../support/vault.js';
import { createVaultReplica, type VaultReplica } from '../../src/server/vault-replica.js';
import { systemClock } from '../../src/shared/clock.js';
import { BUILTIN_ROLES } from '../../src/rbac/builtin-roles.js';
import { deleteApplicationPrincipal } from '../../src/directory/principals.js';
import { deleteResource, deleteUserAssignedIdentity, putResource, putResourceGroup, putUserAssignedIdentity } from '../../src/directory/resources.js';
import { createDenyAssignment, deleteRoleAssignment, putRoleAssignment, putRoleDefinition } from '../../src/directory/rbac.js';
import { addGroupMember, createGroup, removeGroupMember } from '../../src/directory/groups.js';
import { createUser, deleteUser, updateUser } from '../../src/directory/users.js';
import { ALLOW_PERMISSION_MODEL_CHANGE, putVault } from '../../src/directory/vaults.js';
import type { AccessPolicyEntry, ServicePrincipal } from '../../src/store/types.js';

const SECRETS_USER = '4633458b-17de-408a-b874-0445c86b69e6';
const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';
const GET_SECRET = 'Microsoft.KeyVault/vaults/secrets/getSecret/action';
const VAULT_AUDIENCE = 'https://vault.azure.net';
const RG = 'rg-revoke';
/** The promise: refused within this long after the change committed. */
const BOUND_MS = 1000;
/** How long a case polls before it gives up (a bounded wait, longer than the bound so a miss is measured). */
const POLL_LIMIT_MS = 1500;

type Target = { name: string; backend: 'sqlite' | 'postgres'; replica: boolean };
const TARGETS: Target[] = [
  { name: 'the vault of the authority process (SQLite)', backend: 'sqlite', replica: false },
  { name: 'the vault of the authority process (PostgreSQL)', backend: 'postgres', replica: false },
  { name: 'an `openmsi vault` replica (PostgreSQL, LISTEN/NOTIFY)', backend: 'postgres', replica: true },
];

/** Milliseconds until `probe` held (polled every 10 ms), or undefined when `POLL_LIMIT_MS` ran out. */
async function msUntil(probe: () => Promise<boolean>): Promise<number | undefined> {
  const start = performance.now();
  while (performance.now() - start < POLL_LIMIT_MS) {
    if (await probe()) return Math.round(performance.now() - start);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return undefined;
}

function assertWithinBound(took: number | undefined, what: string): void {
  assert.ok(took !== undefined, `${what}: still served ${String(POLL_LIMIT_MS)} ms after the change`);
  assert.ok(took <= BOUND_MS, `${what}: refused only after ${String(took)} ms (bound ${String(BOUND_MS)} ms)`);
}

const policy = (tenantId: string, objectId: string, secrets: string[]): AccessPolicyEntry => ({
  tenantId,
  objectId,
  permissions: { keys: [], secrets, certificates: [], storage: [] },
});

for (const target of TARGETS) {
  describe(`revocation reaches ${target.name} within 1 s`, { skip: backendSkipReason(target.backend), timeout: 180_000 }, () => {
    let t: TestAuthority;
    let replica: VaultReplica | undefined;
    let vaultPort: number;
    const rbacOptions = { builtInRoles: BUILTIN_ROLES, clock: systemClock };
    let rbacVault: string;
    let policyVault: string;
    let writer: { appId: string; objectId: string; secret: string };

    /** An access token for `principal` from the authority's own issuer (as its token endpoint would issue it). */
    const tokenFor = (principal: ServicePrincipal) =>
      t.ctx.tokens.issue({
        tenantId: t.tenantId,
        principal,
        resource: VAULT_AUDIENCE,
        authMethod: principal.kind === 'Application' ? 'secret' : 'managed-identity',
      }).accessToken;
    const principal = async (objectId: string) => (await t.ctx.store.servicePrincipals.getByObjectId(objectId))!;
    const app = async (name: string) => {
      const registered = await registerTestApplication(t, name, { certificate: false });
      return { ...registered, token: tokenFor(await principal(registered.objectId)) };
    };

    /** The status of reading the vault's secret with `token`, from the target. */
    async function read(vault: string, token: string): Promise<number> {
      const path = '/secrets/shared?api-version=7.4';
      if (replica === undefined) {
        const response = await t.authority.vaultApp.inject({
          method: 'GET',
          url: path,
          headers: { host: `${vault}.vault.localhost:${String(vaultPort)}`, authorization: `Bearer ${token}` },
        });
        return response.statusCode;
      }
      return (
        await vaultRequest(`https://${vault}.vault.localhost:${String(vaultPort)}${path}`, { ca: t.caPem, headers: { authorization: `Bearer ${token}` } })
      ).status;
    }

    /** Reads once (200: the vault now caches the token and the decision), then `change`; the ms until refused with `status`. */
    async function refusedAfter(vault: string, token: string, status: number, change: () => Promise<unknown>): Promise<number | undefined> {
      // A grant made just before reaches a replica through its change feed: wait for it (bounded), then the caches.
      assert.ok((await msUntil(async () => (await read(vault, token)) === 200)) !== undefined, 'served before the change');
      assert.equal(await read(vault, token), 200, 'served from the caches before the change');
      await change();
      return msUntil(async () => (await read(vault, token)) === status);
    }

    const setPolicies = (entries: AccessPolicyEntry[]) =>
      putVault(t.ctx.store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: RG,
        name: policyVault,
        properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: false, accessPolicies: entries },
        clock: systemClock,
        permissionModelChange: ALLOW_PERMISSION_MODEL_CHANGE,
      });
    /** Grants `objectId` secret reads on the access-policy vault, keeping the writer's entry. */
    const grantPolicy = (...objectIds: string[]) =>
      setPolicies([policy(t.tenantId, writer.objectId, ['set', 'get']), ...objectIds.map((id) => policy(t.tenantId, id, ['get']))]);

    before(async () => {
      t = await startTestAuthority({ backend: target.backend });
      const store = t.ctx.store;
      await putResourceGroup(store, { subscriptionId: t.subscriptionId, name: RG, location: 'local', clock: systemClock });
      rbacVault = 'kv-revoke-rbac';
      policyVault = 'kv-revoke-policy';
      const rbac = await putVault(store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: RG,
        name: rbacVault,
        properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true },
        clock: systemClock,
        permissionModelChange: ALLOW_PERMISSION_MODEL_CHANGE,
      });
      writer = await registerTestApplication(t, 'revoke-writer', { certificate: false });
      await putRoleAssignment(store, rbacOptions, {
        tenantId: t.tenantId,
        scope: rbac.vault.resourceId,
        roleDefinitionId: SECRETS_OFFICER,
        principalId: writer.objectId,
        by: 'test',
      });
      await grantPolicy();
      const writerToken = tokenFor(await principal(writer.objectId));
      for (const vault of [rbacVault, policyVault]) {
        const set = await t.authority.vaultApp.inject({
          method: 'PUT',
          url: '/secrets/shared?api-version=7.4',
          headers: { host: `${vault}.vault.localhost:${new URL(t.url).port}`, authorization: `Bearer ${writerToken}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ value: 'revocable' }),
        });
        assert.equal(set.statusCode, 200, set.body);
      }
      if (target.replica) {
        replica = await createVaultReplica({ dataDir: t.dataDir, store: t.storeLocation, port: 0, host: '127.0.0.1', logger: captureLogs().logger });
        vaultPort = await replica.listen();
      } else {
        vaultPort = Number(new URL(t.url).port);
      }
    });
    after(async () => {
      await replica?.close();
      await t?.close();
    });

    /** A reader holding Key Vault Secrets User on the RBAC vault. */
    async function rbacReader(name: string) {
      const reader = await app(name);
      const { assignment } = await putRoleAssignment(t.ctx.store, rbacOptions, {
        tenantId: t.tenantId,
        scope: `/subscriptions/${t.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${rbacVault}`,
        roleDefinitionId: SECRETS_USER,
        principalId: reader.objectId,
        by: 'test',
      });
      return { ...reader, assignment };
    }

    /** A user holding Key Vault Secrets User on the RBAC vault, with a delegated token as the password grant issues it. */
    async function rbacUser(name: string) {
      const domain = (await t.ctx.store.tenants.get(t.tenantId))!.defaultDomain;
      const user = await createUser(t.ctx.store, {
        tenantId: t.tenantId,
        displayName: name,
        userPrincipalName: `${name}@${domain}`,
        password: 'Rev0ke-Passw0rd!',
        clock: systemClock,
      });
      await putRoleAssignment(t.ctx.store, rbacOptions, {
        tenantId: t.tenantId,
        scope: `/subscriptions/${t.subscriptionId}/resourceGroups/${RG}/providers/Microsoft.KeyVault/vaults/${rbacVault}`,
        roleDefinitionId: SECRETS_USER,
        principalId: user.objectId,
        by: 'test',
      });
      const token = t.ctx.tokens.issue({
        tenantId: t.tenantId,
        principal: { objectId: user.objectId, appId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46' },
        user: { objectId: user.objectId, userPrincipalName: user.userPrincipalName, displayName: name, scp: 'user_impersonation', amr: ['pwd'] },
        resource: VAULT_AUDIENCE,
        authMethod: 'public',
      }).accessToken;
      return { user, token };
    }

    it('invariant: a user deleted, or its account disabled, is refused with every token the vault had verified, within 1 s', async () => {
      const deleted = await rbacUser('revoke-user-deleted');
      assertWithinBound(
        await refusedAfter(rbacVault, deleted.token, 401, () => deleteUser(t.ctx.store, t.tenantId, deleted.user.objectId, systemClock)),
        'a deleted user',
      );
      const disabled = await rbacUser('revoke-user-disabled');
      assertWithinBound(
        await refusedAfter(rbacVault, disabled.token, 401, () =>
          updateUser(t.ctx.store, t.tenantId, disabled.user.objectId, { accountEnabled: false, clock: systemClock }),
        ),
        'a disabled user',
      );
    });

    it('invariant: a signing key revoked (keys rotate --revoke-previous) refuses every token the vault had verified, within 1 s; new tokens are served', async () => {
      const reader = await rbacReader('revoke-key');
      const oldKid = decodeProtectedHeader(reader.token).kid!;
      const took = await refusedAfter(rbacVault, reader.token, 401, async () => {
        const admin = await t.adminToken('https://management.azure.com/');
        const rotated = await t.app.inject({
          method: 'POST',
          url: '/openmsi/keys/rotate',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          payload: JSON.stringify({ revokePrevious: true }),
        });
        assert.equal(rotated.statusCode, 200, rotated.body);
        assert.equal(rotated.json<{ previous: string }>().previous, oldKid);
      });
      assertWithinBound(took, 'a token signed by the revoked key');
      const fresh = tokenFor(await principal(reader.objectId));
      assert.notEqual(decodeProtectedHeader(fresh).kid, oldKid);
      assert.equal(await read(rbacVault, fresh), 200);
    });

    // Every way a principal goes: its tokens stay valid JWTs, and an access policy naming it stays behind
    // (Azure keeps such entries too), so only the token cache's own invalidation can refuse them.
    const deletions: { kind: string; make(): Promise<{ objectId: string; remove(): Promise<unknown> }> }[] = [
      {
        kind: 'service principal (application)',
        async make() {
          const registered = await registerTestApplication(t, 'revoke-sp', { certificate: false });
          return { objectId: registered.objectId, remove: () => deleteApplicationPrincipal(t.ctx.store, registered.objectId) };
        },
      },
      {
        kind: 'user-assigned managed identity',
        async make() {
          const { principal: p } = await putUserAssignedIdentity(t.ctx.store, {
            subscriptionId: t.subscriptionId,
            resourceGroup: RG,
            name: 'revoke-uami',
            clock: systemClock,
          });
          return {
            objectId: p.objectId,
            remove: () =>
              deleteUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: RG, name: 'revoke-uami', clock: systemClock }),
          };
        },
      },
      {
        kind: 'host (its system-assigned identity)',
        async make() {
          const address = { subscriptionId: t.subscriptionId, resourceGroup: RG, type: 'Microsoft.HybridCompute/machines', name: 'revoke-host' };
          const put = await putResource(t.ctx.store, { ...address, identity: { type: 'SystemAssigned' }, clock: systemClock });
          assert.ok(put.systemPrincipalCreated !== null);
          return { objectId: put.systemPrincipalCreated, remove: () => deleteResource(t.ctx.store, { ...address, clock: systemClock }) };
        },
      },
    ];
    for (const deletion of deletions) {
      it(`invariant: a deleted ${deletion.kind} is refused with the tokens the vault had cached, within 1 s`, async () => {
        const made = await deletion.make();
        await grantPolicy(made.objectId);
        const token = tokenFor(await principal(made.objectId));
        const took = await refusedAfter(policyVault, token, 401, () => made.remove());
        assertWithinBound(took, `a token of the deleted ${deletion.kind}`);
        assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(made.objectId), undefined);
      });
    }

    it('invariant: a role assignment deleted is refused within 1 s (cached decision)', async () => {
      const reader = await rbacReader('revoke-assignment');
      const took = await refusedAfter(rbacVault, reader.token, 403, () =>
        deleteRoleAssignment(t.ctx.store, { tenantId: t.tenantId, id: reader.assignment.id }),
      );
      assertWithinBound(took, 'a reader whose assignment was deleted');
    });

    it('invariant: a role definition narrowed is refused within 1 s (cached decision)', async () => {
      const reader = await app('revoke-definition');
      const scope = `/subscriptions/${t.subscriptionId}/resourceGroups/${RG}`;
      const { definition } = await putRoleDefinition(t.ctx.store, rbacOptions, {
        tenantId: t.tenantId,
        roleName: 'Revocable secret reader',
        permissions: [{ actions: [], dataActions: [GET_SECRET] }],
        assignableScopes: [scope],
        by: 'test',
      });
      await putRoleAssignment(t.ctx.store, rbacOptions, {
        tenantId: t.tenantId,
        scope,
        roleDefinitionId: definition.id,
        principalId: reader.objectId,
        by: 'test',
      });
      const took = await refusedAfter(rbacVault, reader.token, 403, () =>
        putRoleDefinition(t.ctx.store, rbacOptions, {
          tenantId: t.tenantId,
          id: definition.id,
          roleName: 'Revocable secret reader',
          permissions: [{ actions: [], dataActions: ['Microsoft.KeyVault/vaults/secrets/readMetadata/action'] }],
          assignableScopes: [scope],
          by: 'test',
        }),
      );
      assertWithinBound(took, 'a reader whose role lost the data action');
    });

    it('invariant: a deny assignment added is refused within 1 s (cached decision)', async () => {
      const reader = await rbacReader('revoke-deny');
      const took = await refusedAfter(rbacVault, reader.token, 403, () =>
        createDenyAssignment(t.ctx.store, rbacOptions, {
          tenantId: t.tenantId,
          scope: `/subscriptions/${t.subscriptionId}/resourceGroups/${RG}`,
          by: 'test',
          properties: {
            denyAssignmentName: 'no secrets for revoke-deny',
            permissions: [{ dataActions: ['*'] }],
            principals: [{ id: reader.objectId, type: 'ServicePrincipal' }],
          },
        }),
      );
      assertWithinBound(took, 'a reader denied');
    });

    it('invariant: a group membership removed is refused within 1 s (cached decision)', async () => {
      const reader = await app('revoke-member');
      const group = await createGroup(t.ctx.store, {
        tenantId: t.tenantId,
        displayName: 'revocable readers',
        mailNickname: 'revocable-readers',
        clock: systemClock,
      });
      await addGroupMember(t.ctx.store, { tenantId: t.tenantId, groupId: group.objectId, memberId: reader.objectId, clock: systemClock });
      await putRoleAssignment(t.ctx.store, rbacOptions, {
        tenantId: t.tenantId,
        scope: `/subscriptions/${t.subscriptionId}/resourceGroups/${RG}`,
        roleDefinitionId: SECRETS_USER,
        principalId: group.objectId,
        principalType: 'Group',
        by: 'test',
      });
      const took = await refusedAfter(rbacVault, reader.token, 403, () =>
        removeGroupMember(t.ctx.store, { tenantId: t.tenantId, groupId: group.objectId, memberId: reader.objectId }),
      );
      assertWithinBound(took, 'a reader removed from the granting group');
    });

    it('invariant: a client secret deleted gets no new token at once; a token it already got stays valid to exp, as in Entra ID', async () => {
      const reader = await rbacReader('revoke-credential');
      const grant = () =>
        t.app.inject({
          method: 'POST',
          url: `/${t.tenantId}/oauth2/v2.0/token`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: new URLSearchParams({
            grant_type: 'client_credentials',
            client_id: reader.appId,
            client_secret: reader.secret,
            scope: `${VAULT_AUDIENCE}/.default`,
          }).toString(),
        });
      const issued = await grant();
      assert.equal(issued.statusCode, 200, issued.body);
      const token = issued.json<{ access_token: string }>().access_token;
      assert.equal(await read(rbacVault, token), 200);
      assert.ok((await t.ctx.store.credentials.deleteByApp(reader.appId)) > 0);
      assert.equal((await grant()).statusCode, 401, 'no cache of credentials: the next request is refused');
      assert.equal(await read(rbacVault, token), 200, 'a bearer token outlives the credential it was obtained with');
    });

    it('invariant: an access policy removed is refused within 1 s (cached vault)', async () => {
      const reader = await app('revoke-policy');
      await grantPolicy(reader.objectId);
      const took = await refusedAfter(policyVault, reader.token, 403, () => grantPolicy());
      assertWithinBound(took, 'a reader whose access policy was removed');
    });
  });
}
