/** Delegated scopes (src/authority/token/user-scope.ts): Entra's v1 `resource` and v2 scope lists. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { delegatedScope } from '../../../src/authority/token/user-scope.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof OAuthError ? `${err.error}/${String(err.aadsts)}` : 'other';
  }
  return 'none';
};

void describe('delegated scopes', () => {
  it("v2: the resource is everything before the last '/', `.default` means user_impersonation, OIDC scopes ask for tokens", () => {
    assert.deepEqual(delegatedScope({ scope: 'https://management.core.windows.net//.default offline_access openid profile' }, 'v2'), {
      resource: 'https://management.core.windows.net/',
      scp: 'user_impersonation',
      granted: 'https://management.core.windows.net//.default offline_access openid profile',
      openid: true,
      offlineAccess: true,
    });
    const named = delegatedScope({ scope: 'https://graph.microsoft.com/User.Read https://graph.microsoft.com/Mail.Read' }, 'v2');
    assert.equal(named.resource, 'https://graph.microsoft.com');
    assert.equal(named.scp, 'User.Read Mail.Read');
    assert.equal(named.openid, false);
    assert.equal(named.offlineAccess, false);
    assert.equal(delegatedScope({ scope: 'openid' }, 'v2').resource, 'https://graph.microsoft.com');
  });

  it('v1: the resource parameter, and always a refresh token', () => {
    const v1 = delegatedScope({ resource: 'https://vault.azure.net', scope: 'openid' }, 'v1');
    assert.equal(v1.resource, 'https://vault.azure.net');
    assert.equal(v1.openid, true);
    assert.equal(v1.offlineAccess, true);
    assert.equal(
      code(() => delegatedScope({}, 'v1')),
      'invalid_request/900144',
    );
  });

  it('refuses two resources, a scope without a permission, control characters and non-URI resources', () => {
    assert.equal(
      code(() => delegatedScope({ scope: 'https://a.example/.default https://b.example/.default' }, 'v2')),
      'invalid_scope/70011',
    );
    assert.equal(
      code(() => delegatedScope({ scope: 'https://a.example/' }, 'v2')),
      'invalid_scope/70011',
    );
    assert.equal(
      code(() => delegatedScope({ scope: 'User.Read' }, 'v2')),
      'invalid_scope/70011',
    );
    assert.equal(
      code(() => delegatedScope({ scope: 'https://a.example/x\u0000' }, 'v2')),
      'invalid_scope/70011',
    );
    assert.equal(
      code(() => delegatedScope({ scope: 'ftp://a.example/.default' }, 'v2')),
      'invalid_resource/500011',
    );
  });
});
