/**
 * Graph-shaped groups: `/v1.0/groups` (list, create), `/v1.0/groups/{id}` (get, delete), members
 * (`/members`, `/members/$ref` POST with `@odata.id`, `/members/{id}/$ref` DELETE) and
 * `checkMemberGroups` (on `/v1.0/directoryObjects/{id}` and `/v1.0/groups/{id}`). Every mutation is audited.
 * Authorised by `authorizeGraph(ctx, 'groups')`: `Microsoft.Authorization/groups/read|write` at `/` (docs/rbac.md says why).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { iso } from '../shared/clock.js';
import type { Group } from '../store/types.js';
import { addGroupMember, checkMemberGroups, createGroup, deleteGroup, getGroup, listGroupMembers, listGroups, removeGroupMember } from '../directory/groups.js';
import type { DirectoryObject } from '../directory/rbac.js';
import { graphUserView } from './users.js';
import { DirectoryErrors } from '../directory/errors.js';
import type { ManagementContext } from './context.js';
import { authenticate, callerOf } from './authenticate.js';
import { authorizeGraph } from './authorize.js';
import { audited, jsonObject, params, route, singleQuery } from './common.js';
import { ManagementErrors } from './errors.js';
import { graphServicePrincipalView } from './principals.js';

const ODATA_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata#groups';

export interface GraphGroup {
  id: string;
  displayName: string;
  mailNickname: string;
  description: string | null;
  mail: null;
  mailEnabled: false;
  securityEnabled: true;
  groupTypes: string[];
  createdDateTime: string;
  deletedDateTime: null;
  visibility: null;
}

export function graphGroupView(g: Group): GraphGroup {
  return {
    id: g.objectId,
    displayName: g.displayName,
    mailNickname: g.mailNickname,
    description: g.description,
    mail: null,
    mailEnabled: false,
    securityEnabled: true,
    groupTypes: [],
    createdDateTime: iso(g.createdAt),
    deletedDateTime: null,
    visibility: null,
  };
}

/** A member as Graph lists it: the object with its `@odata.type`. */
export function graphDirectoryObjectView(o: DirectoryObject): Record<string, unknown> {
  if (o.kind === 'group') return { '@odata.type': '#microsoft.graph.group', ...graphGroupView(o.group) };
  if (o.kind === 'user') return { '@odata.type': '#microsoft.graph.user', ...graphUserView(o.user) };
  return { '@odata.type': '#microsoft.graph.servicePrincipal', ...graphServicePrincipalView(o.principal) };
}

/** The object id in `@odata.id` (`https://graph.microsoft.com/v1.0/directoryObjects/{id}`, or a bare id). */
function referencedId(body: Record<string, unknown>): string {
  const ref = body['@odata.id'];
  if (typeof ref !== 'string' || ref === '') throw ManagementErrors.missingGraphProperty('@odata.id');
  const id = ref.replace(/\/$/, '').split('/').pop() ?? '';
  return id;
}

export function groupRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  // Graph is Entra roles in Azure; here reads need a read right at `/`, changes Owner or User Access Administrator there (authorize.ts).
  const onRequest = [authenticate(ctx, 'graph'), authorizeGraph(ctx, 'groups')];
  const actor = (request: FastifyRequest) => callerOf(request).principal.objectId;

  route(app, {
    method: 'GET',
    url: '/v1.0/groups',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      const filter = singleQuery(request, '$filter', 'graph');
      let displayName: string | undefined;
      if (filter !== undefined) {
        const m = /^displayName\s+eq\s+'((?:[^']|'')*)'$/i.exec(filter.trim());
        if (m === null) throw ManagementErrors.unsupportedFilter(`'${filter.slice(0, 100)}' (groups support displayName eq '...')`);
        displayName = (m[1] ?? '').replace(/''/g, "'");
      }
      const groups = await listGroups(ctx.store, { tenantId: caller.tenantId, ...(displayName === undefined ? {} : { displayName }) });
      return { '@odata.context': ODATA_CONTEXT, value: groups.map(graphGroupView) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/v1.0/groups',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const group = await audited(ctx, { tenantId: caller.tenantId, actor: actor(request), action: 'group.created', target: 'groups' }, async () => {
        const body = jsonObject(request.body);
        if (body['mailEnabled'] === true) throw DirectoryErrors.badRequest('Only security groups are supported: mailEnabled must be false.');
        if (body['securityEnabled'] === false) throw DirectoryErrors.badRequest('Only security groups are supported: securityEnabled must be true.');
        const created = await createGroup(ctx.store, {
          tenantId: caller.tenantId,
          displayName: body['displayName'],
          mailNickname: body['mailNickname'],
          description: body['description'],
          clock: ctx.clock,
        });
        return { result: created, target: created.objectId, detail: { displayName: created.displayName } };
      });
      return reply.code(201).send({ '@odata.context': `${ODATA_CONTEXT}/$entity`, ...graphGroupView(group) });
    },
  });

  route(app, {
    method: 'GET',
    url: '/v1.0/groups/:id',
    onRequest,
    handler: async (request) => {
      const group = await getGroup(ctx.store, callerOf(request).tenantId, params(request)['id'] ?? '');
      return { '@odata.context': `${ODATA_CONTEXT}/$entity`, ...graphGroupView(group) };
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/v1.0/groups/:id',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      await audited(ctx, { tenantId: caller.tenantId, actor: actor(request), action: 'group.deleted', target: id }, async () => {
        const deleted = await deleteGroup(ctx.store, caller.tenantId, id);
        if (deleted === undefined) throw DirectoryErrors.principalNotFound(id);
        return { result: deleted, detail: { displayName: deleted.displayName } };
      });
      return reply.code(204).send();
    },
  });

  route(app, {
    method: 'GET',
    url: '/v1.0/groups/:id/members',
    onRequest,
    handler: async (request) => {
      const members = await listGroupMembers(ctx.store, callerOf(request).tenantId, params(request)['id'] ?? '');
      return { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#directoryObjects', value: members.map(graphDirectoryObjectView) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/v1.0/groups/:id/members/$ref',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const groupId = params(request)['id'] ?? '';
      await audited(ctx, { tenantId: caller.tenantId, actor: actor(request), action: 'group.memberAdded', target: groupId }, async () => {
        const memberId = referencedId(jsonObject(request.body));
        await addGroupMember(ctx.store, { tenantId: caller.tenantId, groupId, memberId, clock: ctx.clock });
        return { result: undefined, detail: { memberId } };
      });
      return reply.code(204).send();
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/v1.0/groups/:id/members/:memberId/$ref',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const groupId = params(request)['id'] ?? '';
      const memberId = params(request)['memberId'] ?? '';
      await audited(ctx, { tenantId: caller.tenantId, actor: actor(request), action: 'group.memberRemoved', target: groupId }, async () => {
        await removeGroupMember(ctx.store, { tenantId: caller.tenantId, groupId, memberId });
        return { result: undefined, detail: { memberId } };
      });
      return reply.code(204).send();
    },
  });

  const check = async (request: FastifyRequest) => {
    const body = jsonObject(request.body);
    const groupIds = body['groupIds'];
    if (!Array.isArray(groupIds) || !groupIds.every((g) => typeof g === 'string') || groupIds.length > 20) {
      throw ManagementErrors.invalidGraphProperty('groupIds', 'an array of at most 20 group ids');
    }
    return { value: await checkMemberGroups(ctx.store, callerOf(request).tenantId, params(request)['id'] ?? '', groupIds) };
  };
  for (const url of ['/v1.0/directoryObjects/:id/checkMemberGroups', '/v1.0/groups/:id/checkMemberGroups']) {
    route(app, { method: 'POST', url, onRequest, handler: check });
  }
}
