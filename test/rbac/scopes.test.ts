import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ancestorKeys, isValidScope, normalizeScope, parseScope, scopeContains, scopeError, ScopeError } from '../../src/rbac/scopes.js';

const SUB = '0e2f8d1c-3b4a-4c5d-8e9f-a0b1c2d3e4f5';

/** The reference: split into non-empty lower-case segments; the ancestor's segments are a prefix of the scope's. */
function naiveContains(ancestor: string, scope: string): boolean {
  const a = ancestor.toLowerCase().split('/').filter((s) => s !== '');
  const s = scope.toLowerCase().split('/').filter((x) => x !== '');
  if (a.length > s.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== s[i]) return false;
  return true;
}

describe('scopes: parsing and validation', () => {
  const valid: [string, string, string][] = [
    ['/', 'tenant', '/'],
    [`/subscriptions/${SUB}`, 'subscription', `/subscriptions/${SUB}`],
    [`/SUBSCRIPTIONS/${SUB}/`, 'subscription', `/subscriptions/${SUB}`],
    [`/subscriptions/${SUB}/resourcegroups/RG-1`, 'resourceGroup', `/subscriptions/${SUB}/resourceGroups/RG-1`],
    [
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`,
      'resource',
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1`,
    ],
    [
      `/subscriptions/${SUB}/resourceGroups/rg/PROVIDERS/Microsoft.KeyVault/vaults/v/secrets/s1`,
      'resource',
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/s1`,
    ],
    [
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/providers/Microsoft.Insights/diagnosticSettings/d`,
      'resource',
      `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/providers/Microsoft.Insights/diagnosticSettings/d`,
    ],
    ['/providers/microsoft.management/managementgroups/mg1', 'managementGroup', '/providers/Microsoft.Management/managementGroups/mg1'],
  ];
  for (const [input, kind, normal] of valid) {
    it(`accepts ${input}`, () => {
      const p = parseScope(input);
      assert.equal(p.kind, kind);
      assert.equal(p.scope, normal);
      assert.equal(p.key, normal.toLowerCase());
      assert.equal(scopeError(input), undefined);
      assert.equal(normalizeScope(normal), normal);
    });
  }

  it('names the parts of a resource scope', () => {
    const p = parseScope(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v/secrets/s1`);
    assert.equal(p.subscriptionId, SUB);
    assert.equal(p.resourceGroup, 'rg');
    assert.equal(p.provider, 'Microsoft.KeyVault');
    assert.equal(p.resourceType, 'Microsoft.KeyVault/vaults/secrets');
    assert.equal(p.resourceName, 's1');
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['subscriptions/x', /start with/],
    ['//', /empty path segment/],
    [`/subscriptions//resourceGroups/rg`, /empty path segment/],
    ['/subscriptions', /needs a subscription id/],
    [`/subscriptions/${SUB}/resourceGroups`, /needs a resource group name/],
    [`/subscriptions/${SUB}/foo/bar`, /expected "resourceGroups"/],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers`, /namespace/],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault`, /needs a resource type and name/],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults`, /needs a resource name/],
    [`/subscriptions/${SUB}/resourceGroups/rg/providers/NoDot/vaults/v`, /not a resource provider namespace/],
    [`/subscriptions/${SUB}/resourceGroups/rg/things/x`, /expected "providers"/],
    ['/providers/Microsoft.Compute/virtualMachines/vm', /managementGroups/],
    ['/tenants/x', /must be "\/"/],
    [`/subscriptions/${SUB}?x=1`, /control or format character, "?"/],
    [`/subscriptions/${SUB}/resourceGroups/../x`, /"\."/],
    [`/subscriptions/ ${SUB}`, /white space/],
    ['/' + 'a'.repeat(3000), /longer than/],
  ];
  for (const [input, reason] of invalid) {
    it(`refuses ${JSON.stringify(input.slice(0, 80))}`, () => {
      assert.match(scopeError(input) ?? '', reason);
      assert.equal(isValidScope(input), false);
      assert.throws(() => parseScope(input), (e: unknown) => e instanceof ScopeError && e.code === 'InvalidScope' && reason.test(e.message));
    });
  }
});

describe('scopes: containment', () => {
  const table: [string, string, boolean][] = [
    ['/', '/subscriptions/a', true],
    ['/', '/', true],
    ['/subscriptions/a', '/subscriptions/a', true],
    ['/subscriptions/a', '/subscriptions/a/resourceGroups/x', true],
    ['/subscriptions/a', '/subscriptions/ab', false],
    ['/subscriptions/ab', '/subscriptions/a', false],
    ['/subscriptions/A/resourceGroups/RG', '/subscriptions/a/resourcegroups/rg/providers/X.Y/t/n', true],
    ['/subscriptions/a/resourceGroups/rg', '/subscriptions/a/resourceGroups/rg2', false],
    ['/subscriptions/a/resourceGroups/rg/', '/subscriptions/a/resourceGroups/rg', true],
    ['/subscriptions/a/resourceGroups/rg', '/subscriptions/a', false],
    ['/providers/Microsoft.Management/managementGroups/mg', '/subscriptions/a', false],
  ];
  for (const [a, s, expected] of table) {
    it(`${a} ${expected ? 'contains' : 'does not contain'} ${s}`, () => assert.equal(scopeContains(a, s), expected));
  }

  it('ancestorKeys lists every ancestor from the root down', () => {
    assert.deepEqual(ancestorKeys('/subscriptions/a/resourcegroups/b'), ['/', '/subscriptions', '/subscriptions/a', '/subscriptions/a/resourcegroups', '/subscriptions/a/resourcegroups/b']);
    assert.deepEqual(ancestorKeys('/'), ['/']);
  });

  // Segments drawn from a tiny alphabet so that prefixes, case variants and near-misses collide often.
  const segment = fc.constantFrom('a', 'ab', 'A', 'b', 'aB', 'subscriptions', 'SUBSCRIPTIONS', 'rg');
  const scope = fc
    .tuple(fc.array(segment, { maxLength: 6 }), fc.boolean())
    .map(([segs, trailing]) => (segs.length === 0 ? '/' : '/' + segs.join('/') + (trailing ? '/' : '')));

  it('agrees with the naive reference (property)', () => {
    fc.assert(fc.property(scope, scope, (a, s) => scopeContains(a, s) === naiveContains(a, s)), { numRuns: 5000 });
  });

  it('a scope contains every extension of itself and the root contains everything (property)', () => {
    fc.assert(
      fc.property(scope, fc.array(segment, { minLength: 1, maxLength: 3 }), (a, more) => {
        const child = (a === '/' ? '' : a.replace(/\/$/, '')) + '/' + more.join('/');
        return scopeContains(a, child) && scopeContains('/', child) && scopeContains(a, a.toUpperCase()) && !scopeContains(child, a);
      }),
      { numRuns: 2000 },
    );
  });

  it('is transitive (property)', () => {
    fc.assert(
      fc.property(scope, scope, scope, (a, b, c) => !(scopeContains(a, b) && scopeContains(b, c)) || scopeContains(a, c)),
      { numRuns: 3000 },
    );
  });
});
