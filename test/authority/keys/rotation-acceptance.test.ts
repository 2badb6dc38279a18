import { it } from 'node:test';
import assert from 'node:assert/strict';
import { DAY, FakeClock, HOUR, MINUTE } from '../../../src/shared/clock.js';
import { createTokenVerifier, localJwks } from '../../../src/shared/token-verifier.js';
import { AUDIENCE, ISSUER, expectCode, jwksKids, lazilyCachedJwks, setup, signWith } from '../../support/signing-keys.js';

/** The KeyRotator over months of automatic rotations (the fast unit tests are in key-rotation.test.ts). */
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
