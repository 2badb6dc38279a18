/**
 * Workload identity federation, outbound: openmsi as an OIDC issuer that a real Entra (or another openmsi)
 * trusts through a federated identity credential (spec federation §1). One issuer URL per installation,
 * configurable (`federationIssuer` in config.json, `openmsi server --federation-issuer`), because Entra fetches
 * `{iss}/.well-known/openid-configuration` over public HTTPS: the documents are either served by openmsi at the
 * default issuer's path or exported as static files (`openmsi federation export`) for a public host.
 *
 * Assertions are signed with the authority's current token-signing key (RS256, `kid` from the key ring), so key
 * rotation publishes the next key in the JWKS before it signs, as for access tokens.
 */
import { randomUUID, sign } from 'node:crypto';
import type { KeyRing } from '../keys/key-ring.js';
import type { Clock } from '../../shared/clock.js';

/** The audience Entra recommends (and the only one openmsi's assertions carry). */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** Assertion lifetime: an hour, as Kubernetes' projected tokens (Entra's cap is 25 h). */
export const OUTBOUND_ASSERTION_LIFETIME_SECONDS = 3600;
/** Where the default issuer lives on the authority's own origin. */
export const DEFAULT_OUTBOUND_ISSUER_PATH = '/openmsi/federation';
/** The JWKS path under the issuer (the Kubernetes API server's, which the AWI docs host statically too). */
export const OUTBOUND_JWKS_PATH = '/openid/v1/jwks';
/** The discovery document's path under the issuer. */
export const OUTBOUND_DISCOVERY_PATH = '/.well-known/openid-configuration';

/**
 * Checks an outbound issuer URL: an absolute `https://` URL with no query, fragment, credentials or surrounding
 * whitespace, at most 600 characters (Entra's limit on a credential's issuer). A trailing `/` is kept (Entra
 * compares exactly); returns the reason when it is not acceptable.
 */
export function outboundIssuerProblem(value: string): string | undefined {
  if (value.trim() !== value || value === '') return 'must not be empty or have surrounding whitespace';
  if (value.length > 600) return 'must be at most 600 characters';
  if (!URL.canParse(value)) return 'must be an absolute URL';
  const url = new URL(value);
  if (url.protocol !== 'https:') return 'must be an https:// URL (Entra fetches its discovery document over HTTPS)';
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '' || value.includes('?') || value.includes('#')) {
    return 'must have no query, fragment or credentials';
  }
  return undefined;
}

/** The issuer with no trailing `/`, the base the documents' paths are joined to (single slash, as AKS issuers). */
function base(issuer: string): string {
  return issuer.endsWith('/') ? issuer.slice(0, -1) : issuer;
}

/** The JWKS URL the discovery document names: under the issuer, so a static host serves both. */
export function outboundJwksUri(issuer: string): string {
  return base(issuer) + OUTBOUND_JWKS_PATH;
}

/** The minimal discovery document Entra consumes (AWI's shape); `issuer` byte-equal to the assertions' `iss`. */
export function outboundDiscoveryDocument(issuer: string): Record<string, unknown> {
  return {
    issuer,
    jwks_uri: outboundJwksUri(issuer),
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  };
}

/** The JWK Set to publish: the authority's published signing keys, public members only (`kty/use/alg/kid/n/e`). */
export function outboundJwks(keyRing: KeyRing): { keys: Record<string, unknown>[] } {
  return {
    keys: keyRing
      .jwks()
      .keys.slice(0, 100) // Entra stores only the first 100 keys of a set.
      .map((k) => ({ kty: k['kty'], use: 'sig', alg: 'RS256', kid: k['kid'], n: k['n'], e: k['e'] })),
  };
}

/** A signed outbound assertion and when it expires (epoch seconds). */
export interface OutboundAssertion {
  assertion: string;
  issuedAt: number;
  expiresOn: number;
}

/**
 * Signs the assertion an upstream Entra exchanges for `subject`'s token: `iss` = `issuer`, `sub` = the identity's
 * object id (immutable), `aud` = [`api://AzureADTokenExchange`], `iat`, `nbf`, `exp` (an hour), `jti`; header
 * RS256 with the current key's `kid`.
 */
export function signOutboundAssertion(options: {
  keyRing: KeyRing;
  clock: Clock;
  issuer: string;
  subject: string;
  lifetimeSeconds?: number;
}): OutboundAssertion {
  const key = options.keyRing.current();
  const now = Math.floor(options.clock.now() / 1000);
  const exp = now + (options.lifetimeSeconds ?? OUTBOUND_ASSERTION_LIFETIME_SECONDS);
  const header = { alg: 'RS256', kid: key.kid, typ: 'JWT' };
  const claims = { iss: options.issuer, sub: options.subject, aud: [TOKEN_EXCHANGE_AUDIENCE], iat: now, nbf: now, exp, jti: randomUUID() };
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(input), key.privateKey).toString('base64url');
  return { assertion: `${input}.${signature}`, issuedAt: now, expiresOn: exp };
}
