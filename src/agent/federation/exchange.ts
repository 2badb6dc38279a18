/**
 * The exchange at an upstream Entra's token endpoint (spec federation §1.4): `client_credentials` with the
 * outbound assertion as `client_assertion` (`…client-assertion-type:jwt-bearer`), `scope={resource}/.default`,
 * at `{authorityHost}/{tenant}/oauth2/v2.0/token`. TLS trusts Node's roots (NODE_EXTRA_CA_CERTS adds a CA) plus
 * the agent's `--upstream-ca-file`; `HTTPS_PROXY` / `NO_PROXY` are honoured as the Azure SDKs honour them
 * (a CONNECT tunnel: the proxy sees the host name, never the assertion). The upstream's refusal is relayed as `federation-refused` with its OAuth
 * error; network trouble, 5xx and 429 are `unavailable` (the caller retries). A refusal is remembered for
 * {@link REFUSAL_HOLD_MS} per (link, resource), so a workload retrying a misconfigured identity in a loop does
 * not turn into a request loop against the upstream (Entra throttles per client).
 */
import { rootCertificates } from 'node:tls';
import { Agent as HttpsAgent } from 'node:https';
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { HttpsProxyAgent } from 'https-proxy-agent';
import type { UpstreamLink } from '../../shared/host-protocol.js';
import { epochSeconds, systemClock, type Clock } from '../../shared/clock.js';
import { HttpCallError, httpCall, parseJsonBody } from '../../shared/http-client.js';
import { httpsProxyFor } from '../../shared/config.js';
import { UpstreamError, type IssuedToken } from '../upstream.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** The most of an upstream's error description relayed to the caller. */
const MAX_DESCRIPTION = 1000;
/** How long a refusal is answered from memory. */
export const REFUSAL_HOLD_MS = 10_000;
/** The most refusals remembered (the oldest is forgotten first). */
const MAX_REFUSALS = 1000;

/** The v2 token endpoint of a link. */
export function upstreamTokenEndpoint(link: UpstreamLink): string {
  return `${link.authorityHost}/${encodeURIComponent(link.tenantId)}/oauth2/v2.0/token`;
}

/** The scope a v1 `resource` names at a v2 endpoint, as MSAL builds it. */
export function scopeOf(resource: string): string {
  return `${resource}/.default`;
}

/**
 * https-proxy-agent, except that a proxy refusing the tunnel fails the connection. The library replays the
 * proxy's own answer (a 403 from a corporate proxy) as if the upstream had sent it; relayed as the upstream's
 * OAuth refusal, it would be remembered as one and hide the real cause. A failed tunnel is network trouble.
 */
class TunnelOnlyProxyAgent extends HttpsProxyAgent<string> {
  override async connect(req: ClientRequest, opts: Parameters<HttpsProxyAgent<string>['connect']>[1]): Promise<Socket> {
    let status: number | undefined;
    req.once('proxyConnect', (connect: { statusCode?: number }) => {
      status = connect.statusCode;
    });
    const socket = await super.connect(req, opts);
    if (status !== 200) {
      socket.destroy();
      throw Object.assign(new Error(`the proxy refused the tunnel (${String(status)})`), { code: 'EPROXYREFUSED' });
    }
    return socket;
  }
}

export class UpstreamExchange {
  readonly #agent: HttpsAgent;
  /** One tunnelling agent per proxy URL (NO_PROXY may send some upstreams direct). */
  readonly #proxied = new Map<string, HttpsAgent>();
  readonly #agentOptions: { keepAlive: true; maxSockets: number; ca?: string[] };
  readonly #proxyFor: (target: URL) => URL | undefined;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #refusals = new Map<string, { error: UpstreamError; until: number }>();
  /** Exchanges made (tests count cache misses with it). */
  calls = 0;

  /**
   * `proxyFor` picks the proxy for an upstream URL; by default {@link httpsProxyFor} over the process's
   * environment, read once per call so a misconfigured variable fails the call, not the agent's start.
   */
  constructor(options: { caPem?: string; timeoutMs: number; clock?: Clock; proxyFor?: (target: URL) => URL | undefined }) {
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.timeoutMs;
    this.#proxyFor = options.proxyFor ?? ((target) => httpsProxyFor(target));
    // Node's default trust plus the extra CA: passing `ca` alone would replace the roots.
    this.#agentOptions = { keepAlive: true, maxSockets: 16, ...(options.caPem === undefined ? {} : { ca: [...rootCertificates, options.caPem] }) };
    this.#agent = new HttpsAgent(this.#agentOptions);
  }

  /** The agent a call to `endpoint` goes through: direct, or tunnelled through its proxy. */
  #agentFor(endpoint: string): HttpsAgent {
    const proxy = this.#proxyFor(new URL(endpoint));
    if (proxy === undefined) return this.#agent;
    let agent = this.#proxied.get(proxy.href);
    if (agent === undefined) {
      // These options reach the connection to the proxy; the TLS session with the upstream inside the tunnel
      // takes its trust from the request's own `ca` (see #exchange).
      agent = new TunnelOnlyProxyAgent(proxy, this.#agentOptions);
      this.#proxied.set(proxy.href, agent);
    }
    return agent;
  }

  /** The upstream's token for the link's client and `resource`, in exchange for `assertion`. */
  async token(link: UpstreamLink, assertion: string, resource: string): Promise<IssuedToken> {
    const key = `${link.authorityHost}\n${link.tenantId}\n${link.clientId}\n${resource}`;
    const held = this.#refusals.get(key);
    if (held !== undefined && this.#clock.now() < held.until) throw held.error;
    this.#refusals.delete(key);
    try {
      return await this.#exchange(link, assertion, resource);
    } catch (err) {
      if (err instanceof UpstreamError && err.kind === 'federation-refused') {
        this.#refusals.set(key, { error: err, until: this.#clock.now() + REFUSAL_HOLD_MS });
        if (this.#refusals.size > MAX_REFUSALS) this.#refusals.delete(this.#refusals.keys().next().value as string);
      }
      throw err;
    }
  }

  async #exchange(link: UpstreamLink, assertion: string, resource: string): Promise<IssuedToken> {
    this.calls++;
    const endpoint = upstreamTokenEndpoint(link);
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: link.clientId,
      scope: scopeOf(resource),
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });
    let answer;
    try {
      answer = await httpCall(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
        agent: this.#agentFor(endpoint),
        ...(this.#agentOptions.ca === undefined ? {} : { ca: this.#agentOptions.ca }),
        timeoutMs: this.#timeoutMs,
        maxResponseBytes: 1024 * 1024,
      });
    } catch (err) {
      const why = err instanceof HttpCallError ? `${err.kind}${err.code === undefined ? '' : ` ${err.code}`}` : (err as Error).message;
      throw new UpstreamError('unavailable', `cannot reach the upstream token endpoint ${endpoint}: ${why}`, { cause: err });
    }
    const { status } = answer;
    const body = parseJsonBody(answer.text) as Record<string, unknown> | undefined;
    if (status >= 500 || status === 429 || status === 408)
      throw new UpstreamError('unavailable', `the upstream token endpoint ${endpoint} answered ${String(status)}`, { status });
    if (status !== 200) {
      const oauthError = typeof body?.['error'] === 'string' && /^[a-z_]{1,64}$/.test(body['error']) ? body['error'] : 'invalid_request';
      const raw = typeof body?.['error_description'] === 'string' ? body['error_description'] : `HTTP ${String(status)}`;
      const description = (raw.split(/\r?\n/)[0] ?? '').slice(0, MAX_DESCRIPTION);
      throw new UpstreamError(
        'federation-refused',
        `the upstream token endpoint ${endpoint} refused the exchange (${String(status)} ${oauthError}): ${description}`,
        {
          status,
          oauthError,
          description,
        },
      );
    }
    const accessToken = body?.['access_token'];
    const expiresIn = Number(body?.['expires_in']);
    if (typeof accessToken !== 'string' || !Number.isFinite(expiresIn) || expiresIn <= 0) {
      throw new UpstreamError('federation-refused', `the upstream token endpoint ${endpoint} answered without access_token/expires_in`, {
        status,
        oauthError: 'invalid_request',
        description: 'The upstream token endpoint answered without access_token/expires_in',
      });
    }
    const now = epochSeconds(this.#clock);
    return { accessToken, expiresOn: now + Math.floor(expiresIn), notBefore: now, receivedAt: now };
  }

  close(): void {
    this.#agent.destroy();
    for (const agent of this.#proxied.values()) agent.destroy();
  }
}
