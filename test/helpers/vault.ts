import { request } from 'node:https';
import { readResponse, type HttpsResponse } from './https.js';

/**
 * An HTTPS request to a vault host (`https://{name}.{vaultDomain}:{port}/...`) on loopback without DNS: it
 * connects to 127.0.0.1 and sends the vault's name as SNI and Host, as a resolver mapping the name would.
 * Trusts `ca` only.
 */
export function vaultRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca: string },
): Promise<HttpsResponse> {
  const target = new URL(url);
  if (!target.hostname.endsWith('.localhost')) throw new Error('tests talk to loopback vault hosts only');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port === '' ? 443 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        servername: target.hostname,
        method: options.method ?? 'GET',
        headers: { host: target.host, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
        ca: options.ca,
        timeout: 10_000,
      },
      (res) => readResponse(res).then(resolve, reject),
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
