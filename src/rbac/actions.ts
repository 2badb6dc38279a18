/**
 * Action patterns, as Azure RBAC matches them: case-insensitive; `*` matches any run of characters,
 * `/` included (`Microsoft.Network/*\/read` matches `Microsoft.Network/virtualNetworks/subnets/read`);
 * every other character is literal. A `/*\/` segment also matches no segment at all: Azure's Managed
 * Identity Operator grants `userAssignedIdentities/*\/assign/action` and `…/*\/read`, and is documented
 * (and used by AKS) to read and assign identities, whose operations are `userAssignedIdentities/read` and
 * `userAssignedIdentities/assign/action`.
 */

const cache = new Map<string, (action: string) => boolean>();
const CACHE_MAX = 10_000;

/** Compiles a pattern into a matcher of LOWER-CASE actions (callers lower-case the action once). */
function compile(pattern: string): (lowerAction: string) => boolean {
  const p = pattern.toLowerCase();
  // Each `/*/` may also stand for a single `/`: one glob per choice (patterns hold one or two of them).
  if (p.includes('/*/')) {
    const variants = collapsedVariants(p).map(compileGlob);
    return (a) => variants.some((m) => m(a));
  }
  return compileGlob(p);
}

/** `p` and every pattern made from it by collapsing some of its `/*\/` segments to `/`. */
function collapsedVariants(p: string): string[] {
  const at = p.indexOf('/*/');
  if (at === -1) return [p];
  const rest = collapsedVariants(p.slice(at + 2));
  return rest.flatMap((tail) => [p.slice(0, at + 2) + tail, p.slice(0, at) + tail]);
}

/** A plain glob: `*` matches any run of characters, `/` included. */
function compileGlob(p: string): (lowerAction: string) => boolean {
  if (p === '*') return () => true;
  if (!p.includes('*')) return (a) => a === p;
  const parts = p.split('*');
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((m) => m.length > 0);
  const minLength = parts.reduce((n, s) => n + s.length, 0);
  return (a) => {
    if (a.length < minLength) return false;
    if (!a.startsWith(first) || !a.endsWith(last)) return false;
    // Greedy left-to-right placement of the middle literals is exact for `*`-only globs.
    let at = first.length;
    const end = a.length - last.length;
    for (const m of middle) {
      const found = a.indexOf(m, at);
      if (found === -1 || found + m.length > end) return false;
      at = found + m.length;
    }
    return at <= end;
  };
}

/** The matcher for one pattern (compiled once and memoised); it takes the action already LOWER-CASED. */
export function actionMatcher(pattern: string): (lowerAction: string) => boolean {
  let m = cache.get(pattern);
  if (!m) {
    m = compile(pattern);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(pattern, m);
  }
  return m;
}

/** True when `action` matches `pattern` (case-insensitive; `*` matches any run of characters, `/` included). */
export function actionMatches(pattern: string, action: string): boolean {
  return actionMatcher(pattern)(action.toLowerCase());
}

/** True when some pattern in `patterns` matches `action`. */
export function matchesAny(patterns: readonly string[], action: string): boolean {
  const a = action.toLowerCase();
  for (const p of patterns) if (actionMatcher(p)(a)) return true;
  return false;
}

/** Why `pattern` is not a usable action pattern for a role definition, or undefined when it is. */
export function actionPatternError(pattern: string): string | undefined {
  if (typeof pattern !== 'string' || pattern.length === 0) return 'an action is a non-empty string';
  if (pattern.length > 512) return 'an action is at most 512 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f]/.test(pattern)) return 'an action contains no white space or control characters';
  return undefined;
}
