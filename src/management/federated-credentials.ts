/**
 * Federated identity credentials over the management API, in both of Azure's shapes:
 *
 * - ARM: `…/Microsoft.ManagedIdentity/userAssignedIdentities/{name}/federatedIdentityCredentials[/{fic}]`
 *   (api-version 2023-01-31 and later), authorised by
 *   `Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/{read|write|delete}` at the
 *   identity (Managed Identity Contributor, Contributor, Owner);
 * - Graph: `/v1.0/applications/{id}/federatedIdentityCredentials[/{id or name}]`, authorised as every
 *   application write is (Graph reads and writes at `/`).
 *
 * And openmsi's own per-issuer key settings, `/openmsi/federationIssuers` (owner-level: trusting an issuer's
 * keys is an installation-wide decision).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { iso } from '../shared/clock.js';
import { ApiError, ApiErrors } from '../shared/api-error.js';
import type { ClientCredential, FederatedCredential, FederationIssuer, ServicePrincipal } from '../store/types.js';
import { graphCredentialViews } from './principals.js';
import { ManagementErrors } from './errors.js';
import type { ManagementContext } from './context.js';
import { USER_ASSIGNED_IDENTITY_TYPE } from '../directory/resources.js';
import { putFederatedCredential, validateFederatedCredentialFields, validateFederatedCredentialName } from '../directory/federated-credentials.js';
import { findPrincipal } from '../directory/principals.js';
import { DirectoryErrors } from '../directory/errors.js';
import { FEDERATION_ALGORITHMS } from '../authority/federation/federated-assertion.js';
import { apiVersionHook } from './api-version.js';
import { addressedIdentityWithPrincipal } from './user-assigned-identities.js';
import { authenticate, callerOf, type Caller } from './authenticate.js';
import { atRoot, authorize, authorizeGraph, OPENMSI_ACTIONS, resourceScope } from './authorize.js';
import {
  armDeleteHandler,
  armGetHandler,
  armPutHandler,
  armScope,
  audited,
  jsonObject,
  jsonProperties,
  params,
  route,
  singleQuery,
  type ArmScope,
} from './common.js';
import { pathParam } from './resource-ids.js';

export const FIC_TYPE = `${USER_ASSIGNED_IDENTITY_TYPE}/federatedIdentityCredentials`;
const IDENTITY = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/${USER_ASSIGNED_IDENTITY_TYPE}/:resourceName`;
const LIST = `${IDENTITY}/federatedIdentityCredentials`;
const ONE = `${LIST}/:federatedIdentityCredentialResourceName`;

/** A user-assigned identity's federated credential as ARM shows it. */
export function armFederatedCredentialView(identityId: string, c: FederatedCredential): Record<string, unknown> {
  return {
    id: `${identityId}/federatedIdentityCredentials/${c.name}`,
    name: c.name,
    type: FIC_TYPE,
    properties: { issuer: c.issuer, subject: c.subject, audiences: c.audiences },
    systemData: { createdAt: iso(c.createdAt), lastModifiedAt: iso(c.updatedAt) },
  };
}

/** An application's federated credential as Graph shows it (`claimsMatchingExpression` only on flexible ones, as beta). */
export function graphFederatedCredentialView(c: FederatedCredential): Record<string, unknown> {
  return {
    id: c.id,
    name: c.name,
    issuer: c.issuer,
    subject: c.subject,
    description: c.description,
    audiences: c.audiences,
    ...(c.claimsMatchingExpression === null ? {} : { claimsMatchingExpression: c.claimsMatchingExpression }),
  };
}

/** The issuer setting as `/openmsi/federationIssuers` shows it: the static JWKS's key ids, never more than needed. */
export function federationIssuerView(i: FederationIssuer): Record<string, unknown> {
  return {
    issuer: i.issuer,
    keySource: i.jwks !== null ? 'jwks' : i.jwksUri !== null ? 'jwksUri' : 'discovery',
    jwksUri: i.jwksUri,
    jwks: i.jwks,
    ca: i.ca,
    algorithms: i.algorithms,
    createdAt: iso(i.createdAt),
    updatedAt: iso(i.updatedAt),
  };
}

export function federatedCredentialRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  armRoutes(app, ctx);
  graphRoutes(app, ctx);
  issuerRoutes(app, ctx);
}

function armRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const as = (verb: 'read' | 'write' | 'delete') => [
    authenticate(ctx, 'arm'),
    apiVersionHook,
    authorize(ctx, (request) => ({ action: `${FIC_TYPE}/${verb}`, scope: resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE) })),
  ];
  const owner = (scope: ArmScope) => addressedIdentityWithPrincipal(ctx.store, scope);
  const ficName = (request: FastifyRequest) => pathParam(request, 'federatedIdentityCredentialResourceName');

  route(app, {
    method: 'GET',
    url: LIST,
    onRequest: as('read'),
    handler: async (request) => {
      const { id, principal } = await owner(await armScope(ctx, request));
      return { value: (await ctx.store.federatedCredentials.list(principal.objectId)).map((c) => armFederatedCredentialView(id, c)) };
    },
  });

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest: as('read'),
    handler: armGetHandler(
      ctx,
      async (scope, request) => {
        const { id, principal } = await owner(scope);
        const found = await ctx.store.federatedCredentials.get(principal.objectId, ficName(request));
        if (found === undefined) throw DirectoryErrors.federatedCredentialNotFound('arm', ficName(request));
        return armFederatedCredentialView(id, found);
      },
      (view) => view,
    ),
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest: as('write'),
    handler: armPutHandler(ctx, {
      kind: 'federatedIdentityCredential',
      target: (scope, request) => `${resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE)}/federatedIdentityCredentials/${ficName(request)}`,
      write: async (scope, request) => {
        const properties = jsonProperties(request.body, () =>
          DirectoryErrors.invalidFederatedCredential('arm', "The request needs 'properties' with 'issuer', 'subject' and 'audiences'."),
        );
        const fields = validateFederatedCredentialFields(properties, 'arm', { flexible: false });
        const { id, principal } = await owner(scope);
        const { credential, created } = await putFederatedCredential(ctx.store, {
          owner: principal,
          name: ficName(request),
          fields,
          family: 'arm',
          clock: ctx.clock,
        });
        const view = armFederatedCredentialView(id, credential);
        return {
          item: view,
          created,
          id: String(view['id']),
          detail: { issuer: credential.issuer, subject: credential.subject, audiences: credential.audiences },
        };
      },
      view: (view) => view,
    }),
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest: as('delete'),
    handler: armDeleteHandler(ctx, {
      kind: 'federatedIdentityCredential',
      target: (scope, request) => `${resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE)}/federatedIdentityCredentials/${ficName(request)}`,
      remove: async (scope, request) => {
        const { id, principal } = await owner(scope);
        const found = await ctx.store.federatedCredentials.get(principal.objectId, ficName(request));
        if (found === undefined || !(await ctx.store.federatedCredentials.delete(principal.objectId, found.name))) return undefined;
        return { id: `${id}/federatedIdentityCredentials/${found.name}`, detail: { issuer: found.issuer, subject: found.subject } };
      },
    }),
  });
}

/** An application as Graph's `application` (in openmsi the application and its service principal are one object). */
function graphApplicationView(sp: ServicePrincipal, credentials: readonly ClientCredential[]): Record<string, unknown> {
  return {
    id: sp.objectId,
    appId: sp.appId,
    displayName: sp.displayName,
    createdDateTime: iso(sp.createdAt),
    identifierUris: [],
    signInAudience: 'AzureADMyOrg',
    ...graphCredentialViews(credentials),
  };
}

function graphRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'graph'), authorizeGraph(ctx, 'servicePrincipals')];

  // What `az ad app federated-credential --id` resolves an app id with: `GET /applications?$filter=appId eq '…'`.
  route(app, {
    method: 'GET',
    url: '/v1.0/applications',
    onRequest,
    handler: async (request) => {
      const caller = callerOf(request);
      const filter = singleQuery(request, '$filter', 'graph');
      let principals: ServicePrincipal[];
      if (filter === undefined) {
        principals = await ctx.store.servicePrincipals.list({ tenantId: caller.tenantId, kind: 'Application' });
      } else {
        const m = /^appId eq '([^']*)'$/i.exec(filter.trim());
        if (m === null) throw ManagementErrors.invalidGraphProperty('$filter', "appId eq '<app id>'");
        const found = await findPrincipal(ctx.store, m[1] ?? '');
        principals =
          found?.kind === 'Application' && found.appId.toLowerCase() === (m[1] ?? '').toLowerCase() && found.tenantId === caller.tenantId ? [found] : [];
      }
      const value = await Promise.all(principals.map(async (p) => graphApplicationView(p, await ctx.store.credentials.listByApp(p.appId))));
      return { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#applications', value };
    },
  });
  const LIST_URL = '/v1.0/applications/:id/federatedIdentityCredentials';
  const ONE_URL = `${LIST_URL}/:ficId`;
  const context = (appObjectId: string) => `https://graph.microsoft.com/v1.0/$metadata#applications('${appObjectId}')/federatedIdentityCredentials`;

  /** The application addressed by object id or app id, in the caller's tenant; Graph's 404 otherwise. */
  const application = async (caller: Caller, id: string): Promise<ServicePrincipal> => {
    const principal = await findPrincipal(ctx.store, id);
    if (principal?.kind !== 'Application' || principal.tenantId.toLowerCase() !== caller.tenantId.toLowerCase()) throw DirectoryErrors.principalNotFound(id);
    return principal;
  };
  const credential = async (owner: ServicePrincipal, idOrName: string): Promise<FederatedCredential> => {
    const found =
      (await ctx.store.federatedCredentials.getById(owner.objectId, idOrName)) ?? (await ctx.store.federatedCredentials.get(owner.objectId, idOrName));
    if (found === undefined) throw DirectoryErrors.federatedCredentialNotFound('graph', idOrName);
    return found;
  };
  const audit = (caller: Caller, action: string, target: string) => ({ tenantId: caller.tenantId, actor: caller.principal.objectId, action, target });

  route(app, {
    method: 'GET',
    url: LIST_URL,
    onRequest,
    handler: async (request) => {
      const owner = await application(callerOf(request), params(request)['id'] ?? '');
      const value = (await ctx.store.federatedCredentials.list(owner.objectId)).map(graphFederatedCredentialView);
      return { '@odata.context': context(owner.objectId), value };
    },
  });

  route(app, {
    method: 'GET',
    url: ONE_URL,
    onRequest,
    handler: async (request) => {
      const owner = await application(callerOf(request), params(request)['id'] ?? '');
      const found = await credential(owner, params(request)['ficId'] ?? '');
      return { '@odata.context': `${context(owner.objectId)}/$entity`, ...graphFederatedCredentialView(found) };
    },
  });

  route(app, {
    method: 'POST',
    url: LIST_URL,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      const created = await audited(ctx, audit(caller, 'federatedIdentityCredential.created', id), async () => {
        const body = jsonObject(request.body);
        const name = validateFederatedCredentialName(body['name'], 'graph');
        const fields = validateFederatedCredentialFields(body, 'graph', { flexible: true });
        const owner = await application(caller, id);
        if ((await ctx.store.federatedCredentials.get(owner.objectId, name)) !== undefined) {
          throw DirectoryErrors.invalidFederatedCredential('graph', `A federated identity credential named '${name}' already exists on this application.`);
        }
        const { credential: c } = await putFederatedCredential(ctx.store, { owner, name, fields, family: 'graph', clock: ctx.clock });
        return { result: { owner, c }, target: owner.appId, detail: { id: c.id, name: c.name, issuer: c.issuer, subject: c.subject } };
      });
      return reply.code(201).send({ '@odata.context': `${context(created.owner.objectId)}/$entity`, ...graphFederatedCredentialView(created.c) });
    },
  });

  route(app, {
    method: 'PATCH',
    url: ONE_URL,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      await audited(ctx, audit(caller, 'federatedIdentityCredential.updated', id), async () => {
        const body = jsonObject(request.body);
        const owner = await application(caller, id);
        const current = await credential(owner, params(request)['ficId'] ?? '');
        if (body['name'] !== undefined && body['name'] !== current.name) {
          throw DirectoryErrors.invalidFederatedCredential('graph', "A federated identity credential's name cannot be changed.");
        }
        // A PATCH changes what it names; a subject given replaces an expression and the other way round.
        const merged: Record<string, unknown> = { ...graphFederatedCredentialView(current), ...body };
        if (body['subject'] !== undefined && body['claimsMatchingExpression'] === undefined) merged['claimsMatchingExpression'] = null;
        if (body['claimsMatchingExpression'] !== undefined && body['subject'] === undefined) merged['subject'] = null;
        const fields = validateFederatedCredentialFields(merged, 'graph', { flexible: true });
        const { credential: c } = await putFederatedCredential(ctx.store, {
          owner,
          name: current.name,
          fields,
          family: 'graph',
          clock: ctx.clock,
          mustExist: true,
        });
        return { result: c, target: owner.appId, detail: { id: c.id, name: c.name, issuer: c.issuer, subject: c.subject } };
      });
      return reply.code(204).send();
    },
  });

  route(app, {
    method: 'DELETE',
    url: ONE_URL,
    onRequest,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const id = params(request)['id'] ?? '';
      await audited(ctx, audit(caller, 'federatedIdentityCredential.deleted', id), async () => {
        const owner = await application(caller, id);
        const found = await credential(owner, params(request)['ficId'] ?? '');
        await ctx.store.federatedCredentials.delete(owner.objectId, found.name);
        return { result: undefined, target: owner.appId, detail: { id: found.id, name: found.name, issuer: found.issuer, subject: found.subject } };
      });
      return reply.code(204).send();
    },
  });
}

const MAX_JWKS_KEYS = 100;

/** Validates `PUT /openmsi/federationIssuers`'s body into a setting (times filled by the caller). */
function validateIssuerSetting(body: Record<string, unknown>): Omit<FederationIssuer, 'createdAt' | 'updatedAt'> {
  const issuer = body['issuer'];
  if (typeof issuer !== 'string' || issuer.length > 600 || !/^https:\/\/[^\s]+$/.test(issuer))
    throw ApiErrors.invalidContent("'issuer' must be an https:// URL");
  const jwks = body['jwks'] ?? null;
  const jwksUri = body['jwksUri'] ?? null;
  if (jwks !== null && jwksUri !== null) throw ApiErrors.invalidContent("give at most one of 'jwks' and 'jwksUri'");
  if (jwksUri !== null && (typeof jwksUri !== 'string' || !/^https:\/\/[^\s]+$/.test(jwksUri)))
    throw ApiErrors.invalidContent("'jwksUri' must be an https:// URL");
  let keys: Record<string, unknown>[] | null = null;
  if (jwks !== null) {
    const list = (jwks as { keys?: unknown }).keys;
    if (typeof jwks !== 'object' || !Array.isArray(list) || list.length === 0 || list.length > MAX_JWKS_KEYS) {
      throw ApiErrors.invalidContent(`'jwks' must be a JWK Set with 1 to ${String(MAX_JWKS_KEYS)} keys`);
    }
    keys = list.map((k, i) => {
      if (k === null || typeof k !== 'object' || Array.isArray(k)) throw ApiErrors.invalidContent(`'jwks.keys[${String(i)}]' must be a JWK`);
      const jwk = k as Record<string, unknown>;
      if ('d' in jwk || 'p' in jwk || 'k' in jwk) throw ApiErrors.invalidContent(`'jwks.keys[${String(i)}]' must be a public key`);
      try {
        createPublicKey({ key: jwk as never, format: 'jwk' });
      } catch {
        throw ApiErrors.invalidContent(`'jwks.keys[${String(i)}]' is not a usable public key`);
      }
      return jwk;
    });
  }
  const ca = body['ca'] ?? null;
  if (ca !== null) {
    if (typeof ca !== 'string') throw ApiErrors.invalidContent("'ca' must be PEM certificates");
    try {
      new X509Certificate(ca);
    } catch {
      throw ApiErrors.invalidContent("'ca' must be PEM certificates");
    }
  }
  const algorithms = body['algorithms'] ?? ['RS256'];
  if (!Array.isArray(algorithms) || algorithms.length === 0 || !algorithms.every((a) => typeof a === 'string' && FEDERATION_ALGORITHMS.includes(a))) {
    throw ApiErrors.invalidContent(`'algorithms' must list some of ${FEDERATION_ALGORITHMS.join(', ')}`);
  }
  return {
    issuer,
    jwks: keys === null ? null : { keys },
    jwksUri: jwksUri,
    ca: ca,
    algorithms: [...new Set(algorithms as string[])],
  };
}

function issuerRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const URL_ = '/openmsi/federationIssuers';
  const read = [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.federationIssuersRead))];
  const write = [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.federationIssuersWrite))];
  const issuerOf = (request: FastifyRequest): string => {
    const issuer = singleQuery(request, 'issuer');
    if (issuer === undefined || issuer === '') throw ApiErrors.invalidContent("the 'issuer' query parameter is required");
    return issuer;
  };

  route(app, {
    method: 'GET',
    url: URL_,
    onRequest: read,
    handler: async (request) => {
      const issuer = singleQuery(request, 'issuer');
      if (issuer === undefined) return { value: (await ctx.store.federationIssuers.list()).map(federationIssuerView) };
      const found = await ctx.store.federationIssuers.get(issuer);
      if (found === undefined) throw new ApiError(404, 'NotFound', `No settings for the issuer '${issuer.slice(0, 600)}'.`);
      return federationIssuerView(found);
    },
  });

  route(app, {
    method: 'PUT',
    url: URL_,
    onRequest: write,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const { view, created } = await audited(
        ctx,
        { tenantId: caller.tenantId, actor: caller.principal.objectId, action: 'federationIssuer.write', target: 'federationIssuers' },
        async () => {
          const setting = validateIssuerSetting(jsonObject(request.body));
          const now = ctx.clock.now();
          const existing = await ctx.store.federationIssuers.get(setting.issuer);
          // updatedAt names the setting's version in every replica's key cache: it must change on every write.
          const updatedAt = existing === undefined ? now : Math.max(now, existing.updatedAt + 1);
          const record: FederationIssuer = { ...setting, createdAt: existing?.createdAt ?? now, updatedAt };
          const outcome = await ctx.store.federationIssuers.put(record);
          return {
            result: { view: federationIssuerView(record), created: outcome === 'created' },
            action: `federationIssuer.${outcome}`,
            target: setting.issuer,
            detail: { keySource: federationIssuerView(record)['keySource'], jwksUri: setting.jwksUri, algorithms: setting.algorithms, ca: setting.ca !== null },
          };
        },
      );
      return reply.code(created ? 201 : 200).send(view);
    },
  });

  route(app, {
    method: 'DELETE',
    url: URL_,
    onRequest: write,
    handler: async (request, reply) => {
      const caller = callerOf(request);
      const issuer = issuerOf(request);
      const deleted = await audited(
        ctx,
        { tenantId: caller.tenantId, actor: caller.principal.objectId, action: 'federationIssuer.deleted', target: issuer },
        async () => {
          const removed = await ctx.store.federationIssuers.delete(issuer);
          return { result: removed, detail: { existed: removed } };
        },
      );
      return reply.code(deleted ? 200 : 204).send();
    },
  });
}
