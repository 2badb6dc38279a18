import type { FastifyRequest } from 'fastify';
import { ManagementErrors } from './errors.js';

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/**
 * ARM requires `api-version` on every request. It is read from the parsed query, so a percent-encoded name
 * (`api%2Dversion`) counts. Any well-formed version is accepted: the shapes we serve are stable across them.
 */
export function requireApiVersion(request: FastifyRequest): string {
  const value = (request.query as Record<string, string | string[] | undefined> | undefined)?.['api-version'];
  if (value === undefined || value === '') throw ManagementErrors.missingApiVersion();
  if (Array.isArray(value)) throw ManagementErrors.repeatedApiVersion();
  if (!API_VERSION.test(value)) throw ManagementErrors.invalidApiVersion(value);
  return value;
}

/** The same check as an `onRequest` hook, so a bad request is refused before its body is read. */
export function apiVersionHook(request: FastifyRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    requireApiVersion(request);
    resolve();
  });
}
