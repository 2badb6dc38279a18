/**
 * Signing keys across two replicas on one PostgreSQL database: exactly one rotates at a time (the advisory
 * lock), and every replica publishes the same JWKS within the bound docs/keys.md states (1 s; a change notice
 * and one `list()` query, measured here).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DAY, FakeClock } from '../../../src/shared/clock.js';
import { MasterKey } from '../../../src/pki/master-key.js';
import { KeyRing } from '../../../src/authority/keys/key-ring.js';
import { KeyRotator, ROTATION_LOCK } from '../../../src/authority/keys/rotation.js';
import { openStore } from '../../../src/store/index.js';
import type { Store } from '../../../src/store/types.js';
import { createTestDatabase, type TestDatabase } from '../../support/pg-database.js';
import { pooledKeyPair } from '../../support/signing-keys.js';
import { until } from '../../support/poll.js';

const adminUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];

/** The JWKS bound docs/keys.md and docs/operations.md state for a rotation made at another replica. */
const JWKS_BOUND_MS = 1000;

void describe('signing keys on two replicas sharing PostgreSQL', { skip: adminUrl === undefined ? 'OPENMSI_TEST_POSTGRES_URL not set' : false }, () => {
  let database: TestDatabase;
  const stores: Store[] = [];
  const rings: KeyRing[] = [];
  const clock = new FakeClock();
  const masterKey = MasterKey.random();
  let replicas: Array<{ store: Store; keyRing: KeyRing; rotator: KeyRotator }>;

  before(async () => {
    database = await createTestDatabase(adminUrl!);
    replicas = [];
    for (let i = 0; i < 2; i++) {
      const store = await openStore(database.url);
      stores.push(store);
      const keyRing = await KeyRing.load({ store: store.signingKeys, masterKey, clock, notifications: store.notifications });
      rings.push(keyRing);
      await store.notifications.ready();
      replicas.push({
        store,
        keyRing,
        rotator: new KeyRotator({ store: store.signingKeys, locks: store.locks, masterKey, clock, keyRing, newKeyPair: pooledKeyPair }),
      });
    }
  });
  after(async () => {
    for (const ring of rings) ring.stop();
    for (const store of stores) await store.close();
    await database?.drop();
  });

  const kids = (ring: KeyRing) => ring.jwks().keys.map((k) => String(k['kid']));
  const [a, b] = [0, 1];

  void it('replicas initialising an empty store at once make exactly one current and one next key', async () => {
    await Promise.all(replicas.map((r) => r.rotator.ensureKeys()));
    const records = await replicas[a]!.store.signingKeys.list();
    assert.deepEqual(records.map((r) => r.state).sort(), ['current', 'next']);
    await until('both replicas to publish the same two keys', () => (kids(replicas[b]!.keyRing).length === 2 ? true : undefined), JWKS_BOUND_MS, 10);
    assert.deepEqual(kids(replicas[b]!.keyRing), kids(replicas[a]!.keyRing));
  });

  void it('a tick on a replica while another holds the rotation lock does nothing; once released it rotates', async () => {
    clock.advance(31 * DAY);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const holder = replicas[a]!.store.locks.exclusive(ROTATION_LOCK, async () => {
      entered();
      await held;
    });
    await inside;
    const before = await replicas[a]!.store.signingKeys.list();
    let skipped;
    try {
      skipped = await replicas[b]!.rotator.tick();
    } finally {
      release();
    }
    await holder;
    assert.deepEqual(skipped, { promoted: undefined, created: [], purged: 0, skipped: true });
    assert.deepEqual(await replicas[a]!.store.signingKeys.list(), before, 'the skipped tick wrote nothing');

    const done = await replicas[b]!.rotator.tick();
    assert.equal(done.skipped, false);
    assert.ok(done.promoted !== undefined, 'the overdue key was promoted');
  });

  void it('concurrent ticks of both replicas promote exactly once', async () => {
    clock.advance(31 * DAY);
    const results = await Promise.all(replicas.map((r) => r.rotator.tick()));
    assert.equal(results.filter((r) => r.promoted !== undefined).length, 1, JSON.stringify(results));
    const states = (await replicas[a]!.store.signingKeys.list()).map((r) => r.state).filter((s) => s !== 'retired');
    assert.deepEqual(states.sort(), ['current', 'next']);
  });

  void it(`a rotation (and a revocation) at one replica is published by the other within ${String(JWKS_BOUND_MS)} ms`, async () => {
    for (const revokePrevious of [false, true]) {
      const { current, previous } = await replicas[a]!.rotator.rotateNow({ revokePrevious });
      // From the commit of the rotation's last write (rotateNow resolves after it).
      const started = performance.now();
      const expected = replicas[a]!.keyRing.jwks();
      await until(
        `replica b to publish replica a's JWKS (revokePrevious ${String(revokePrevious)})`,
        () => (JSON.stringify(replicas[b]!.keyRing.jwks()) === JSON.stringify(expected) ? true : undefined),
        JWKS_BOUND_MS,
        5,
      );
      const tookMs = performance.now() - started;
      assert.equal(replicas[b]!.keyRing.current().kid, current);
      assert.equal(replicas[b]!.keyRing.isPublished(previous!), !revokePrevious);
      process.stdout.write(`JWKS at the other replica ${tookMs.toFixed(1)} ms after rotateNow({revokePrevious: ${String(revokePrevious)}})\n`);
    }
  });
});
