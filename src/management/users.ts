/**
 * Graph's users (`/v1.0/users`), the signed-in user (`/v1.0/me`) and the tenant's domains
 * (`/v1.0/domains`): what `openmsi ad user`, `ad signed-in-user` and `ad domain` (and az's `ad user`) call.
 * Reads need the directory read right at `/`, changes the write right (as for service principals). Nothing
 * a caller sends as a password is ever audited, logged or returned.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { iso } from '../shared/clock.js';
import type { User } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { createUser, deleteUser, getUser, revokeSignInSessions, tenantDomains, updateUser } from '../directory/users.js';
import { DirectoryErrors } from '../directory/errors.js';
import { ManagementErrors } from './errors.js';
import { authenticate, callerOf, type Caller } from './authenticate.js';
import { authorizeGraph } from './authorize.js';
import { audited, jsonObject, params, route, singleQuery } from './common.js';
import { splitAnd } from './principals.js';

/** A user as Microsoft Graph v1.0 shows one (its default properties, plus the account's state). */
export interface GraphUser {
  id: string;
  businessPhones: string[];
  displayName: string;
  givenName: null;
  jobTitle: null;
  mail: string | null;
  mobilePhone: null;
  officeLocation: null;
  preferredLanguage: null;
  surname: null;
  userPrincipalName: string;
  accountEnabled: boolean;
  userType: 'Member';
  createdDateTime: string;
}

export function graphUserView(user: User): GraphUser {
  return {
    id: user.objectId,
    businessPhones: [],
    displayName: user.displayName,
    givenName: null,
    jobTitle: null,
    mail: user.mail,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: null,
    surname: null,
    userPrincipalName: user.userPrincipalName,
    accountEnabled: user.accountEnabled,
    userType: 'Member',
    createdDateTime: iso(user.createdAt),
  };
}

const USERS_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata#users';
const DOMAINS_CONTEXT = 'https://graph.microsoft.com/v1.0/$metadata#domains';

/** `passwordProfile` of a create or update body: `{ password, forceChangePasswordNextSignIn }`. */
function passwordProfile(body: Record<string, unknown>): { password?: unknown; forceChangePasswordNextSignIn?: unknown } {
  const profile = body['passwordProfile'];
  if (profile === undefined || profile === null) return {};
  if (typeof profile !== 'object' || Array.isArray(profile)) throw ManagementErrors.invalidGraphProperty('passwordProfile', 'an object');
  const p = profile as Record<string, unknown>;
  return { password: p['password'], forceChangePasswordNextSignIn: p['forceChangePasswordNextSignIn'] };
}

type UserPredicate = (user: User) => boolean;
const STRING = "'((?:[^']|'')*)'";
const unquote = (s: string) => s.replace(/''/g, "'");

/** The subset of `$filter` az and the CLI send for users: `eq` on a name or id, `startswith(displayName, ...)`. */
function parseUserFilter(filter: string): UserPredicate {
  if (filter.length > 2048) throw ManagementErrors.unsupportedFilter('the filter is too long');
  const clauses = splitAnd(filter.trim()).map((text): UserPredicate => {
    let m = new RegExp(`^(userPrincipalName|displayName|mail|id)\\s+eq\\s+${STRING}$`, 'i').exec(text);
    if (m) {
      const value = unquote(m[2]!).toLowerCase();
      const get: (u: User) => string | null =
        { userprincipalname: (u: User) => u.userPrincipalName, displayname: (u: User) => u.displayName, mail: (u: User) => u.mail }[m[1]!.toLowerCase()] ??
        ((u: User) => u.objectId);
      return (u) => get(u)?.toLowerCase() === value;
    }
    m = new RegExp(`^startswith\\(\\s*(displayName|userPrincipalName)\\s*,\\s*${STRING}\\s*\\)$`, 'i').exec(text);
    if (m) {
      const prefix = unquote(m[2]!).toLowerCase();
      const byUpn = m[1]!.toLowerCase() === 'userprincipalname';
      return (u) => (byUpn ? u.userPrincipalName : u.displayName).toLowerCase().startsWith(prefix);
    }
    throw ManagementErrors.unsupportedFilter(`'${text.slice(0, 200)}'`);
  });
  return (u) => clauses.every((c) => c(u));
}

/** The signed-in user of a user token; Graph's 400 to an app-only token, whatever its permissions. */
async function signedInUser(ctx: ManagementContext, caller: Caller): Promise<User> {
  if (caller.principal.kind !== 'User') throw ManagementErrors.meNeedsDelegatedFlow();
  return getUser(ctx.store, caller.tenantId, caller.principal.objectId);
}

export function userRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'graph'), authorizeGraph(ctx, 'servicePrincipals')];
  const actorOf = (caller: Caller) => caller.principal.objectId;

  route(app, {
    method: 'GET',
    url: '/v1.0/domains',
    onRequest,
    handler: async (request) => {
      const tenant = await ctx.store.tenants.get(callerOf(request).tenantId);
      return { '@odata.context': DOMAINS_CONTEXT, value: tenant === undefined ? [] : tenantDomains(tenant) };
    },
  });

  route(app, {
    method: 'GET',
    url: '/v1.0/users',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      const filter = singleQuery(request, '$filter', 'graph');
      const predicate = filter === undefined ? () => true : parseUserFilter(filter);
      const users = (await ctx.store.users.list(caller.tenantId)).filter(predicate);
      return { '@odata.context': USERS_CONTEXT, value: users.map(graphUserView) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/v1.0/users',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const user = await audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action: 'user.created', target: 'users' }, async () => {
        const body = jsonObject(request.body);
        const profile = passwordProfile(body);
        const created = await createUser(ctx.store, {
          tenantId: caller.tenantId,
          displayName: body['displayName'],
          userPrincipalName: body['userPrincipalName'],
          password: profile.password,
          forceChangePasswordNextSignIn: profile.forceChangePasswordNextSignIn,
          accountEnabled: body['accountEnabled'],
          mail: body['mail'],
          clock: ctx.clock,
        });
        return {
          result: created,
          target: created.objectId,
          detail: { userPrincipalName: created.userPrincipalName, displayName: created.displayName, accountEnabled: created.accountEnabled },
        };
      });
      return reply.code(201).send({ '@odata.context': `${USERS_CONTEXT}/$entity`, ...graphUserView(user) });
    },
  });

  route(app, {
    method: 'GET',
    url: '/v1.0/users/:id',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      return { '@odata.context': `${USERS_CONTEXT}/$entity`, ...graphUserView(await getUser(ctx.store, caller.tenantId, params(request)['id'] ?? '')) };
    },
  });

  route(app, {
    method: 'PATCH',
    url: '/v1.0/users/:id',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      await audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action: 'user.updated', target: id }, async () => {
        const body = jsonObject(request.body);
        for (const name of Object.keys(body)) {
          if (!['displayName', 'mail', 'accountEnabled', 'passwordProfile'].includes(name))
            throw ManagementErrors.invalidGraphProperty(name, 'a property this server can change');
        }
        const profile = passwordProfile(body);
        const updated = await updateUser(ctx.store, caller.tenantId, id, {
          displayName: body['displayName'],
          mail: body['mail'],
          accountEnabled: body['accountEnabled'],
          password: profile.password,
          forceChangePasswordNextSignIn: profile.forceChangePasswordNextSignIn,
          clock: ctx.clock,
        });
        // The names of what changed, never a value of the password.
        return { result: updated, target: updated.objectId, detail: { changed: Object.keys(body), passwordChanged: profile.password !== undefined } };
      });
      return reply.code(204).send();
    },
  });

  route(app, {
    method: 'DELETE',
    url: '/v1.0/users/:id',
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      await audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action: 'user.deleted', target: id }, async () => {
        const user = await getUser(ctx.store, caller.tenantId, id);
        if (user.objectId === caller.principal.objectId) throw ManagementErrors.selfDeletion();
        const deleted = await deleteUser(ctx.store, caller.tenantId, user.objectId, ctx.clock);
        if (deleted === undefined) throw DirectoryErrors.principalNotFound(id);
        return { result: undefined, target: deleted.objectId, detail: { userPrincipalName: deleted.userPrincipalName } };
      });
      return reply.code(204).send();
    },
  });

  const revoke = async (request: FastifyRequest, caller: Caller, id: string) =>
    audited(ctx, { tenantId: caller.tenantId, actor: actorOf(caller), action: 'user.sessionsRevoked', target: id }, async () => {
      const { user, revoked } = await revokeSignInSessions(ctx.store, caller.tenantId, id, ctx.clock);
      return {
        result: { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean', value: true },
        target: user.objectId,
        detail: { revoked },
      };
    });

  route(app, {
    method: 'POST',
    url: '/v1.0/users/:id/revokeSignInSessions',
    onRequest,
    handler: (request) => revoke(request, callerOf(request), params(request)['id'] ?? ''),
  });

  // The signed-in user: no directory right needed to read oneself or sign oneself out everywhere.
  route(app, {
    method: 'GET',
    url: '/v1.0/me',
    onRequest: [authenticate(ctx, 'graph')],
    handler: async (request) => ({ '@odata.context': `${USERS_CONTEXT}/$entity`, ...graphUserView(await signedInUser(ctx, callerOf(request))) }),
  });
  route(app, {
    method: 'POST',
    url: '/v1.0/me/revokeSignInSessions',
    onRequest: [authenticate(ctx, 'graph')],
    handler: async (request) => {
      const caller = callerOf(request);
      const user = await signedInUser(ctx, caller);
      return revoke(request, caller, user.objectId);
    },
  });
  route(app, {
    method: 'GET',
    url: '/v1.0/me/*',
    onRequest: [authenticate(ctx, 'graph')],
    handler: async (request) => {
      await signedInUser(ctx, callerOf(request));
      throw ManagementErrors.unknownSegment(request.url.split('?')[0]?.split('/').pop() ?? '');
    },
  });
}
