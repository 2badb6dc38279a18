/**
 * The agent's client of the authority: HTTPS with the installation's CA, a keep-alive connection pool per
 * authority. Every call goes through the {@link AuthorityPool} (one or more replicas, `--authority` repeatable),
 * which picks the authority, fails over on connection errors and 5xx, and goes back to the preferred one when
 * it recovers. Every host call is authenticated by a short-lived host assertion (ES256, signed with the host
 * key) as `src/shared/host-protocol.ts` describes, addressed to the authority it is sent to; workload tokens
 * come from the managed-identity grant.
 *
 * Failures are mapped into {@link UpstreamError} kinds the agent acts on:
 * - `unavailable`: network error, timeout, 5xx, 429 (retry with backoff; keep serving the cache);
 * - `host-not-recognised`: the host credential is revoked/expired or the host deleted (stop serving at once);
 * - `identity-not-found`: the identity is not (or no longer) assigned to this host;
 * - `invalid-resource`: the authority refused the resource (400 `invalid_resource` / `invalid_scope`): the
 *   caller's mistake, answered 400, never a 5xx that clients would retry;
 * - `refused`: any other 4xx (a bug or a version mismatch; not retried on the hot path);
 * - `federation-refused`: an upstream Entra refused the exchange of a linked identity's assertion (its OAuth
 *   error is relayed to the caller: `oauthError`, `description`).
 */
import { randomUUID, type webcrypto } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SignJWT } from 'jose';
import {
  HOST_API_BASE,
  HOST_API_PATHS,
  type AgentAuditRecord,
  type EnrolRequest,
  type FederationAssertionGrant,
  type FederationAssertionRequest,
  type HostCredentialGrant,
  type HostDescription,
  type PublicJwk,
  type RenewRequest,
} from '../shared/host-protocol.js';
import { epochSeconds, systemClock, type Clock } from '../shared/clock.js';
import { AGENT_DEFAULTS } from '../shared/config.js';
import { HttpCallError, httpCall, parseJsonBody } from '../shared/http-client.js';
import { AuthorityPool, type AuthorityEndpoint, type AuthoritySwitch } from './authority-pool.js';
import { UpstreamError } from './upstream-error.js';

export const MANAGED_IDENTITY_GRANT_TYPE = 'urn:openmsi:params:oauth:grant-type:managed-identity';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Host assertions live this long (the contract allows up to 300 s). */
const ASSERTION_LIFETIME_SECONDS = 120;

export { UpstreamError, type UpstreamFailureKind } from './upstream-error.js';

/** The host's signing identity: the credential's key id, the host's ARM id, and the private key. */
export interface HostSigningKey {
  keyId: string;
  hostResourceId: string;
  privateKey: webcrypto.CryptoKey;
}

/** How the grant selects an identity (the agent always resolves selectors locally first, then sends the object id). */
export type GrantSelector = { kind: 'system' } | { kind: 'mi_client_id' | 'mi_object_id' | 'mi_res_id'; value: string };

/** A workload token as the grant issued it. Times are epoch seconds. */
export interface IssuedToken {
  accessToken: string;
  expiresOn: number;
  notBefore: number;
  /** When the agent received it (epoch seconds): the base of the half-life refresh. */
  receivedAt: number;
}

export interface AuthorityClientOptions {
  /** The authority's origin, e.g. `https://authority.internal:8443` (one authority; or give {@link authorityUrls}). */
  authorityUrl?: string;
  /**
   * Several authorities (replicas of one installation), in order of preference: calls fail over between them
   * (authority-pool.ts). Takes precedence over {@link authorityUrl}.
   */
  authorityUrls?: readonly string[];
  /** PEM of the CA the authority's TLS certificate chains to (`--ca-file`); absent, the system roots. */
  caPem?: string;
  clock?: Clock;
  timeoutMs?: number;
  random?: () => number;
  /** Backoff of the readiness probes of a more preferred authority (authority-pool.ts). */
  probeMinMs?: number;
  probeMaxMs?: number;
  /** Called on each failover and return (the agent logs and counts them). */
  onSwitch?: (event: AuthoritySwitch) => void;
}

interface RawResponse {
  status: number;
  body: string;
  headers: IncomingMessage['headers'];
}

export class AuthorityClient {
  /** Which authority each call goes to (failover and return). */
  readonly pool: AuthorityPool;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  /** Number of managed-identity grant calls made (tests count cache misses with it). */
  grantCalls = 0;

  constructor(options: AuthorityClientOptions) {
    const urls = options.authorityUrls ?? (options.authorityUrl === undefined ? [] : [options.authorityUrl]);
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs ?? AGENT_DEFAULTS.upstreamTimeoutMs;
    this.pool = new AuthorityPool({
      urls,
      clock: this.#clock,
      timeoutMs: this.#timeoutMs,
      ...(options.caPem === undefined ? {} : { caPem: options.caPem }),
      ...(options.random === undefined ? {} : { random: options.random }),
      ...(options.probeMinMs === undefined ? {} : { probeMinMs: options.probeMinMs }),
      ...(options.probeMaxMs === undefined ? {} : { probeMaxMs: options.probeMaxMs }),
      ...(options.onSwitch === undefined ? {} : { onSwitch: options.onSwitch }),
    });
  }

  /** The origin of the authority in use now. */
  get origin(): string {
    return this.pool.current.origin;
  }

  /** Every authority's origin, in order of preference. */
  get origins(): string[] {
    return this.pool.endpoints.map((e) => e.origin);
  }

  /** A host assertion for `audience` (the host API base or the token endpoint). */
  async assertion(key: HostSigningKey, audience: string): Promise<string> {
    const now = epochSeconds(this.#clock);
    return new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: key.keyId, typ: 'JWT' })
      .setIssuer(key.hostResourceId)
      .setSubject(key.hostResourceId)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
      .sign(key.privateKey);
  }

  /**
   * A workload token from the managed-identity grant (the v1 endpoint: string numbers). `tokenEndpoint` is the one
   * the credential grant named; its path is used on the authority in use, and the assertion addressed to it there.
   */
  async token(key: HostSigningKey, tokenEndpoint: string, selector: GrantSelector, resource: string): Promise<IssuedToken> {
    this.grantCalls++;
    const path = new URL(tokenEndpoint).pathname;
    const response = await this.pool.call(async (endpoint) => {
      const url = endpoint.origin + path;
      const form = new URLSearchParams({
        grant_type: MANAGED_IDENTITY_GRANT_TYPE,
        client_assertion_type: JWT_BEARER,
        client_assertion: await this.assertion(key, url),
        resource,
      });
      if (selector.kind !== 'system') form.set(selector.kind, selector.value);
      const answer = await this.#send(endpoint, 'POST', url, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString());
      if (answer.status !== 200) throw oauthFailure(answer);
      return answer;
    });
    const body = parseJsonBody(response.body) as Record<string, unknown> | undefined;
    const accessToken = body?.['access_token'];
    const expiresOn = Number(body?.['expires_on']);
    const notBefore = Number(body?.['not_before'] ?? epochSeconds(this.#clock));
    if (typeof accessToken !== 'string' || !Number.isInteger(expiresOn)) {
      throw new UpstreamError('refused', 'the authority answered the managed-identity grant without access_token/expires_on', { status: 200 });
    }
    return { accessToken, expiresOn, notBefore: Number.isInteger(notBefore) ? notBefore : expiresOn, receivedAt: epochSeconds(this.#clock) };
  }

  /** `POST federation-assertion`: the outbound assertion for a linked identity assigned to this host. */
  async federationAssertion(key: HostSigningKey, objectId: string): Promise<FederationAssertionGrant> {
    const body: FederationAssertionRequest = { objectId };
    const grant = (await this.#hostCall(key, 'POST', HOST_API_PATHS.federationAssertion, body)) as Partial<FederationAssertionGrant> | undefined;
    if (typeof grant?.assertion !== 'string' || typeof grant.expiresOn !== 'number' || typeof grant.issuedAt !== 'number') {
      throw new UpstreamError('refused', 'the authority answered the federation assertion request without assertion/issuedAt/expiresOn', { status: 200 });
    }
    return grant as FederationAssertionGrant;
  }

  /** `GET self`: the host and the identities assigned to it now. */
  async self(key: HostSigningKey): Promise<HostDescription> {
    return (await this.#hostCall(key, 'GET', HOST_API_PATHS.self)) as HostDescription;
  }

  /** `POST enrol` with a join token (no bearer). */
  async enrol(request: EnrolRequest): Promise<HostCredentialGrant> {
    const response = await this.pool.call(async (endpoint) => {
      const answer = await this.#send(
        endpoint,
        'POST',
        endpoint.origin + HOST_API_PATHS.enrol,
        { 'content-type': 'application/json' },
        JSON.stringify(request),
      );
      if (answer.status !== 200 && answer.status !== 201) throw apiFailure(answer);
      return answer;
    });
    return parseJsonBody(response.body) as HostCredentialGrant;
  }

  /** `POST renew`, authenticated by the current credential, registering `publicJwk` as the next one. */
  async renew(key: HostSigningKey, publicJwk: PublicJwk): Promise<HostCredentialGrant> {
    const body: RenewRequest = { publicJwk };
    return (await this.#hostCall(key, 'POST', HOST_API_PATHS.renew, body)) as HostCredentialGrant;
  }

  /**
   * `POST audit`: a batch of records; answers how many the authority accepted and how many it refused
   * (counted on its side in an `agent.audit.dropped` event).
   */
  async audit(key: HostSigningKey, records: AgentAuditRecord[], signal?: AbortSignal): Promise<{ accepted: number; refused: number }> {
    const answer = (await this.#hostCall(key, 'POST', HOST_API_PATHS.audit, { records }, signal)) as { accepted?: unknown; refused?: unknown } | undefined;
    return {
      accepted: typeof answer?.accepted === 'number' ? answer.accepted : records.length,
      refused: typeof answer?.refused === 'number' ? answer.refused : 0,
    };
  }

  close(): void {
    this.pool.close();
  }

  /** A host API call on the authority in use (failing over), with a host assertion addressed to that authority. */
  async #hostCall(key: HostSigningKey, method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<unknown> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const response = await this.pool.call(async (endpoint) => {
      const bearer = await this.assertion(key, endpoint.origin + HOST_API_BASE);
      const headers: Record<string, string> = { authorization: `Bearer ${bearer}` };
      if (text !== undefined) headers['content-type'] = 'application/json';
      const answer = await this.#send(endpoint, method, endpoint.origin + path, headers, text, signal);
      if (answer.status < 200 || answer.status > 299) throw apiFailure(answer);
      return answer;
    }, signal);
    return parseJsonBody(response.body);
  }

  async #send(
    endpoint: AuthorityEndpoint,
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: string,
    signal?: AbortSignal,
  ): Promise<RawResponse> {
    try {
      const answer = await httpCall(url, {
        method,
        headers: { accept: 'application/json', ...headers },
        ...(body === undefined ? {} : { body }),
        agent: endpoint.agent,
        timeoutMs: this.#timeoutMs,
        ...(signal === undefined ? {} : { signal }),
      });
      return { status: answer.status, body: answer.text, headers: answer.headers };
    } catch (err) {
      if (err instanceof HttpCallError && err.kind === 'broken')
        throw new UpstreamError('unavailable', `the answer of the authority at ${endpoint.origin} broke off: ${err.message}`, { cause: err });
      throw new UpstreamError('unavailable', `cannot reach the authority at ${endpoint.origin}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** A token-endpoint failure (`{error, error_description}`). */
function oauthFailure(response: RawResponse): UpstreamError {
  const { status } = response;
  if (status >= 500 || status === 429 || status === 408) return new UpstreamError('unavailable', `the authority answered ${String(status)}`, { status });
  const body = parseJsonBody(response.body) as { error?: unknown; error_description?: unknown } | undefined;
  const description = typeof body?.error_description === 'string' ? (body.error_description.split('\r\n')[0] ?? '') : '';
  if (status === 401 && body?.error === 'invalid_client' && /host/i.test(description)) {
    return new UpstreamError('host-not-recognised', `the authority does not recognise this host: ${description}`, { status });
  }
  if (status === 400 && /Identity not found/.test(description)) return new UpstreamError('identity-not-found', 'Identity not found', { status });
  if (status === 400 && (body?.error === 'invalid_resource' || body?.error === 'invalid_scope')) {
    return new UpstreamError('invalid-resource', `the authority refused the resource: ${description}`, { status });
  }
  return new UpstreamError('refused', `the authority refused the token request (${String(status)} ${String(body?.error)}: ${description})`, { status });
}

/** A host-API failure (`{error: {code, message}}`). */
function apiFailure(response: RawResponse): UpstreamError {
  const { status } = response;
  if (status >= 500 || status === 408) return new UpstreamError('unavailable', `the authority answered ${String(status)}`, { status });
  const body = parseJsonBody(response.body) as { error?: { code?: unknown; message?: unknown } } | undefined;
  const code = typeof body?.error?.code === 'string' ? body.error.code : undefined;
  const message = typeof body?.error?.message === 'string' ? body.error.message : response.body.slice(0, 200);
  if (code === 'HostNotRecognised') return new UpstreamError('host-not-recognised', `the authority does not recognise this host: ${message}`, { status });
  if (code === 'IdentityNotFound' || code === 'NotFederated') return new UpstreamError('identity-not-found', message, { status });
  if (status === 429) return new UpstreamError('unavailable', `the authority is rate limiting this host: ${message}`, { status });
  return new UpstreamError('refused', `the authority refused the call (${String(status)} ${code ?? ''}: ${message})`, { status });
}
