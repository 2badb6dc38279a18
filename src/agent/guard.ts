/**
 * The checks every request passes before any surface sees it (docs/agent.md lists each refusal):
 * - the peer must be a loopback address (127.0.0.0/8, ::1, ::ffff:127.x), or one listed in `allowedPeers`
 *   (only for the documented 169.254.169.254 DNAT setup): otherwise 403;
 * - every header a proxy or load balancer adds ({@link PROXY_HEADERS}: `X-Forwarded-For`, `Forwarded`,
 *   `X-Real-IP`, `Via`, …) is refused (400), as IMDS refuses `X-Forwarded-For`: the request is relayed by an
 *   open reverse proxy (`../shared/specs/peers-security-rbac.md` §4.2), not sent by a process on this host;
 * - the `Host` header must name this agent: `127.0.0.1:P`, `localhost:P`, `[::1]:P`, or `169.254.169.254`
 *   (`:80`) for the DNAT setup. Anything else is DNS rebinding (a browser page whose name resolves to
 *   127.0.0.1) and gets 400.
 * No response ever carries a CORS header, so a browser page can read nothing even where a request gets through.
 */
import type { IncomingMessage } from 'node:http';
import { AgentErrors, type AgentError } from './surfaces/common.js';
import { isLoopbackAddress as isLoopback } from './caller.js';

/** One loopback test for the guard, the control API and attribution (127.0.0.0/8, ::1, IPv4-mapped 127/8). */
export { isLoopback };

/**
 * Headers that say a proxy relays the request (lower case, as node gives them). IMDS rejects
 * `X-Forwarded-For` (https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#security-and-authentication);
 * the others are the same signal from other proxies, CDNs and load balancers (nginx `X-Real-IP`, Akamai /
 * Cloudflare `True-Client-IP`, `CF-Connecting-IP`, GKE/F5 `X-Cluster-Client-IP`, RFC 9110 `Via`, RFC 7239
 * `Forwarded`), so each of them is refused alike.
 */
export const PROXY_HEADERS: readonly string[] = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded',
  'forwarded',
  'forwarded-for',
  'x-real-ip',
  'x-client-ip',
  'x-original-forwarded-for',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-host',
  'x-original-host',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-proxyuser-ip',
  'via',
];

/** Whether the request carries any {@link PROXY_HEADERS} header (in any case, with any value, even empty). */
export function hasProxyHeader(req: Pick<IncomingMessage, 'headers'>): boolean {
  for (const name of PROXY_HEADERS) if (req.headers[name] !== undefined) return true;
  return false;
}

export class RequestGuard {
  #allowedHosts = new Set<string>();
  readonly #allowedPeers: ReadonlySet<string>;

  constructor(options: { allowedPeers?: readonly string[] } = {}) {
    this.#allowedPeers = new Set(options.allowedPeers ?? []);
  }

  /** Sets the port the agent listens on (known once bound). */
  setPort(port: number): void {
    const p = String(port);
    this.#allowedHosts = new Set([`127.0.0.1:${p}`, `localhost:${p}`, `[::1]:${p}`, '169.254.169.254', '169.254.169.254:80']);
    if (port === 80) for (const h of ['127.0.0.1', 'localhost', '[::1]']) this.#allowedHosts.add(h);
  }

  /** The refusal for this request, or undefined when it may go on. */
  check(req: IncomingMessage): AgentError | undefined {
    const peer = req.socket.remoteAddress;
    if (!isLoopback(peer) && !(peer !== undefined && this.#allowedPeers.has(peer))) return AgentErrors.nonLoopback();
    if (hasProxyHeader(req)) return AgentErrors.forwarded();
    const host = req.headers.host;
    if (host === undefined || !this.#allowedHosts.has(host.toLowerCase())) return AgentErrors.foreignHost();
    return undefined;
  }
}
