/**
 * `Microsoft.Authorization/denyAssignments` at any scope. In Azure they are read-only (made by Blueprints,
 * managed applications and deployment stacks, never by a user); openmsi also lets an administrator PUT and
 * DELETE them, but only one holding the right at the tenant root: a deny can shut out anyone at and below
 * its scope, the root's Owners included, so creating or deleting one anywhere is a tenant-level act
 * (`denyAssignments/write` or `/delete` at `/`, beside the same action at the addressed scope). The
 * bootstrap admin's break-glass (`DENY_BREAK_GLASS_ACTIONS` in authorize.ts) keeps every deny deletable.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { StoredDenyAssignment } from '../store/types.js';
import { createDenyAssignment, deleteDenyAssignment, getDenyAssignment, listDenyAssignments } from '../directory/rbac.js';
import { DirectoryErrors } from '../directory/errors.js';
import type { ManagementContext } from './context.js';
import { audited, jsonObject, type RouteHandler } from './common.js';
import { requireAccess, ROOT_SCOPE } from './authorize.js';
import { authorizationAddress, authorizationFilter, authorizationId, authorizationRoutes, isoOrNull } from './authorization-common.js';

export const DENY_ASSIGNMENT_TYPE = 'Microsoft.Authorization/denyAssignments';

export function armDenyAssignmentView(d: StoredDenyAssignment): Record<string, unknown> {
  return {
    id: authorizationId(d.scope, 'denyAssignments', d.id),
    name: d.id,
    type: DENY_ASSIGNMENT_TYPE,
    properties: {
      denyAssignmentName: d.denyAssignmentName,
      description: d.description,
      permissions: d.permissions,
      scope: d.scope,
      doNotApplyToChildScopes: d.doNotApplyToChildScopes,
      principals: d.principals.map((p) => ({ id: p.id, type: p.type })),
      excludePrincipals: d.excludePrincipals.map((p) => ({ id: p.id, type: p.type })),
      isSystemProtected: d.isSystemProtected,
      createdOn: isoOrNull(d.createdAt),
      updatedOn: isoOrNull(d.createdAt),
      createdBy: d.createdBy,
      updatedBy: d.createdBy,
    },
  };
}

export function denyAssignmentHandlers(ctx: ManagementContext): { list: RouteHandler; get: RouteHandler; put: RouteHandler; delete: RouteHandler } {
  const address = (request: FastifyRequest) => authorizationAddress(ctx, request, 'denyAssignments');
  return {
    async list(request) {
      const a = await address(request);
      const filter = authorizationFilter(request);
      const items = await listDenyAssignments(ctx.store, { tenantId: a.tenantId, scope: a.scope, atScope: filter.atScope });
      return { value: items.map(armDenyAssignmentView) };
    },

    async get(request) {
      const a = await address(request);
      return armDenyAssignmentView(await getDenyAssignment(ctx.store, { tenantId: a.tenantId, id: a.name ?? '', scope: a.scope }));
    },

    async put(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const actor = a.caller.principal.objectId;
      const target = authorizationId(a.scope, 'denyAssignments', name);
      const deny = await audited(ctx, { tenantId: a.tenantId, actor, action: 'denyAssignment.created', target }, async () => {
        // A deny is a tenant-level act wherever it is placed (see the module comment).
        await requireAccess(ctx, request, { action: `${DENY_ASSIGNMENT_TYPE}/write`, scope: ROOT_SCOPE });
        const body = jsonObject(request.body);
        const properties = body['properties'];
        if (properties === null || typeof properties !== 'object' || Array.isArray(properties)) {
          throw DirectoryErrors.invalidDenyAssignment('the body must be { properties: { denyAssignmentName, permissions, principals, ... } }');
        }
        const created = await createDenyAssignment(
          ctx.store,
          { clock: ctx.clock },
          {
            tenantId: a.tenantId,
            id: name,
            scope: a.scope,
            properties: properties as Record<string, unknown>,
            by: actor,
          },
        );
        return { result: created, detail: { denyAssignmentName: created.denyAssignmentName, scope: created.scope } };
      });
      return reply.code(201).send(armDenyAssignmentView(deny));
    },

    async delete(request, reply) {
      const a = await address(request);
      const name = a.name ?? '';
      const target = authorizationId(a.scope, 'denyAssignments', name);
      const deleted = await audited(ctx, { tenantId: a.tenantId, actor: a.caller.principal.objectId, action: 'denyAssignment.deleted', target }, async () => {
        await requireAccess(ctx, request, { action: `${DENY_ASSIGNMENT_TYPE}/delete`, scope: ROOT_SCOPE });
        const removed = await deleteDenyAssignment(ctx.store, { tenantId: a.tenantId, id: name, scope: a.scope });
        return removed === undefined
          ? { result: removed, detail: { existed: false } }
          : { result: removed, detail: { denyAssignmentName: removed.denyAssignmentName } };
      });
      return deleted === undefined ? reply.code(204).send() : reply.code(200).send(armDenyAssignmentView(deleted));
    },
  };
}

export function denyAssignmentRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const h = denyAssignmentHandlers(ctx);
  const type = 'denyAssignments';
  authorizationRoutes(app, ctx, { method: 'GET', type, one: false, armAction: `${DENY_ASSIGNMENT_TYPE}/read`, handler: h.list });
  authorizationRoutes(app, ctx, { method: 'GET', type, one: true, armAction: `${DENY_ASSIGNMENT_TYPE}/read`, handler: h.get });
  authorizationRoutes(app, ctx, { method: 'PUT', type, one: true, armAction: `${DENY_ASSIGNMENT_TYPE}/write`, handler: h.put });
  authorizationRoutes(app, ctx, { method: 'DELETE', type, one: true, armAction: `${DENY_ASSIGNMENT_TYPE}/delete`, handler: h.delete });
}
