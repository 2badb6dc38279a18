/**
 * The checks every request passes before any surface sees it (docs/agent.md lists each refusal):
 * - the peer must be a loopback address (127.0.0.0/8, ::1, ::ffff:127.x), or one listed in `allowedPeers`
 *   (only for the documented 169.254.169.254 DNAT setup): otherwise 403;
 * - `X-Forwarded-For` / `Forwarded` are refused (400), as IMDS does: they mean a proxy relays the request;
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
    if (req.headers['x-forwarded-for'] !== undefined || req.headers['forwarded'] !== undefined) return AgentErrors.forwarded();
    const host = req.headers.host;
    if (host === undefined || !this.#allowedHosts.has(host.toLowerCase())) return AgentErrors.foreignHost();
    return undefined;
  }
}
