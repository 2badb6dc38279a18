/**
 * An {@link RbacStateSource} over HTTPS from the authority, for services outside its process:
 * `GET /openmsi/rbac/state?tenant=` loads a tenant's state, and a long poll of
 * `GET /openmsi/rbac/version?tenant=&after={v}&wait={s}` hears of every change as soon as it commits (the
 * authority answers at the change notice). When a long poll fails, the next try waits `pollIntervalMs`.
 *
 * Staleness bound: a change reaches a remote authoriser about one round trip after it commits while the long
 * poll is up; when the authority is unreachable, at most `pollIntervalMs` (default 5 s) after it is back,
 * plus the authoriser's own reconciliation. The caller needs `Microsoft.Authorization/roleAssignments/read`
 * at `/` (Reader at the tenant root is enough).
 */
import { HttpCallError, httpCall, parseJsonBody, type HttpAnswer } from '../../shared/http-client.js';
import type { RbacState, RbacStateSource } from '../contracts.js';

export interface RemoteRbacSourceOptions {
  /** The authority's https origin, e.g. `https://localhost:8443`. */
  authorityUrl: string;
  /** An ARM-audience access token for the calling service (e.g. `@azure/identity`'s `getToken('https://management.azure.com/.default')`). */
  getToken: () => Promise<string>;
  /** PEM of the authority's CA when it is not in the default roots (`openmsi ca export`). */
  ca?: string | Buffer;
  /** Wait between retries after a failed long poll, and the worst-case staleness; default 5000 ms. */
  pollIntervalMs?: number;
  /** How long one long poll may wait at the authority; default 25 s (at most 30). */
  longPollSeconds?: number;
  /** Per-request timeout beyond the long poll; default 10 s. */
  timeoutMs?: number;
}

export interface RemoteRbacSource extends RbacStateSource {
  /** Stops the change watchers. */
  close(): void;
}

export class RemoteRbacSourceError extends Error {
  override readonly name = 'RemoteRbacSourceError';
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

export function createRemoteRbacSource(options: RemoteRbacSourceOptions): RemoteRbacSource {
  const base = new URL(options.authorityUrl);
  if (base.protocol !== 'https:') throw new TypeError('authorityUrl must be an https URL');
  const pollIntervalMs = options.pollIntervalMs ?? 5000;
  const longPollSeconds = Math.min(30, options.longPollSeconds ?? 25);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const listeners = new Set<(tenantId: string) => void>();
  /** Tenants being watched, with the version last seen. */
  const watched = new Map<string, { version: number; timer?: NodeJS.Timeout }>();
  /** Requests in flight (closed at `close()`, so a pending long poll never holds the process). */
  const active = new Set<AbortController>();
  let closed = false;

  async function getJson<T>(path: string, query: Record<string, string>, waitMs = 0): Promise<{ body: T }> {
    const url = new URL(path, base);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const token = await options.getToken();
    // Each call has its own abort, so close() ends a pending long poll at once.
    const abort = new AbortController();
    active.add(abort);
    let answer: HttpAnswer;
    try {
      answer = await httpCall(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        timeoutMs: timeoutMs + waitMs,
        signal: abort.signal,
      });
    } catch (err) {
      if (err instanceof HttpCallError && err.kind === 'timeout') throw new RemoteRbacSourceError(`GET ${url.pathname} timed out`);
      throw err;
    } finally {
      active.delete(abort);
    }
    if (answer.status !== 200)
      throw new RemoteRbacSourceError(`GET ${url.pathname} answered ${String(answer.status)}: ${answer.text.slice(0, 300)}`, answer.status);
    const body = parseJsonBody(answer.text);
    if (body === undefined) throw new RemoteRbacSourceError(`GET ${url.pathname} answered invalid JSON`);
    return { body: body as T };
  }

  function notify(tenantId: string): void {
    for (const listener of listeners) {
      try {
        listener(tenantId);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  function watch(tenantId: string, version: number): void {
    const entry = watched.get(tenantId);
    if (entry !== undefined) {
      entry.version = Math.max(entry.version, version);
      return;
    }
    watched.set(tenantId, { version });
    void loop(tenantId);
  }

  async function loop(tenantId: string): Promise<void> {
    while (!closed) {
      const entry = watched.get(tenantId);
      if (entry === undefined) return;
      try {
        const { body } = await getJson<{ version: number }>(
          '/openmsi/rbac/version',
          { tenant: tenantId, after: String(entry.version), wait: String(longPollSeconds) },
          longPollSeconds * 1000,
        );
        if (closed) return;
        if (body.version !== entry.version) {
          entry.version = body.version;
          notify(tenantId);
        }
      } catch {
        if (closed) return;
        // Missed changes are caught up by the next successful poll (the version differs): notify then.
        await new Promise<void>((resolve) => {
          entry.timer = setTimeout(resolve, pollIntervalMs);
          entry.timer.unref();
        });
      }
    }
  }

  return {
    async load(tenantId) {
      const { body } = await getJson<RbacState>('/openmsi/rbac/state', { tenant: tenantId });
      watch(tenantId, body.version);
      return body;
    },
    async version(tenantId) {
      const { body } = await getJson<{ version: number }>('/openmsi/rbac/version', { tenant: tenantId });
      return body.version;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed = true;
      for (const entry of watched.values()) if (entry.timer !== undefined) clearTimeout(entry.timer);
      watched.clear();
      listeners.clear();
      for (const request of active) request.abort(new RemoteRbacSourceError('the remote RBAC source was closed'));
      active.clear();
    },
  };
}

export interface ClientSecretTokenOptions {
  authorityUrl: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  /** Default ARM's, as `/openmsi/rbac/*` requires. */
  resource?: string;
  ca?: string | Buffer;
}

/**
 * A `getToken` for {@link createRemoteRbacSource}: client credentials at the authority's token endpoint,
 * cached until a minute before expiry. (Services with a managed identity use `@azure/identity` instead.)
 */
export function clientSecretToken(options: ClientSecretTokenOptions): () => Promise<string> {
  const resource = (options.resource ?? 'https://management.azure.com/').replace(/\/$/, '');
  let cached: { token: string; expiresAt: number } | undefined;
  return async () => {
    if (cached !== undefined && Date.now() < cached.expiresAt) return cached.token;
    const url = new URL(`/${encodeURIComponent(options.tenantId)}/oauth2/v2.0/token`, options.authorityUrl);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: options.clientId,
      client_secret: options.clientSecret,
      scope: `${resource}/.default`,
    }).toString();
    let answer: HttpAnswer;
    try {
      answer = await httpCall(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        timeoutMs: 10_000,
      });
    } catch (err) {
      if (err instanceof HttpCallError && err.kind === 'timeout') throw new RemoteRbacSourceError('token request timed out');
      throw err;
    }
    if (answer.status !== 200) throw new RemoteRbacSourceError(`token request answered ${String(answer.status)}: ${answer.text.slice(0, 300)}`, answer.status);
    const body = parseJsonBody(answer.text) as { access_token: string; expires_in: number } | undefined;
    if (body === undefined) throw new RemoteRbacSourceError('token endpoint answered invalid JSON');
    cached = { token: body.access_token, expiresAt: Date.now() + Math.max(0, Number(body.expires_in) - 60) * 1000 };
    return cached.token;
  };
}
