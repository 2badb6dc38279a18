import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthorityContext } from '../context.js';
import { oauthErrorHandler } from '../../shared/oauth-error.js';
import { TokenErrors } from '../errors.js';
import type { OriginUrls } from '../urls.js';
import {
  DEFAULT_OUTBOUND_ISSUER_PATH,
  OUTBOUND_DISCOVERY_PATH,
  OUTBOUND_JWKS_PATH,
  outboundDiscoveryDocument,
  outboundJwks,
} from '../federation/outbound-issuer.js';
import { ADFS_SEGMENT, MULTI_TENANT_SEGMENTS, isAdfsSegment, resolveTenant } from './tenant.js';

/** The fields of Entra's v1-style discovery documents that are the same for every tenant and name. */
const V1_DOCUMENT_CONSTANTS = {
  token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
  response_modes_supported: ['query', 'fragment', 'form_post'],
  subject_types_supported: ['pairwise'],
  id_token_signing_alg_values_supported: ['RS256'],
  response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
  scopes_supported: ['openid'],
} as const;

/** JWKS responses may be cached this long; it must stay below the rotation pre-publication window. */
const JWKS_MAX_AGE_SECONDS = 3600;

/**
 * OIDC discovery (v1 and v2), JWKS and MSAL's instance discovery, answered locally. Documents name the
 * origin the client used when it is one of the server certificate's names (else the canonical one): the
 * v2 document's `issuer` must share the scheme, host and port of the authority MSAL was given, which is
 * what msal-common's issuer validation accepts for a non-Microsoft host. The v1 document's `issuer` is the
 * access tokens' `iss`, one stable value on the canonical origin, as Entra's v1 issuer is.
 */
export function discoveryRoutes(app: FastifyInstance, opts: { ctx: AuthorityContext }): Promise<void> {
  const { ctx } = opts;
  /** The URLs to advertise to this request: its own origin if it is a certificate name, else the canonical one. */
  const advertised = (request: FastifyRequest): OriginUrls => ctx.urls.forHost(request.headers.host);
  /** The authority's host[:port], as Entra's documents name their cloud instance. */
  const hostOf = (urls: OriginUrls): string => new URL(urls.origin).host;

  app.setErrorHandler(oauthErrorHandler({ clock: ctx.clock, logMessage: 'discovery request failed' }));

  /** The tenant as documents name it: a real id, or Entra's `{tenantid}` placeholder for multi-tenant segments. */
  async function tenantFor(segment: string): Promise<string> {
    if (MULTI_TENANT_SEGMENTS.has(segment.toLowerCase())) return '{tenantid}';
    return (await resolveTenant(ctx, segment, { forGrant: false })).id;
  }

  app.get<{ Params: { tenant: string } }>('/:tenant/v2.0/.well-known/openid-configuration', async (request, reply) => {
    const segment = request.params.tenant;
    const tid = await tenantFor(segment);
    const urls = advertised(request);
    const host = hostOf(urls);
    // Under the `adfs` alias every URL stays under /adfs; MSAL checks only that the issuer's host is the one it dialled.
    const adfs = isAdfsSegment(segment);
    const name = adfs ? ADFS_SEGMENT : tid;
    return reply.header('cache-control', 'public, max-age=86400').send({
      token_endpoint: urls.tokenEndpoint(name, 'v2'),
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: urls.jwksUri(segment, 'v2'),
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: urls.v2Issuer(name),
      request_uri_parameter_supported: false,
      userinfo_endpoint: `${urls.origin}/oidc/userinfo`,
      authorization_endpoint: urls.authorizationEndpoint(name, 'v2'),
      device_authorization_endpoint: `${urls.origin}/${name}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${urls.origin}/${name}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'oid', 'tid', 'appid', 'idtyp', 'ver', 'xms_mirid'],
      grant_types_supported: ['client_credentials', 'password', 'refresh_token', 'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      tenant_region_scope: null,
      cloud_instance_name: host,
      cloud_graph_host_name: host,
      msgraph_host: host,
    });
  });

  app.get<{ Params: { tenant: string } }>('/:tenant/.well-known/openid-configuration', async (request, reply) => {
    const segment = request.params.tenant;
    const tid = await tenantFor(segment);
    const urls = advertised(request);
    const host = hostOf(urls);
    if (isAdfsSegment(segment)) return reply.header('cache-control', 'public, max-age=86400').send(adfsDocument(urls, host));
    return reply.header('cache-control', 'public, max-age=86400').send({
      token_endpoint: urls.tokenEndpoint(tid, 'v1'),
      jwks_uri: urls.jwksUri(segment, 'v1'),
      ...V1_DOCUMENT_CONSTANTS,
      // Entra's v1 issuer (`https://sts.windows.net/{tid}/`) is the `iss` of v1 access tokens; ours likewise,
      // whichever name the client used (MSAL reads the v2 document, not this one, for a tenant id or domain).
      issuer: ctx.urls.v1Issuer(tid),
      authorization_endpoint: urls.authorizationEndpoint(tid, 'v1'),
      grant_types_supported: ['client_credentials', 'password', 'refresh_token', 'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      cloud_instance_name: host,
    });
  });

  const jwks = (reply: FastifyReply) => reply.header('cache-control', `public, max-age=${String(JWKS_MAX_AGE_SECONDS)}`).send(ctx.keyRing.jwks());
  // Keys are shared by every tenant, as Entra's are; the tenant segment only has to exist.
  const tenantJwks = async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    await tenantFor(request.params.tenant);
    return jwks(reply);
  };
  app.get('/:tenant/discovery/v2.0/keys', tenantJwks);
  app.get('/:tenant/discovery/keys', tenantJwks);

  // Outbound federation: the default issuer's documents, public as Entra fetches them (a configured issuer on
  // another host is served from static files that `openmsi federation export` writes).
  if (ctx.outboundIssuerIsDefault) {
    const document = (_request: FastifyRequest, reply: FastifyReply) =>
      reply.header('cache-control', 'public, max-age=3600').send(outboundDiscoveryDocument(ctx.outboundIssuer()));
    app.get(DEFAULT_OUTBOUND_ISSUER_PATH + OUTBOUND_DISCOVERY_PATH, document);
    app.get(DEFAULT_OUTBOUND_ISSUER_PATH + OUTBOUND_JWKS_PATH, (_request, reply) =>
      reply.header('cache-control', `public, max-age=${String(JWKS_MAX_AGE_SECONDS)}`).send(outboundJwks(ctx.keyRing)),
    );
  }

  // MSAL asks this before trusting a non-Microsoft authority host (unless instance discovery is disabled).
  app.get<{ Querystring: { authorization_endpoint?: string } }>('/common/discovery/instance', async (request, reply) => {
    const urls = advertised(request);
    const host = hostOf(urls);
    const endpoint = request.query.authorization_endpoint;
    let url: URL | undefined;
    try {
      url = endpoint === undefined ? undefined : new URL(endpoint);
    } catch {
      url = undefined;
    }
    if (url?.origin !== urls.origin) {
      throw TokenErrors.unknownAuthorizationEndpoint();
    }
    const tenant = url.pathname.split('/').filter(Boolean)[0] ?? 'common';
    return reply.header('cache-control', 'public, max-age=86400').send({
      tenant_discovery_endpoint: urls.discoveryDocument(tenant, 'v2'),
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  });
  return Promise.resolve();
}

/**
 * `/adfs/.well-known/openid-configuration`: what MSAL JS and Go read for tenant `adfs` (no `/v2.0`). Its
 * `issuer` is on the origin the client dialled (msal-common's `validateIssuer` compares scheme, host and
 * port only, for AD FS too). Its `token_endpoint` is the v2 one, which MSAL Python posts to without reading
 * any document, so all clients share one route and MSAL gets the v2 response shape it parses.
 */
function adfsDocument(urls: OriginUrls, host: string): Record<string, unknown> {
  return {
    token_endpoint: urls.tokenEndpoint(ADFS_SEGMENT, 'v2'),
    jwks_uri: urls.jwksUri(ADFS_SEGMENT, 'v1'),
    ...V1_DOCUMENT_CONSTANTS,
    issuer: urls.v1Issuer(ADFS_SEGMENT),
    authorization_endpoint: urls.authorizationEndpoint(ADFS_SEGMENT, 'v2'),
    device_authorization_endpoint: `${urls.origin}/${ADFS_SEGMENT}/oauth2/v2.0/devicecode`,
    grant_types_supported: ['client_credentials', 'password', 'refresh_token', 'authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
    cloud_instance_name: host,
  };
}
