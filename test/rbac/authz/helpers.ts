import { randomUUID } from 'node:crypto';
import assert from 'node:assert/strict';
import { httpsRequest, postForm, type HttpsResponse } from '../../support/https.js';
import { registerTestApplication, type TestApplication, type TestAuthority } from '../../support/authority.js';

export const ARM = 'https://management.azure.com/';
export const GRAPH = 'https://graph.microsoft.com';
export const V = 'api-version=2023-01-31';
export const RBAC_V = 'api-version=2022-04-01';

export const ROLE = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  UserAccessAdministrator: '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  ManagedIdentityContributor: 'e40ec5ca-96e0-45a2-b4ff-59039f2c2b59',
  ManagedIdentityOperator: 'f1a07417-d97a-45cb-824c-7a7467783830',
  KeyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
} as const;

/** A client-credentials token through the authority's real token endpoint. */
export async function clientToken(t: TestAuthority, appId: string, secret: string, audience = ARM): Promise<string> {
  const response = await postForm(
    `${t.url}/${t.tenantId}/oauth2/v2.0/token`,
    { grant_type: 'client_credentials', client_id: appId, client_secret: secret, scope: `${audience.replace(/\/$/, '')}/.default` },
    t.caPem,
  );
  assert.equal(response.status, 200, response.body);
  return response.json<{ access_token: string }>().access_token;
}

export function call(t: TestAuthority, method: string, path: string, token: string, body?: unknown): Promise<HttpsResponse> {
  return httpsRequest(`${t.url}${path}`, {
    method,
    ca: t.caPem,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** `{scope}` as a path prefix (`/` is the root: `/providers/...`). */
export const under = (scope: string) => (scope === '/' ? '' : scope);

/** `{scope}/providers/Microsoft.Authorization/{type}[/{guid}]?api-version=…`. */
export function authorizationPath(scope: string, type: 'roleAssignments' | 'roleDefinitions' | 'denyAssignments', guid?: string): string {
  return `${under(scope)}/providers/Microsoft.Authorization/${type}${guid === undefined ? '' : `/${guid}`}?${RBAC_V}`;
}

/** A registered application (client secret only) with an ARM token. */
export type TestPrincipal = TestApplication & { token: string };

export async function testPrincipal(t: TestAuthority, name: string): Promise<TestPrincipal> {
  const app = await registerTestApplication(t, name, { certificate: false });
  return { ...app, token: await clientToken(t, app.appId, app.secret) };
}

/** Creates a role assignment through the ARM API; returns its id (GUID). */
export async function assignRole(
  t: TestAuthority,
  adminToken: string,
  scope: string,
  roleGuid: string,
  principalId: string,
  principalType = 'ServicePrincipal',
): Promise<string> {
  const id = randomUUID();
  const response = await call(t, 'PUT', `${under(scope)}/providers/Microsoft.Authorization/roleAssignments/${id}?${RBAC_V}`, adminToken, {
    properties: { roleDefinitionId: `${under(scope)}/providers/Microsoft.Authorization/roleDefinitions/${roleGuid}`, principalId, principalType },
  });
  assert.ok(response.status === 201 || response.status === 200, `assignment: ${String(response.status)} ${response.body}`);
  return id;
}

export async function deleteAssignment(t: TestAuthority, adminToken: string, scope: string, id: string): Promise<void> {
  const response = await call(t, 'DELETE', `${under(scope)}/providers/Microsoft.Authorization/roleAssignments/${id}?${RBAC_V}`, adminToken);
  assert.equal(response.status, 200, response.body);
}

/** ARM's refusal body, exactly. */
export function expectAuthorizationFailed(response: HttpsResponse, appId: string, objectId: string, action: string, scope: string): void {
  assert.equal(response.status, 403, response.body);
  assert.deepEqual(response.json(), {
    error: {
      code: 'AuthorizationFailed',
      message: `The client '${appId}' with object id '${objectId}' does not have authorization to perform action '${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
    },
  });
}

/** Writes a role assignment straight into the store (as the management API does), bumping the tenant's version. */
export async function assignRoleInStore(
  t: TestAuthority,
  scope: string,
  roleGuid: string,
  principalId: string,
  principalType: 'ServicePrincipal' | 'Group' = 'ServicePrincipal',
): Promise<string> {
  const id = randomUUID();
  const now = Date.now();
  await t.ctx.store.transaction(async (tx) => {
    assert.ok(
      await tx.roleAssignments.create({
        id,
        tenantId: t.tenantId,
        scope,
        roleDefinitionId: roleGuid,
        principalId,
        principalType,
        description: null,
        createdAt: now,
        createdBy: 'test',
        updatedAt: now,
        updatedBy: 'test',
      }),
    );
    await tx.rbacVersions.bump(t.tenantId);
  });
  return id;
}

export async function deleteAssignmentInStore(t: TestAuthority, id: string): Promise<void> {
  await t.ctx.store.transaction(async (tx) => {
    assert.ok(await tx.roleAssignments.delete(t.tenantId, id));
    await tx.rbacVersions.bump(t.tenantId);
  });
}

/** Polls `probe` until it returns true; the milliseconds it took (undefined when `limitMs` ran out). */
export async function timeUntil(probe: () => Promise<boolean>, limitMs: number, stepMs = 5): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < limitMs) {
    if (await probe()) return Date.now() - start;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  return undefined;
}
