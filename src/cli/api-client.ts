/**
 * The CLI's client for the running authority's management API. It finds the authority, its CA and the
 * bootstrap admin credential through the data dir, signs in with client credentials like any other
 * client, and speaks HTTPS that trusts only the data dir's CA.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { FileHandle } from 'node:fs/promises';
import { loadInstallationConfig, readEnvironment, resolveDataDir, type InstallationConfig } from '../shared/config.js';
import { dataDirLayout, type AdminCredentialFile } from '../shared/data-dir.js';
import { defaultOrigin, explicitPublicUrl } from '../shared/public-url.js';
import { readRunningAuthority } from '../shared/running-authority.js';
import { HttpCallError, httpCall, parseJsonBody } from '../shared/http-client.js';
import { parseOutputFormat, parseQuery, type OutputOptions } from './output.js';

/** ARM's audience (with the trailing slash, as az requests it). */
export const ARM_AUDIENCE = 'https://management.azure.com/';
export const GRAPH_AUDIENCE = 'https://graph.microsoft.com';
/** The api-version the CLI sends on ARM requests. */
export const DEFAULT_API_VERSION = '2023-01-31';

const REQUEST_TIMEOUT_MS = 30_000;
/** A download may wait this long for its next bytes (see {@link ManagementClient.download}). */
const DOWNLOAD_IDLE_TIMEOUT_MS = 10 * 60_000;
/** Refresh a cached token this long before it expires. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** An error response from the management API: `(Code) message`, as az prints them. */
export class ApiRequestError extends Error {
  override readonly name = 'ApiRequestError';
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(`(${code}) ${message}`);
    this.status = status;
    this.code = code;
  }
}

export interface ManagementClientOptions {
  /** The data dir (already resolved, e.g. with {@link resolveDataDir}). */
  dataDir: string;
  /** Overrides the subscription from config.json. */
  subscriptionId?: string;
  /** `OPENMSI_AUTHORITY_URL` overrides where the authority is found. */
  env?: NodeJS.ProcessEnv;
}

export interface ApiResponse<T> {
  status: number;
  body: T | undefined;
}

/** The body of a response that must have one. */
export function bodyOf<T>(response: ApiResponse<T>): T {
  if (response.body === undefined) throw new Error(`the authority sent an empty or non-JSON response (HTTP ${String(response.status)})`);
  return response.body;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string>;
  /** Statuses that are not errors even though >= 400 (e.g. 404 for `group exists`). */
  allowStatus?: readonly number[];
}

function readText(path: string, what: string, hint: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${what} not found at ${path}; ${hint}`, { cause: err });
    if (code === 'EACCES') {
      throw new Error(`cannot read ${what} at ${path}: permission denied (it is readable only by the user who ran \`openmsi init\`)`, { cause: err });
    }
    throw new Error(`cannot read ${what} at ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function readJson<T>(path: string, what: string, hint: string): T {
  const text = readText(path, what, hint);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${what} at ${path} is not valid JSON; restore it from a backup (it is written once, by \`openmsi init\`)`);
  }
}

/** Talks to the authority's management API as the data dir's bootstrap admin. */
export class ManagementClient {
  readonly dataDir: string;
  readonly publicUrl: string;
  readonly tenantId: string;
  readonly subscriptionId: string;
  readonly #admin: AdminCredentialFile;
  readonly #agent: Agent;
  /** Where the URL came from, for connection errors. */
  readonly #source: string;
  readonly #tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(options: ManagementClientOptions) {
    const env = options.env ?? process.env;
    const layout = dataDirLayout(options.dataDir);
    const initHint = 'run `openmsi init` first, or pass --data-dir / set OPENMSI_DATA_DIR';
    const config = loadInstallationConfig(options.dataDir);
    this.#admin = readJson<AdminCredentialFile>(layout.adminCredential, 'the admin credential', initHint);
    const ca = readText(layout.caCert, "the data dir's CA certificate", initHint);
    if (typeof this.#admin.clientId !== 'string' || typeof this.#admin.clientSecret !== 'string') {
      throw new Error(`the admin credential at ${layout.adminCredential} is incomplete (clientId and clientSecret are required)`);
    }
    const { url: publicUrl, source } = locateAuthority(options.dataDir, config, env);
    this.#source = source;
    let url: URL;
    try {
      url = new URL(publicUrl);
    } catch {
      throw new Error(`the authority URL '${publicUrl}' is not a valid URL`);
    }
    if (url.protocol !== 'https:') throw new Error(`the authority URL must be https: ${publicUrl}`);
    this.dataDir = options.dataDir;
    this.publicUrl = url.origin;
    this.tenantId = this.#admin.tenantId || config.tenantId;
    this.subscriptionId = options.subscriptionId ?? config.subscriptionId;
    this.#agent = new Agent({ keepAlive: true, ca, maxSockets: 8 });
  }

  /** Frees the connection pool. */
  close(): void {
    this.#agent.destroy();
  }

  /** An access token for `audience`, from the authority's v2 token endpoint; cached until shortly before expiry. */
  async getToken(audience: string): Promise<string> {
    const cached = this.#tokens.get(audience);
    if (cached !== undefined && cached.expiresAt - TOKEN_REFRESH_MARGIN_MS > Date.now()) return cached.token;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.#admin.clientId,
      client_secret: this.#admin.clientSecret,
      scope: `${audience}/.default`,
    }).toString();
    const tokenUrl = `${this.publicUrl}/${this.tenantId}/oauth2/v2.0/token`;
    const response = await this.#send('POST', tokenUrl, { 'content-type': 'application/x-www-form-urlencoded' }, form);
    const body = parseJsonBody(response.text) as { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } | undefined;
    if (response.status !== 200 || typeof body?.access_token !== 'string') {
      const reason =
        typeof body?.error === 'string'
          ? `${body.error}: ${typeof body.error_description === 'string' ? body.error_description.split('\n')[0] : ''}`
          : `HTTP ${String(response.status)}`;
      throw new Error(`could not sign in with the admin credential in ${dataDirLayout(this.dataDir).adminCredential}: ${reason}`);
    }
    const expiresIn = Number(body.expires_in);
    this.#tokens.set(audience, { token: body.access_token, expiresAt: Date.now() + (Number.isFinite(expiresIn) ? expiresIn * 1000 : 10 * 60_000) });
    return body.access_token;
  }

  /** One management API call; API errors become {@link ApiRequestError}. */
  async request<T>(method: string, path: string, audience: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const token = await this.getToken(audience);
    const query = options.query === undefined ? '' : `?${new URLSearchParams(options.query).toString()}`;
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    let payload: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    const response = await this.#send(method, `${this.publicUrl}${path}${query}`, headers, payload);
    const body = parseJsonBody(response.text);
    if (response.status >= 400 && !(options.allowStatus ?? []).includes(response.status)) {
      const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (typeof error?.code === 'string') {
        throw new ApiRequestError(response.status, error.code, typeof error.message === 'string' ? error.message : '');
      }
      throw new ApiRequestError(response.status, `Http${String(response.status)}`, `${method} ${path} failed with HTTP ${String(response.status)}.`);
    }
    return { status: response.status, body: body as T | undefined };
  }

  /** An ARM call under `/subscriptions/{subscriptionId}` (or any ARM path starting with `/`), with `api-version`. */
  arm<T>(method: string, path: string, options: RequestOptions & { apiVersion?: string } = {}): Promise<ApiResponse<T>> {
    return this.request<T>(method, path, ARM_AUDIENCE, { ...options, query: { ...options.query, 'api-version': options.apiVersion ?? DEFAULT_API_VERSION } });
  }

  /** A Graph-shaped call under `/v1.0`. */
  graph<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>(method, `/v1.0${path}`, GRAPH_AUDIENCE, options);
  }

  /** An openmsi-specific call under `/openmsi` (ARM audience). */
  openmsi<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    return this.request<T>(method, `/openmsi${path}`, ARM_AUDIENCE, options);
  }

  /**
   * A POST under `/openmsi` whose answer is a file (a backup): streamed into `destination` (an open file
   * handle), never held in memory. Error answers become {@link ApiRequestError} as in {@link request}.
   * {@link DOWNLOAD_IDLE_TIMEOUT_MS} bounds each wait for data, not the whole transfer: the server copies the
   * whole store before its first byte, which takes a while for a large one.
   */
  async download(path: string, destination: FileHandle): Promise<{ bytes: number }> {
    const token = await this.getToken(ARM_AUDIENCE);
    const url = `${this.publicUrl}/openmsi${path}`;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpsRequest(
        url,
        { method: 'POST', agent: this.#agent, headers: { authorization: `Bearer ${token}`, accept: 'application/octet-stream' } },
        resolve,
      );
      req.setTimeout(DOWNLOAD_IDLE_TIMEOUT_MS, () =>
        req.destroy(new Error(`the authority at ${this.publicUrl} sent nothing for ${String(DOWNLOAD_IDLE_TIMEOUT_MS / 1000)} s`)),
      );
      req.on('error', (err) => reject(this.#connectionError(err)));
      req.end();
    });
    const status = response.statusCode ?? 0;
    if (status >= 400) {
      let text = '';
      for await (const chunk of response) if (text.length < MAX_RESPONSE_BYTES) text += String(chunk);
      const error = (parseJsonBody(text) as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      if (typeof error?.code === 'string') throw new ApiRequestError(status, error.code, typeof error.message === 'string' ? error.message : '');
      throw new ApiRequestError(status, `Http${String(status)}`, `POST /openmsi${path} failed with HTTP ${String(status)}.`);
    }
    let bytes = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        let written = 0;
        while (written < chunk.length) written += (await destination.write(chunk, written, chunk.length - written)).bytesWritten;
        bytes += chunk.length;
      }
    } catch (err) {
      throw new Error(`the download from ${this.publicUrl} broke off after ${String(bytes)} bytes: ${(err as Error).message}`, { cause: err });
    }
    const expected = Number(response.headers['content-length']);
    if (Number.isFinite(expected) && expected !== bytes)
      throw new Error(`the download from ${this.publicUrl} ended after ${String(bytes)} of ${String(expected)} bytes`);
    return { bytes };
  }

  /** The ARM path of this client's subscription. */
  subscriptionPath(): string {
    return `/subscriptions/${encodeURIComponent(this.subscriptionId)}`;
  }

  async #send(method: string, url: string, headers: Record<string, string>, payload: string | undefined): Promise<{ status: number; text: string }> {
    try {
      return await httpCall(url, {
        method,
        headers,
        ...(payload === undefined ? {} : { body: payload }),
        agent: this.#agent,
        timeoutMs: REQUEST_TIMEOUT_MS,
        maxResponseBytes: MAX_RESPONSE_BYTES,
      });
    } catch (err) {
      throw this.#connectionError(err as Error);
    }
  }

  #connectionError(err: Error): Error {
    if (err instanceof HttpCallError && err.kind === 'too-large')
      return new Error(`the response from ${this.publicUrl} is larger than ${String(MAX_RESPONSE_BYTES)} bytes`, { cause: err });
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ECONNREFUSED') {
      return new Error(`no authority is listening at ${this.publicUrl}; start it with \`openmsi authority\` (that URL is ${this.#source})`, { cause: err });
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new Error(`cannot resolve the authority's host in ${this.publicUrl}`, { cause: err });
    if (code === 'ETIMEDOUT')
      return new Error(`the authority at ${this.publicUrl} did not answer within ${String(REQUEST_TIMEOUT_MS / 1000)} s`, { cause: err });
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/i.test(code) || /certificate/i.test(err.message)) {
      return new Error(
        `the server at ${this.publicUrl} did not present a certificate issued by this data dir's CA (${dataDirLayout(this.dataDir).caCert}): ${err.message}`,
        { cause: err },
      );
    }
    return new Error(`cannot reach the authority at ${this.publicUrl}: ${err.message}`, { cause: err });
  }
}

/**
 * Where the authority is: `OPENMSI_AUTHORITY_URL`, else the URL the authority running from this data dir
 * recorded (it follows `--port`/`--host`/`--public-url`), else what config.json implies.
 */
function locateAuthority(dataDir: string, config: InstallationConfig, env: NodeJS.ProcessEnv): { url: string; source: string } {
  const override = readEnvironment(env).authorityUrl;
  if (override !== undefined) return { url: override, source: 'from OPENMSI_AUTHORITY_URL' };
  const running = readRunningAuthority(dataDir);
  if (running !== undefined) return { url: running.url, source: `recorded by the authority, pid ${String(running.pid)}, in ${running.path}` };
  const explicit = explicitPublicUrl(config);
  if (explicit !== undefined) return { url: explicit, source: `the public URL in ${dataDirLayout(dataDir).config}` };
  return { url: defaultOrigin(config.host, config.port), source: `the port in ${dataDirLayout(dataDir).config}` };
}

/** The root program's global options (`--data-dir`, `--output`, `--query`, `--subscription`), checked once here. */
export interface GlobalOptions extends OutputOptions {
  dataDir: string;
  subscription?: string;
}

export function globalOptions(cmd: Command): GlobalOptions {
  const opts = cmd.optsWithGlobals<{ dataDir?: string; output?: string; query?: string; subscription?: string }>();
  const query = parseQuery(opts.query);
  return {
    dataDir: resolveDataDir(opts.dataDir),
    output: parseOutputFormat(opts.output),
    ...(query === undefined ? {} : { query }),
    ...(opts.subscription === undefined ? {} : { subscription: opts.subscription }),
  };
}

/** A client for the command's data dir and subscription. */
export function clientFor(cmd: Command): ManagementClient {
  const globals = globalOptions(cmd);
  return new ManagementClient({ dataDir: globals.dataDir, ...(globals.subscription === undefined ? {} : { subscriptionId: globals.subscription }) });
}

/** Runs `fn` with a client and always releases its connections. */
export async function withClient<T>(cmd: Command, fn: (client: ManagementClient) => Promise<T>): Promise<T> {
  const client = clientFor(cmd);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
