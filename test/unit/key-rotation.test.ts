import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { DAY, FakeClock, HOUR, MINUTE } from '../../src/shared/clock.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { generateSigningKey, decryptSigningKey, signingKeyAad } from '../../src/authority/keys/signing-key.js';
import { KeyRing } from '../../src/authority/keys/key-ring.js';
import { resolveRotationPolicy, retiredKeyRetentionMs } from '../../src/authority/keys/rotation.js';
import { createTokenVerifier, localJwks } from '../../src/shared/token-verifier.js';
import { AUDIENCE, ISSUER, MemorySigningKeyStore, expectCode, jwksKids, pooledKeyPair, setup, signWith } from '../helpers/signing-keys.js';

// The rotation over months (every token verifies until its exp, pre-publication, retention) is in
// key-rotation-acceptance.test.ts: it takes longer than everything here together, and this file is the one
// mutation testing (the `keys` group) re-runs for each mutant.

void describe('signing keys', () => {
  void it('are RS256 with kid == x5t == base64url(SHA-1(cert)) and an encrypted private key bound to the kid', async () => {
    const clock = new FakeClock();
    const masterKey = MasterKey.random();
    const record = await generateSigningKey({ masterKey, clock, state: 'next' });
    const jwk = record.publicJwk;
    const der = Buffer.from((jwk.x5c as string[])[0]!, 'base64');
    const sha1 = createHash('sha1').update(der).digest('base64url');
    assert.equal(record.kid, sha1);
    assert.equal(jwk.kid, sha1);
    assert.equal(jwk.x5t, sha1);
    assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use', 'x5c', 'x5t']);
    assert.equal(jwk.alg, 'RS256');
    assert.equal(jwk.use, 'sig');
    assert.equal(record.state, 'next');
    assert.equal(record.activatedAt, null);
    assert.equal(record.createdAt, clock.now());

    const cert = new X509Certificate(der);
    assert.equal(cert.subject, 'CN=openmsi token signing');
    assert.equal(cert.publicKey.export({ format: 'jwk' }).n, jwk.n);

    const privateKey = decryptSigningKey(record, masterKey);
    assert.equal(privateKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.throws(() => masterKey.decrypt(record.privateKeyEnc, signingKeyAad('another-kid')));
    assert.throws(() => decryptSigningKey(record, MasterKey.random()));
    assert.ok(!JSON.stringify(record).includes('PRIVATE'));

    const current = await generateSigningKey({ masterKey, clock, state: 'current', keyPair: await pooledKeyPair() });
    assert.equal(current.activatedAt, clock.now());
  });
});

void describe('rotation policy', () => {
  void it('defaults and retention', () => {
    const policy = resolveRotationPolicy();
    assert.equal(policy.rotationPeriodMs, 30 * DAY);
    assert.equal(policy.prepublishMs, 48 * HOUR);
    assert.equal(retiredKeyRetentionMs(policy), 24 * HOUR + 24 * HOUR + 5 * MINUTE);
  });

  void it('rejects unsafe or nonsensical policies with TypeError', () => {
    assert.throws(() => resolveRotationPolicy({ prepublishMs: HOUR, verifierCacheMs: 2 * HOUR }), TypeError);
    assert.throws(() => resolveRotationPolicy({ rotationPeriodMs: HOUR }), TypeError);
    assert.throws(() => resolveRotationPolicy({ maxTokenLifetimeMs: 0 }), TypeError);
    assert.throws(() => resolveRotationPolicy({ clockSkewMs: -1 }), TypeError);
    assert.throws(() => resolveRotationPolicy({ rotationPeriodMs: Number.NaN }), TypeError);
    assert.ok(resolveRotationPolicy({ clockSkewMs: 0 }));
  });
});

void describe('KeyRing', () => {
  void it('throws on current() until keys exist, and never publishes revoked or expired keys', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store } = await setup(clock);
    assert.throws(() => keyRing.current(), /No current signing key/);
    assert.deepEqual(keyRing.jwks(), { keys: [] });
    await rotator.ensureKeys();
    const current = keyRing.current();
    assert.equal(current.alg, 'RS256');
    assert.equal(current.kid, current.x5t);
    assert.equal(store.byState('current').length, 1);
    assert.equal(store.byState('next').length, 1);
    const kids = [...jwksKids(keyRing)];
    assert.equal(kids.length, 2);
    assert.equal(kids[0], current.kid, 'current key is listed first');
    assert.ok(keyRing.publicKey(current.kid));
    assert.equal(keyRing.publicKey('nope'), undefined);
    for (const k of keyRing.jwks().keys) assert.equal(k.d, undefined);

    // Rotate: the old current is retired and published until its retention ends.
    await rotator.rotateNow();
    const retired = store.byState('retired')[0]!;
    assert.equal(retired.kid, current.kid);
    assert.ok(jwksKids(keyRing).has(retired.kid), 'a retired key is published during its retention');
    // Rotate again, revoking: the key it replaces is revoked and disappears at once.
    const revokedKid = keyRing.current().kid;
    await rotator.rotateNow({ revokePrevious: true });
    assert.equal(store.byState('revoked')[0]?.kid, revokedKid);
    assert.equal(jwksKids(keyRing).has(revokedKid), false, 'a revoked key is never published');
    assert.equal(keyRing.publicKey(revokedKid), undefined);
    // Past its publishUntil, the retired key leaves the JWKS even before anything purges or refreshes.
    clock.set(retired.publishUntil! + 1);
    assert.equal(store.rows.has(retired.kid), true, 'still in the store');
    assert.equal(jwksKids(keyRing).has(retired.kid), false, 'an expired retired key is not published');
    assert.equal(keyRing.publicKey(retired.kid), undefined);
    await keyRing.refresh();
    assert.equal(jwksKids(keyRing).has(retired.kid), false);
    assert.ok(jwksKids(keyRing).has(keyRing.current().kid));
  });

  void it('auto-refresh picks up a rotation made by another replica', async () => {
    const clock = new FakeClock();
    const a = await setup(clock);
    await a.rotator.ensureKeys();
    const ringB = await KeyRing.load({ store: a.store, masterKey: a.masterKey, clock });
    const before = ringB.current().kid;
    ringB.startAutoRefresh(5);
    try {
      await a.rotator.rotateNow();
      const deadline = Date.now() + 2000;
      while (ringB.current().kid === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(ringB.current().kid, a.keyRing.current().kid);
    } finally {
      ringB.stop();
    }
  });
});

void describe('KeyRotator', () => {
  void it('rotateNow({ revokePrevious: true }) drops the old key at once; tokens from the new key verify', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store, events } = await setup(clock);
    await rotator.ensureKeys();
    const verifier = createTokenVerifier({ jwks: localJwks(() => keyRing.jwks()), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    const oldKid = keyRing.current().kid;
    const nextKid = store.byState('next')[0]!.kid;
    const old = await signWith(keyRing, clock, HOUR);
    await verifier.verify(old.token);

    clock.advance(MINUTE);
    const result = await rotator.rotateNow({ revokePrevious: true });
    assert.deepEqual(result, { current: nextKid, previous: oldKid, revoked: true });
    await expectCode(verifier.verify(old.token), 'unknown_key');
    assert.ok(!jwksKids(keyRing).has(oldKid));
    assert.equal(keyRing.publicKey(oldKid), undefined);
    const fresh = await signWith(keyRing, clock, HOUR);
    assert.equal(fresh.kid, nextKid);
    await verifier.verify(fresh.token);
    assert.equal(store.byState('next').length, 1, 'a new next key is pre-published');
    assert.ok(events.some((e) => e.action === 'keys.revoked' && e.kid === oldKid));

    clock.advance(1);
    await rotator.tick();
    assert.ok(!store.rows.has(oldKid), 'revoked key purged');
    assert.ok(events.some((e) => e.action === 'keys.purged' && e.kid === oldKid));
  });

  void it('rotateNow() without revoke retires the old key with normal retention', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store } = await setup(clock);
    await rotator.ensureKeys();
    const verifier = createTokenVerifier({ jwks: localJwks(() => keyRing.jwks()), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    const old = await signWith(keyRing, clock, 24 * HOUR);
    const result = await rotator.rotateNow();
    assert.equal(result.revoked, false);
    assert.equal(store.rows.get(result.previous!)!.state, 'retired');
    assert.equal(store.rows.get(result.previous!)!.publishUntil, clock.now() + rotator.retentionMs);
    clock.advance(24 * HOUR - MINUTE);
    await rotator.tick();
    await verifier.verify(old.token);
    clock.advance(rotator.retentionMs);
    await rotator.tick();
    assert.ok(!store.rows.has(result.previous!));
  });

  void it('a freshly created next key waits prepublishMs before it signs, even when the current key is overdue', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store } = await setup(clock);
    await rotator.ensureKeys();
    const first = keyRing.current().kid;
    for (const r of store.byState('next')) store.rows.delete(r.kid); // e.g. lost or deleted by an operator
    clock.advance(31 * DAY);
    const created = await rotator.tick();
    assert.equal(created.promoted, undefined);
    assert.equal(created.created.length, 1);
    assert.ok(jwksKids(keyRing).has(created.created[0]!), 'published immediately');
    clock.advance(rotator.policy.prepublishMs - MINUTE);
    assert.equal((await rotator.tick()).promoted, undefined);
    assert.equal(keyRing.current().kid, first);
    clock.advance(MINUTE);
    assert.equal((await rotator.tick()).promoted, created.created[0]);
    assert.equal(keyRing.current().kid, created.created[0]);
  });

  void it('two rotators sharing one store, ticking at the same fake time, promote exactly once', async () => {
    const clock = new FakeClock();
    const store = new MemorySigningKeyStore();
    const masterKey = MasterKey.random();
    const a = await setup(clock, store, masterKey);
    const b = await setup(clock, store, masterKey);
    await a.rotator.ensureKeys();
    await b.rotator.ensureKeys();
    assert.equal(store.rows.size, 2);

    clock.advance(31 * DAY);
    const [ra, rb] = await Promise.all([a.rotator.tick(), b.rotator.tick()]);
    const promotions = [ra.promoted, rb.promoted].filter((p) => p !== undefined);
    assert.equal(promotions.length, 1);
    const rotated = [...a.events, ...b.events].filter((e) => e.action === 'keys.rotated');
    assert.equal(rotated.length, 1);
    assert.equal(store.byState('current').length, 1);
    assert.equal(store.byState('retired').length, 1);
    assert.equal(store.byState('next').length, 1);
    await b.keyRing.refresh();
    assert.equal(a.keyRing.current().kid, promotions[0]);
    assert.equal(b.keyRing.current().kid, promotions[0]);

    // And again a moment later: nothing more to do.
    const [again1, again2] = await Promise.all([a.rotator.tick(), b.rotator.tick()]);
    assert.equal(again1.promoted ?? again2.promoted, undefined);
  });

  void it('repairs two current keys left by replicas initialising an empty store at once', async () => {
    const clock = new FakeClock();
    const store = new MemorySigningKeyStore();
    const masterKey = MasterKey.random();
    const a = await setup(clock, store, masterKey);
    const b = await setup(clock, store, masterKey);
    await Promise.all([a.rotator.ensureKeys(), b.rotator.ensureKeys()]);
    clock.advance(MINUTE);
    await a.rotator.tick();
    assert.equal(store.byState('current').length, 1);
    assert.ok(store.byState('next').length >= 1);
  });

  void it('start()/stop() run ticks on an unref’d timer', async () => {
    const clock = new FakeClock();
    const { rotator, store } = await setup(clock);
    await rotator.ensureKeys();
    const before = store.transitions;
    clock.advance(31 * DAY);
    rotator.start(5);
    try {
      const deadline = Date.now() + 3000;
      while (store.transitions === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    } finally {
      rotator.stop();
    }
    assert.ok(store.transitions > before, 'a background tick rotated the keys');
    assert.throws(() => rotator.start(0), TypeError);
  });
});
