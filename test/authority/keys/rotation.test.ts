import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { DAY, FakeClock, HOUR, MINUTE } from '../../../src/shared/clock.js';
import { MasterKey } from '../../../src/pki/master-key.js';
import { generateSigningKey, decryptSigningKey, signingKeyAad } from '../../../src/authority/keys/signing-key.js';
import { KeyRing } from '../../../src/authority/keys/key-ring.js';
import { KeyRotator, resolveRotationPolicy, retiredKeyRetentionMs } from '../../../src/authority/keys/rotation.js';
import { SIGNING_KEY_CHANNEL, type SigningKeyRecord, type SigningKeyState, type SigningKeyStore, type StoreNotifications } from '../../../src/store/types.js';
import { createTokenVerifier, localJwks } from '../../../src/shared/token-verifier.js';
import { AUDIENCE, ISSUER, MemorySigningKeyStore, expectCode, jwksKids, pooledKeyPair, setup, signWith } from '../../support/signing-keys.js';

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
    assert.deepEqual(
      events.filter((e) => e.action === 'keys.purged').map((e) => [e.kid, e.detail.state]),
      [[oldKid, 'revoked']],
      'only the purged key is audited as purged',
    );
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
    const currents = store.byState('current').length;
    clock.advance(MINUTE);
    await a.rotator.tick();
    assert.equal(store.byState('current').length, 1);
    const superseded = a.events.filter((e) => e.action === 'keys.rotated' && e.detail.reason === 'superseded');
    assert.equal(superseded.length, currents - 1, 'each retired extra current is audited');
    for (const e of superseded) assert.deepEqual(e.detail, { retired: true, reason: 'superseded', publishUntil: clock.now() + a.rotator.retentionMs });
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

/** A store whose transitions can be interleaved with another replica's, and whose list() can be held back. */
class RacingStore extends MemorySigningKeyStore {
  beforeTransition: ((kid: string, expected: SigningKeyState, changes: Partial<SigningKeyRecord>) => void) | undefined;
  hold: Promise<void> | undefined;
  lists = 0;
  failList = false;

  override async list(): Promise<SigningKeyRecord[]> {
    this.lists++;
    if (this.failList) throw new Error('store down');
    const hold = this.hold;
    const rows = await super.list();
    if (hold !== undefined) await hold;
    return rows;
  }

  override async transition(kid: string, expectedState: SigningKeyState, changes: Partial<SigningKeyRecord>): Promise<boolean> {
    this.beforeTransition?.(kid, expectedState, changes);
    return super.transition(kid, expectedState, changes);
  }
}

/** Notices as the store publishes them on SIGNING_KEY_CHANNEL, delivered by hand. */
function manualNotices() {
  const listeners: { channel: string; listener: (payload: string) => void }[] = [];
  let unsubscribed = 0;
  const notifications: StoreNotifications = {
    subscribe(channel, listener) {
      listeners.push({ channel, listener });
      return () => void unsubscribed++;
    },
    ready: () => Promise.resolve(),
  };
  return { notifications, listeners, notify: () => listeners.forEach((l) => l.listener('kid')), unsubscribed: () => unsubscribed };
}

void describe('KeyRing and KeyRotator: decisions pinned by mutation testing', () => {
  void it('invariant: isPublished and publicKey trust exactly the JWKS: current, next, retired until (not at) publishUntil, never revoked or unknown', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store } = await setup(clock);
    await rotator.ensureKeys();
    const firstKid = keyRing.current().kid;
    await rotator.rotateNow();
    const retired = store.rows.get(firstKid)!;
    const next = store.byState('next')[0]!.kid;
    for (const kid of [keyRing.current().kid, next, firstKid]) assert.equal(keyRing.isPublished(kid), true, kid);
    assert.equal(keyRing.isPublished('unknown-kid'), false);
    assert.equal(keyRing.isPublished(''), false);
    clock.set(retired.publishUntil! - 1);
    assert.equal(keyRing.isPublished(firstKid), true);
    assert.ok(keyRing.publicKey(firstKid), 'a millisecond before publishUntil');
    assert.ok(jwksKids(keyRing).has(firstKid), 'in the JWKS a millisecond before publishUntil');
    clock.set(retired.publishUntil!);
    assert.equal(keyRing.isPublished(firstKid), false, 'not at its publishUntil instant');
    assert.equal(keyRing.publicKey(firstKid), undefined);
    assert.equal(jwksKids(keyRing).has(firstKid), false);
    assert.equal(keyRing.isPublished(keyRing.current().kid), true, 'the current key has no publishUntil');
    const revoked = keyRing.current().kid;
    await rotator.rotateNow({ revokePrevious: true });
    assert.equal(keyRing.isPublished(revoked), false);
    assert.throws(() => keyRing.publicKey(42 as unknown as string), TypeError);
    // The JWKS order: the signing key, then the pre-published one.
    const states = keyRing.jwks().keys.map((k) => store.rows.get(k.kid as string)!.state);
    assert.deepEqual(states, ['current', 'next']);
  });

  void it('invariant: the JWKS never carries private key members whatever a store row holds, and what jwks() returns cannot change it', async () => {
    const clock = new FakeClock();
    const masterKey = MasterKey.random();
    const store = new MemorySigningKeyStore();
    const record = await generateSigningKey({ masterKey, clock, state: 'current', keyPair: await pooledKeyPair() });
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']) record.publicJwk[member] = 'secret';
    delete record.publicJwk.x5t;
    await store.insert(record);
    const keyRing = await KeyRing.load({ store, masterKey, clock });
    const [jwk] = keyRing.jwks().keys;
    assert.deepEqual(Object.keys(jwk!).sort(), ['alg', 'e', 'kid', 'kty', 'n', 'use', 'x5c']);
    assert.deepEqual(jwk!.x5c, record.publicJwk.x5c, 'the certificate chain is published as stored');
    assert.ok(!JSON.stringify(keyRing.jwks()).includes('secret'), 'no private member');
    assert.throws(() => {
      (jwk as Record<string, unknown>).n = 'attacker';
    }, TypeError);
    assert.throws(() => (jwk!.x5c as string[]).push('attacker'), TypeError);
    assert.equal(keyRing.current().x5t, record.kid, 'x5t falls back to the kid');
  });

  void it('invariant: a change notice reloads the ring at once, so another replica’s revocation stops verifying without waiting for a poll', async () => {
    const clock = new FakeClock();
    const a = await setup(clock);
    await a.rotator.ensureKeys();
    const notices = manualNotices();
    const errors: unknown[] = [];
    const store = new RacingStore();
    for (const [kid, row] of a.store.rows) store.rows.set(kid, row);
    const ringB = await KeyRing.load({ store, masterKey: a.masterKey, clock, notifications: notices.notifications, onError: (e) => errors.push(e) });
    assert.deepEqual(
      notices.listeners.map((l) => l.channel),
      [SIGNING_KEY_CHANNEL],
    );
    const old = ringB.current().kid;
    const rotatorA = new KeyRotator({ store, masterKey: a.masterKey, clock, keyRing: a.keyRing, newKeyPair: pooledKeyPair });
    await rotatorA.rotateNow({ revokePrevious: true });
    assert.equal(ringB.isPublished(old), true, 'not yet heard');
    notices.notify();
    await ringB.settled();
    assert.equal(ringB.isPublished(old), false);
    assert.notEqual(ringB.current().kid, old);

    // Notices during a reload fold into exactly one more reload (the running one may have read too early).
    const before = store.lists;
    notices.notify();
    notices.notify();
    notices.notify();
    await ringB.settled();
    assert.equal(store.lists - before, 2);
    notices.notify();
    await ringB.settled();
    assert.equal(store.lists - before, 3, 'a later notice reloads again');

    // A failed reload goes to onError and keeps the last snapshot.
    store.failList = true;
    const current = ringB.current().kid;
    notices.notify();
    await ringB.settled();
    assert.equal(errors.length, 1);
    assert.equal(ringB.current().kid, current);
    store.failList = false;
    ringB.stop();
    assert.equal(notices.unsubscribed(), 1);
  });

  void it('invariant: a reload that read the store before a revocation and finishes last never brings the revoked key back', async () => {
    const clock = new FakeClock();
    const store = new RacingStore();
    const { keyRing, rotator } = await setup(clock, store);
    await rotator.ensureKeys();
    const old = keyRing.current().kid;
    let release!: () => void;
    store.hold = new Promise((resolve) => (release = resolve));
    const stale = keyRing.refresh();
    store.hold = undefined;
    await rotator.rotateNow({ revokePrevious: true });
    assert.equal(keyRing.isPublished(old), false);
    release();
    await stale;
    assert.equal(keyRing.isPublished(old), false);
    assert.notEqual(keyRing.current().kid, old);
  });

  void it('startAutoRefresh and load refuse what they cannot use', async () => {
    const clock = new FakeClock();
    const { keyRing, store, masterKey } = await setup(clock);
    for (const bad of [0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => keyRing.startAutoRefresh(bad), TypeError, String(bad));
    keyRing.startAutoRefresh(1);
    keyRing.stop();
    await assert.rejects(KeyRing.load({ store: {} as SigningKeyStore, masterKey, clock }), TypeError);
    await assert.rejects(KeyRing.load({ store, masterKey: {} as MasterKey, clock }), TypeError);
    await assert.rejects(KeyRing.load({ store, masterKey, clock: {} as FakeClock }), TypeError);
  });

  void it('a key signs for exactly rotationPeriodMs: not promoted a millisecond before, promoted at it', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store } = await setup(clock);
    await rotator.ensureKeys();
    const first = keyRing.current().kid;
    const next = store.byState('next')[0]!.kid;
    clock.advance(rotator.policy.rotationPeriodMs - 1);
    assert.equal((await rotator.tick()).promoted, undefined);
    assert.equal(keyRing.current().kid, first);
    clock.advance(1);
    const result = await rotator.tick();
    assert.equal(result.promoted, next);
    assert.equal(result.created.length, 1, 'a new next key');
    assert.equal(keyRing.current().kid, next);
    assert.equal(store.rows.get(first)!.state, 'retired');
    assert.equal(store.rows.get(first)!.publishUntil, clock.now() + rotator.retentionMs);
  });

  void it('invariant: rotateNow({ revokePrevious }) revokes the previous key even when another replica retired it first; a non-boolean is refused', async () => {
    const clock = new FakeClock();
    const store = new RacingStore();
    const { keyRing, rotator, events } = await setup(clock, store);
    await rotator.ensureKeys();
    const old = keyRing.current().kid;
    store.beforeTransition = (kid, expected) => {
      if (kid === old && expected === 'current') {
        // Another replica's tick retired it a moment before.
        Object.assign(store.rows.get(kid)!, { state: 'retired', retiredAt: clock.now(), publishUntil: clock.now() + DAY });
      }
    };
    const result = await rotator.rotateNow({ revokePrevious: true });
    store.beforeTransition = undefined;
    assert.equal(result.revoked, true);
    assert.equal(store.rows.get(old)!.state, 'revoked');
    assert.equal(keyRing.isPublished(old), false);
    assert.ok(
      events.some((e) => e.action === 'keys.revoked' && e.kid === old),
      'keys.revoked audited',
    );
    assert.throws(() => rotator.rotateNow({ revokePrevious: 'yes' as unknown as boolean }), TypeError);
    const retiredOnly = await rotator.rotateNow();
    assert.equal(retiredOnly.revoked, false);
    assert.equal(events.filter((e) => e.action === 'keys.revoked').length, 1, 'a plain rotation revokes nothing');
  });

  void it('a failing audit hook never undoes a rotation; its error goes to onError', async () => {
    const clock = new FakeClock();
    const store = new MemorySigningKeyStore();
    const masterKey = MasterKey.random();
    const keyRing = await KeyRing.load({ store, masterKey, clock });
    const errors: unknown[] = [];
    const rotator = new KeyRotator({
      store,
      masterKey,
      clock,
      keyRing,
      newKeyPair: pooledKeyPair,
      onEvent: () => Promise.reject(new Error('audit down')),
      onError: (e) => errors.push(e),
    });
    await rotator.ensureKeys();
    const old = keyRing.current().kid;
    const result = await rotator.rotateNow({ revokePrevious: true });
    assert.equal(result.revoked, true);
    assert.equal(keyRing.isPublished(old), false);
    assert.ok(errors.length >= 3, `onError got ${String(errors.length)} errors`);
    assert.throws(() => new KeyRotator({ store, masterKey, clock, keyRing, onEvent: 'x' as unknown as () => void }), TypeError);
  });

  void it('a tick establishes a signing key when there is none: it promotes a next key, or creates one', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store, events } = await setup(clock);
    const first = await rotator.tick();
    assert.equal(first.promoted, undefined);
    assert.equal(first.created.length, 2, 'a current key and a next key');
    assert.equal(keyRing.current().kid, first.created[0]);
    const current = store.byState('current')[0]!;
    store.rows.delete(current.kid); // e.g. deleted by an operator
    const next = store.byState('next')[0]!.kid;
    const second = await rotator.tick();
    assert.equal(second.promoted, next);
    assert.equal(keyRing.current().kid, next);
    assert.ok(
      events.some((e) => e.action === 'keys.rotated' && e.kid === next && e.detail.reason === 'initial'),
      'audited as an initial promotion',
    );
    assert.equal(store.byState('next').length, 1, 'and a new next key');
    const created = events.filter((e) => e.action === 'keys.created').map((e) => e.detail.state);
    assert.deepEqual(created, ['current', 'next', 'next']);
  });

  void it('rotateNow on an empty store creates the first key; start() takes 1 ms; a rotator without a key-pair source generates fresh pairs', async () => {
    const clock = new FakeClock();
    const { keyRing, rotator, store, masterKey } = await setup(clock);
    const result = await rotator.rotateNow({ revokePrevious: true });
    assert.deepEqual(result, { current: keyRing.current().kid, previous: null, revoked: false });
    assert.equal(store.byState('next').length, 1);
    rotator.start(1);
    rotator.stop();
    const fresh = new KeyRotator({ store, masterKey, clock, keyRing });
    const { current } = await fresh.rotateNow();
    assert.equal(keyRing.current().kid, current);
    assert.equal(store.byState('next').length, 1, 'a new next key, from a fresh pair');
  });

  void it('rotation policy boundaries: equal prepublish and cache, equal period and prepublish are fine; fractions and strings are not', () => {
    assert.ok(resolveRotationPolicy({ prepublishMs: 24 * HOUR, verifierCacheMs: 24 * HOUR }), 'prepublish = cache');
    assert.ok(resolveRotationPolicy({ rotationPeriodMs: 48 * HOUR, prepublishMs: 48 * HOUR }), 'period = prepublish');
    assert.ok(resolveRotationPolicy({ maxTokenLifetimeMs: 1 }), '1 ms');
    assert.throws(() => resolveRotationPolicy({ maxTokenLifetimeMs: 1.5 }), TypeError);
    assert.throws(() => resolveRotationPolicy({ maxTokenLifetimeMs: '5' as unknown as number }), TypeError);
    const policy = resolveRotationPolicy({ clockSkewMs: 0, verifierCacheMs: HOUR });
    assert.equal(policy.clockSkewMs, 0);
    assert.equal(policy.verifierCacheMs, HOUR);
    assert.ok(Object.isFrozen(policy), 'frozen');
  });
});
