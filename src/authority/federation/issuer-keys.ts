/**
 * External issuers' signing keys, for federated client assertions. An issuer's keys come from its static
 * JWKS, its configured JWKS URL, or `{iss}/.well-known/openid-configuration` → `jwks_uri` (HTTPS only, with
 * Node's trust, which `NODE_EXTRA_CA_CERTS` extends, or the issuer's own CA when one is set).
 *
 * Bounds, so that an issuer that is down or slow never stalls anything but its own grants:
 * - one fetch per issuer at a time (concurrent grants share it), each bounded by `timeoutMs` in all;
 * - a cached set is kept `cacheMaxAgeMs` and served on (stale) while a refetch fails;
 * - an unknown `kid` refetches at most once per `unknownKidCooldownMs`; a failed fetch is not retried within
 *   `failureCooldownMs` (grants fail at once meanwhile instead of each waiting for the timeout);
 * - at most `maxIssuers` issuers are cached (least recently used first out). Only issuers some federated
 *   credential names are ever fetched: the token endpoint looks for a credential before it asks for keys.
 */
import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet } from 'jose';
import type { KeyObject, webcrypto } from 'node:crypto';
import { httpCall, parseJsonBody } from '../../shared/http-client.js';

export type VerificationKey = KeyObject | webcrypto.CryptoKey;

/** Where one issuer's keys come from (its stored setting, or discovery when it has none). */
export interface IssuerKeySource {
  issuer: string;
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUri: string | null;
  ca: string | null;
  /** Changes whenever the setting changes (its `updatedAt`), so a changed setting is never served from cache. */
  version: number;
}

/** The issuer's keys could not be had: AADSTS50166 for this grant. The message is for logs. */
export class IssuerUnavailableError extends Error {
  override readonly name = 'IssuerUnavailableError';
}

export interface IssuerKeysOptions {
  /** Epoch milliseconds (the authority's clock). */
  now: () => number;
  timeoutMs?: number;
  cacheMaxAgeMs?: number;
  unknownKidCooldownMs?: number;
  failureCooldownMs?: number;
  maxIssuers?: number;
  maxResponseBytes?: number;
}

/** Entra stores only the first 100 signing keys of an issuer. */
const MAX_KEYS = 100;

interface CachedSet {
  lookup: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
}

interface Entry {
  version: number;
  set: CachedSet | undefined;
  inflight: Promise<void> | undefined;
  lastAttemptAt: number;
  lastFailureAt: number;
  lastError: string | undefined;
}

export class IssuerKeys {
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #maxAgeMs: number;
  readonly #kidCooldownMs: number;
  readonly #failureCooldownMs: number;
  readonly #maxIssuers: number;
  readonly #maxBytes: number;
  readonly #entries = new Map<string, Entry>();
  /** How many fetches (discovery + JWKS) were started, for tests and metrics. */
  fetches = 0;

  constructor(options: IssuerKeysOptions) {
    this.#now = options.now;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#maxAgeMs = options.cacheMaxAgeMs ?? 3_600_000;
    this.#kidCooldownMs = options.unknownKidCooldownMs ?? 300_000;
    this.#failureCooldownMs = options.failureCooldownMs ?? 30_000;
    this.#maxIssuers = options.maxIssuers ?? 1_000;
    this.#maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  /**
   * The key for this `kid` (or, without one, the one key fitting `alg`), or undefined when the issuer does not
   * publish it. Rejects with {@link IssuerUnavailableError} only when no key set could be had at all.
   */
  async getKey(source: IssuerKeySource, kid: string | undefined, alg: string): Promise<VerificationKey | undefined> {
    const entry = this.#entry(source);
    if (source.jwks !== null) {
      // A static set: imported once per version of the setting, never fetched.
      entry.set ??= { lookup: createLocalJWKSet(capped(source.jwks)), fetchedAt: this.#now() };
      return find(entry.set.lookup, kid, alg);
    }
    const now = this.#now();
    const failing = now - entry.lastFailureAt < this.#failureCooldownMs;
    if ((entry.set === undefined || now - entry.set.fetchedAt >= this.#maxAgeMs) && !failing) await this.#refresh(source, entry);
    if (entry.set === undefined) throw new IssuerUnavailableError(entry.lastError ?? `the keys of ${source.issuer} are unavailable`);
    const key = await find(entry.set.lookup, kid, alg);
    if (key !== undefined) return key;
    // An unknown kid: the issuer may have rotated. Ask again, at most once per cooldown.
    if (this.#now() - entry.lastAttemptAt < this.#kidCooldownMs || this.#now() - entry.lastFailureAt < this.#failureCooldownMs) return undefined;
    await this.#refresh(source, entry);
    return find(entry.set.lookup, kid, alg);
  }

  #entry(source: IssuerKeySource): Entry {
    let entry = this.#entries.get(source.issuer);
    if (entry !== undefined) this.#entries.delete(source.issuer);
    if (entry?.version !== source.version) {
      entry = { version: source.version, set: undefined, inflight: undefined, lastAttemptAt: -Infinity, lastFailureAt: -Infinity, lastError: undefined };
    }
    this.#entries.set(source.issuer, entry);
    while (this.#entries.size > this.#maxIssuers) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return entry;
  }

  /** Fetches the set (joining a fetch in flight); a failure is recorded, never thrown. */
  #refresh(source: IssuerKeySource, entry: Entry): Promise<void> {
    entry.inflight ??= (async () => {
      entry.lastAttemptAt = this.#now();
      try {
        const jwks = await this.#fetch(source);
        entry.set = { lookup: createLocalJWKSet(jwks), fetchedAt: this.#now() };
        entry.lastError = undefined;
      } catch (err) {
        entry.lastFailureAt = this.#now();
        entry.lastError = (err as Error).message;
      } finally {
        entry.inflight = undefined;
      }
    })();
    return entry.inflight;
  }

  async #fetch(source: IssuerKeySource): Promise<JSONWebKeySet> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let jwksUri = source.jwksUri;
    if (jwksUri === null) {
      const discovery = `${source.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const document = await this.#getJson(discovery, source, signal);
      const uri = (document as { jwks_uri?: unknown } | undefined)?.jwks_uri;
      if (typeof uri !== 'string') throw new IssuerUnavailableError(`${discovery} has no jwks_uri`);
      jwksUri = uri;
    }
    const body = await this.#getJson(jwksUri, source, signal);
    const keys = (body as { keys?: unknown } | undefined)?.keys;
    if (!Array.isArray(keys) || !keys.every((k) => k !== null && typeof k === 'object' && !Array.isArray(k))) {
      throw new IssuerUnavailableError(`${jwksUri} is not a JWK Set`);
    }
    return capped({ keys: keys as Record<string, unknown>[] });
  }

  async #getJson(url: string, source: IssuerKeySource, signal: AbortSignal): Promise<unknown> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new IssuerUnavailableError(`'${url.slice(0, 200)}' is not a URL`);
    }
    if (target.protocol !== 'https:') throw new IssuerUnavailableError(`${target.origin}${target.pathname} is not https`);
    this.fetches++;
    const where = `${target.origin}${target.pathname}`;
    let answer;
    try {
      answer = await httpCall(target, {
        headers: { accept: 'application/json' },
        // Only when set: a custom `ca` replaces Node's roots and NODE_EXTRA_CA_CERTS.
        ...(source.ca === null ? {} : { ca: source.ca }),
        timeoutMs: this.#timeoutMs,
        maxResponseBytes: this.#maxBytes,
        signal,
      });
    } catch (err) {
      throw new IssuerUnavailableError(`GET ${where} failed: ${signal.aborted ? `no answer within ${String(this.#timeoutMs)} ms` : (err as Error).message}`);
    }
    if (answer.status !== 200) throw new IssuerUnavailableError(`GET ${where} returned HTTP ${String(answer.status)}`);
    const body = parseJsonBody(answer.text);
    if (body === undefined) throw new IssuerUnavailableError(`GET ${where} did not return JSON`);
    return body;
  }
}

function capped(jwks: { keys: Record<string, unknown>[] }): JSONWebKeySet {
  return { keys: jwks.keys.slice(0, MAX_KEYS) };
}

/** The key for `kid` and `alg`, or undefined when the set has none that fits. */
async function find(lookup: ReturnType<typeof createLocalJWKSet>, kid: string | undefined, alg: string): Promise<VerificationKey | undefined> {
  try {
    return await lookup({ alg, ...(kid === undefined ? {} : { kid }) });
  } catch (err) {
    if (err instanceof joseErrors.JWKSMultipleMatchingKeys) {
      for await (const key of err) return key;
    }
    return undefined;
  }
}
