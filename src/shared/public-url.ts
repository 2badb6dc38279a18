import { isIP } from 'node:net';

/** Listen addresses that name no single interface a client would dial, or a loopback one: advertised as `localhost`. */
const LOCAL_OR_WILDCARD = new Set(['', '0.0.0.0', '::', '[::]', '127.0.0.1', '::1', '[::1]', 'localhost']);

/** An address as it stands in a URL's host (IPv6 in brackets). */
export function hostForUrl(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

/**
 * The origin advertised when no public URL was set: `https://localhost:<port>` for a loopback or wildcard
 * listen address (the server certificate always names localhost), else the listen address itself.
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
