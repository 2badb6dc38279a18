/**
 * The one access-token verifier. Every openmsi service uses it, and third-party TypeScript services import it
 * as `openmsi/verifier`. It checks what an Entra-compatible resource must check — algorithm allow-list before
 * any key lookup, signature, issuer, audience, expiry — and reports failures with stable codes.
 *
 * Keys come from a {@link JwksSource}: {@link localJwks} in-process (the authority itself), or
 * {@link remoteJwks} over HTTPS with caching, single-flight fetches and an unknown-`kid` cooldown.
 */
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeProtectedHeader, errors, jwtVerify, type FetchImplementation } from 'jose';
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey, KeyObject, webcrypto } from 'node:crypto';
import type { Clock } from './clock.js';
import { systemClock } from './clock.js';
import { CodedError } from './coded-error.js';
import { HttpCallError, httpCall, type HttpAnswer } from './http-client.js';

export type { Clock } from './clock.js';

/** A verification key: WebCrypto `CryptoKey` or Node `KeyObject`. */
export type KeyLike = webcrypto.CryptoKey | KeyObject;

/** Resolves a token's `kid` to a public key. */
export interface JwksSource {
  /**
   * The key with this `kid` for this (already allow-listed) algorithm, or undefined when the source does not
   * know it. Rejects only when the source itself fails.
   */
  getKey(kid: string, alg?: string): Promise<KeyLike | undefined>;
}

/** A JWK Set document. */
export interface JwksDocument {
  keys: Record<string, unknown>[];
}

/** Stable reasons a token was rejected. */
export type TokenVerificationErrorCode =
  'malformed' | 'unsupported_alg' | 'unknown_key' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'bad_issuer' | 'bad_audience' | 'missing_claim';

/**
 * The token was rejected. `code` is stable; the message is for logs and never contains the token. Any other
 * error from {@link TokenVerifier.verify} means the key source failed (e.g. JWKS unreachable): a server
 * problem, not a bad token.
 */
export class TokenVerificationError extends CodedError<TokenVerificationErrorCode> {
  override readonly name = 'TokenVerificationError';
}

/** Claims of an openmsi (Entra v1-style) access token. */
export interface AccessTokenClaims {
  aud: string;
  iss: string;
  iat: number;
  nbf: number;
  exp: number;
  /** Client id of the caller. */
  appid?: string;
  /** `0` public client, `1` secret, `2` certificate / managed identity. */
  appidacr?: string;
  idp?: string;
  /** `app` for app-only tokens. */
  idtyp?: string;
  /** Object id of the calling principal. */
  oid: string;
  sub: string;
  tid: string;
  /** Unique token id. */
  uti?: string;
  ver: string;
  /** ARM id of the managed identity. */
  xms_mirid?: string;
  roles?: string[];
  [claim: string]: unknown;
}

/** A token that passed every check. */
export interface VerifiedToken {
  header: { alg: string; kid: string; x5t?: string };
  claims: AccessTokenClaims;
}

/** Options for {@link createTokenVerifier}. */
export interface TokenVerifierOptions {
  jwks: JwksSource;
  /** Accepted `iss` values, compared exactly. */
  issuers: readonly string[];
  /** Accepted `aud` values; a single trailing slash difference is tolerated. */
  audiences: readonly string[];
  clock?: Clock;
  /** Leeway for `exp`/`nbf`, seconds. Default 60. */
  clockToleranceSec?: number;
  /** Accepted JWS algorithms. Default `['RS256']`. Only asymmetric algorithms are allowed. */
  algorithms?: readonly string[];
}

/** Verifies access tokens. */
export interface TokenVerifier {
  /** @throws TokenVerificationError when the token is not acceptable. */
  verify(token: string): Promise<VerifiedToken>;
}

const ASYMMETRIC_ALGS: ReadonlySet<string> = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);
// Far above any real access token; bounds the work an attacker can make us do before any check.
const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_KID_LENGTH = 256;
const B64URL_SEGMENT = /^[A-Za-z0-9_-]+$/;

function fail(code: TokenVerificationErrorCode, message: string): never {
  throw new TokenVerificationError(code, message);
}

function stripOneSlash(value: string): string {
  return value.endsWith('/') ? value.slice(0, -1) : value;
}

function assertStringList(value: unknown, name: string): asserts value is readonly string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v !== '')) {
    throw new TypeError(`createTokenVerifier(): ${name} must be a non-empty array of non-empty strings`);
  }
}

/** Maps jose's errors to our codes. Anything unexpected (not a token problem) is rethrown. */
function mapJoseError(err: unknown): never {
  if (err instanceof errors.JWSSignatureVerificationFailed) fail('bad_signature', 'Token signature is invalid');
  if (err instanceof errors.JWTExpired) fail('expired', 'Token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') fail('missing_claim', `Token lacks the required "${err.claim}" claim`);
    if (err.claim === 'nbf' && err.reason === 'check_failed') fail('not_yet_valid', 'Token is not valid yet (nbf)');
    fail('malformed', `Token claim "${err.claim}" is invalid`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed) fail('unsupported_alg', 'Token algorithm is not allowed');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) fail('malformed', 'Token is malformed');
  // The algorithm was already allow-listed, so these mean the published key cannot be used with it (an EC key
  // under an RS256 header, an RSA key under 2048 bits): no valid signature is possible.
  if (err instanceof errors.JOSENotSupported || err instanceof TypeError) {
    fail('bad_signature', 'Token signature cannot be verified with the published key');
  }
  throw err;
}

/**
 * Creates a verifier. Checks, in order: compact JWS shape; `alg` in the allow-list (before any key lookup, so
 * `none` and HMAC tokens never reach a key); `kid` present; key known; signature; `exp` (required) and `nbf`
 * against the injected clock with tolerance; `iss`; `aud`; and the presence of `oid`, `tid`, `sub`, `ver`,
 * `iat`, `nbf`.
 *
 * @throws TypeError for invalid options (programmer error).
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { jwks, issuers, audiences, clock = systemClock, clockToleranceSec = 60, algorithms = ['RS256'] } = options ?? {};
  if (typeof jwks?.getKey !== 'function') throw new TypeError('createTokenVerifier(): jwks must be a JwksSource');
  assertStringList(issuers, 'issuers');
  assertStringList(audiences, 'audiences');
  assertStringList(algorithms, 'algorithms');
  for (const alg of algorithms) {
    if (!ASYMMETRIC_ALGS.has(alg)) throw new TypeError(`createTokenVerifier(): algorithm ${alg} is not an allowed asymmetric JWS algorithm`);
  }
  if (typeof clock?.now !== 'function') throw new TypeError('createTokenVerifier(): clock must be a Clock');
  if (typeof clockToleranceSec !== 'number' || !Number.isFinite(clockToleranceSec) || clockToleranceSec < 0) {
    throw new TypeError('createTokenVerifier(): clockToleranceSec must be a non-negative number');
  }

  const allowedAlgs: ReadonlySet<string> = new Set(algorithms);
  const algList = [...algorithms];
  const issuerSet: ReadonlySet<string> = new Set(issuers);
  const audienceSet: ReadonlySet<string> = new Set(audiences.map(stripOneSlash));

  async function verify(token: string): Promise<VerifiedToken> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) fail('malformed', 'Token is not a compact JWS');
    const parts = token.split('.');
    if (parts.length !== 3 || !B64URL_SEGMENT.test(parts[0]!) || !B64URL_SEGMENT.test(parts[1]!)) {
      fail('malformed', 'Token is not a compact JWS');
    }

    let protectedHeader: ReturnType<typeof decodeProtectedHeader>;
    try {
      protectedHeader = decodeProtectedHeader(token);
    } catch {
      fail('malformed', 'Token header is not valid JSON');
    }
    const { alg, kid, x5t } = protectedHeader;
    if (typeof alg !== 'string') fail('malformed', 'Token header lacks "alg"');
    if (!allowedAlgs.has(alg)) {
      const shown = /^[A-Za-z0-9]{1,16}$/.test(alg) ? alg : '(invalid)';
      fail('unsupported_alg', `Token algorithm ${shown} is not allowed`);
    }
    if (typeof kid !== 'string' || kid === '' || kid.length > MAX_KID_LENGTH) fail('malformed', 'Token header lacks "kid"');
    if (parts[2] === '' || !B64URL_SEGMENT.test(parts[2]!)) fail('malformed', 'Token has no signature');

    const key = await jwks.getKey(kid, alg);
    if (key === undefined) fail('unknown_key', 'Token was signed by a key that is not published (unknown kid)');

    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: algList,
        currentDate: new Date(clock.now()),
        clockTolerance: clockToleranceSec,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      mapJoseError(err);
    }

    const { iss, aud } = payload;
    if (iss === undefined) fail('missing_claim', 'Token lacks the required "iss" claim');
    if (typeof iss !== 'string' || !issuerSet.has(iss)) fail('bad_issuer', 'Token issuer is not accepted');
    if (aud === undefined) fail('missing_claim', 'Token lacks the required "aud" claim');
    // Access tokens carry one audience; an array is not something this service was asked to accept.
    if (typeof aud !== 'string' || !audienceSet.has(stripOneSlash(aud))) fail('bad_audience', 'Token audience is not accepted');
    for (const claim of ['oid', 'tid', 'sub', 'ver'] as const) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '') fail('missing_claim', `Token lacks the required "${claim}" claim`);
    }
    for (const claim of ['iat', 'nbf'] as const) {
      if (typeof payload[claim] !== 'number') fail('missing_claim', `Token lacks the required "${claim}" claim`);
    }
    const { roles } = payload;
    if (roles !== undefined && !(Array.isArray(roles) && roles.every((r) => typeof r === 'string'))) {
      fail('malformed', 'Token "roles" claim must be an array of strings');
    }

    const header: VerifiedToken['header'] = { alg, kid };
    if (typeof x5t === 'string') header.x5t = x5t;
    return { header, claims: payload as AccessTokenClaims };
  }

  return { verify };
}

// ---------------------------------------------------------------------------------------------------------
// Key sources

/** Imports public JWKs once per (kid, key material); bounded so a hostile JWKS cannot grow it forever. */
class ImportedKeyCache {
  readonly #keys = new Map<string, KeyObject | null>();

  get(jwk: Record<string, unknown>): KeyObject | undefined {
    const member = (name: string): string => (typeof jwk[name] === 'string' ? jwk[name] : '');
    const id = `${member('kid')}|${member('n') || member('x')}|${member('y')}`;
    let key = this.#keys.get(id);
    if (key === undefined) {
      key = importPublicJwk(jwk);
      if (this.#keys.size >= 256) this.#keys.clear();
      this.#keys.set(id, key);
    }
    return key ?? undefined;
  }
}

/** A usable public signing key, or null for anything else (encryption keys, private keys, junk). */
function importPublicJwk(jwk: Record<string, unknown>): KeyObject | null {
  if (jwk.use !== undefined && jwk.use !== 'sig') return null;
  if (jwk.kty !== 'RSA' && jwk.kty !== 'EC' && jwk.kty !== 'OKP') return null;
  if (jwk.d !== undefined) return null;
  try {
    // A KeyObject is algorithm-agnostic; jose binds it to the token's (allow-listed) algorithm.
    return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    return null;
  }
}

function findKey(keys: readonly Record<string, unknown>[], kid: string): Record<string, unknown> | undefined {
  return keys.find((k) => k.kid === kid);
}

/**
 * A key source over a JWK Set held in process (e.g. the authority's own key ring). `getJwks` is called on
 * every lookup, so rotation is visible immediately.
 */
export function localJwks(getJwks: () => JwksDocument): JwksSource {
  if (typeof getJwks !== 'function') throw new TypeError('localJwks() takes a function returning a JWK Set');
  const cache = new ImportedKeyCache();
  return {
    getKey(kid: string): Promise<KeyLike | undefined> {
      const jwk = findKey(getJwks().keys, kid);
      return Promise.resolve(jwk === undefined ? undefined : cache.get(jwk));
    },
  };
}

/** Options for {@link remoteJwks} and {@link discoverJwks}. */
export interface RemoteJwksOptions {
  /** Trust anchors for the JWKS endpoint. Without it, the default store (plus `NODE_EXTRA_CA_CERTS`) applies. */
  ca?: string | Buffer;
  /** Refetch when the cached set is older than this. Default 10 minutes. */
  cacheMaxAgeMs?: number;
  /** Minimum gap between fetches caused by an unknown `kid` or a failure. Default 30 s. */
  cooldownMs?: number;
  /** Whole-request timeout. Default 5000 ms. */
  timeoutMs?: number;
  /** Largest accepted response. Default 1 MiB. */
  maxResponseBytes?: number;
  /**
   * @deprecated Ignored: the cache age and cooldowns follow the system clock (`Date.now()`), as jose's
   * `createRemoteJWKSet` does. Token times are checked against {@link TokenVerifierOptions.clock}.
   */
  clock?: Clock;
  /** Permit `http://` for 127.0.0.1 / localhost / [::1] only (local development). Default false. */
  allowInsecureLoopback?: boolean;
}

/** A remote JWK Set. */
export interface RemoteJwksSource extends JwksSource {
  /** Fetches now (joining a fetch already in flight). */
  refresh(): Promise<void>;
}

const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

function parseFetchUrl(raw: string, allowInsecureLoopback: boolean, fn: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TypeError(`${fn}(): invalid URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && allowInsecureLoopback && LOOPBACK_HOSTS.has(url.hostname)) return url;
  throw new TypeError(`${fn}(): only https:// URLs are allowed`);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number`);
  return value;
}

/**
 * A `fetch` over node:http(s), for jose's `customFetch`: Node 20's global fetch cannot take a private CA
 * without undici's `Agent`, which is not a dependency. Adds what fetch lacks here: a size cap, and a
 * whole-request bound through the caller's signal. Redirects are not followed.
 */
function httpsFetch(options: RemoteJwksOptions): FetchImplementation {
  if (options.ca !== undefined && typeof options.ca !== 'string' && !Buffer.isBuffer(options.ca)) {
    throw new TypeError('ca must be a PEM string or Buffer');
  }
  const maxBytes = positive(options.maxResponseBytes, 1024 * 1024, 'maxResponseBytes');
  // Only pass `ca` when given: a custom `ca` replaces the default roots (and NODE_EXTRA_CA_CERTS).
  return async (href, init) => {
    const url = new URL(href);
    const where = `${url.origin}${url.pathname}`;
    let answer: HttpAnswer;
    try {
      answer = await httpCall(url, {
        headers: Object.fromEntries(init.headers),
        // Only passed when given: a custom `ca` replaces the default roots (and NODE_EXTRA_CA_CERTS).
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        maxResponseBytes: maxBytes,
        // The whole-request bound is the caller's signal (jose's timeoutDuration); this only stops a dead socket.
        timeoutMs: 60_000,
        signal: init.signal,
      });
    } catch (err) {
      // An abort carries the signal's reason: jose turns a `TimeoutError` into `JWKSTimeout`.
      if (init.signal.aborted) throw init.signal.reason as Error;
      if (err instanceof HttpCallError && err.kind === 'too-large') throw new Error(`GET ${where}: response exceeds ${String(maxBytes)} bytes`, { cause: err });
      throw new Error(`GET ${where} failed: ${(err as Error).message}`, { cause: err });
    }
    if (answer.status !== 200) throw new Error(`GET ${where} returned HTTP ${String(answer.status)}`);
    return new Response(answer.text, { status: 200 });
  };
}

function isJwkSet(body: unknown): boolean {
  const keys = (body as { keys?: unknown } | null)?.keys;
  return Array.isArray(keys) && keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k));
}

/**
 * A key source over an HTTPS JWKS endpoint, on jose's `createRemoteJWKSet`:
 *
 * - The set is cached and refetched once older than `cacheMaxAgeMs`.
 * - An unknown `kid` triggers a refetch, at most once per `cooldownMs`, so forged kids cannot hammer the endpoint.
 * - Concurrent lookups share one in-flight fetch.
 * - What jose does not do: when a refetch fails, the last good set keeps serving, and the endpoint is not
 *   asked again for `cooldownMs` (jose would retry on every lookup, each waiting up to `timeoutMs`).
 *
 * `getKey` rejects (with a plain Error) only when no set has been fetched successfully. A key is found by `kid`
 * and algorithm (RS256 when none is given), so a key whose type does not fit the token's algorithm is unknown.
 */
export function remoteJwks(url: string, options: RemoteJwksOptions = {}): RemoteJwksSource {
  const target = parseFetchUrl(url, options.allowInsecureLoopback === true, 'remoteJwks');
  const cooldownMs = positive(options.cooldownMs, 30_000, 'cooldownMs');
  const fetchJwks = httpsFetch(options);
  const where = `${target.origin}${target.pathname}`;
  let failedAt = -Infinity;
  let lastError: unknown;
  let fallback: ReturnType<typeof createLocalJWKSet> | undefined;
  const remote = createRemoteJWKSet(target, {
    cacheMaxAge: positive(options.cacheMaxAgeMs, 10 * 60_000, 'cacheMaxAgeMs'),
    cooldownDuration: cooldownMs,
    timeoutDuration: Math.ceil(positive(options.timeoutMs, 5000, 'timeoutMs')),
    [customFetch]: async (href, init) => {
      try {
        const response = await fetchJwks(href, init);
        // Checked here, not left to jose, so that a bad body counts as a failed fetch (and cools down).
        if (
          !isJwkSet(
            await response
              .clone()
              .json()
              .catch(() => undefined),
          )
        )
          throw new Error(`GET ${where}: response is not a JWK Set`);
        return response;
      } catch (err) {
        failedAt = Date.now();
        lastError = err;
        fallback = undefined;
        throw err;
      }
    },
  });
  const failing = (): boolean => Date.now() - failedAt < cooldownMs;

  async function getKey(kid: string, alg = 'RS256'): Promise<KeyLike | undefined> {
    if (!failing()) {
      try {
        return await lookup(remote, kid, alg);
      } catch {
        // Not a fetch failure: the published key cannot be used (a private key, junk), so it is not "published".
        if (!failing()) return undefined;
      }
    }
    // The endpoint failed within the cooldown: serve the last good set without asking it again.
    const last = remote.jwks();
    if (last === undefined) throw new Error(`JWKS from ${where} is unavailable`, { cause: lastError });
    fallback ??= createLocalJWKSet(last);
    return lookup(fallback, kid, alg).catch(() => undefined);
  }

  return { getKey, refresh: () => remote.reload() };
}

/** A key from a jose key set, or undefined for a kid it lacks or whose key type does not fit `alg`. */
async function lookup(source: (header: { alg: string; kid: string }) => Promise<KeyLike>, kid: string, alg: string): Promise<KeyLike | undefined> {
  try {
    return await source({ alg, kid });
  } catch (err) {
    if (err instanceof errors.JWKSNoMatchingKey) return undefined;
    // Two keys under one kid: the first usable one, as a kid should name one key.
    if (err instanceof errors.JWKSMultipleMatchingKeys) {
      for await (const key of err) return key;
      return undefined;
    }
    throw err;
  }
}

/**
 * Reads `jwks_uri` from the OpenID discovery document and returns a {@link remoteJwks} source for it.
 * `issuerOrDiscoveryUrl` is either the discovery URL itself or an issuer, to which
 * `/.well-known/openid-configuration` is appended.
 */
export async function discoverJwks(issuerOrDiscoveryUrl: string, options: RemoteJwksOptions = {}): Promise<RemoteJwksSource> {
  const allowLoopback = options.allowInsecureLoopback === true;
  const base = parseFetchUrl(issuerOrDiscoveryUrl, allowLoopback, 'discoverJwks');
  const suffix = '/.well-known/openid-configuration';
  const discovery = base.pathname.endsWith(suffix) ? base : new URL(`${base.origin}${stripOneSlash(base.pathname)}${suffix}`);
  const where = `${discovery.origin}${discovery.pathname}`;
  const response = await httpsFetch(options)(discovery.href, {
    method: 'GET',
    redirect: 'manual',
    headers: new Headers({ accept: 'application/json' }),
    signal: AbortSignal.timeout(Math.ceil(positive(options.timeoutMs, 5000, 'timeoutMs'))),
  });
  let doc: unknown;
  try {
    doc = await response.json();
  } catch {
    throw new Error(`GET ${where}: response is not JSON`);
  }
  const jwksUri = (doc as { jwks_uri?: unknown } | null)?.jwks_uri;
  if (typeof jwksUri !== 'string') throw new Error(`${where} has no jwks_uri`);
  return remoteJwks(jwksUri, options);
}
