import { PUBLIC_CLIENTS } from '../public-clients.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Whether `redirectUri` is registered for the public client `clientId`. Matching is exact (scheme, host,
 * port, path and query, as sent), except as Entra allows for public clients' loopback URIs: a registered
 * `http://localhost` (or `127.0.0.1`) matches any port on the same host and path, because the native app picks
 * a free port at run time (RFC 8252 §7.3). No fragment, no user info, ever.
 */
export function isRegisteredRedirectUri(clientId: string, redirectUri: string): boolean {
  const client = PUBLIC_CLIENTS.get(clientId.toLowerCase());
  if (client === undefined || redirectUri.length > 2048) return false;
  let requested: URL;
  try {
    requested = new URL(redirectUri);
  } catch {
    return false;
  }
  if (requested.hash !== '' || redirectUri.includes('#') || requested.username !== '' || requested.password !== '') return false;
  for (const registered of client.redirectUris) {
    if (registered === redirectUri) return true;
    const r = new URL(registered);
    if (r.protocol !== 'http:' || !LOOPBACK_HOSTS.has(r.hostname) || r.port !== '') continue;
    if (requested.protocol === 'http:' && requested.hostname === r.hostname && requested.pathname === r.pathname && requested.search === '') return true;
  }
  return false;
}
