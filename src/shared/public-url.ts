import { isIP } from 'node:net';

/**
 * Listen addresses advertised as `localhost`: wildcards and IPv4 loopback. `::1` is advertised as itself,
 * since `localhost` need not resolve to it (many /etc/hosts name only 127.0.0.1).
 */
const LOCAL_OR_WILDCARD = new Set(['', '0.0.0.0', '::', '[::]', '127.0.0.1', 'localhost']);

/** An address as it stands in a URL's host (IPv6 in brackets). */
export function hostForUrl(address: string): string {
  const bare = address.replace(/^\[(.*)\]$/, '$1');
  return isIP(bare) === 6 ? `[${bare}]` : address;
}

/**
 * The origin advertised when no public URL was set: `https://localhost:<port>` for a wildcard or IPv4
 * loopback listen address (the server certificate always names localhost), else the listen address itself.
 */
export function defaultOrigin(listenHost: string, port: number): string {
  const host = LOCAL_OR_WILDCARD.has(listenHost.toLowerCase()) ? 'localhost' : hostForUrl(listenHost);
  return new URL(`https://${host}:${String(port)}`).origin;
}

/**
 * The public URL a config names explicitly, if any. Data dirs made before the advertised URL followed the
 * listen port stored `https://localhost:<port>` even when none was given; that value is read as "not set",
 * so that `--port` moves it.
 */
export function explicitPublicUrl(config: { publicUrl?: string | undefined; port: number }): string | undefined {
  if (config.publicUrl === undefined || config.publicUrl === '') return undefined;
  if (URL.canParse(config.publicUrl) && new URL(config.publicUrl).origin === `https://localhost:${String(config.port)}`) return undefined;
  return config.publicUrl;
}
