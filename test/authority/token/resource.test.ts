import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { requestedResource, validateResource } from '../../../src/authority/token/resource.js';
import { displayResource, isResourceSyntax, MAX_RESOURCE_LENGTH } from '../../../src/shared/resource.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';

/** What the token endpoint makes of a form: the resource, or the OAuth error code and description. */
function outcome(params: Record<string, string>, endpoint: 'v1' | 'v2'): string | { error: string; description: string } {
  try {
    return requestedResource(params, endpoint);
  } catch (err) {
    assert.ok(err instanceof OAuthError, String(err));
    return { error: err.error, description: err.description };
  }
}

const GUID = '1950a258-227b-4e31-a9cf-717495945fc2';

describe('the resource a token request asks for (store-less)', () => {
  it('v1 takes `resource` exactly as the token will carry it; v2 one scope ending in /.default, less the suffix', () => {
    const ok: Array<[Record<string, string>, 'v1' | 'v2', string]> = [
      [{ resource: 'https://vault.azure.net' }, 'v1', 'https://vault.azure.net'],
      [{ resource: 'https://management.core.windows.net/' }, 'v1', 'https://management.core.windows.net/'],
      [{ resource: `api://${GUID}` }, 'v1', `api://${GUID}`],
      [{ resource: GUID }, 'v1', GUID],
      [{ scope: 'https://vault.azure.net/.default' }, 'v2', 'https://vault.azure.net'],
      [{ scope: 'https://management.core.windows.net//.default' }, 'v2', 'https://management.core.windows.net/'],
      [{ scope: `  ${GUID}/.default ` }, 'v2', GUID],
      [{ scope: `api://${GUID}/.default` }, 'v2', `api://${GUID}`],
    ];
    for (const [params, endpoint, resource] of ok) assert.equal(outcome(params, endpoint), resource, JSON.stringify(params));
  });

  it('refuses, with the OAuth error Entra gives, every other form', () => {
    const refused: Array<[Record<string, string>, 'v1' | 'v2', string]> = [
      [{}, 'v1', 'invalid_request'],
      [{ resource: '  ' }, 'v1', 'invalid_request'],
      [{ scope: 'https://vault.azure.net/.default' }, 'v1', 'invalid_request'],
      [{ resource: 'https://vault.azure.net' }, 'v2', 'invalid_request'],
      [{ resource: 'http://vault.azure.net' }, 'v1', 'invalid_resource'],
      [{ resource: 'https://user:pw@vault.azure.net' }, 'v1', 'invalid_resource'],
      [{ resource: 'https://user@vault.azure.net' }, 'v1', 'invalid_resource'],
      [{ resource: 'https://vault.azure.net/a b' }, 'v1', 'invalid_resource'],
      [{ resource: 'vault' }, 'v1', 'invalid_resource'],
      [{ resource: 'file:///etc/passwd' }, 'v1', 'invalid_resource'],
      [{ resource: `https://x/${'a'.repeat(MAX_RESOURCE_LENGTH)}` }, 'v1', 'invalid_resource'],
      [{ resource: 'https://vault.azure.net\u0000' }, 'v1', 'invalid_resource'],
      [{ resource: 'https://vault.azure.net\u0085' }, 'v1', 'invalid_resource'],
      [{ scope: 'https://vault.azure.net' }, 'v2', 'invalid_scope'],
      [{ scope: '/.default' }, 'v2', 'invalid_scope'],
      [{ scope: 'https://vault.azure.net/.default https://graph.microsoft.com/.default' }, 'v2', 'invalid_scope'],
      [{ scope: 'https://vault.azure.net/.default\u0007' }, 'v2', 'invalid_scope'],
      [{ scope: 'https://vault.azure.net/\u0001/.default' }, 'v2', 'invalid_scope'],
      [{ scope: 'http://vault.azure.net/.default' }, 'v2', 'invalid_resource'],
      [{ scope: 'vault/.default' }, 'v2', 'invalid_resource'],
    ];
    for (const [params, endpoint, error] of refused) {
      const got = outcome(params, endpoint);
      assert.equal(typeof got === 'string' ? got : got.error, error, `${endpoint} ${JSON.stringify(params)}`);
    }
  });

  it('names the refused value in the description, control characters escaped and cut when long', () => {
    const scope = outcome({ scope: 'https://x/\u0001/.default' }, 'v2');
    assert.ok(typeof scope !== 'string');
    assert.match(scope.description, /^AADSTS1002012: The provided value for scope https:\/\/x\/\\u0001\/\.default is not valid\./);
    const long = `https://x/${'a'.repeat(MAX_RESOURCE_LENGTH)}`;
    const resource = outcome({ resource: long }, 'v1');
    assert.ok(typeof resource !== 'string');
    assert.ok(resource.description.includes(`${long.slice(0, 64)}…`), 'an over-long resource is shown by its first 64 characters');
    assert.ok(!resource.description.includes(long.slice(0, 65)));
    const short = outcome({ resource: 'http://x\u0002' }, 'v1');
    assert.ok(typeof short !== 'string');
    assert.ok(short.description.includes('http://x\\u0002 '), 'a resource within the bound is shown whole');
    const medium = `http://x/${'m'.repeat(100)}`;
    const mid = outcome({ resource: medium }, 'v1');
    assert.ok(typeof mid !== 'string');
    assert.ok(mid.description.includes(`${medium} `), 'a refused resource within the length bound is shown whole, even past 64 characters');
  });

  it('invariant: whatever is accepted has the resource syntax, and is returned unchanged (v1) or less /.default (v2)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.webUrl(), fc.uuid(), fc.string({ maxLength: 40 }), fc.constant('https://management.core.windows.net/')), (value) => {
        let v1: string | undefined;
        try {
          v1 = validateResource(value);
        } catch {
          v1 = undefined;
        }
        if (v1 === undefined) assert.equal(isResourceSyntax(value), false);
        else assert.ok(v1 === value && isResourceSyntax(value));
        const v2 = outcome({ scope: `${value}/.default` }, 'v2');
        if (typeof v2 === 'string') assert.equal(v2, value);
      }),
    );
  });
});

describe('resource syntax (shared with the agent)', () => {
  it('accepts GUIDs and https:// or api:// URIs without user info, at most 2048 characters, nothing else', () => {
    assert.equal(isResourceSyntax(GUID), true);
    assert.equal(isResourceSyntax(GUID.toUpperCase()), true);
    assert.equal(isResourceSyntax('https://a'), true);
    assert.equal(isResourceSyntax(`https://a/${'b'.repeat(MAX_RESOURCE_LENGTH - 'https://a/'.length)}`), true, 'exactly the bound');
    assert.equal(isResourceSyntax(`https://a/${'b'.repeat(MAX_RESOURCE_LENGTH - 'https://a/'.length + 1)}`), false, 'one over');
    for (const bad of [
      '',
      ' https://a',
      'https://a\t',
      'https://a\u007f',
      'https://a\u009f',
      'https://a\u001f',
      'ftp://a',
      'https://:pw@a',
      'https://u@a',
      'not a url',
      `${GUID}x`,
    ]) {
      assert.equal(isResourceSyntax(bad), false, JSON.stringify(bad));
    }
  });

  it('displayResource escapes every control character and marks a cut with …', () => {
    assert.equal(displayResource('a\u0000b\u007fc\u009fd\u001fe'), 'a\\u0000b\\u007fc\\u009fd\\u001fe');
    assert.equal(displayResource('abcdef', 3), 'abc…');
    assert.equal(displayResource('abc', 3), 'abc');
    assert.equal(displayResource('x'.repeat(64)), 'x'.repeat(64), 'the default bound is 64');
    assert.equal(displayResource('x'.repeat(65)), `${'x'.repeat(64)}…`);
  });
});
