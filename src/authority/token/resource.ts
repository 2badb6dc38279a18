import { CONTROL_CHARACTER, displayResource, isResourceSyntax, MAX_RESOURCE_LENGTH } from '../../shared/resource.js';
import { TokenErrors } from '../errors.js';
import { requireParam, type FormParams } from './form.js';

/**
 * The resource a client-credentials or managed-identity request asks for, exactly as the token's `aud`
 * will carry it. v1 endpoints take `resource`; v2 endpoints take one `scope` ending in `/.default`
 * (`https://management.core.windows.net//.default` names `https://management.core.windows.net/`).
 */
export function requestedResource(params: FormParams, endpoint: 'v1' | 'v2'): string {
  if (endpoint === 'v1') return validateResource(requireParam(params, 'resource'));
  const scope = requireParam(params, 'scope').trim();
  const scopes = scope.split(/\s+/);
  const only = scopes.length === 1 ? scopes[0] : undefined;
  if (only === undefined || !only.endsWith('/.default') || only.length === '/.default'.length || CONTROL_CHARACTER.test(only)) {
    throw TokenErrors.invalidScope(displayResource(scope, MAX_RESOURCE_LENGTH));
  }
  return validateResource(only.slice(0, -'/.default'.length));
}

/**
 * Accepts absolute https:// and api:// URIs and bare application ids of at most 2048 characters, without
 * whitespace or control characters (src/shared/resource.ts, the rule the agent applies first); anything
 * else names no resource.
 */
export function validateResource(resource: string): string {
  if (!isResourceSyntax(resource))
    throw TokenErrors.invalidResource(displayResource(resource, resource.length > MAX_RESOURCE_LENGTH ? 64 : MAX_RESOURCE_LENGTH));
  return resource;
}
