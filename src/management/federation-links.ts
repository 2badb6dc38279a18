/**
 * Workload identity federation, outbound, over the management API:
 *
 * - `GET|PUT|DELETE …/userAssignedIdentities/{name}/outboundFederation/default` links the identity to an
 *   upstream Entra app or managed identity (tenant, client id, authority host). Linking changes where the
 *   identity's tokens come from, so it is a write on the identity (`…/userAssignedIdentities/write`); reading it
 *   is `…/read`. The view carries the exact federated identity credential to create upstream.
 * - `GET /openmsi/federationOutbound[?issuer=]`: the installation's outbound issuer (or the one given, for a
 *   per-link issuer), its discovery document and JWKS (what `openmsi federation export` writes for a public
 *   host); Reader at `/`.
 */
import type { FastifyInstance } from 'fastify';
import { iso } from '../shared/clock.js';
import { ApiErrors } from '../shared/api-error.js';
import { isGuid } from '../shared/ids.js';
import type { FederationLink, ServicePrincipal } from '../store/types.js';
import type { ManagementContext } from './context.js';
import { USER_ASSIGNED_IDENTITY_TYPE } from '../directory/resources.js';
import { DirectoryErrors } from '../directory/errors.js';
import { outboundDiscoveryDocument, outboundIssuerProblem, outboundJwksUri, TOKEN_EXCHANGE_AUDIENCE } from '../authority/federation/outbound-issuer.js';
import { apiVersionHook } from './api-version.js';
import { addressedIdentityWithPrincipal } from './user-assigned-identities.js';
import { authenticate } from './authenticate.js';
import { atRoot, authorize, OPENMSI_ACTIONS, resourceScope } from './authorize.js';
import { armDeleteHandler, armGetHandler, armPutHandler, jsonProperties, route, singleQuery, type ArmScope } from './common.js';

export const FEDERATION_LINK_TYPE = `${USER_ASSIGNED_IDENTITY_TYPE}/outboundFederation`;
const IDENTITY = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/${USER_ASSIGNED_IDENTITY_TYPE}/:resourceName`;
const ONE = `${IDENTITY}/outboundFederation/default`;
/** Entra's public cloud, the default upstream. */
export const DEFAULT_UPSTREAM_AUTHORITY = 'https://login.microsoftonline.com';

/** A tenant as a token endpoint path takes it: a GUID, a domain, or `adfs`. */
const TENANT = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,254})$/;

/** The fields of a link, checked once here. */
export interface FederationLinkFields {
  tenantId: string;
  clientId: string;
  authorityHost: string;
  issuer: string | null;
}

/** Checks a PUT body's `properties`; throws `400 InvalidRequestContent` naming the field. */
export function validateFederationLinkFields(properties: Record<string, unknown>): FederationLinkFields {
  const text = (name: string): string | undefined => {
    const value = properties[name];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string') throw ApiErrors.invalidContent(`'properties.${name}' must be a string`);
    return value;
  };
  const tenantId = text('tenantId');
  if (tenantId === undefined || !TENANT.test(tenantId))
    throw ApiErrors.invalidContent("'properties.tenantId' must be the upstream tenant's id (a GUID), a domain, or adfs");
  const clientId = text('clientId');
  if (clientId === undefined || !isGuid(clientId))
    throw ApiErrors.invalidContent("'properties.clientId' must be the upstream app's or managed identity's client id (a GUID)");
  const host = text('authorityHost') ?? DEFAULT_UPSTREAM_AUTHORITY;
  if (!URL.canParse(host)) throw ApiErrors.invalidContent("'properties.authorityHost' must be an https:// origin");
  const url = new URL(host);
  if (url.protocol !== 'https:' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '') {
    throw ApiErrors.invalidContent("'properties.authorityHost' must be an https:// origin with no path, such as https://login.microsoftonline.com");
  }
  const issuer = text('issuer') ?? null;
  if (issuer !== null) {
    const problem = outboundIssuerProblem(issuer);
    if (problem !== undefined) throw ApiErrors.invalidContent(`'properties.issuer' ${problem}`);
  }
  return { tenantId: isGuid(tenantId) ? tenantId.toLowerCase() : tenantId, clientId: clientId.toLowerCase(), authorityHost: url.origin, issuer };
}

/** A federated credential name Entra accepts (3-120 of `[A-Za-z0-9_-]`, first alphanumeric) for this identity. */
export function suggestedCredentialName(identityName: string): string {
  return `openmsi-${identityName.replace(/[^A-Za-z0-9_-]/g, '-')}`.slice(0, 120);
}

/** The link as ARM shows it, with the federated identity credential to create upstream (Graph's JSON shape). */
export function federationLinkView(
  identityId: string,
  identityName: string,
  principal: ServicePrincipal,
  link: FederationLink,
  defaultIssuer: string,
): Record<string, unknown> {
  const issuer = link.issuer ?? defaultIssuer;
  return {
    id: `${identityId}/outboundFederation/default`,
    name: 'default',
    type: FEDERATION_LINK_TYPE,
    properties: {
      tenantId: link.tenantId,
      clientId: link.clientId,
      authorityHost: link.authorityHost,
      tokenEndpoint: `${link.authorityHost}/${link.tenantId}/oauth2/v2.0/token`,
      issuer,
      subject: principal.objectId,
      audience: TOKEN_EXCHANGE_AUDIENCE,
    },
    federatedCredential: { name: suggestedCredentialName(identityName), issuer, subject: principal.objectId, audiences: [TOKEN_EXCHANGE_AUDIENCE] },
    systemData: { createdAt: iso(link.createdAt), lastModifiedAt: iso(link.updatedAt) },
  };
}

export function federationLinkRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const as = (verb: 'read' | 'write') => [
    authenticate(ctx, 'arm'),
    apiVersionHook,
    authorize(ctx, (request) => ({ action: `${USER_ASSIGNED_IDENTITY_TYPE}/${verb}`, scope: resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE) })),
  ];
  const owner = (scope: ArmScope) => addressedIdentityWithPrincipal(ctx.store, scope);
  const target = (_scope: ArmScope, request: Parameters<typeof resourceScope>[0]) =>
    `${resourceScope(request, USER_ASSIGNED_IDENTITY_TYPE)}/outboundFederation/default`;

  route(app, {
    method: 'GET',
    url: ONE,
    onRequest: as('read'),
    handler: armGetHandler(
      ctx,
      async (scope) => {
        const { id, name, principal } = await owner(scope);
        const link = await ctx.store.federationLinks.get(principal.objectId);
        if (link === undefined) throw DirectoryErrors.resourceNotFound(FEDERATION_LINK_TYPE, 'default', scope.resourceGroup);
        return federationLinkView(id, name, principal, link, ctx.outboundFederation.issuer());
      },
      (view) => view,
    ),
  });

  route(app, {
    method: 'PUT',
    url: ONE,
    onRequest: as('write'),
    handler: armPutHandler(ctx, {
      kind: 'federationLink',
      target,
      write: async (scope, request) => {
        const properties = jsonProperties(request.body, () => ApiErrors.invalidContent("the request needs 'properties' with 'tenantId' and 'clientId'"));
        const fields = validateFederationLinkFields(properties);
        const { id, name, principal } = await owner(scope);
        const now = ctx.clock.now();
        const existing = await ctx.store.federationLinks.get(principal.objectId);
        const link: FederationLink = { ownerId: principal.objectId.toLowerCase(), ...fields, createdAt: existing?.createdAt ?? now, updatedAt: now };
        const outcome = await ctx.store.federationLinks.put(link);
        const view = federationLinkView(id, name, principal, link, ctx.outboundFederation.issuer());
        return {
          item: view,
          created: outcome === 'created',
          id: String(view['id']),
          detail: { tenantId: link.tenantId, clientId: link.clientId, authorityHost: link.authorityHost, issuer: link.issuer },
        };
      },
      view: (view) => view,
    }),
  });

  route(app, {
    method: 'DELETE',
    url: ONE,
    onRequest: as('write'),
    handler: armDeleteHandler(ctx, {
      kind: 'federationLink',
      target,
      remove: async (scope) => {
        const { id, principal } = await owner(scope);
        const existing = await ctx.store.federationLinks.get(principal.objectId);
        if (existing === undefined || !(await ctx.store.federationLinks.delete(principal.objectId))) return undefined;
        return { id: `${id}/outboundFederation/default`, detail: { tenantId: existing.tenantId, clientId: existing.clientId } };
      },
    }),
  });

  route(app, {
    method: 'GET',
    url: '/openmsi/federationOutbound',
    onRequest: [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.federationIssuersRead))],
    handler: async (request) => {
      // `?issuer=` names a per-link issuer (same keys, documents naming that issuer).
      const asked = singleQuery(request, 'issuer');
      const problem = asked === undefined ? undefined : outboundIssuerProblem(asked);
      if (problem !== undefined) throw ApiErrors.invalidContent(`the 'issuer' query parameter ${problem}`);
      const issuer = asked ?? ctx.outboundFederation.issuer();
      return Promise.resolve({
        issuer,
        jwksUri: outboundJwksUri(issuer),
        openidConfiguration: outboundDiscoveryDocument(issuer),
        jwks: ctx.outboundFederation.jwks(),
      });
    },
  });
}
