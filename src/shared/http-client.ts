/**
 * The one HTTP(S) client openmsi's own code calls servers with: the CLI (management API, vault), the agent
 * (the authority), the RBAC library's remote source and the token verifier's JWKS fetch. Node 20's global
 * fetch cannot take a private CA or a connect address without undici's Agent (not a dependency), and every
 * caller needs the same three bounds: an idle timeout, a response size cap and an abort signal. Callers keep
 * their own error vocabulary: this module reports what happened ({@link HttpCallError.kind}), not what it means.
 * Redirects are never followed.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface HttpCallOptions {
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  /** Sent with its `content-length`. */
  body?: string | Buffer;
  /** Connection reuse (an `https.Agent` for https URLs); its TLS options apply. */
  agent?: http.Agent;
  /** The CA to trust instead of Node's roots (replaces NODE_EXTRA_CA_CERTS too); only for https URLs. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The socket may stay idle this long before the call fails with kind `timeout` (code `ETIMEDOUT`). */
  timeoutMs: number;
  /** A larger answer fails with kind `too-large` (checked against `content-length` first). Default 16 MiB. */
  maxResponseBytes?: number;
  /** Aborting rejects with the signal's reason, as fetch does (jose relies on that for its timeout). */
  signal?: AbortSignal;
  /**
   * Connect to this address instead of the URL's host, which still names the server (the `host` header and the
   * TLS server name): how the CLI reaches `{vault}.vault.localhost` on a machine where it does not resolve.
   */
  connectTo?: { host: string; port: number };
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body as UTF-8. */
  text: string;
}

/** Why a call got no complete answer. */
export type HttpCallFailure = 'connection' | 'timeout' | 'too-large' | 'broken';

export class HttpCallError extends Error {
  readonly kind: HttpCallFailure;
  /** The socket error's code (`ECONNREFUSED`, `ENOTFOUND`, a TLS code, ...); `ETIMEDOUT` for `timeout`. */
  readonly code: string | undefined;
  constructor(kind: HttpCallFailure, message: string, options: { code?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpCallError';
    this.kind = kind;
    this.code = options.code;
  }
}

const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/** One request; resolves with any status (the caller decides what a status means). */
export function httpCall(target: URL | string, options: HttpCallOptions): Promise<HttpAnswer> {
  const url = typeof target === 'string' ? new URL(target) : target;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const where = `${options.method ?? 'GET'} ${url.origin}${url.pathname}`;
  const body = typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body;
  const headers: Record<string, string> = { ...options.headers };
  if (body !== undefined) headers['content-length'] = String(body.length);
  const isHttps = url.protocol === 'https:';
  const send = isHttps ? https.request : http.request;
  const requestOptions: https.RequestOptions = {
    method: options.method ?? 'GET',
    headers,
    timeout: options.timeoutMs,
    ...(options.agent === undefined ? {} : { agent: options.agent }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(isHttps && options.ca !== undefined ? { ca: options.ca } : {}),
  };
  if (options.connectTo !== undefined) {
    Object.assign(requestOptions, { host: options.connectTo.host, port: options.connectTo.port, path: `${url.pathname}${url.search}`, protocol: url.protocol });
    headers['host'] = url.host;
    if (isHttps) requestOptions.servername = url.hostname;
  }

  return new Promise<HttpAnswer>((resolve, reject) => {
    const fail = (err: Error): void => {
      // fetch's contract: an aborted call rejects with the signal's reason.
      if (options.signal?.aborted === true) reject(options.signal.reason as Error);
      else reject(err);
    };
    const onResponse = (res: http.IncomingMessage): void => {
      let refused = false;
      const tooLarge = (): void => {
        if (refused) return;
        refused = true;
        fail(new HttpCallError('too-large', `${where}: the answer is larger than ${String(maxBytes)} bytes`));
        // No error for destroy(): the call is already settled, and the response has no listener left for one.
        res.removeAllListeners('data');
        req.destroy();
      };
      if (Number(res.headers['content-length']) > maxBytes) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) tooLarge();
        else chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) =>
        fail(err instanceof HttpCallError ? err : new HttpCallError('broken', `${where}: the answer broke off: ${err.message}`, { cause: err })),
      );
    };
    const req = options.connectTo === undefined ? send(url, requestOptions, onResponse) : send(requestOptions, onResponse);
    req.on('timeout', () => req.destroy(new HttpCallError('timeout', `${where}: no answer within ${String(options.timeoutMs)} ms`, { code: 'ETIMEDOUT' })));
    req.on('error', (err) => {
      if (err instanceof HttpCallError) fail(err);
      else fail(new HttpCallError('connection', err.message, { code: (err as NodeJS.ErrnoException).code, cause: err }));
    });
    req.end(body);
  });
}

/** A JSON body, or undefined when it is empty or not JSON (callers report the status instead). */
export function parseJsonBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
