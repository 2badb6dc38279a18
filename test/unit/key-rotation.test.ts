import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { DAY, FakeClock, HOUR, MINUTE, epochSeconds } from '../../src/shared/clock.js';
import type { Clock } from '../../src/shared/clock.js';
import type { SigningKeyRecord, SigningKeyState, SigningKeyStore } from '../../src/store/types.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { generateSigningKey, decryptSigningKey, signingKeyAad } from '../../src/authority/keys/signing-key.js';
import { KeyRing } from '../../src/authority/keys/key-ring.js';
import { KeyRotator, resolveRotationPolicy, retiredKeyRetentionMs } from '../../src/authority/keys/rotation.js';
import type { KeyEvent } from '../../src/authority/keys/rotation.js';
import { TokenVerificationError, createTokenVerifier, localJwks } from '../../src/shared/token-verifier.js';
import type { JwksDocument, JwksSource } from '../../src/shared/token-verifier.js';

const TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ISSUER = `https://sts.openmsi.test/${TID}/`;
const AUDIENCE = 'https://vault.azure.net';

/** Yields to the event loop so concurrent callers genuinely interleave, as with a real database. */
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A SigningKeyStore over a Map, honouring transition's compare-and-set and purge's rules. */
class MemorySigningKeyStore implements SigningKeyStore {
  readonly rows = new Map<string, SigningKeyRecord>();
  transitions = 0;

  async list(): Promise<SigningKeyRecord[]> {
    await yieldTurn();
    return [...this.rows.values()].map((r) => structuredClone(r));
  }

  async insert(key: SigningKeyRecord): Promise<void> {
    await yieldTurn();
    if (this.rows.has(key.kid)) throw new Error(`duplicate kid ${key.kid}`);
    this.rows.set(key.kid, structuredClone(key));
  }

  async transition(
    kid: string,
    expectedState: SigningKeyState,
    changes: Partial<Pick<SigningKeyRecord, 'state' | 'activatedAt' | 'retiredAt' | 'publishUntil' | 'revokedAt'>>,
  ): Promise<boolean> {
    await yieldTurn();
    const row = this.rows.get(kid);
    if (row === undefined || row.state !== expectedState) return false;
    Object.assign(row, changes);
    this.transitions++;
    return true;
  }

  async purge(before: number): Promise<number> {
    await yieldTurn();
    let n = 0;
    for (const [kid, r] of this.rows) {
      const gone =
        (r.state === 'revoked' && r.revokedAt !== null && r.revokedAt < before) ||
        (r.state === 'retired' && r.publishUntil !== null && r.publishUntil < before);
      if (gone) {
        this.rows.delete(kid);
        n++;
      }
    }
    return n;
  }

  byState(state: SigningKeyState): SigningKeyRecord[] {
    return [...this.rows.values()].filter((r) => r.state === state);
  }
}

async function setup(clock: FakeClock, store = new MemorySigningKeyStore(), masterKey = MasterKey.random()) {
  const events: KeyEvent[] = [];
  const keyRing = await KeyRing.load({ store, masterKey, clock });
  const rotator = new KeyRotator({ store, masterKey, clock, keyRing, onEvent: (e) => void events.push(e) });
  return { store, masterKey, keyRing, rotator, events };
}

async function signWith(keyRing: KeyRing, clock: Clock, lifetimeMs: number): Promise<{ token: string; kid: string; expMs: number }> {
  const key = keyRing.current();
  const now = epochSeconds(clock);
  const exp = now + Math.floor(lifetimeMs / 1000);
  const oid = randomUUID();
  const token = await new SignJWT({ aud: AUDIENCE, iss: ISSUER, oid, sub: oid, tid: TID, ver: '1.0', idtyp: 'app' })
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, x5t: key.x5t })
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(exp)
    .sign(key.privateKey);
  return { token, kid: key.kid, expMs: exp * 1000 };
}

/** A verifier-side JWKS cache that refetches only when its copy is `maxAgeMs` old and never on unknown kids: the worst case rotation must survive. */
function lazilyCachedJwks(getJwks: () => JwksDocument, clock: Clock, maxAgeMs: number): JwksSource {
  let snapshot: JwksDocument | undefined;
  let fetchedAt = -Infinity;
  const inner = localJwks(() => snapshot!);
  return {
    getKey(kid) {
      if (snapshot === undefined || clock.now() - fetchedAt >= maxAgeMs) {
        snapshot = structuredClone(getJwks());
        fetchedAt = clock.now();
      }
      return inner.getKey(kid);
    },
  };
}

function jwksKids(keyRing: KeyRing): Set<string> {
  return new Set(keyRing.jwks().keys.map((k) => k.kid as string));
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof TokenVerificationError && err.code === code);
}

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

    const current = await generateSigningKey({ masterKey, clock, state: 'current' });
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
  void it('ACCEPTANCE: over several automatic rotations every token verifies until its own exp, next keys are pre-published, retired keys leave after retention', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const { keyRing, rotator, store, events } = await setup(clock);
    await rotator.ensureKeys();
    const { maxTokenLifetimeMs, prepublishMs, verifierCacheMs } = rotator.policy;

    const fresh = createTokenVerifier({ jwks: localJwks(() => keyRing.jwks()), issuers: [ISSUER], audiences: [AUDIENCE], clock });
    // A verifier that caches the JWKS for the longest allowed time and never refetches on unknown kids.
    const cached = createTokenVerifier({
      jwks: lazilyCachedJwks(() => keyRing.jwks(), clock, verifierCacheMs),
      issuers: [ISSUER],
      audiences: [AUDIENCE],
      clock,
    });

    const initialKid = keyRing.current().kid;
    const firstPublished = new Map<string, number>();
    const firstSigned = new Map<string, number>();
    const lastSigned = new Map<string, number>();
    const observe = (): void => {
      for (const kid of jwksKids(keyRing)) if (!firstPublished.has(kid)) firstPublished.set(kid, clock.now());
    };
    observe();

    let outstanding: { token: string; kid: string; expMs: number }[] = [];
    let verifiedCount = 0;
    let expiredChecked = 0;
    // An odd step so signing and checking land at ever-different offsets from each rotation.
    const STEP = 5 * HOUR + 17 * MINUTE;
    const END = clock.now() + 130 * DAY;
    let steps = 0;
    while (clock.now() < END && steps++ < 1000) {
      clock.advance(STEP);

      // Sign with whatever key is current *before* housekeeping, so a token can be signed by a key in
      // the very instant before it is retired. Lifetime is the maximum the policy allows.
      const signed = await signWith(keyRing, clock, maxTokenLifetimeMs);
      outstanding.push(signed);
      if (!firstSigned.has(signed.kid)) firstSigned.set(signed.kid, clock.now());
      lastSigned.set(signed.kid, clock.now());

      await rotator.tick();
      observe();

      const stillValid: typeof outstanding = [];
      for (const t of outstanding) {
        if (clock.now() < t.expMs) {
          await fresh.verify(t.token);
          await cached.verify(t.token);
          verifiedCount++;
          stillValid.push(t);
        } else if (clock.now() >= t.expMs + 61_000) {
          await expectCode(fresh.verify(t.token), 'expired');
          expiredChecked++;
        } else {
          stillValid.push(t);
        }
      }
      outstanding = stillValid;

      // Retired keys leave the JWKS when their retention ends, and the store purges them.
      for (const r of store.byState('retired')) {
        assert.ok(r.publishUntil !== null && r.publishUntil >= clock.now(), 'expired retired keys are purged by tick');
        assert.ok(jwksKids(keyRing).has(r.kid) === r.publishUntil > clock.now());
      }
    }

    const rotations = events.filter((e) => e.action === 'keys.rotated' && e.detail.manual === false);
    assert.ok(rotations.length >= 4, `expected ≥ 4 automatic rotations, saw ${rotations.length}`);
    assert.ok(verifiedCount > 400);
    assert.ok(expiredChecked > 300);

    // Every key after the first was in the JWKS at least prepublishMs before it signed anything.
    assert.ok(firstSigned.size >= 5);
    for (const [kid, signedAt] of firstSigned) {
      if (kid === initialKid) continue;
      const publishedAt = firstPublished.get(kid);
      assert.ok(publishedAt !== undefined, 'a signing key was never published');
      assert.ok(signedAt - publishedAt >= prepublishMs, `kid ${kid} signed ${(signedAt - publishedAt) / HOUR} h after publication`);
    }

    // Retired keys were purged and their retention covered every token they signed.
    const purged = events.filter((e) => e.action === 'keys.purged').map((e) => e.kid);
    assert.ok(purged.length >= 3, `expected purges, saw ${purged.length}`);
    for (const kid of purged) {
      assert.ok(!store.rows.has(kid));
      assert.ok(!jwksKids(keyRing).has(kid));
      const rotatedAway = events.find((e) => e.action === 'keys.rotated' && e.detail.previous === kid)!;
      const publishUntil = rotatedAway.detail.previousPublishUntil as number;
      assert.ok(publishUntil - lastSigned.get(kid)! >= maxTokenLifetimeMs + verifierCacheMs);
    }
    // The JWKS stays small: current + next + retired keys still in retention.
    assert.ok(keyRing.jwks().keys.length <= 3);
  });

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
