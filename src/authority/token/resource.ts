import { isGuid } from '../../shared/ids.js';
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
  if (only === undefined || !only.endsWith('/.default') || only.length === '/.default'.length) throw TokenErrors.invalidScope(scope);
  return validateResource(only.slice(0, -'/.default'.length));
}

/** Accepts absolute https:// and api:// URIs and bare application ids; anything else names no resource. */
export function validateResource(resource: string): string {
  if (resource.length > 2048) throw TokenErrors.invalidResource(resource.slice(0, 64) + '…');
  if (isGuid(resource)) return resource;
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw TokenErrors.invalidResource(resource);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'api:') || url.username !== '' || url.password !== '' || /\s/.test(resource)) {
    throw TokenErrors.invalidResource(resource);
  }
  return resource;
}
