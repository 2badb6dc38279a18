import type { FastifyRequest } from 'fastify';
import { ApiError } from '../shared/api-error.js';

const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;

/**
 * ARM requires `api-version` on every request. It is read from the parsed query, so a percent-encoded name
 * (`api%2Dversion`) counts. Any well-formed version is accepted: the shapes we serve are stable across them.
 */
export function requireApiVersion(request: FastifyRequest): string {
  const value = (request.query as Record<string, string | string[] | undefined> | undefined)?.['api-version'];
  if (value === undefined || value === '') {
    throw new ApiError(400, 'MissingApiVersionParameter', "The api-version query parameter (?api-version=) is required for all requests.");
  }
  if (Array.isArray(value)) {
    throw new ApiError(400, 'InvalidApiVersionParameter', 'The api-version query parameter may be given only once.');
  }
  if (!API_VERSION.test(value)) {
    throw new ApiError(
      400,
      'InvalidApiVersionParameter',
      `The api-version '${value.slice(0, 64)}' is invalid. The supported versions have the form 'yyyy-mm-dd' or 'yyyy-mm-dd-preview'.`,
    );
  }
  return value;
}

/** The same check as an `onRequest` hook, so a bad request is refused before its body is read. */
export function apiVersionHook(request: FastifyRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    requireApiVersion(request);
    resolve();
  });
}
