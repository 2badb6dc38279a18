/**
 * `Microsoft.Authorization/roleAssignments` at any scope: PUT/GET/DELETE one, list with ARM's `$filter`
 * (`atScope()`, `principalId eq '…'`, `assignedTo('…')`). Authorisation is not decided here: each route names
 * its ARM action (see `authorizationRoutes`) for the authoriser to check.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { scopeKey } from '../rbac/scopes.js';
import { canonicalScope } from './resource-ids.js';
import type { StoredRoleAssignment } from '../store/types.js';
import { deleteRoleAssignment, getRoleAssignment, listRoleAssignments, putRoleAssignment } from '../directory/rbac.js';
import { DirectoryErrors } from '../directory/errors.js';
import type { ManagementContext } from './context.js';
import { audited, jsonObject, type RouteHandler } from './common.js';
import { armRoleDefinitionId, authorizationAddress, authorizationFilter, authorizationId, authorizationRoutes, isoOrNull } from './authorization-common.js';

export const ROLE_ASSIGNMENT_TYPE = 'Microsoft.Authorization/roleAssignments';

export interface ArmRoleAssignment {
  id: string;
  name: string;
  type: typeof ROLE_ASSIGNMENT_TYPE;
  properties: {
    roleDefinitionId: string;
    principalId: string;
    principalType: string;
    scope: string;
    condition: null;
    conditionVersion: null;
    createdOn: string | null;
    updatedOn: string | null;
    createdBy: string;
    updatedBy: string;
    delegatedManagedIdentityResourceId: null;
    description: string | null;
  };
}

export function armRoleAssignmentView(a: StoredRoleAssignment): ArmRoleAssignment {
  return {
    id: authorizationId(a.scope, 'roleAssignments', a.id),
    name: a.id,
    type: ROLE_ASSIGNMENT_TYPE,
    properties: {
      roleDefinitionId: armRoleDefinitionId(a.scope, a.roleDefinitionId),
      principalId: a.principalId,
      principalType: a.principalType,
      scope: a.scope,
      condition: null,
      conditionVersion: null,
      createdOn: isoOrNull(a.createdAt),
      updatedOn: isoOrNull(a.updatedAt),
      createdBy: a.createdBy,
      updatedBy: a.updatedBy,
      delegatedManagedIdentityResourceId: null,
      description: a.description,
    },
  };
}

/** The handlers, shared with the resource-scope wildcard. */
export function roleAssignmentHandlers(ctx: ManagementContext): { list: RouteHandler; get: RouteHandler; put: RouteHandler; delete: RouteHandler } {
  const options = { builtInRoles: BUILTIN_ROLES, clock: ctx.clock };
  const address = (request: FastifyRequest) => authorizationAddress(ctx, request, 'roleAssignments');
  return {
    async list(request) {
      const a = await address(request);
      const filter = authorizationFilter(request);
      const items = await listRoleAssignments(ctx.store, {
        tenantId: a.tenantId,
        scope: a.scope,
        atScope: filter.atScope,
        ...(filter.principalId === undefined ? {} : { principalId: filter.principalId }),
        ...(filter.assignedTo === undefined ? {} : { assignedTo: filter.assignedTo }),
        ...(filter.roleDefinitionId === undefined ? {} : { roleDefinitionId: filter.roleDefinitionId }),
      });
      return { value: items.map(armRoleAssignmentView) };
    },

    async get(request) {
      const a = await address(request);
      return armRoleAssignmentView(await getRoleAssignment(ctx.store, { tenantId: a.tenantId, id: a.name ?? '', scope: a.scope }));
    },

    async put(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const target = authorizationId(a.scope, 'roleAssignments', name);
      const actor = a.caller.principal.objectId;
      const { assignment, created } = await audited(ctx, { tenantId: a.tenantId, actor, action: 'roleAssignment.write', target }, async () => {
        const body = jsonObject(request.body);
        const properties = body['properties'];
        if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
          throw DirectoryErrors.invalidRoleAssignmentRequest('the body must be { properties: { roleDefinitionId, principalId, ... } }');
        }
        const p = properties as Record<string, unknown>;
        // The body's scope, parsed by the one parser (400 `InvalidScope`), must be the path's canonical scope.
        if (typeof p['scope'] === 'string' && canonicalScope(p['scope']).key !== scopeKey(a.scope)) {
          throw DirectoryErrors.invalidRoleAssignmentRequest("'properties.scope' differs from the scope in the path");
        }
        const written = await putRoleAssignment(ctx.store, options, {
          tenantId: a.tenantId,
          id: name,
          scope: a.scope,
          roleDefinitionId: p['roleDefinitionId'],
          principalId: p['principalId'],
          principalType: p['principalType'],
          description: p['description'],
          condition: p['condition'],
          conditionVersion: p['conditionVersion'],
          by: actor,
        });
        return {
          result: written,
          action: written.created ? 'roleAssignment.created' : 'roleAssignment.updated',
          detail: { roleDefinitionId: written.assignment.roleDefinitionId, principalId: written.assignment.principalId, scope: written.assignment.scope },
        };
      });
      return reply.code(created ? 201 : 200).send(armRoleAssignmentView(assignment));
    },

    async delete(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const target = authorizationId(a.scope, 'roleAssignments', name);
      const deleted = await audited(ctx, { tenantId: a.tenantId, actor: a.caller.principal.objectId, action: 'roleAssignment.deleted', target }, async () => {
        const removed = await deleteRoleAssignment(ctx.store, { tenantId: a.tenantId, id: name, scope: a.scope });
        return removed === undefined
          ? { result: removed, detail: { existed: false } }
          : { result: removed, detail: { roleDefinitionId: removed.roleDefinitionId, principalId: removed.principalId, scope: removed.scope } };
      });
      return deleted === undefined ? reply.code(204).send() : reply.code(200).send(armRoleAssignmentView(deleted));
    },
  };
}

export function roleAssignmentRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const h = roleAssignmentHandlers(ctx);
  const type = 'roleAssignments';
  authorizationRoutes(app, ctx, { method: 'GET', type, one: false, armAction: `${ROLE_ASSIGNMENT_TYPE}/read`, handler: h.list });
  authorizationRoutes(app, ctx, { method: 'GET', type, one: true, armAction: `${ROLE_ASSIGNMENT_TYPE}/read`, handler: h.get });
  authorizationRoutes(app, ctx, { method: 'PUT', type, one: true, armAction: `${ROLE_ASSIGNMENT_TYPE}/write`, handler: h.put });
  authorizationRoutes(app, ctx, { method: 'DELETE', type, one: true, armAction: `${ROLE_ASSIGNMENT_TYPE}/delete`, handler: h.delete });
}
