/**
 * The loopback proxy `openmsi dev` names in `HTTPS_PROXY`, so vault hosts (`https://{name}.{vaultDomain}:{port}/`)
 * work where `*.localhost` does not resolve, with no DNS change, no root and no client option.
 *
 * - `CONNECT host:port` whose target `route` claims is tunnelled to the address it names; every other
 *   `CONNECT` is tunnelled to the target as requested (the proxy resolves the name). Bytes only: TLS stays
 *   end to end, so SNI, certificate checks and `Host` are exactly what the client would have without a proxy.
 * - Absolute-form plain HTTP (`GET http://host/path`) is forwarded, because Node's Azure pipeline sends
 *   http:// URLs through `HTTPS_PROXY` too (it reads HTTPS_PROXY || ALL_PROXY || HTTP_PROXY for both schemes).
 *   Upgrades (WebSocket) through absolute form are not supported; the socket is closed.
 * - Anything else (origin-form `GET /`, `https://` absolute form, malformed targets) gets a 400 that says why.
 *
 * The proxy listens on loopback only; any local process may use it, as it may open the same connections itself.
 * When the user already has a proxy (`upstream`, from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` where `openmsi dev`
 * runs), non-vault traffic goes through it, as it would without the dev proxy: CONNECT is chained (`CONNECT` to
 * the upstream, then bytes), plain HTTP is forwarded to it in absolute form; targets its `NO_PROXY` names, and
 * loopback, still go direct.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Where a claimed target is answered: a TCP address. */
export interface DevProxyRoute {
  host: string;
  port: number;
}

/** The few logger methods the proxy uses (pino's `Logger` fits). */
export interface DevProxyLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** The resolver signature of `dns.lookup` the proxy calls for pass-through targets (always with `all: true`). */
export type DevProxyLookup = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** The user's own proxy, which non-vault traffic keeps using (see {@link upstreamProxyFromEnv}). */
export interface UpstreamProxy {
  /** For CONNECT (https targets): an `http://[user:pass@]host:port` proxy, or undefined to go direct. */
  https?: URL;
  /** For absolute-form plain HTTP. */
  http?: URL;
  /** `NO_PROXY` entries (lower case): `*`, a host or domain (`.example.com` and `example.com` both match subdomains), an IP; each optionally `:port`. */
  noProxy: readonly string[];
}

export interface DevProxyOptions {
  /** A loopback IP address (`127.0.0.0/8` or `::1`); default `127.0.0.1`. Anything else is refused. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Claims a target (hostname lowercased, without a trailing dot): the address to tunnel it to, or undefined to pass it through. */
  route(hostname: string, port: number): DevProxyRoute | undefined;
  /**
   * Vets a pass-through target once resolved (`address` is an IP). Default: allow all. Test harnesses and
   * air-gapped setups use it to refuse non-loopback destinations (the client gets 403).
   */
  allowUpstream?(hostname: string, port: number, address: string): boolean;
  logger?: DevProxyLogger;
  /** The user's proxy for non-vault targets; default none (they go direct). */
  upstream?: UpstreamProxy;
  /** Resolution of pass-through names; default `dns.lookup`. */
  lookup?: DevProxyLookup;
  /** Limit on the request line + headers, bytes; default 16 KiB (431 beyond). */
  maxHeaderSize?: number;
  /** Name resolution + TCP connect to the upstream, ms; default 10 s (504 beyond). */
  connectTimeoutMs?: number;
  /** A tunnel or forwarded exchange with no traffic either way for this long is closed, ms; default 5 min. */
  idleTimeoutMs?: number;
}

export interface DevProxy {
  port: number;
  /** `http://127.0.0.1:{port}`, what `HTTPS_PROXY` names. */
  url: string;
  /** Stops listening and ends every tunnel and forwarded exchange. */
  close(): Promise<void>;
}

const DEFAULTS = { maxHeaderSize: 16 * 1024, connectTimeoutMs: 10_000, idleTimeoutMs: 5 * 60_000 };

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus the proxy ones: never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for an IP literal in 127.0.0.0/8 or `::1` (any spelling, IPv4-mapped included). */
export function isLoopbackAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 0) return false;
  return LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** Parses a CONNECT target, `host:port` or `[v6]:port`; undefined when malformed. */
export function parseAuthority(target: string): { hostname: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]{1,253})):(\d{1,5})$/.exec(target);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  const hostname = m[1] ?? m[2]!.toLowerCase().replace(/\.$/, '');
  if (m[1] !== undefined && !net.isIPv6(hostname)) return undefined;
  if (hostname.length === 0 || hostname.startsWith('.') || hostname.includes('..')) return undefined;
  return { hostname, port };
}

/** A minimal HTTP/1.1 response on a raw socket, then close: for CONNECT failures and parse errors. */
function rawResponse(socket: Duplex, status: number, reason: string, text: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${String(status)} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${String(Buffer.byteLength(body))}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Why an upstream connection failed, as the status and text the client sees. */
function upstreamFailure(err: NodeJS.ErrnoException, target: string): { status: number; reason: string; text: string } {
  switch (err.code) {
    case 'ECONNREFUSED':
      return { status: 502, reason: 'Bad Gateway', text: `openmsi dev proxy: ${target} refused the connection` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { status: 502, reason: 'Bad Gateway', text: `openmsi dev proxy: cannot resolve ${target}` };
    case 'ETIMEDOUT':
      return { status: 504, reason: 'Gateway Timeout', text: `openmsi dev proxy: ${target} did not answer in time` };
    case 'EOPENMSIREFUSED':
      return { status: 403, reason: 'Forbidden', text: `openmsi dev proxy: ${err.message}` };
    default:
      return { status: 502, reason: 'Bad Gateway', text: `openmsi dev proxy: cannot connect to ${target} (${err.code ?? err.message})` };
  }
}

function codedError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** True when `NO_PROXY` sends `hostname:port` direct (curl's rules: suffix match on names, `*` for all; no CIDR). */
export function bypassesUpstream(noProxy: readonly string[], hostname: string, port: number): boolean {
  const host = hostname.toLowerCase();
  return noProxy.some((raw) => {
    const entry = raw.trim().toLowerCase();
    if (entry === '') return false;
    if (entry === '*') return true;
    const m = /^(?:\[([^\]]+)\]|([^:]+|[0-9a-f:]+))(?::(\d+))?$/.exec(entry);
    const name = (m?.[1] ?? m?.[2] ?? entry).replace(/^\*?\./, '');
    if (m?.[3] !== undefined && Number(m[3]) !== port) return false;
    if (net.isIP(name) !== 0 || net.isIP(host) !== 0) return name === host;
    return host === name || host.endsWith(`.${name}`);
  });
}

/**
 * The proxy the user already had, from the environment `openmsi dev` runs in: `HTTPS_PROXY` (or `https_proxy`,
 * then `ALL_PROXY`) for CONNECT, `HTTP_PROXY` (or `http_proxy`, then `ALL_PROXY`) for plain HTTP, and `NO_PROXY`.
 * A value that names the dev proxy itself (a shell where `openmsi dev env` was evaluated) is skipped
 * (`selfReferences`), and a non-http scheme (`socks5://...`, which the dev proxy cannot speak) is ignored
 * (`ignored` says which and why).
 */
export function upstreamProxyFromEnv(
  env: NodeJS.ProcessEnv,
  ownPort: number,
): { upstream: UpstreamProxy | undefined; ignored: string[]; selfReferences: string[] } {
  const ignored: string[] = [];
  /** Variables naming the dev proxy itself: expected in a shell where `openmsi dev env` was evaluated, so not a warning. */
  const selfReferences: string[] = [];
  const pick = (names: string[]): URL | undefined => {
    for (const name of names) {
      const value = env[name]?.trim();
      if (value === undefined || value === '') continue;
      let url: URL;
      try {
        url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
      } catch {
        ignored.push(`${name}: not a URL`);
        return undefined;
      }
      if (url.protocol !== 'http:') {
        ignored.push(`${name}: a ${url.protocol}// proxy (the dev proxy chains to http:// proxies only)`);
        return undefined;
      }
      const port = url.port === '' ? 80 : Number(url.port);
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      if (port === ownPort && (host === 'localhost' || isLoopbackAddress(host))) {
        selfReferences.push(name);
        return undefined;
      }
      return url;
    }
    return undefined;
  };
  const https = pick(['HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy']);
  const http = pick(['HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']);
  const noProxy = (env['NO_PROXY'] ?? env['no_proxy'] ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter((e) => e !== '');
  if (https === undefined && http === undefined) return { upstream: undefined, ignored, selfReferences };
  return { upstream: { ...(https === undefined ? {} : { https }), ...(http === undefined ? {} : { http }), noProxy }, ignored, selfReferences };
}

/** `Proxy-Authorization` for a proxy URL's user info, if it has any. */
function proxyAuthorization(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  return `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
}

/** `host:port` of a proxy URL, for logs and errors (never its credentials). */
export function proxyName(url: URL): string {
  return `${url.hostname}:${url.port === '' ? '80' : url.port}`;
}

/**
 * Starts the proxy on loopback. Rejects when `host` is not a loopback address or the port cannot be bound.
 */
export async function startDevProxy(options: DevProxyOptions): Promise<DevProxy> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackAddress(host)) {
    throw new Error(`openmsi dev proxy: refusing to listen on ${host}: only loopback addresses (127.0.0.1, ::1) are allowed`);
  }
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new Error(`openmsi dev proxy: port must be an integer from 0 to 65535, got ${String(options.port)}`);
  }
  const maxHeaderSize = options.maxHeaderSize ?? DEFAULTS.maxHeaderSize;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs;
  const resolve: DevProxyLookup = options.lookup ?? ((name, opts, cb) => dnsLookup(name, opts, cb));
  const log = options.logger;
  /** Every socket either side, so close() can end them all. */
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  /** A lookup for net.connect that resolves the name, then keeps only the addresses allowUpstream accepts. */
  const vettedLookup =
    (hostname: string, port: number) =>
    (
      name: string,
      opts: LookupOneOptions | LookupAllOptions,
      cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ) => {
      resolve(name, { ...opts, all: true }, (err, addresses) => {
        if (err) return cb(err, []);
        const allowed = options.allowUpstream ? addresses.filter((a) => options.allowUpstream!(hostname, port, a.address)) : addresses;
        if (allowed.length === 0) {
          return cb(codedError('EOPENMSIREFUSED', `${hostname}:${String(port)} (${addresses.map((a) => a.address).join(', ')}) is not allowed here`), []);
        }
        if ((opts as LookupAllOptions).all) return cb(null, allowed);
        cb(null, allowed[0]!.address, allowed[0]!.family);
      });
    };

  /** Opens the upstream TCP connection for a target: the route's address if claimed (`routed`), else the target itself (vetted). */
  const connectUpstream = (hostname: string, port: number, routed: DevProxyRoute | undefined): Socket => {
    const socket = routed
      ? net.connect({ host: routed.host, port: routed.port })
      : // A literal IP goes through lookup too (net skips lookup for IPs), so allowUpstream vets it.
        net.isIP(hostname)
        ? connectVettedIp(hostname, port)
        : net.connect({ host: hostname, port, lookup: vettedLookup(hostname, port) });
    track(socket);
    return socket;
  };

  /** net.connect skips `lookup` for IP literals, so vet them here; a refusal surfaces as the socket's error. */
  const connectVettedIp = (ip: string, port: number): Socket => {
    if (!options.allowUpstream || options.allowUpstream(ip, port, ip)) return net.connect({ host: ip, port });
    const socket = new net.Socket();
    process.nextTick(() => socket.destroy(codedError('EOPENMSIREFUSED', `${ip}:${String(port)} is not allowed here`)));
    return socket;
  };

  /** The user's proxy for a non-claimed target, unless NO_PROXY or loopback sends it direct. */
  const upstreamFor = (proxy: URL | undefined, hostname: string, port: number): URL | undefined => {
    if (proxy === undefined || options.upstream === undefined) return undefined;
    if (hostname === 'localhost' || isLoopbackAddress(hostname)) return undefined;
    return bypassesUpstream(options.upstream.noProxy, hostname, port) ? undefined : proxy;
  };

  /** A vetted TCP connection to a proxy URL's address. */
  const connectToProxy = (proxy: URL): Socket => {
    const host = proxy.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = proxy.port === '' ? 80 : Number(proxy.port);
    const socket = net.isIP(host) ? connectVettedIp(host, port) : net.connect({ host, port, lookup: vettedLookup(host, port) });
    track(socket);
    return socket;
  };

  const onConnect = (req: IncomingMessage, client: Duplex, head: Buffer): void => {
    const clientSocket = client as Socket;
    clientSocket.on('error', () => clientSocket.destroy());
    const target = parseAuthority(req.url ?? '');
    if (!target) {
      rawResponse(clientSocket, 400, 'Bad Request', `openmsi dev proxy: CONNECT needs host:port, got ${JSON.stringify((req.url ?? '').slice(0, 100))}`);
      return;
    }
    const name = `${target.hostname}:${String(target.port)}`;
    const routed = options.route(target.hostname, target.port);
    const claimed = routed !== undefined;
    const via = claimed ? undefined : upstreamFor(options.upstream?.https, target.hostname, target.port);
    const upstream = via === undefined ? connectUpstream(target.hostname, target.port, routed) : connectToProxy(via);
    const failedAt = via === undefined ? name : `the upstream proxy ${proxyName(via)}`;
    let connected = false;
    /** The client got its answer (a failure): nothing more is written to it. */
    let answered = false;
    const connectTimer = setTimeout(() => upstream.destroy(codedError('ETIMEDOUT', 'connect timeout')), connectTimeoutMs);
    /** The tunnel is up: answer the client, then bytes both ways (`early`: what the upstream sent past its answer). */
    const established = (early: Buffer): void => {
      connected = true;
      clearTimeout(connectTimer);
      log?.debug({ target: name, claimed, ...(via === undefined ? {} : { via: proxyName(via) }) }, 'dev proxy tunnel open');
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (early.length > 0) clientSocket.write(early);
      if (head.length > 0) upstream.write(head);
      // Idle on either side ends both; pipe() alone would leave the other half open.
      for (const s of [clientSocket, upstream])
        s.setTimeout(idleTimeoutMs, () => {
          clientSocket.destroy();
          upstream.destroy();
        });
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    };
    if (via === undefined) {
      upstream.once('connect', () => established(Buffer.alloc(0)));
    } else {
      // Chained: ask the user's proxy for the same tunnel, and read its answer before any byte is relayed.
      const authority = net.isIPv6(target.hostname) ? `[${target.hostname}]:${String(target.port)}` : name;
      const auth = proxyAuthorization(via);
      upstream.once('connect', () => {
        upstream.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${auth === undefined ? '' : `Proxy-Authorization: ${auth}\r\n`}\r\n`);
      });
      let answer = Buffer.alloc(0);
      const onAnswer = (chunk: Buffer): void => {
        answer = Buffer.concat([answer, chunk]);
        const end = answer.indexOf('\r\n\r\n');
        if (end === -1) {
          if (answer.length > maxHeaderSize) upstream.destroy(codedError('EOPENMSIUPSTREAM', `its answer to CONNECT ${authority} is too long`));
          return;
        }
        upstream.off('data', onAnswer);
        const statusLine = answer.subarray(0, answer.indexOf('\r\n')).toString('latin1');
        const status = Number(/^HTTP\/1\.[01] (\d{3})\b/.exec(statusLine)?.[1] ?? 0);
        if (status < 200 || status > 299) {
          upstream.destroy(codedError('EOPENMSIUPSTREAM', `it answered CONNECT ${authority} with ${JSON.stringify(statusLine.slice(0, 100))}`));
          return;
        }
        established(answer.subarray(end + 4));
      };
      upstream.on('data', onAnswer);
    }
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (connected) {
        clientSocket.destroy();
        return;
      }
      const failure =
        err.code === 'EOPENMSIUPSTREAM'
          ? { status: 502, reason: 'Bad Gateway', text: `openmsi dev proxy: ${failedAt} refused the tunnel: ${err.message}` }
          : upstreamFailure(err, failedAt);
      log?.warn({ target: name, claimed, code: err.code, ...(via === undefined ? {} : { via: proxyName(via) }) }, 'dev proxy upstream failed');
      if (answered) return;
      answered = true;
      rawResponse(clientSocket, failure.status, failure.reason, failure.text);
    });
    upstream.on('close', () => {
      clearTimeout(connectTimer);
      if (connected) clientSocket.destroy();
      else if (!answered) {
        // A proxy that hangs up before answering CONNECT (a direct target's failures arrive as errors first).
        answered = true;
        rawResponse(clientSocket, 502, 'Bad Gateway', `openmsi dev proxy: ${failedAt} closed the connection`);
      }
    });
    clientSocket.on('close', () => upstream.destroy());
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    req.on('error', () => res.destroy());
    res.on('error', () => undefined);
    const url = req.url ?? '';
    if (!/^http:\/\//i.test(url)) {
      const why = /^https:\/\//i.test(url)
        ? 'https:// targets go through CONNECT, not absolute-form requests'
        : 'this is a proxy: send CONNECT host:port or an absolute-form http:// request';
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`openmsi dev proxy: ${why}\n`);
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end('openmsi dev proxy: malformed request URL\n');
      return;
    }
    const hostname = parsed.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
    const port = parsed.port === '' ? 80 : Number(parsed.port);
    const name = `${hostname}:${String(port)}`;
    const headers: http.OutgoingHttpHeaders = {};
    const named = new Set(
      (req.headers.connection ?? '')
        .toLowerCase()
        .split(',')
        .map((h) => h.trim()),
    );
    for (const [key, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(key) && !named.has(key) && value !== undefined) headers[key] = value;
    }
    const routed = options.route(hostname, port);
    const via = routed === undefined ? upstreamFor(options.upstream?.http, hostname, port) : undefined;
    const auth = via === undefined ? undefined : proxyAuthorization(via);
    if (auth !== undefined) headers['proxy-authorization'] = auth;
    const upstreamReq = http.request({
      method: req.method,
      // Through the user's proxy, the request keeps its absolute form, as the client would have sent it there.
      path: via === undefined ? `${parsed.pathname}${parsed.search}` : parsed.href,
      headers,
      // No pooling (agent: false); the IP case names no agent, since an agent would ignore createConnection.
      ...(via !== undefined
        ? { createConnection: () => connectToProxy(via) }
        : routed
          ? { agent: false, host: routed.host, port: routed.port }
          : net.isIP(hostname)
            ? { createConnection: () => connectVettedIp(hostname, port) }
            : { agent: false, host: hostname, port, lookup: vettedLookup(hostname, port) }),
    });
    const connectTimer = setTimeout(() => upstreamReq.destroy(codedError('ETIMEDOUT', 'connect timeout')), connectTimeoutMs);
    upstreamReq.on('socket', (s) => {
      track(s);
      s.setTimeout(idleTimeoutMs, () => upstreamReq.destroy(codedError('ETIMEDOUT', 'idle timeout')));
      s.once('connect', () => clearTimeout(connectTimer));
    });
    upstreamReq.on('response', (upstreamRes) => {
      clearTimeout(connectTimer);
      const out: http.OutgoingHttpHeaders = {};
      for (const [key, value] of Object.entries(upstreamRes.headers)) {
        if (!HOP_BY_HOP.has(key) && value !== undefined) out[key] = value;
      }
      res.writeHead(upstreamRes.statusCode ?? 502, out);
      upstreamRes.pipe(res);
      upstreamRes.on('error', () => res.destroy());
    });
    upstreamReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      log?.warn({ target: name, code: err.code }, 'dev proxy upstream failed');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const failure = upstreamFailure(err, via === undefined ? name : `the upstream proxy ${proxyName(via)}`);
      res.writeHead(failure.status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(`${failure.text}\n`);
    });
    res.on('close', () => {
      clearTimeout(connectTimer);
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  };

  const server = http.createServer({ maxHeaderSize, headersTimeout: connectTimeoutMs, requestTimeout: 0, keepAliveTimeout: 5_000 }, onRequest);
  server.on('connect', onConnect);
  server.on('connection', track);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    socket.on('error', () => undefined);
    if (err.code === 'HPE_HEADER_OVERFLOW')
      rawResponse(socket, 431, 'Request Header Fields Too Large', `openmsi dev proxy: request headers exceed ${String(maxHeaderSize)} bytes`);
    else if (err.code === 'ECONNRESET' || err.code === 'ERR_HTTP_REQUEST_TIMEOUT') socket.destroy();
    else rawResponse(socket, 400, 'Bad Request', 'openmsi dev proxy: malformed HTTP request');
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => rawResponse(socket, 501, 'Not Implemented', 'openmsi dev proxy: upgrades are not supported'));

  await new Promise<void>((resolveListen, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`openmsi dev proxy: cannot listen on ${host}:${String(options.port)}: ${err.code ?? err.message}`));
    };
    server.once('error', onError);
    server.listen({ host, port: options.port }, () => {
      server.off('error', onError);
      resolveListen();
    });
  });
  // After listen, a server error must not crash the process (there is no other listener).
  server.on('error', (err) => log?.warn({ err }, 'dev proxy server error'));
  const port = (server.address() as AddressInfo).port;
  const urlHost = net.isIPv6(host) ? `[${host}]` : host;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${urlHost}:${String(port)}`,
    close() {
      closing ??= new Promise<void>((done) => {
        server.close(() => done());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * The environment that sends HTTPS through the dev proxy. `NO_PROXY` names only loopback IP literals (the
 * managed-identity agent's address), never `localhost`: Python requests and curl match `NO_PROXY` entries as
 * suffixes, so `localhost` would bypass the proxy for every `*.localhost` vault host. Node's Azure pipeline
 * compares the URL's `hostname`, which keeps IPv6 brackets, so `::1` is listed both bare and bracketed.
 * `HTTP_PROXY` is not set: plain-http traffic has no reason to detour (Node's Azure pipeline still sends it via
 * HTTPS_PROXY, which the proxy forwards).
 *
 * @throws Error when a `loopbackHosts` entry is not a loopback IP literal.
 */
export function proxyEnvironment(proxyUrl: string, loopbackHosts: readonly string[] = ['127.0.0.1']): [string, string][] {
  const url = new URL(proxyUrl);
  if (url.protocol !== 'http:') throw new Error(`proxyEnvironment(): the proxy URL must be http://, got ${proxyUrl}`);
  const entries: string[] = [];
  for (const h of loopbackHosts) {
    const bare = h.replace(/^\[(.*)\]$/, '$1');
    if (!isLoopbackAddress(bare)) {
      throw new Error(
        `proxyEnvironment(): NO_PROXY takes loopback IP literals only, got ${JSON.stringify(h)} (a name like localhost matches as a suffix in Python and curl and would bypass the proxy for vault hosts)`,
      );
    }
    if (net.isIPv6(bare)) entries.push(bare, `[${bare}]`);
    else entries.push(bare);
  }
  const noProxy = [...new Set(entries)].join(',');
  const origin = url.origin;
  return [
    ['HTTPS_PROXY', origin],
    ['https_proxy', origin],
    ['NO_PROXY', noProxy],
    ['no_proxy', noProxy],
  ];
}
