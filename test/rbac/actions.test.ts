import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { actionMatches, actionPatternError, matchesAny } from '../../src/rbac/actions.js';

/**
 * The reference: a plain recursive glob where `*` matches any run of characters (including `/`),
 * case-insensitively, and a `/*\/` segment may also match no segment at all.
 */
function naiveMatch(pattern: string, action: string): boolean {
  const p = pattern.toLowerCase();
  const a = action.toLowerCase();
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === a.length;
    if (p[i] === '*') {
      if (i > 0 && p[i - 1] === '/' && p[i + 1] === '/' && go(i + 2, j)) return true;
      for (let k = j; k <= a.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < a.length && p[i] === a[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

describe('actions: wildcard matching', () => {
  const table: [string, string, boolean][] = [
    ['*', 'Microsoft.Compute/virtualMachines/read', true],
    ['*/read', 'Microsoft.Compute/virtualMachines/read', true],
    ['*/read', 'Microsoft.Compute/virtualMachines/write', false],
    ['Microsoft.Compute/*', 'Microsoft.Compute/virtualMachines/start/action', true],
    ['Microsoft.Compute/*', 'Microsoft.ComputeX/virtualMachines/read', false],
    ['Microsoft.Network/*/read', 'Microsoft.Network/virtualNetworks/subnets/read', true],
    ['Microsoft.Network/*/read', 'Microsoft.Network/virtualNetworks/write', false],
    ['Microsoft.ManagedIdentity/userAssignedIdentities/*/read', 'Microsoft.ManagedIdentity/userAssignedIdentities/read', true],
    ['Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action', 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action', true],
    ['Microsoft.ManagedIdentity/userAssignedIdentities/*/read', 'Microsoft.ManagedIdentity/userAssignedIdentitiesread', false],
    ['a/*/b/*/c', 'a/b/c', true],
    ['a/*/b/*/c', 'a/x/b/c', true],
    ['a/*/b/*/c', 'a/bc', false],
    ['Microsoft.KeyVault/vaults/secrets/*', 'Microsoft.KeyVault/vaults/secrets/getSecret/action', true],
    ['Microsoft.KeyVault/vaults/secrets/*', 'Microsoft.KeyVault/vaults/keys/read', false],
    ['microsoft.authorization/*/write', 'Microsoft.Authorization/roleAssignments/Write', true],
    ['Microsoft.Authorization/*/Delete', 'microsoft.authorization/roleassignments/delete', true],
    ['Microsoft.Storage/storageAccounts/read', 'Microsoft.Storage/storageAccounts/read', true],
    ['Microsoft.Storage/storageAccounts/read', 'Microsoft.Storage/storageAccounts/readx', false],
    ['a*a', 'a', false],
    ['a*a', 'aa', true],
    ['*a*b*', 'xxaxxbxx', true],
    ['*a*b*', 'xxbxxaxx', false],
    ['Microsoft.?', 'Microsoft.X', false],
  ];
  for (const [pattern, action, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${action}`, () => {
      assert.equal(actionMatches(pattern, action), expected);
      assert.equal(naiveMatch(pattern, action), expected, 'the reference agrees');
    });
  }

  it('matchesAny', () => {
    assert.equal(matchesAny(['a/read', 'b/*'], 'B/x'), true);
    assert.equal(matchesAny([], 'x'), false);
  });

  const pattern = fc.array(fc.constantFrom('a', 'b', 'A', '/', '*', '.', 'read'), { maxLength: 8 }).map((p) => p.join(''));
  const action = fc.array(fc.constantFrom('a', 'b', 'B', '/', '.', 'read', 'READ'), { maxLength: 10 }).map((p) => p.join(''));

  it('agrees with the naive reference (property)', () => {
    fc.assert(
      fc.property(pattern, action, (p, a) => actionMatches(p, a) === naiveMatch(p, a)),
      { numRuns: 10000 },
    );
  });

  it('every action matches itself (any case) and `*` (property)', () => {
    fc.assert(
      fc.property(action, (a) => actionMatches(a.replace(/\*/g, ''), a.toUpperCase()) && actionMatches('*', a)),
      { numRuns: 2000 },
    );
  });

  it('validates patterns', () => {
    assert.equal(actionPatternError('Microsoft.Compute/*'), undefined);
    assert.match(actionPatternError('') ?? '', /non-empty/);
    assert.match(actionPatternError('a b') ?? '', /white space/);
  });
});
