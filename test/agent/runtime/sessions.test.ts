import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SessionRegistry, TooManySessionsError } from '../../../src/agent/sessions.js';

describe('openmsi run sessions', () => {
  it('a secret finds its own session only, until the session is revoked', () => {
    const registry = new SessionRegistry();
    const a = registry.create(['app-id']);
    const b = registry.create(['[system]', 'other']);
    assert.match(a.secret, /^[A-Za-z0-9_-]{43,}$/, 'at least 256 bits, URL-safe');
    assert.notEqual(a.secret, b.secret);
    assert.deepEqual(registry.bySecret(a.secret), { id: a.id, identities: ['app-id'] });
    assert.deepEqual(registry.byId(b.id), { id: b.id, identities: ['[system]', 'other'] });
    assert.equal(registry.bySecret(`${a.secret}x`), undefined);
    assert.equal(registry.bySecret(a.secret.slice(0, -1)), undefined);
    assert.equal(registry.revoke(a.id), true);
    assert.equal(registry.bySecret(a.secret), undefined);
    assert.equal(registry.byId(a.id), undefined);
    assert.equal(registry.revoke(a.id), false);
    assert.equal(registry.size, 1);
  });

  it('an empty or non-string secret matches nothing and never throws', () => {
    const registry = new SessionRegistry();
    registry.create(['app-id']);
    for (const secret of ['', undefined, null, 42, ['x']]) assert.equal(registry.bySecret(secret as unknown as string), undefined, String(secret));
  });

  it('refuses more live sessions than its bound, with the bound in the message', () => {
    const registry = new SessionRegistry({ maxSessions: 2 });
    registry.create(['a']);
    const second = registry.create(['b']);
    assert.throws(
      () => registry.create(['c']),
      (err: unknown) => err instanceof TooManySessionsError && /2 sessions are live/.test(err.message),
    );
    registry.revoke(second.id);
    assert.ok(registry.create(['c']).id);
  });
});
