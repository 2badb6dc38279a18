/**
 * The syntax of a token request's `resource` (what the token's `aud` will carry), shared by the authority's
 * token endpoint (src/authority/token/resource.ts) and the agent (src/agent/surfaces/common.ts), so that the
 * agent refuses locally, with a 400, every resource the authority would refuse for its form.
 *
 * A resource is an application id (GUID) or an absolute `https://` or `api://` URI without user info; at most
 * {@link MAX_RESOURCE_LENGTH} characters; no whitespace and no control character (C0, DEL, C1: a NUL or a
 * line break in `aud` would reach every log and comparison that reads the claim). Entra answers such a
 * resource with `invalid_resource` (AADSTS500011) and a v2 scope with `invalid_scope`
 * (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
 */
import { isGuid } from './ids.js';

/** The longest `resource` accepted (Entra's bound on a resource URI). */
export const MAX_RESOURCE_LENGTH = 2048;

/** One C0 control character, DEL or one C1 control character. */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Whether `resource` is a resource by its form (it may still name no registered resource). */
export function isResourceSyntax(resource: string): boolean {
  if (resource.length === 0 || resource.length > MAX_RESOURCE_LENGTH) return false;
  if (CONTROL_CHARACTER.test(resource) || /\s/.test(resource)) return false;
  if (isGuid(resource)) return true;
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    return false;
  }
  return (url.protocol === 'https:' || url.protocol === 'api:') && url.username === '' && url.password === '';
}

/**
 * `resource` (or a scope) shown in an error description: at most `max` characters, each control character
 * written as `\uXXXX`, `…` when cut. A description never carries a control character it refuses.
 */
export function displayResource(resource: string, max = 64): string {
  const shown = resource.length > max ? resource.slice(0, max) : resource;
  // eslint-disable-next-line no-control-regex
  const escaped = shown.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return resource.length > max ? `${escaped}…` : escaped;
}
