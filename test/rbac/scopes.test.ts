import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  ancestorKeys,
  isValidScope,
  MAX_SCOPE_LENGTH,
  normalizeScope,
  parseResourceId,
  parseScope,
  scopeContains,
  scopeError,
  ScopeError,
  scopeKey,
  segmentError,
} from '../../src/rbac/scopes.js';

const SUB = '0e2f8d1c-3b4a-4c5d-8e9f-a0b1c2d3e4f5';

/** The reference: split into non-empty lower-case segments; the ancestor's segments are a prefix of the scope's. */
function naiveContains(ancestor: string, scope: string): boolean {
  const a = ancestor
    .toLowerCase()
    .split('/')
    .filter((s) => s !== '');
  const s = scope
    .toLowerCase()
    .split('/')
    .filter((x) => x !== '');
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
      assert.throws(
        () => parseScope(input),
        (e: unknown) => e instanceof ScopeError && e.code === 'InvalidScope' && reason.test(e.message),
      );
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
    assert.deepEqual(ancestorKeys('/subscriptions/a/resourcegroups/b'), [
      '/',
      '/subscriptions',
      '/subscriptions/a',
      '/subscriptions/a/resourcegroups',
      '/subscriptions/a/resourcegroups/b',
    ]);
    assert.deepEqual(ancestorKeys('/'), ['/']);
  });

  // Segments drawn from a tiny alphabet so that prefixes, case variants and near-misses collide often.
  const segment = fc.constantFrom('a', 'ab', 'A', 'b', 'aB', 'subscriptions', 'SUBSCRIPTIONS', 'rg');
  const scope = fc
    .tuple(fc.array(segment, { maxLength: 6 }), fc.boolean())
    .map(([segs, trailing]) => (segs.length === 0 ? '/' : '/' + segs.join('/') + (trailing ? '/' : '')));

  it('agrees with the naive reference (property)', () => {
    fc.assert(
      fc.property(scope, scope, (a, s) => scopeContains(a, s) === naiveContains(a, s)),
      { numRuns: 5000 },
    );
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

describe('scopes: mutation-found edges (canonical form, refusal, bounds)', () => {
  const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
  const VAULT = `${RG}/providers/Microsoft.KeyVault/vaults/v1`;

  it('invariant: each spelling outside the grammar is refused with InvalidScope, never a TypeError', () => {
    const refused: [string, unknown][] = [
      ['a non-string', 123],
      ['a "." segment', `/subscriptions/./resourceGroups/rg`],
      ['a ".." segment', `/subscriptions/${SUB}/resourceGroups/..`],
      ['a "." resource name', `${RG}/providers/Microsoft.KeyVault/vaults/.`],
      ['a management group without a name', '/providers/Microsoft.Management/managementGroups'],
      ['a management group with a child', '/providers/Microsoft.Management/managementGroups/mg/x'],
      ['another provider at the root', '/providers/Microsoft.KeyVault/managementGroups/mg'],
      ['another management type', '/providers/Microsoft.Management/tenants/mg'],
      ['a namespace without a dot', `${RG}/providers/Microsoft/vaults/v1`],
      ['a namespace starting with a digit', `${RG}/providers/1Microsoft.KeyVault/vaults/v1`],
      ['a namespace with a dash', `${RG}/providers/Microsoft.Key-Vault/vaults/v1`],
      ['a namespace ending in a dot', `${RG}/providers/Microsoft.KeyVault./vaults/v1`],
      ['"providers" as a resource type', `${RG}/providers/Microsoft.KeyVault/providers/v1`],
      ['an extension without a type', `${VAULT}/providers/Microsoft.Insights`],
      ['a namespace without a type', `${RG}/providers/Microsoft.KeyVault`],
    ];
    for (const [name, input] of refused) {
      assert.equal(isValidScope(input as string), false, name);
      assert.equal(typeof scopeError(input as string), 'string', name);
      assert.throws(() => parseScope(input as string), ScopeError, name);
    }
    assert.match(scopeError(`${RG}/providers/Microsoft.KeyVault/PROVIDERS/v1`) ?? '', /"providers" is not a resource type/);
  });

  it('invariant: the length bound is exactly MAX_SCOPE_LENGTH, and the message echoes at most 300 characters', () => {
    const at = (n: number) => `/subscriptions/${'s'.repeat(n - '/subscriptions/'.length)}`;
    assert.equal(at(MAX_SCOPE_LENGTH).length, MAX_SCOPE_LENGTH);
    assert.equal(isValidScope(at(MAX_SCOPE_LENGTH)), true);
    assert.equal(isValidScope(at(MAX_SCOPE_LENGTH + 1)), false);
    assert.throws(
      () => parseScope(at(10_000)),
      (e: unknown) => e instanceof ScopeError && e.message.length < 500,
      'a long scope is not echoed whole',
    );
  });

  it('invariant: extension resources and multi-dot namespaces parse to the last provider, type and name', () => {
    const ext = parseScope(`${VAULT}/providers/Microsoft.Insights/diagnosticSettings/d1`);
    assert.equal(ext.kind, 'resource');
    assert.equal(ext.provider, 'Microsoft.Insights');
    assert.equal(ext.resourceType, 'Microsoft.Insights/diagnosticSettings');
    assert.equal(ext.resourceName, 'd1');
    const child = parseScope(`${VAULT}/secrets/s1`);
    assert.equal(child.resourceType, 'Microsoft.KeyVault/vaults/secrets');
    assert.equal(child.resourceName, 's1');
    const dots = parseScope(`${RG}/providers/Contoso.Sub.Provider/things/t1`);
    assert.equal(dots.provider, 'Contoso.Sub.Provider');
    assert.equal(parseScope('/providers/microsoft.management/MANAGEMENTGROUPS/Mg1').scope, '/providers/Microsoft.Management/managementGroups/Mg1');
  });

  it('invariant: scopeKey is the lower-cased scope without one trailing "/", and "/" stays "/"', () => {
    assert.equal(scopeKey('/'), '/');
    assert.equal(scopeKey(`/SUBSCRIPTIONS/${SUB.toUpperCase()}/`), `/subscriptions/${SUB}`);
    assert.equal(scopeKey('/Subscriptions/A/resourceGroups/RG'), '/subscriptions/a/resourcegroups/rg');
  });
});

describe('scopes: parseResourceId and segmentError (the management edge)', () => {
  const RG = `/subscriptions/${SUB}/resourceGroups/Rg`;
  const TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';

  it('invariant: a top-level id of the type, in any keyword casing, parses to one canonical form', () => {
    const canonical = `${RG}/providers/${TYPE}/Id1`;
    for (const spelling of [
      canonical,
      `${canonical}/`,
      `/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/Rg/PROVIDERS/microsoft.managedidentity/USERASSIGNEDIDENTITIES/Id1`,
      `/Subscriptions/${SUB}/resourcegroups/Rg/providers/Microsoft.ManagedIdentity/userassignedidentities/Id1`,
    ]) {
      const p = parseResourceId(spelling, TYPE);
      assert.equal(p.scope, canonical, spelling);
      assert.equal(p.key, canonical.toLowerCase(), spelling);
      assert.equal(p.kind, 'resource');
      assert.equal(p.provider, 'Microsoft.ManagedIdentity');
      assert.equal(p.resourceType, TYPE);
      assert.equal(p.subscriptionId, SUB);
      assert.equal(p.resourceGroup, 'Rg');
      assert.equal(p.resourceName, 'Id1');
    }
    assert.equal(parseResourceId(`${RG}/providers/Microsoft.KeyVault/vaults/v`, 'microsoft.keyvault/VAULTS').provider, 'microsoft.keyvault');
  });

  it('invariant: every id that is not a top-level resource of the type is refused with InvalidScope', () => {
    const refused: [string, RegExp][] = [
      [`/subscriptions/${SUB}`, /is not the id of a Microsoft\.ManagedIdentity\/userAssignedIdentities resource/],
      [RG, /is not the id of a/],
      [`${RG}/providers/Microsoft.KeyVault/vaults/Id1`, /is not the id of a/],
      [`${RG}/providers/Microsoft.ManagedIdentity/otherThings/Id1`, /is not the id of a/],
      [`${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, /needs a resource name/],
      [`${RG}/providers/Microsoft.ManagedIdentity/parents/p/userAssignedIdentities/Id1`, /is not the id of a Microsoft/],
      [`${RG}/providers/Microsoft.Compute/virtualMachines/vm/providers/${TYPE}/Id1`, /is not the id of a top-level/],
      [`${RG}/providers/${TYPE}/Id1/..`, /"\." or "\.\."/],
      [`${RG}/providers/${TYPE}/Id%31`, /percent/],
      [`${RG}//providers/${TYPE}/Id1`, /empty path segment/],
      [` ${RG}/providers/${TYPE}/Id1`, /start with/],
    ];
    for (const [id, reason] of refused) {
      assert.throws(
        () => parseResourceId(id, TYPE),
        (e: unknown) => e instanceof ScopeError && reason.test(e.reason),
        id,
      );
    }
  });

  it('invariant: segmentError refuses exactly the segments that could name one resource two ways', () => {
    const table: [string, RegExp | undefined][] = [
      ['name-1', undefined],
      ['Microsoft.KeyVault', undefined],
      ['a.b', undefined],
      ['...', undefined],
      ['', /empty/],
      ['a/b', /contains "\/"/],
      ['/', /contains "\/"/],
      ['.', /"\." or "\.\."/],
      ['..', /"\." or "\.\."/],
      ['a%2Fb', /control or format character/],
      ['a\u0000', /control or format character/],
      ['a\u200bb', /control or format character/],
      ['a?b', /control or format character/],
      ['a#b', /control or format character/],
      ['a\\b', /control or format character/],
      ['a b', /white space/],
      ['a\u00a0b', /white space/],
      ['\u3000', /white space/],
    ];
    for (const [value, reason] of table) {
      const got = segmentError(value);
      if (reason === undefined) assert.equal(got, undefined, JSON.stringify(value));
      else assert.match(got ?? '', reason, JSON.stringify(value));
    }
  });
});
