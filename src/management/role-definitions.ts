/**
 * `Microsoft.Authorization/roleDefinitions` at any scope: list (built-ins and the tenant's custom roles, with
 * `$filter=roleName eq '…'` / `type eq '…'`), GET one, PUT (create or update a custom role), DELETE.
 *
 * A custom role is a tenant object, whatever path it is written through: changing it changes what every
 * assignment of it grants, at every scope it is assignable at. So a PUT needs `roleDefinitions/write` at
 * every assignable scope the role has now and every one the request gives it, and a DELETE needs
 * `roleDefinitions/delete` at every assignable scope it has, besides the action at the addressed scope.
 * Azure's rule: "Microsoft.Authorization/roleDefinitions/write permission on all the AssignableScopes"
 * (learn.microsoft.com/azure/role-based-access-control/custom-roles, "Who can create, delete, update, or
 * view a custom role").
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { normalizeScope, scopeError, scopeKey } from '../rbac/scopes.js';
import type { RoleDefinition } from '../rbac/contracts.js';
import type { CustomRoleDefinition } from '../store/types.js';
import { deleteRoleDefinition, getRoleDefinition, listRoleDefinitions, putRoleDefinition, roleDefinitionGuid } from '../directory/rbac.js';
import { DirectoryErrors } from '../directory/errors.js';
import type { ManagementContext } from './context.js';
import { audited, jsonObject, type RouteHandler } from './common.js';
import { requireAccess } from './authorize.js';
import { authorizationAddress, authorizationFilter, authorizationId, authorizationRoutes, isoOrNull } from './authorization-common.js';

export const ROLE_DEFINITION_TYPE = 'Microsoft.Authorization/roleDefinitions';

export interface ArmRoleDefinition {
  id: string;
  name: string;
  type: typeof ROLE_DEFINITION_TYPE;
  properties: {
    roleName: string;
    type: RoleDefinition['roleType'];
    description: string;
    assignableScopes: string[];
    permissions: Array<{ actions: string[]; notActions: string[]; dataActions: string[]; notDataActions: string[] }>;
    createdOn: string | null;
    updatedOn: string | null;
    createdBy: string | null;
    updatedBy: string | null;
  };
}

function isCustom(d: RoleDefinition): d is CustomRoleDefinition {
  return d.roleType === 'CustomRole' && 'createdAt' in d;
}

/** ARM's view; the id is under the subscription of the scope asked at (as ARM answers), or at the root. */
export function armRoleDefinitionView(d: RoleDefinition, scope: string): ArmRoleDefinition {
  const m = /^\/subscriptions\/([^/]+)/i.exec(scope);
  const custom = isCustom(d) ? d : undefined;
  return {
    id: authorizationId(m === null ? '/' : `/subscriptions/${m[1] ?? ''}`, 'roleDefinitions', d.id),
    name: d.id,
    type: ROLE_DEFINITION_TYPE,
    properties: {
      roleName: d.roleName,
      type: d.roleType,
      description: d.description,
      assignableScopes: [...d.assignableScopes],
      permissions: d.permissions.map((p) => ({
        actions: [...p.actions],
        notActions: [...p.notActions],
        dataActions: [...p.dataActions],
        notDataActions: [...p.notDataActions],
      })),
      createdOn: isoOrNull(custom?.createdAt),
      updatedOn: isoOrNull(custom?.updatedAt),
      createdBy: custom?.createdBy ?? null,
      updatedBy: custom?.updatedBy ?? null,
    },
  };
}

/** The stored custom role `name` addresses, when there is one (built-ins and bad ids are the directory's to refuse). */
async function storedCustomRole(ctx: ManagementContext, tenantId: string, name: string): Promise<CustomRoleDefinition | undefined> {
  const guid = roleDefinitionGuid(name);
  return guid === undefined ? undefined : ctx.store.roleDefinitions.get(tenantId, guid);
}

/** The requested `assignableScopes` that are valid scopes, canonical (the others are the directory's 400). */
function requestedScopes(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter((s): s is string => typeof s === 'string' && scopeError(s) === undefined).map(normalizeScope);
}

/** Requires `action` at each scope (once per scope); the keys of the scopes checked. */
async function requireAtEvery(ctx: ManagementContext, request: FastifyRequest, action: string, scopes: readonly string[]): Promise<Set<string>> {
  const checked = new Set<string>();
  for (const scope of scopes) {
    const key = scopeKey(scope);
    if (checked.has(key)) continue;
    await requireAccess(ctx, request, { action, scope });
    checked.add(key);
  }
  return checked;
}

/** Refuses, in the write's transaction, a scope that was not checked (the role changed after the checks). */
function allChecked(checked: ReadonlySet<string>, scopes: readonly string[]): void {
  if (scopes.some((s) => !checked.has(scopeKey(s)))) throw DirectoryErrors.changedWhileAuthorising("The role definition's assignable scopes");
}

export function roleDefinitionHandlers(ctx: ManagementContext): { list: RouteHandler; get: RouteHandler; put: RouteHandler; delete: RouteHandler } {
  const options = { builtInRoles: BUILTIN_ROLES, clock: ctx.clock };
  const address = (request: FastifyRequest) => authorizationAddress(ctx, request, 'roleDefinitions');
  return {
    async list(request) {
      const a = await address(request);
      const filter = authorizationFilter(request);
      const type = filter.type === 'CustomRole' || filter.type === 'BuiltInRole' ? filter.type : undefined;
      const items = await listRoleDefinitions(ctx.store, BUILTIN_ROLES, {
        tenantId: a.tenantId,
        ...(filter.roleName === undefined ? {} : { roleName: filter.roleName }),
        ...(type === undefined ? {} : { type }),
      });
      return { value: items.map((d) => armRoleDefinitionView(d, a.scope)) };
    },

    async get(request) {
      const a = await address(request);
      return armRoleDefinitionView(await getRoleDefinition(ctx.store, BUILTIN_ROLES, { tenantId: a.tenantId, id: a.name ?? '' }), a.scope);
    },

    async put(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const actor = a.caller.principal.objectId;
      const target = authorizationId(a.scope, 'roleDefinitions', name);
      const { definition, created } = await audited(ctx, { tenantId: a.tenantId, actor, action: 'roleDefinition.write', target }, async () => {
        const body = jsonObject(request.body);
        const properties = body['properties'];
        if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
          throw DirectoryErrors.invalidRoleDefinition('the body must be { properties: { roleName, permissions, assignableScopes, ... } }');
        }
        const p = properties as Record<string, unknown>;
        if (p['type'] !== undefined && p['type'] !== null && p['type'] !== 'CustomRole')
          throw DirectoryErrors.invalidRoleDefinition("'type' must be 'CustomRole'");
        // The write right at every assignable scope the role has and every one it is given (module comment).
        const before = await storedCustomRole(ctx, a.tenantId, name);
        const checked = await requireAtEvery(ctx, request, `${ROLE_DEFINITION_TYPE}/write`, [
          ...(before?.assignableScopes ?? []),
          ...requestedScopes(p['assignableScopes']),
        ]);
        const written = await putRoleDefinition(ctx.store, options, {
          tenantId: a.tenantId,
          id: name,
          roleName: p['roleName'],
          description: p['description'],
          permissions: p['permissions'],
          assignableScopes: p['assignableScopes'],
          by: actor,
          guard: (existing, assignableScopes) => allChecked(checked, [...(existing?.assignableScopes ?? []), ...assignableScopes]),
        });
        return {
          result: written,
          action: written.created ? 'roleDefinition.created' : 'roleDefinition.updated',
          detail: { roleName: written.definition.roleName, assignableScopes: written.definition.assignableScopes },
        };
      });
      return reply.code(created ? 201 : 200).send(armRoleDefinitionView(definition, a.scope));
    },

    async delete(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const target = authorizationId(a.scope, 'roleDefinitions', name);
      const deleted = await audited(ctx, { tenantId: a.tenantId, actor: a.caller.principal.objectId, action: 'roleDefinition.deleted', target }, async () => {
        // The delete right at every scope the role is assignable at (module comment).
        const before = await storedCustomRole(ctx, a.tenantId, name);
        const checked = await requireAtEvery(ctx, request, `${ROLE_DEFINITION_TYPE}/delete`, before?.assignableScopes ?? []);
        const removed = await deleteRoleDefinition(ctx.store, options, {
          tenantId: a.tenantId,
          id: name,
          guard: (existing) => allChecked(checked, existing.assignableScopes),
        });
        return removed === undefined ? { result: removed, detail: { existed: false } } : { result: removed, detail: { roleName: removed.roleName } };
      });
      return deleted === undefined ? reply.code(204).send() : reply.code(200).send(armRoleDefinitionView(deleted, a.scope));
    },
  };
}

export function roleDefinitionRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const h = roleDefinitionHandlers(ctx);
  const type = 'roleDefinitions';
  authorizationRoutes(app, ctx, { method: 'GET', type, one: false, armAction: `${ROLE_DEFINITION_TYPE}/read`, handler: h.list });
  authorizationRoutes(app, ctx, { method: 'GET', type, one: true, armAction: `${ROLE_DEFINITION_TYPE}/read`, handler: h.get });
  authorizationRoutes(app, ctx, { method: 'PUT', type, one: true, armAction: `${ROLE_DEFINITION_TYPE}/write`, handler: h.put });
  authorizationRoutes(app, ctx, { method: 'DELETE', type, one: true, armAction: `${ROLE_DEFINITION_TYPE}/delete`, handler: h.delete });
}
