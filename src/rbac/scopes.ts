/**
 * ARM scopes for RBAC: parsing, validation, normalisation and containment.
 *
 * Accepted forms (keywords case-insensitive, names as given):
 *   /                                                                 the tenant root
 *   /providers/Microsoft.Management/managementGroups/{mg}            accepted as a scope (no hierarchy: see docs/rbac.md)
 *   /subscriptions/{sub}
 *   /subscriptions/{sub}/resourceGroups/{rg}
 *   /subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{childType}/{childName}...]
 *     (an extension resource may follow: …/{name}/providers/{ns2}/{type2}/{name2}…)
 *
 * Containment is a case-insensitive prefix on path-segment boundaries: `/subscriptions/a` contains
 * `/subscriptions/a/resourceGroups/x` but not `/subscriptions/ab`; `/` contains everything.
 *
 * This is the one parser of ARM resource ids and scopes: every id the management API takes from a path or a
 * body goes through it (see src/management/resource-ids.ts), and authorisation and the directory act on the
 * canonical form it returns. Spellings that could name one resource two ways are refused rather than
 * normalised, except for keyword casing and one trailing `/`: an empty segment (`//`), `.` or `..`, white
 * space anywhere, control and invisible format characters, `?`, `#`, `\`, and `%`. A `%` is refused because
 * no ARM resource name may contain it (docs/security.md "Canonical ids"): in a body it can only be an encoded
 * spelling, and a URL path is percent-decoded exactly once, by the HTTP layer, before its segments get here.
 */
import { CodedError } from '../shared/coded-error.js';

export type ScopeKind = 'tenant' | 'managementGroup' | 'subscription' | 'resourceGroup' | 'resource';

export interface ParsedScope {
  kind: ScopeKind;
  /** As given, with canonical keyword casing and no trailing slash (`/` for the tenant root). */
  scope: string;
  /** Lower-cased {@link scope}: the form compared and used as a cache key. */
  key: string;
  managementGroup?: string;
  subscriptionId?: string;
  resourceGroup?: string;
  /** For a resource: the (last) provider namespace, its full type (`Microsoft.KeyVault/vaults/secrets`) and name. */
  provider?: string;
  resourceType?: string;
  resourceName?: string;
}

export class ScopeError extends CodedError<'InvalidScope'> {
  readonly scope: string;
  readonly reason: string;
  constructor(scope: string, reason: string) {
    // String(): a body may carry a non-string where a scope is due; that is a 400, never a TypeError (500).
    super('InvalidScope', `The scope '${String(scope).slice(0, 300)}' is not valid: ${reason}.`);
    this.scope = scope;
    this.reason = reason;
  }
}

/** The longest scope accepted (ARM's resource id bound is of this order). */
export const MAX_SCOPE_LENGTH = 2048;

const NAMESPACE = /^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+$/;
// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\u0000-\u001f\u007f-\u009f?#\\%]|\p{Cf}/u;
const WHITE_SPACE = /\s/u;

type Parse = { ok: true; value: ParsedScope } | { ok: false; reason: string };

function fail(reason: string): Parse {
  return { ok: false, reason };
}

function parse(input: string): Parse {
  if (typeof input !== 'string') return fail('a scope is a string');
  if (input.length === 0) return fail('it is empty (the tenant root is "/")');
  if (input.length > MAX_SCOPE_LENGTH) return fail(`it is longer than ${MAX_SCOPE_LENGTH} characters`);
  if (!input.startsWith('/')) return fail('it must start with "/"');
  if (BAD_CHARS.test(input)) return fail('it contains a control or format character, "?", "#", "\\" or "%" (percent-encoding)');
  if (WHITE_SPACE.test(input)) return fail('it contains white space');
  if (input.includes('//')) return fail('it has an empty path segment ("//")');
  const trimmed = input.length > 1 && input.endsWith('/') ? input.slice(0, -1) : input;
  if (trimmed === '/') return { ok: true, value: { kind: 'tenant', scope: '/', key: '/' } };
  const segs = trimmed.slice(1).split('/');
  for (const s of segs) {
    if (s.length === 0) return fail('it has an empty path segment ("//")');
    if (s === '.' || s === '..') return fail('it has a "." or ".." segment');
  }
  const lower = segs.map((s) => s.toLowerCase());
  const build = (parts: string[], rest: Omit<ParsedScope, 'scope' | 'key'>): Parse => {
    const scope = '/' + parts.join('/');
    return { ok: true, value: { ...rest, scope, key: scope.toLowerCase() } };
  };

  if (lower[0] === 'providers') {
    if (segs.length !== 4 || lower[1] !== 'microsoft.management' || lower[2] !== 'managementgroups') {
      return fail('a scope under /providers must be /providers/Microsoft.Management/managementGroups/{name}');
    }
    return build(['providers', 'Microsoft.Management', 'managementGroups', segs[3]!], { kind: 'managementGroup', managementGroup: segs[3]! });
  }
  if (lower[0] !== 'subscriptions') {
    return fail('it must be "/", /subscriptions/{id}[/resourceGroups/{name}[/providers/…]] or /providers/Microsoft.Management/managementGroups/{name}');
  }
  if (segs.length < 2) return fail('/subscriptions needs a subscription id');
  const subscriptionId = segs[1]!;
  const out = ['subscriptions', subscriptionId];
  if (segs.length === 2) return build(out, { kind: 'subscription', subscriptionId });
  if (lower[2] !== 'resourcegroups') return fail(`expected "resourceGroups" after the subscription, found "${segs[2]}"`);
  if (segs.length < 4) return fail('resourceGroups needs a resource group name');
  const resourceGroup = segs[3]!;
  out.push('resourceGroups', resourceGroup);
  if (segs.length === 4) return build(out, { kind: 'resourceGroup', subscriptionId, resourceGroup });

  // Resource: one or more `providers/{ns}/{type}/{name}[/{childType}/{childName}…]` blocks.
  let i = 4;
  let provider = '';
  let types: string[] = [];
  let name = '';
  while (i < segs.length) {
    if (lower[i] !== 'providers') return fail(`expected "providers" after the resource group, found "${segs[i]}"`);
    const ns = segs[i + 1];
    if (ns === undefined) return fail('"providers" needs a resource provider namespace');
    if (!NAMESPACE.test(ns)) return fail(`"${ns}" is not a resource provider namespace (such as Microsoft.KeyVault)`);
    out.push('providers', ns);
    provider = ns;
    types = [];
    i += 2;
    let pairs = 0;
    while (i < segs.length) {
      // "providers" is the keyword of an extension resource, never a resource type: refused where a type is due
      // (so `…/{ns}/providers/{name}` has no second reading).
      if (lower[i] === 'providers') {
        if (pairs > 0) break;
        return fail(`"${ns}" needs a resource type and name ("providers" is not a resource type)`);
      }
      const type = segs[i]!;
      const n = segs[i + 1];
      if (n === undefined) return fail(`the resource type "${type}" needs a resource name`);
      out.push(type, n);
      types.push(type);
      name = n;
      pairs++;
      i += 2;
    }
    if (pairs === 0) return fail(`"${ns}" needs a resource type and name`);
  }
  return build(out, {
    kind: 'resource',
    subscriptionId,
    resourceGroup,
    provider,
    resourceType: [provider, ...types].join('/'),
    resourceName: name,
  });
}

/** Why `scope` is not a valid RBAC scope, or undefined when it is. */
export function scopeError(scope: string): string | undefined {
  const r = parse(scope);
  return r.ok ? undefined : r.reason;
}

export function isValidScope(scope: string): boolean {
  return parse(scope).ok;
}

/** Parses a scope; throws {@link ScopeError} (code `InvalidScope`) with the reason. */
export function parseScope(scope: string): ParsedScope {
  const r = parse(scope);
  if (!r.ok) throw new ScopeError(scope, r.reason);
  return r.value;
}

/** The canonical form (keywords canonically cased, no trailing slash); throws {@link ScopeError}. */
export function normalizeScope(scope: string): string {
  return parseScope(scope).scope;
}

/** The comparison key: lower case, no trailing slash. Cheap and total (no validation): for already-stored scopes. */
export function scopeKey(scope: string): string {
  const s = scope.length > 1 && scope.endsWith('/') ? scope.slice(0, -1) : scope;
  return s.toLowerCase();
}

/** True when `ancestor` is `scope` or one of its ancestors (case-insensitive, on segment boundaries). */
export function scopeContains(ancestor: string, scope: string): boolean {
  return keyContains(scopeKey(ancestor), scopeKey(scope));
}

/** {@link scopeContains} over keys already produced by {@link scopeKey}. */
export function keyContains(ancestorKey: string, key: string): boolean {
  if (ancestorKey === '/') return true;
  if (key.length === ancestorKey.length) return key === ancestorKey;
  return key.length > ancestorKey.length && key.charCodeAt(ancestorKey.length) === 47 /* '/' */ && key.startsWith(ancestorKey);
}

/** Every key that contains `key`, from the root down to `key` itself (`/`, `/subscriptions/s`, …). */
export function ancestorKeys(key: string): string[] {
  if (key === '/') return ['/'];
  const out = ['/'];
  let i = key.indexOf('/', 1);
  while (i !== -1) {
    out.push(key.slice(0, i));
    i = key.indexOf('/', i + 1);
  }
  out.push(key);
  return out;
}

/**
 * Parses the id of a top-level resource of `type` (`Namespace/type`, any casing):
 * `/subscriptions/{s}/resourceGroups/{g}/providers/{Namespace}/{type}/{name}`, nothing more or less (no child
 * or extension resource). The result is in canonical form, `type` in its given casing; throws
 * {@link ScopeError} otherwise.
 */
export function parseResourceId(id: string, type: string): ParsedScope {
  const parsed = parseScope(id);
  const typeKey = type.toLowerCase();
  if (parsed.kind !== 'resource' || parsed.resourceType?.toLowerCase() !== typeKey) {
    throw new ScopeError(id, `it is not the id of a ${type} resource`);
  }
  const scope = `/subscriptions/${parsed.subscriptionId ?? ''}/resourceGroups/${parsed.resourceGroup ?? ''}/providers/${type}/${parsed.resourceName ?? ''}`;
  // A child or extension resource of the same final type has more segments than this form.
  if (scope.toLowerCase() !== parsed.key) throw new ScopeError(id, `it is not the id of a top-level ${type} resource`);
  const provider = type.slice(0, type.indexOf('/'));
  return { ...parsed, scope, key: parsed.key, provider, resourceType: type };
}

/**
 * Why `value` cannot be one segment of a resource id (a subscription id, group or resource name, a type taken
 * from a URL path parameter), or undefined when it can: the same characters {@link parseScope} refuses, and
 * `/` (a percent-encoded `%2F` the HTTP layer decoded into a parameter).
 */
export function segmentError(value: string): string | undefined {
  if (value.length === 0) return 'a path segment is empty';
  if (value.includes('/')) return 'a path segment contains "/" (percent-encoded as %2F)';
  if (value === '.' || value === '..') return 'it has a "." or ".." segment';
  if (BAD_CHARS.test(value)) return 'a path segment contains a control or format character, "?", "#", "\\" or "%" (percent-encoding)';
  if (WHITE_SPACE.test(value)) return 'a path segment contains white space';
  return undefined;
}
