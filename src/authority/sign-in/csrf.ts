/**
 * The sign-in forms' CSRF defence. Each page carries a sealed ticket (AES-GCM under the master key, so any
 * replica opens it) holding what the form is for (the pending authorization), a random CSRF token, an expiry
 * and the hash of the browser's sign-in cookie (HttpOnly, SameSite=Strict). A post is accepted only with the
 * cookie the ticket was bound to, the ticket's own CSRF token, and no foreign `Origin` / `Sec-Fetch-Site`:
 * another site can neither read the token nor make the browser send the cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { MasterKey } from '../../pki/master-key.js';
import type { FormParams } from '../token/form.js';
import { SignInErrors } from './errors.js';

export const SIGN_IN_COOKIE = 'openmsi_signin';
/** How long a sign-in page may be left open before its form is refused (Entra's session pages last about as long). */
export const TICKET_LIFETIME_MS = 15 * 60 * 1000;

interface Sealed<T> {
  purpose: string;
  exp: number;
  csrf: string;
  cookie: string;
  data: T;
}

function cookieOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SIGN_IN_COOKIE) {
      const value = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('base64url');

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The hidden fields of a new form for `purpose` carrying `data`, binding it to this browser's sign-in cookie
 * (set on `reply` when the browser has none yet).
 */
export function issueTicket<T>(
  masterKey: MasterKey,
  request: FastifyRequest,
  reply: FastifyReply,
  purpose: string,
  data: T,
  now: number,
): Record<string, string> {
  let cookie = cookieOf(request);
  if (cookie === undefined) {
    cookie = randomBytes(32).toString('base64url');
    const secure = request.protocol === 'https' ? '; Secure' : '';
    reply.header('set-cookie', `${SIGN_IN_COOKIE}=${cookie}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${String(TICKET_LIFETIME_MS / 1000)}${secure}`);
  }
  const csrf = randomBytes(32).toString('base64url');
  const sealed: Sealed<T> = { purpose, exp: now + TICKET_LIFETIME_MS, csrf, cookie: sha256(cookie), data };
  return { ticket: masterKey.encrypt(JSON.stringify(sealed), `sign-in:${purpose}`), csrf_token: csrf };
}

/**
 * The data of a posted form's ticket, once the post proved it came from the page this browser was given;
 * else the CSRF refusal (403) or, for a ticket that does not open or expired, the expired-sign-in one.
 */
export function openTicket<T>(masterKey: MasterKey, request: FastifyRequest, form: FormParams, purpose: string, now: number, ownOrigin: string): T {
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== ownOrigin) throw SignInErrors.csrf();
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw SignInErrors.csrf();
  const blob = form['ticket'];
  if (blob === undefined || blob.length > 16_384) throw SignInErrors.signInExpired();
  let sealed: Sealed<T>;
  try {
    sealed = JSON.parse(masterKey.decrypt(blob, `sign-in:${purpose}`).toString('utf8')) as Sealed<T>;
  } catch {
    throw SignInErrors.signInExpired();
  }
  if (sealed.purpose !== purpose || !(sealed.exp > now)) throw SignInErrors.signInExpired();
  const cookie = cookieOf(request);
  const token = form['csrf_token'];
  if (cookie === undefined || token === undefined || !sameString(sha256(cookie), sealed.cookie) || !sameString(token, sealed.csrf)) throw SignInErrors.csrf();
  return sealed.data;
}
