import { CONTROL_CHARACTER, displayResource, MAX_RESOURCE_LENGTH } from '../../shared/resource.js';
import { TokenErrors } from '../errors.js';
import { requireParam, type FormParams } from './form.js';
import { validateResource } from './resource.js';

/** OpenID Connect's scopes: they ask for an ID token, a refresh token and profile claims, not for a resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/** The default resource when a v2 request names none (Entra's is Microsoft Graph). */
const DEFAULT_RESOURCE = 'https://graph.microsoft.com';

/** What a delegated (user) token request asks for. */
export interface DelegatedScope {
  /** The access token's audience, exactly as named (trailing slash kept). */
  resource: string;
  /** The `scp` claim: `user_impersonation` for `/.default`, else the permissions named. */
  scp: string;
  /** The `scope` of the response: what was granted, resource scopes as requested plus the OIDC ones. */
  granted: string;
  /** Whether an ID token was asked for (`openid`). */
  openid: boolean;
  /** Whether a refresh token was asked for (`offline_access`; always on the v1 endpoint, as ADAL expects). */
  offlineAccess: boolean;
}

/**
 * Parses a delegated request's scope as Entra does: v1 names the resource (`resource`), v2 a list of scopes
 * of one resource (`{resource}/{permission}` or `{resource}/.default`) plus OIDC scopes. The resource is
 * everything before the last `/` (`https://management.core.windows.net//.default` names
 * `https://management.core.windows.net/`).
 */
export function delegatedScope(params: FormParams, endpoint: 'v1' | 'v2'): DelegatedScope {
  const raw = (params['scope'] ?? '').trim();
  if (raw.length > 4096 || CONTROL_CHARACTER.test(raw)) throw TokenErrors.invalidUserScope(displayResource(raw, MAX_RESOURCE_LENGTH));
  const scopes = raw === '' ? [] : raw.split(/\s+/);
  const oidc = scopes.filter((s) => OIDC_SCOPES.has(s.toLowerCase())).map((s) => s.toLowerCase());
  const openid = oidc.includes('openid');
  if (endpoint === 'v1') {
    const resource = validateResource(requireParam(params, 'resource'));
    return { resource, scp: 'user_impersonation', granted: 'user_impersonation', openid, offlineAccess: true };
  }
  const named = scopes.filter((s) => !OIDC_SCOPES.has(s.toLowerCase()));
  let resource = DEFAULT_RESOURCE;
  const permissions: string[] = [];
  for (const scope of named) {
    const slash = scope.lastIndexOf('/');
    if (slash <= 0 || slash === scope.length - 1) throw TokenErrors.invalidUserScope(displayResource(scope, MAX_RESOURCE_LENGTH));
    const r = scope.slice(0, slash);
    if (permissions.length > 0 && r !== resource) throw TokenErrors.invalidUserScope(displayResource(raw, MAX_RESOURCE_LENGTH));
    resource = r;
    permissions.push(scope.slice(slash + 1));
  }
  validateResource(resource);
  const scp = permissions.length === 0 || permissions.includes('.default') ? 'user_impersonation' : [...new Set(permissions)].join(' ');
  const resourceScopes = named.length === 0 ? [`${resource}/.default`] : named;
  return { resource, scp, granted: [...resourceScopes, ...oidc].join(' '), openid, offlineAccess: oidc.includes('offline_access') };
}
