/**
 * The management API's edge for resource ids (src/management/resource-ids.ts), store-less: which ARM error each
 * refusal is, what a route parameter, a path and a body id may be, and how `…/providers/Microsoft.Authorization/…`
 * paths are split. The same rules end to end, with every spelling, are test/management/resource-ids.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../src/shared/api-error.js';
import { ScopeError } from '../../src/rbac/scopes.js';
import {
  bodyResourceId,
  canonicalScope,
  decodedPath,
  decodePath,
  invalidScope,
  linkedInvalidPropertyId,
  pathParam,
  splitAuthorizationPath,
} from '../../src/management/resource-ids.js';

const SUB = '00000000-0000-0000-0000-000000000001';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const ID = `/subscriptions/${SUB}/resourceGroups/rg/providers/${UAMI}/id1`;
const request = (fields: { params?: Record<string, string | undefined>; url?: string }) => fields as unknown as FastifyRequest;

/** The ApiError `fn` throws (failing when it throws anything else or nothing). */
function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError, `not an ApiError: ${String(err)}`);
    return err;
  }
  assert.fail('nothing was thrown');
}

void describe('management resource ids: refusals', () => {
  void it("invalidScope is ARM's 400 InvalidScope with the parser's message, the parser's error as cause", () => {
    const cause = new ScopeError('/x', 'a reason');
    const err = invalidScope(cause);
    assert.equal(err.status, 400);
    assert.equal(err.code, 'InvalidScope');
    assert.equal(err.message, "The scope '/x' is not valid: a reason.");
    assert.equal(err.cause, cause);
  });

  void it("linkedInvalidPropertyId is ARM's 400 LinkedInvalidPropertyId naming the property and the reason, the id cut at 300 characters", () => {
    const err = linkedInvalidPropertyId('/bad', 'properties.principalId', 'why');
    assert.equal(err.status, 400);
    assert.equal(err.code, 'LinkedInvalidPropertyId');
    assert.equal(
      err.message,
      "Property id '/bad' at path 'properties.principalId' is invalid: why. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
    );
    const long = linkedInvalidPropertyId('x'.repeat(301) + 'TAIL', 'p', 'r').message;
    assert.ok(long.includes(`'${'x'.repeat(300)}'`), 'the first 300 characters');
    assert.ok(!long.includes('TAIL') && !long.includes('x'.repeat(301)), 'and no more');
  });
});

void describe('management resource ids: route parameters and paths', () => {
  void it("pathParam: '' when the route has no such parameter; one valid segment as decoded; anything else a 400 InvalidScope", () => {
    assert.equal(pathParam(request({}), 'name'), '');
    assert.equal(pathParam(request({ params: {} }), 'name'), '');
    assert.equal(pathParam(request({ params: { name: 'My-Identity' } }), 'name'), 'My-Identity');
    for (const bad of ['', 'a/b', '.', '..']) {
      const err = apiError(() => pathParam(request({ params: { name: bad } }), 'name'));
      assert.equal(err.status, 400, bad);
      assert.equal(err.code, 'InvalidScope', bad);
      assert.ok(err.cause instanceof ScopeError, bad);
    }
  });

  void it('decodePath decodes each segment once; a segment that would decode to "/" or does not decode stays as sent', () => {
    assert.equal(decodePath('/subscriptions/a%2Db/resourceGroups/r%20g'), '/subscriptions/a-b/resourceGroups/r g');
    assert.equal(decodePath('/x/a%2Fb/y'), '/x/a%2Fb/y', '%2F stays encoded: the parser refuses it');
    assert.equal(decodePath('/x/a%2fb'), '/x/a%2fb');
    assert.equal(decodePath('/x/%E0%A4%A/y'), '/x/%E0%A4%A/y', 'a malformed escape stays as sent');
    assert.equal(decodePath('/x/%2541'), '/x/%41', 'once, not twice');
    assert.equal(decodePath('/'), '/');
  });

  void it("decodedPath is the request URL's path without its query, decoded by decodePath", () => {
    assert.equal(decodedPath(request({ url: '/subscriptions/a%2Db?api-version=2023-01-01&x=%2F' })), '/subscriptions/a-b');
    assert.equal(decodedPath(request({ url: '/a%2Fb' })), '/a%2Fb');
    assert.equal(decodedPath(request({ url: '?q=1' })), '');
  });

  void it('canonicalScope returns the canonical form; a scope that does not parse is a 400 InvalidScope; other errors pass through', () => {
    const parsed = canonicalScope(`/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rg/`);
    assert.equal(parsed.scope, `/subscriptions/${SUB}/resourceGroups/rg`);
    assert.equal(parsed.kind, 'resourceGroup');
    const err = apiError(() => canonicalScope('/subscriptions//x'));
    assert.equal(err.status, 400);
    assert.equal(err.code, 'InvalidScope');
    assert.throws(
      () => canonicalScope(42 as unknown as string),
      (e: unknown) => e instanceof ApiError || e instanceof TypeError,
    );
  });
});

void describe('management resource ids: ids in a request body', () => {
  void it("bodyResourceId returns the canonical id of a top-level resource of the type, whatever the keywords' case", () => {
    const parsed = bodyResourceId(ID.replace('/subscriptions/', '/SUBSCRIPTIONS/').replace('/resourceGroups/', '/resourcegroups/'), 'identity', UAMI);
    assert.equal(parsed.scope, ID);
    assert.equal(parsed.key, ID.toLowerCase());
    assert.equal(parsed.resourceName, 'id1');
  });

  void it('bodyResourceId refuses a non-string, a non-id, another type, a child resource and a percent-encoded id, each a 400 LinkedInvalidPropertyId naming the property', () => {
    const cases: [unknown, RegExp][] = [
      [42, /Property id '42' at path 'identity' is invalid: it is not a string\./],
      [null, /Property id 'null' at path 'identity' is invalid: it is not a string\./],
      [{ id: ID }, /it is not a string/],
      ['not-an-id', /Property id 'not-an-id' at path 'identity' is invalid: /],
      [
        `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1`,
        /it is not the id of a Microsoft\.ManagedIdentity\/userAssignedIdentities resource/,
      ],
      [`${ID}/federatedIdentityCredentials/f1`, /is invalid: /],
      [ID.replace('/id1', '/id%2F1'), /is invalid: /],
    ];
    for (const [id, message] of cases) {
      const err = apiError(() => bodyResourceId(id, 'identity', UAMI));
      assert.equal(err.status, 400, String(id));
      assert.equal(err.code, 'LinkedInvalidPropertyId', String(id));
      assert.match(err.message, message, String(id));
    }
  });
});

void describe('management resource ids: Microsoft.Authorization paths', () => {
  void it('splits at the last Microsoft.Authorization provider segment, in any case; the scope is "/" when the path starts there', () => {
    assert.deepEqual(splitAuthorizationPath('/providers/Microsoft.Authorization/roleDefinitions/abc'), { scope: '/', rest: ['roleDefinitions', 'abc'] });
    assert.deepEqual(splitAuthorizationPath(`/subscriptions/${SUB}/providers/MICROSOFT.AUTHORIZATION/roleAssignments/x/`), {
      scope: `/subscriptions/${SUB}`,
      rest: ['roleAssignments', 'x'],
    });
    assert.deepEqual(
      splitAuthorizationPath(`/subscriptions/${SUB}/providers/Microsoft.Authorization/locks/l/providers/microsoft.authorization/roleAssignments/y`),
      { scope: `/subscriptions/${SUB}/providers/Microsoft.Authorization/locks/l`, rest: ['roleAssignments', 'y'] },
      'the last one',
    );
    assert.deepEqual(splitAuthorizationPath('/providers/Microsoft.Authorization/'), { scope: '/', rest: [''] });
  });

  void it('is undefined for a path with no Microsoft.Authorization provider segment', () => {
    assert.equal(splitAuthorizationPath(`/subscriptions/${SUB}/resourceGroups/rg`), undefined);
    assert.equal(splitAuthorizationPath('/providers/Microsoft.AuthorizationX/roleDefinitions'), undefined);
    assert.equal(splitAuthorizationPath('/providers/Microsoft.Authorization'), undefined, 'no trailing segment: not the marker');
  });
});
