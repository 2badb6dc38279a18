/**
 * Canonical resource ids at the edge of the management API (docs/security.md "Canonical ids"), end to end through
 * a running authority with real tokens: for every place a request carries a resource id (identity keys of
 * machines and other resources, role assignment scopes in the path and the body, role definition assignable
 * scopes, deny assignment scopes, vault ids), each spelling is either refused with a 400 (a path that no route
 * serves: 404) or treated exactly as the canonical id. Spellings come from test/support/spellings.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { registerTestApplication, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { httpsRequestRawPath, type HttpsResponse } from '../support/https.js';
import { asRequestPath, caseVariants, segmentsOf, spellings, type Spelling } from '../support/spellings.js';
import { assignRole, clientToken, expectAuthorizationFailed, RBAC_V, ROLE, V } from '../rbac/authz/helpers.js';

const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const ASSIGN = `${UAMI}/assign/action`;
const VAULT_V = 'api-version=2023-07-01';
const HOLDER_TYPES = ['Microsoft.Compute/virtualMachines', 'Microsoft.HybridCompute/machines', 'Microsoft.Web/sites'] as const;
const RUNS = { numRuns: 60 };

interface Principal {
  appId: string;
  objectId: string;
  token: string;
}

interface ErrorBody {
  error: { code: string; message: string };
}

describe('canonical resource ids at the management API edge', () => {
  let t: TestAuthority;
  let admin: string;
  let sub: string;
  /** Contributor of rg-a only. */
  let contributorA: Principal;
  /** User Access Administrator of rg-a only. */
  let accessAdminA: Principal;
  /** Owner of rg-a only. */
  let ownerA: Principal;
  /** A principal the role assignments and deny assignments name. */
  let target: Principal;
  const vaultName = (g: string) => `ids-${g}-${sub.slice(0, 8)}`;

  const group = (g: string) => `/subscriptions/${sub}/resourceGroups/${g}`;
  const identityId = (g: string, name: string) => `${group(g)}/providers/${UAMI}/${name}`;
  const vaultId = (g: string) => `${group(g)}/providers/Microsoft.KeyVault/vaults/${vaultName(g)}`;
  const holderPath = (type: string, name: string) => `${group('rg-a')}/providers/${type}/${name}`;

  /** Sends `path` as written (white space and non-ASCII percent-encoded, as a client must), with `query`. */
  function send(method: string, path: string, token: string, options: { body?: unknown; query?: string } = {}): Promise<HttpsResponse> {
    return httpsRequestRawPath(t.url, `${asRequestPath(path)}?${options.query ?? V}`, {
      method,
      ca: t.caPem,
      headers: { authorization: `Bearer ${token}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
  }

  async function principal(name: string, role: string): Promise<Principal> {
    const app = await registerTestApplication(t, name, { certificate: false });
    if (role !== '') await assignRole(t, admin, group('rg-a'), role, app.objectId);
    return { appId: app.appId, objectId: app.objectId, token: await clientToken(t, app.appId, app.secret) };
  }

  function expectCode(response: HttpsResponse, status: number, code: string, spelling: Spelling): void {
    const why = `${JSON.stringify(spelling)} → ${String(response.status)} ${response.body}`;
    assert.equal(response.status, status, why);
    assert.equal(response.json<ErrorBody>().error.code, code, why);
  }

  /**
   * ARM's 403 for `who`, naming `action` at the canonical id (compared as ARM compares ids: case-insensitively;
   * names keep the casing they were sent in).
   */
  function expectRefusedAt(r: HttpsResponse, who: Principal, action: string, canonical: string, spelling: Spelling): void {
    const why = `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`;
    assert.equal(r.status, 403, why);
    const { code, message } = r.json<ErrorBody>().error;
    assert.equal(code, 'AuthorizationFailed', why);
    const m =
      /^The client '([^']*)' with object id '([^']*)' does not have authorization to perform action '([^']*)' over scope '([^']*)' or the scope is invalid\./.exec(
        message,
      );
    assert.ok(m !== null, why);
    assert.deepEqual([m[1], m[2], m[3], m[4]?.toLowerCase()], [who.appId, who.objectId, action, canonical.toLowerCase()], why);
  }

  /** The user-assigned identities attached to a resource, as the admin reads them (none when it does not exist). */
  async function attachedTo(path: string): Promise<string[]> {
    const r = await send('GET', path, admin);
    if (r.status === 404) return [];
    assert.equal(r.status, 200, r.body);
    return Object.keys(r.json<{ identity?: { userAssignedIdentities?: Record<string, unknown> } }>().identity?.userAssignedIdentities ?? {});
  }

  before(async () => {
    t = await startTestAuthority();
    sub = t.subscriptionId;
    admin = await t.adminToken('https://management.azure.com/');
    for (const g of ['rg-a', 'rg-b']) {
      assert.equal((await send('PUT', group(g), admin, { body: { location: 'westeurope' } })).status, 201);
      assert.equal((await send('PUT', identityId(g, `id-${g}`), admin, { body: { location: 'westeurope' } })).status, 201);
      const vault = await send('PUT', vaultId(g), admin, {
        query: VAULT_V,
        body: { location: 'westeurope', properties: { tenantId: t.tenantId, sku: { family: 'A', name: 'standard' }, accessPolicies: [] } },
      });
      assert.equal(vault.status, 201, vault.body);
    }
    contributorA = await principal('ids-contributor-a', ROLE.Contributor);
    accessAdminA = await principal('ids-access-admin-a', ROLE.UserAccessAdministrator);
    ownerA = await principal('ids-owner-a', ROLE.Owner);
    target = await principal('ids-target', '');
  });
  after(async () => {
    await t.close();
  });

  describe('identity.userAssignedIdentities keys', () => {
    const withIdentity = (id: string) => ({ location: 'westeurope', identity: { type: 'UserAssigned', userAssignedIdentities: { [id]: {} } } });

    it("invariant: a Contributor of one group cannot attach another group's identity by spelling its id /SUBSCRIPTIONS/… or /Subscriptions/… (finding 1)", async () => {
      const canonical = identityId('rg-b', 'id-rg-b');
      for (const prefix of ['/SUBSCRIPTIONS/', '/Subscriptions/', '/subscriptionS/']) {
        const spelled = canonical.replace('/subscriptions/', prefix);
        const vm = holderPath('Microsoft.Compute/virtualMachines', 'finding-1-vm');
        const r = await send('PUT', vm, contributorA.token, { body: withIdentity(spelled) });
        expectAuthorizationFailed(r, contributorA.appId, contributorA.objectId, ASSIGN, canonical);
        assert.deepEqual(await attachedTo(vm), []);
      }
    });

    it("invariant: every spelling of another group's identity is refused, 403 when it names it and 400 LinkedInvalidPropertyId when it does not parse, and never attached (property)", async () => {
      const canonical = identityId('rg-b', 'id-rg-b');
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...HOLDER_TYPES), spellings(segmentsOf(canonical)), async (type, spelling) => {
          const r = await send('PUT', holderPath(type, 'holder-b'), contributorA.token, { body: withIdentity(spelling.text) });
          if (spelling.equivalent) expectRefusedAt(r, contributorA, ASSIGN, canonical, spelling);
          else expectCode(r, 400, 'LinkedInvalidPropertyId', spelling);
        }),
        RUNS,
      );
      for (const type of HOLDER_TYPES) assert.deepEqual(await attachedTo(holderPath(type, 'holder-b')), []);
    });

    it('invariant: a spelling of an identity the caller may assign attaches exactly the canonical identity, or is refused 400 (property)', async () => {
      const canonical = identityId('rg-a', 'id-rg-a');
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...HOLDER_TYPES), spellings(segmentsOf(canonical)), async (type, spelling) => {
          const r = await send('PUT', holderPath(type, 'holder-a'), contributorA.token, { body: withIdentity(spelling.text) });
          if (!spelling.equivalent) return expectCode(r, 400, 'LinkedInvalidPropertyId', spelling);
          assert.ok(r.status === 200 || r.status === 201, `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
          const attached = Object.keys(r.json<{ identity: { userAssignedIdentities: Record<string, unknown> } }>().identity.userAssignedIdentities);
          assert.deepEqual(attached, [canonical]);
        }),
        RUNS,
      );
    });

    it('refuses keys that name one identity twice, and keys of anything but a top-level user-assigned identity (400)', async () => {
      const canonical = identityId('rg-a', 'id-rg-a');
      const vm = holderPath('Microsoft.Compute/virtualMachines', 'twice');
      const twice = { location: 'westeurope', identity: { type: 'UserAssigned', userAssignedIdentities: { [canonical]: {}, [canonical.toUpperCase()]: {} } } };
      const r = await send('PUT', vm, contributorA.token, { body: twice });
      assert.equal(r.status, 400, r.body);
      assert.equal(r.json<ErrorBody>().error.code, 'InvalidIdentity');
      for (const id of [
        `${group('rg-a')}/providers/Microsoft.Compute/virtualMachines/vm1`,
        `${canonical}/providers/${UAMI}/nested`,
        `${group('rg-a')}/providers/Microsoft.Compute/virtualMachines/vm1/providers/${UAMI}/extension`,
        group('rg-a'),
        'id-rg-a',
        '',
      ]) {
        const refused = await send('PUT', vm, contributorA.token, { body: withIdentity(id) });
        assert.equal(refused.status, 400, `${id}: ${refused.body}`);
        assert.equal(refused.json<ErrorBody>().error.code, 'LinkedInvalidPropertyId', id);
      }
      assert.deepEqual(await attachedTo(vm), []);
    });
  });

  describe('role assignment scopes', () => {
    const assignmentBody = (scope?: string) => ({
      properties: {
        roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/${ROLE.Reader}`,
        principalId: target.objectId,
        principalType: 'ServicePrincipal',
        ...(scope === undefined ? {} : { scope }),
      },
    });
    const assignmentPath = (scope: string, id: string) => `${scope.replace(/\/$/, '')}/providers/Microsoft.Authorization/roleAssignments/${id}`;

    /** The 201's scope must be the canonical one; the assignment is then removed so that the next run can create it again. */
    async function expectCreatedAt(r: HttpsResponse, canonical: string, id: string, spelling: Spelling): Promise<void> {
      assert.equal(r.status, 201, `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
      assert.equal(r.json<{ properties: { scope: string } }>().properties.scope.toLowerCase(), canonical.toLowerCase(), JSON.stringify(spelling));
      assert.equal((await send('DELETE', assignmentPath(canonical, id), accessAdminA.token, { query: RBAC_V })).status, 200);
    }

    it("invariant: a User Access Administrator of one group cannot assign roles at another group's scope, however the path spells it (property)", async () => {
      const canonical = group('rg-b');
      const action = 'Microsoft.Authorization/roleAssignments/write';
      await fc.assert(
        fc.asyncProperty(spellings(segmentsOf(canonical)), async (spelling) => {
          const r = await send('PUT', assignmentPath(spelling.text, randomUUID()), accessAdminA.token, { query: RBAC_V, body: assignmentBody() });
          if (spelling.equivalent) return expectRefusedAt(r, accessAdminA, action, canonical, spelling);
          assert.ok([400, 403, 404].includes(r.status), `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
        }),
        RUNS,
      );
    });

    it('invariant: a path spelling of a scope the caller may assign at creates the assignment at the canonical scope, or is refused (property)', async () => {
      const canonical = group('rg-a');
      await fc.assert(
        fc.asyncProperty(spellings(segmentsOf(canonical)), async (spelling) => {
          const id = randomUUID();
          const r = await send('PUT', assignmentPath(spelling.text, id), accessAdminA.token, { query: RBAC_V, body: assignmentBody() });
          if (spelling.equivalent || r.status === 201) return expectCreatedAt(r, canonical, id, spelling);
          assert.ok([400, 404].includes(r.status), `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
        }),
        RUNS,
      );
    });

    it("invariant: the body's properties.scope is parsed like the path's: a case variant of the path's scope is accepted, anything else is refused 400 (property)", async () => {
      const canonical = group('rg-a');
      const other = group('rg-b');
      await fc.assert(
        fc.asyncProperty(fc.boolean(), spellings(segmentsOf(canonical)), spellings(segmentsOf(other)), async (same, mine, theirs) => {
          const spelling = same ? mine : theirs;
          const id = randomUUID();
          const r = await send('PUT', assignmentPath(canonical, id), accessAdminA.token, { query: RBAC_V, body: assignmentBody(spelling.text) });
          if (same && spelling.equivalent) return expectCreatedAt(r, canonical, id, spelling);
          assert.equal(r.status, 400, `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
        }),
        RUNS,
      );
    });
  });

  describe('role definition assignable scopes', () => {
    const definitionPath = (id: string) => `${group('rg-a')}/providers/Microsoft.Authorization/roleDefinitions/${id}`;
    const definition = (scope: string) => ({
      properties: {
        roleName: `ids-role-${randomUUID()}`,
        type: 'CustomRole',
        permissions: [{ actions: ['Microsoft.Resources/subscriptions/resourceGroups/read'], notActions: [] }],
        assignableScopes: [scope],
      },
    });

    for (const g of ['rg-a', 'rg-b']) {
      it(`invariant: a spelling of ${g} in assignableScopes is answered as the canonical scope is (and stored canonical), or refused 400 (property)`, async () => {
        const canonical = group(g);
        const reference = await send('PUT', definitionPath(randomUUID()), ownerA.token, { query: RBAC_V, body: definition(canonical) });
        await fc.assert(
          fc.asyncProperty(spellings(segmentsOf(canonical)), async (spelling) => {
            const r = await send('PUT', definitionPath(randomUUID()), ownerA.token, { query: RBAC_V, body: definition(spelling.text) });
            const why = `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body} (canonical: ${String(reference.status)})`;
            if (!spelling.equivalent) return assert.equal(r.status, 400, why);
            assert.equal(r.status, reference.status, why);
            if (r.status === 201) {
              assert.deepEqual(
                r.json<{ properties: { assignableScopes: string[] } }>().properties.assignableScopes.map((x) => x.toLowerCase()),
                [canonical.toLowerCase()],
                why,
              );
            }
          }),
          { numRuns: 40 },
        );
      });
    }
  });

  describe('deny assignment scopes', () => {
    it('invariant: a path spelling of a deny assignment scope creates it at the canonical scope, or is refused (property)', async () => {
      const canonical = group('rg-a');
      await fc.assert(
        fc.asyncProperty(spellings(segmentsOf(canonical)), async (spelling) => {
          const id = randomUUID();
          const r = await send('PUT', `${spelling.text.replace(/\/$/, '')}/providers/Microsoft.Authorization/denyAssignments/${id}`, admin, {
            query: RBAC_V,
            body: {
              properties: {
                denyAssignmentName: `ids-deny-${id}`,
                permissions: [{ actions: ['Microsoft.Nothing/things/read'], notActions: [] }],
                principals: [{ id: target.objectId, type: 'ServicePrincipal' }],
              },
            },
          });
          const why = `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`;
          if (!spelling.equivalent && r.status !== 201) return assert.ok([400, 404].includes(r.status), why);
          assert.equal(r.status, 201, why);
          assert.equal(r.json<{ properties: { scope: string } }>().properties.scope.toLowerCase(), canonical.toLowerCase(), why);
        }),
        { numRuns: 40 },
      );
    });
  });

  describe('vault ids', () => {
    it("invariant: a Contributor of one group can neither read nor change another group's vault, however the path spells its id (property)", async () => {
      const canonical = vaultId('rg-b');
      await fc.assert(
        fc.asyncProperty(fc.constantFrom('GET', 'PATCH'), spellings(segmentsOf(canonical)), async (method, spelling) => {
          const r = await send(method, spelling.text, contributorA.token, {
            query: VAULT_V,
            ...(method === 'PATCH' ? { body: { tags: { by: 'contributor-a' } } } : {}),
          });
          const action = `Microsoft.KeyVault/vaults/${method === 'GET' ? 'read' : 'write'}`;
          if (spelling.equivalent) return expectRefusedAt(r, contributorA, action, canonical, spelling);
          assert.ok([400, 403, 404].includes(r.status), `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`);
        }),
        RUNS,
      );
      const after = await send('GET', canonical, admin, { query: VAULT_V });
      assert.deepEqual(after.json<{ tags: Record<string, string> }>().tags, {});
    });

    it('invariant: a path spelling of a vault the caller may read addresses exactly that vault, or is refused (property)', async () => {
      const canonical = vaultId('rg-a');
      await fc.assert(
        fc.asyncProperty(spellings(segmentsOf(canonical)), async (spelling) => {
          const r = await send('GET', spelling.text, contributorA.token, { query: VAULT_V });
          const why = `${JSON.stringify(spelling)} → ${String(r.status)} ${r.body}`;
          if (!spelling.equivalent && r.status !== 200) return assert.ok([400, 404].includes(r.status), why);
          assert.equal(r.status, 200, why);
          assert.equal(r.json<{ id: string }>().id, canonical, why); // the stored vault's own id
        }),
        RUNS,
      );
    });

    it('refuses a path parameter that decodes to more than one segment or to white space (400 InvalidScope)', async () => {
      for (const path of [
        `${group('rg-a')}/providers/Microsoft.KeyVault/vaults/${vaultName('rg-a')}%2F..%2F${vaultName('rg-b')}`,
        `/subscriptions/${sub}/resourceGroups/rg-b%2Fproviders%2FMicrosoft.KeyVault%2Fvaults%2F${vaultName('rg-b')}/providers/Microsoft.KeyVault/vaults/${vaultName('rg-a')}`,
        `${group('rg-a')}/providers/Microsoft.KeyVault/vaults/%20${vaultName('rg-a')}`,
        `${group('rg-a')}%09/providers/Microsoft.KeyVault/vaults/${vaultName('rg-a')}`,
      ]) {
        const r = await send('GET', path, admin, { query: VAULT_V });
        assert.equal(r.status, 400, `${path}: ${r.body}`);
        assert.equal(r.json<ErrorBody>().error.code, 'InvalidScope', path);
      }
    });
  });

  it('case variants alone never change what a request addresses (the generator is sound)', () => {
    fc.assert(
      fc.property(
        caseVariants(['subscriptions', 'S', 'resourceGroups', 'rg']),
        (s) => s.equivalent && s.text.replace(/\/$/, '').toLowerCase() === '/subscriptions/s/resourcegroups/rg',
      ),
    );
  });
});
