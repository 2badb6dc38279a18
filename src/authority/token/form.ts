import type { FastifyInstance } from 'fastify';
import { TokenErrors } from '../errors.js';

/** Parsed `application/x-www-form-urlencoded` parameters. Each name appears at most once. */
export type FormParams = Readonly<Record<string, string>>;

/** The largest token request body we read. Generous for assertions that carry an `x5c` chain. */
export const TOKEN_BODY_LIMIT = 64 * 1024;

/**
 * Parses a form body. A parameter that appears twice is refused rather than silently picking one: two
 * `client_id`s in one request are either a bug or an attack.
 */
export function parseForm(body: string): FormParams {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [name, value] of new URLSearchParams(body)) {
    if (name in out) throw TokenErrors.duplicateParameter(name);
    out[name] = value;
  }
  return out;
}

/** Makes `app` (an encapsulated plugin) take form bodies only, parsed by {@link parseForm}: a JSON body is refused rather than half-understood. */
export function acceptFormsOnly(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: TOKEN_BODY_LIMIT }, (_req, body, done) => {
    try {
      done(null, parseForm(body as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
}

/** A required, non-empty parameter. */
export function requireParam(params: FormParams, name: string): string {
  const value = params[name];
  if (value === undefined || value.trim() === '') throw TokenErrors.missingParameter(name);
  return value;
}

/** Credentials from an `Authorization: Basic` header (client_secret_basic), if one was sent. */
export function parseBasicAuth(header: string | undefined): { clientId: string; clientSecret: string } | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    // RFC 6749 §2.3.1: both halves are form-urlencoded before being joined.
    return {
      clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      clientSecret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  } catch {
    throw TokenErrors.malformedBody('the Basic authorization header is not form-urlencoded');
  }
}
