/** Helpers for the host API tests: a host key pair, assertions, JSON calls in process. */
import { randomUUID, type webcrypto } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { TestAuthority } from '../../support/authority.js';
import { HOST_API_BASE } from '../../../src/shared/host-protocol.js';
import { MANAGED_IDENTITY_GRANT_TYPE } from '../../../src/authority/grants/managed-identity.js';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface HostKey {
  privateKey: webcrypto.CryptoKey;
  publicJwk: JWK;
  thumbprint: string;
  alg: 'ES256' | 'RS256';
}

export async function hostKey(alg: 'ES256' | 'RS256' = 'ES256'): Promise<HostKey> {
  const pair = await generateKeyPair(alg, alg === 'RS256' ? { modulusLength: 2048 } : {});
  const publicJwk = await exportJWK(pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk, 'sha256'), alg };
}

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** One call to the authority in process (fastify inject), from `remoteAddress`. */
export async function call(
  t: TestAuthority,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  url: string,
  options: { body?: unknown; bearer?: string; remoteAddress?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse> {
  const response = await t.app.inject({
    method,
    url,
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    headers: {
      host: new URL(t.url).host,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.bearer === undefined ? {} : { authorization: `Bearer ${options.bearer}` }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  });
  return { status: response.statusCode, headers: response.headers, body: response.body, json: <T>() => JSON.parse(response.body) as T };
}

/** A host assertion for `aud` (default: the host API on the authority's origin), timed by the authority's clock. */
export async function hostAssertion(
  t: TestAuthority,
  key: HostKey,
  hostResourceId: string,
  options: { kid?: string; aud?: string; lifetimeSeconds?: number; jti?: string; iat?: number } = {},
): Promise<string> {
  const iat = options.iat ?? Math.floor(t.ctx.clock.now() / 1000);
  return new SignJWT({ jti: options.jti ?? randomUUID() })
    .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.thumbprint })
    .setIssuer(hostResourceId)
    .setSubject(hostResourceId)
    .setAudience(options.aud ?? `${t.url}${HOST_API_BASE}`)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.lifetimeSeconds ?? 300))
    .sign(key.privateKey);
}

/** Asks the managed-identity grant for a token with an assertion signed by `key`; returns the raw response. */
export async function grantToken(t: TestAuthority, key: HostKey, hostResourceId: string, extra: Record<string, string> = {}): Promise<JsonResponse> {
  const tokenUrl = `${t.url}/${t.tenantId}/oauth2/token`;
  const response = await t.app.inject({
    method: 'POST',
    url: `/${t.tenantId}/oauth2/token`,
    headers: { host: new URL(t.url).host, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({
      grant_type: MANAGED_IDENTITY_GRANT_TYPE,
      client_assertion_type: JWT_BEARER,
      client_assertion: await hostAssertion(t, key, hostResourceId, { aud: tokenUrl }),
      resource: 'https://vault.azure.net',
      ...extra,
    }).toString(),
  });
  return { status: response.statusCode, headers: response.headers, body: response.body, json: <T>() => JSON.parse(response.body) as T };
}

/** The management API as the bootstrap admin. */
export async function admin(t: TestAuthority, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<JsonResponse> {
  const token = await t.adminToken('https://management.azure.com/');
  const url = path.startsWith('/openmsi/') && !path.includes('api-version') ? path : `${path}${path.includes('?') ? '&' : '?'}api-version=2023-01-31`;
  return call(t, method, url, { bearer: token, ...(body === undefined ? {} : { body }) });
}
