/**
 * The CLI's client for a vault's data plane (`https://{name}.{vaultDomain}:{port}/secrets/...`). Vaults are
 * served on the authority's port, so it connects to the authority's address and names the vault by TLS SNI
 * and `Host`: the CLI needs no DNS entry for `*.{vaultDomain}`. It trusts only the data dir's CA and signs in
 * through the {@link ManagementClient} (the data dir's admin credential).
 */
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { loadInstallationConfig } from '../shared/config.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { HttpCallError, httpCall, parseJsonBody, type HttpAnswer } from '../shared/http-client.js';
import { ApiRequestError, type ManagementClient } from './api-client.js';

/** The api-version az pins for secrets. */
export const SECRETS_API_VERSION = '7.4';
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface VaultResponse<T> {
  status: number;
  body: T | undefined;
}

/** Talks to vaults' data plane as the data dir's admin. */
export class VaultClient {
  readonly #management: ManagementClient;
  readonly #agent: Agent;
  readonly #vaultDomain: string;
  readonly #connectHost: string;
  readonly #port: number;
  /** The audience the last challenge named, once one has. */
  #resource: string;

  constructor(management: ManagementClient) {
    this.#management = management;
    const config = loadInstallationConfig(management.dataDir);
    this.#vaultDomain = config.vaultDomain;
    const url = new URL(management.publicUrl);
    this.#connectHost = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#port = url.port === '' ? 443 : Number(url.port);
    this.#resource = `https://${this.#vaultDomain}${this.#port === 443 ? '' : `:${String(this.#port)}`}`;
    const ca = readFileSync(dataDirLayout(management.dataDir).caCert, 'utf8');
    this.#agent = new Agent({ keepAlive: true, ca, maxSockets: 4 });
  }

  close(): void {
    this.#agent.destroy();
  }

  /** `https://{name}.{vaultDomain}[:port]`, the vault's base URL (lower-cased, as DNS is). */
  vaultHost(vaultName: string): string {
    const portPart = this.#port === 443 ? '' : `:${String(this.#port)}`;
    return `${vaultName.toLowerCase()}.${this.#vaultDomain}${portPart}`;
  }

  /**
   * One data-plane call. The token is sent on the first request (no empty challenge round trip); a 401 whose
   * challenge names another `resource` is retried once with a token for it. Key Vault errors become
   * {@link ApiRequestError} (`(Code) message`).
   */
  async request<T>(
    method: string,
    vaultName: string,
    path: string,
    options: { body?: unknown; query?: Record<string, string>; allowStatus?: readonly number[] } = {},
  ): Promise<VaultResponse<T>> {
    const query = new URLSearchParams({ ...options.query, 'api-version': SECRETS_API_VERSION }).toString();
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    let response = await this.#send(method, vaultName, `${path}?${query}`, payload);
    if (response.status === 401) {
      const resource = challengeResource(response.headers['www-authenticate']);
      if (resource !== undefined && resource !== this.#resource) {
        this.#resource = resource;
        response = await this.#send(method, vaultName, `${path}?${query}`, payload);
      }
    }
    const body = parseJsonBody(response.text);
    if (response.status >= 400 && !(options.allowStatus ?? []).includes(response.status)) {
      const error = (body as { error?: { code?: unknown; message?: unknown; innererror?: { code?: unknown } } } | undefined)?.error;
      if (typeof error?.code === 'string') {
        const inner = typeof error.innererror?.code === 'string' ? `\nInner error: {"code": "${error.innererror.code}"}` : '';
        throw new ApiRequestError(response.status, error.code, `${typeof error.message === 'string' ? error.message : ''}${inner}`);
      }
      throw new ApiRequestError(response.status, `Http${String(response.status)}`, `${method} ${path} failed with HTTP ${String(response.status)}.`);
    }
    return { status: response.status, body: body as T | undefined };
  }

  async #send(method: string, vaultName: string, pathAndQuery: string, payload: string | undefined): Promise<HttpAnswer> {
    const token = await this.#management.getToken(this.#resource);
    const host = this.vaultHost(vaultName);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    try {
      return await httpCall(`https://${host}${pathAndQuery}`, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        agent: this.#agent,
        connectTo: { host: this.#connectHost, port: this.#port },
        timeoutMs: REQUEST_TIMEOUT_MS,
        maxResponseBytes: MAX_RESPONSE_BYTES,
      });
    } catch (err) {
      if (err instanceof HttpCallError && err.kind === 'too-large')
        throw new Error(`the response from ${host} is larger than ${String(MAX_RESPONSE_BYTES)} bytes`, { cause: err });
      throw new Error(`cannot reach the vault ${host} (through ${this.#connectHost}:${String(this.#port)}): ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The `resource` (or `scope`, less `/.default`) a Bearer challenge names. */
export function challengeResource(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header;
  if (value === undefined) return undefined;
  const resource = /resource="([^"]+)"/i.exec(value)?.[1];
  if (resource !== undefined) return resource.replace(/\/$/, '');
  const scope = /scope="([^"]+)"/i.exec(value)?.[1];
  return scope?.replace(/\/\.default$/, '');
}
