import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { createCertificateAuthority, issueServerCertificate } from '../../src/pki/ca.js';
import { systemClock } from '../../src/shared/clock.js';

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** The whole response, as a {@link HttpsResponse}. */
export function readResponse(res: IncomingMessage): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
    });
    res.on('error', reject);
  });
}

/** A minimal HTTPS client that trusts `ca` (our local CA) and nothing else. Loopback only. */
export function httpsRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca: string },
): Promise<HttpsResponse> {
  const target = new URL(url);
  if (target.hostname !== 'localhost' && target.hostname !== '127.0.0.1') throw new Error('tests talk to loopback only');
  return new Promise((resolve, reject) => {
    const req = request(target, { method: options.method ?? 'GET', headers: options.headers, ca: options.ca, timeout: 10_000 }, (res) =>
      readResponse(res).then(resolve, reject),
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** POSTs a form to a token endpoint. */
export function postForm(url: string, form: Record<string, string>, ca: string, headers: Record<string, string> = {}): Promise<HttpsResponse> {
  return httpsRequest(url, {
    method: 'POST',
    ca,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

/**
 * {@link httpsRequest} with the path sent exactly as given (no URL normalisation: `..`, `//` and percent
 * escapes reach the server as written). `path` must be printable ASCII (see test/support/spellings.ts).
 */
export function httpsRequestRawPath(
  origin: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; ca: string },
): Promise<HttpsResponse> {
  const target = new URL(origin);
  if (target.hostname !== 'localhost' && target.hostname !== '127.0.0.1') throw new Error('tests talk to loopback only');
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname: target.hostname, port: target.port, path, method: options.method ?? 'GET', headers: options.headers, ca: options.ca, timeout: 10_000 },
      (res) => readResponse(res).then(resolve, reject),
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** What a loopback HTTPS test server presents, and the CA its clients trust (PEM). */
export interface LoopbackTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * A fresh private CA (named `caCommonName`, or the default `openmsi local CA`) and a server certificate it issued
 * for `localhost` and 127.0.0.1: for a test's own HTTPS server standing in for a remote one (an upstream, an issuer).
 */
export async function loopbackTls(caCommonName?: string): Promise<LoopbackTls> {
  const ca = await createCertificateAuthority({ ...(caCommonName === undefined ? {} : { commonName: caCommonName }), clock: systemClock });
  const leaf = await issueServerCertificate({
    caCertPem: ca.certPem,
    caKeyPkcs8Pem: ca.keyPkcs8Pem,
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    clock: systemClock,
  });
  return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPkcs8Pem };
}
