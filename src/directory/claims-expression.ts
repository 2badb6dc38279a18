/**
 * Entra's flexible federated identity credential expressions, language version 1
 * (`claimsMatchingExpression`): `claims['<name>'] <op> '<comparand>'` terms joined by ` and `, with `eq`
 * (exact, case-sensitive) and `matches` (`*` any run of characters, `?` one character). openmsi adds one
 * non-portable extension: a nested claim path, `claims['kubernetes.io']['serviceaccount']['uid']`.
 */

export interface ClaimsTerm {
  /** The claim path: one name in Entra's grammar, more for a nested claim (openmsi's extension). */
  path: string[];
  op: 'eq' | 'matches';
  value: string;
}

export class ClaimsExpressionError extends Error {
  override readonly name = 'ClaimsExpressionError';
}

const TERM = /^claims((?:\['[^']*'\])+) (eq|matches) '([^']*)'$/;

/** Parses an expression, or throws {@link ClaimsExpressionError} naming what is wrong. */
export function parseClaimsExpression(expression: string): ClaimsTerm[] {
  if (expression.length === 0 || expression.length > 600) throw new ClaimsExpressionError('the expression must have 1 to 600 characters');
  const terms: ClaimsTerm[] = [];
  for (const text of expression.split(' and ')) {
    const m = TERM.exec(text);
    if (m === null) throw new ClaimsExpressionError(`'${text.slice(0, 100)}' is not of the form claims['name'] eq|matches 'value'`);
    const path = [...(m[1] ?? '').matchAll(/\['([^']*)'\]/g)].map((p) => p[1] ?? '');
    if (path.some((p) => p === '')) throw new ClaimsExpressionError('a claim name must not be empty');
    terms.push({ path, op: m[2] as ClaimsTerm['op'], value: m[3] ?? '' });
  }
  return terms;
}

/** Whether the claims satisfy every term; a missing or non-string claim satisfies none. */
export function matchesClaims(terms: readonly ClaimsTerm[], claims: Readonly<Record<string, unknown>>): boolean {
  return terms.every((term) => {
    let value: unknown = claims;
    for (const name of term.path) {
      value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[name] : undefined;
    }
    if (typeof value !== 'string') return false;
    return term.op === 'eq' ? value === term.value : wildcard(term.value).test(value);
  });
}

function wildcard(pattern: string): RegExp {
  const source = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${source}$`, 's');
}
