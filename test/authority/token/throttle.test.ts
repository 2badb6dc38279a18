import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { STORE_BACKENDS, backendSuiteOptions } from '../../support/authority.js';
import { createTestDatabase, type TestDatabase } from '../../support/pg-database.js';
import { ClientAuthThrottle, DEFAULT_CLIENT_AUTH_THROTTLE, sourceKey, type ThrottleSubject } from '../../../src/authority/token/throttle.js';
import { OAuthError } from '../../../src/shared/oauth-error.js';
import { FakeClock, MINUTE, SECOND } from '../../../src/shared/clock.js';
import { openStore } from '../../../src/store/open.js';
import type { AuthFailureStore, Store } from '../../../src/store/types.js';

const POLICY = { perClient: { failures: 3, windowMs: MINUTE }, perSource: { failures: 5, windowMs: MINUTE } };

/** The 429 a locked key gets, or undefined when `check` lets the attempt through. */
function refusal(throttle: ClientAuthThrottle, subject: ThrottleSubject): OAuthError | undefined {
  try {
    throttle.check(subject);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof OAuthError);
    return err;
  }
}

/** Counts the store calls a throttle makes, to prove what a success costs. */
function counting(store: AuthFailureStore): { store: AuthFailureStore; calls: { increment: number; count: number } } {
  const calls = { increment: 0, count: 0 };
  return {
    calls,
    store: {
      increment: (...a) => (calls.increment++, store.increment(...a)),
      count: (...a) => (calls.count++, store.count(...a)),
      purgeExpired: (now) => store.purgeExpired(now),
    },
  };
}

/**
 * The token endpoint's throttle of failed client authentication (issue 15, finding 7), on each store: per
 * client and per source, shared by every process on the store, expiring with its window.
 */
for (const backend of STORE_BACKENDS)
  describe(`ClientAuthThrottle (${backend})`, backendSuiteOptions(backend), () => {
    let store: Store;
    let database: TestDatabase | undefined;
    let clock: FakeClock;

    before(async () => {
      database = backend === 'postgres' ? await createTestDatabase(process.env['OPENMSI_TEST_POSTGRES_URL']!) : undefined;
      store = await openStore(database?.url ?? ':memory:');
    });
    after(async () => {
      await store.close();
      await database?.drop();
    });

    /** A fresh clock at the start of a window, and a throttle on the shared store. */
    function throttle(options: { clock?: FakeClock } = {}) {
      const c = options.clock ?? clock;
      return new ClientAuthThrottle({ store: store.authFailures, clock: c, policy: POLICY });
    }
    function freshClock(): FakeClock {
      clock = new FakeClock(Math.floor(Date.UTC(2030, 0, 1) / MINUTE) * MINUTE + Math.floor(Math.random() * 1000) * MINUTE);
      return clock;
    }

    void it('invariant: a client is locked after its limit of failures, from any source, with AADSTS50053 and Retry-After', async () => {
      freshClock();
      const t = throttle();
      const client = `app:${randomUUID()}`;
      for (let i = 0; i < POLICY.perClient.failures; i++) {
        assert.equal(refusal(t, { source: `10.0.${String(i)}.1`, client }), undefined, `attempt ${String(i + 1)} is let through`);
        await t.failed({ source: `10.0.${String(i)}.1`, client });
      }
      clock.advance(20 * SECOND);
      const locked = refusal(t, { source: '10.9.9.9', client });
      assert.equal(locked?.status, 429);
      assert.equal(locked?.aadsts, 50053);
      assert.equal(locked?.error, 'invalid_client');
      assert.equal(locked?.headers['retry-after'], '40', 'until the window ends');
      assert.equal(refusal(t, { source: '10.9.9.9', client: `app:${randomUUID()}` }), undefined, 'another client from that source is not locked');
    });

    void it('invariant: a source is locked after its limit of failures, whichever clients it names', async () => {
      freshClock();
      const t = throttle();
      const source = `10.1.${String(Math.floor(Math.random() * 250))}.7`;
      for (let i = 0; i < POLICY.perSource.failures; i++) await t.failed({ source, client: i % 2 === 0 ? `app:${randomUUID()}` : undefined });
      assert.equal(refusal(t, { source })?.status, 429);
      assert.equal(refusal(t, { source, client: `app:${randomUUID()}` })?.status, 429, 'also for a client never seen');
      assert.equal(refusal(t, { source: '10.200.0.1' }), undefined, 'another source is not locked');
    });

    void it('invariant: a lock set by one process holds in another sharing the store, also for a process that looked before', async () => {
      freshClock();
      const a = throttle();
      const b = throttle();
      const client = `host:${randomUUID()}`;
      const subject = { source: '10.2.0.1', client };
      await b.refresh(subject);
      assert.equal(refusal(b, subject), undefined);
      for (let i = 0; i < POLICY.perClient.failures; i++) await a.failed({ source: `10.2.1.${String(i)}`, client });
      clock.advance(SECOND); // b's cached read is a second old: read again.
      await b.refresh(subject);
      assert.equal(refusal(b, subject)?.status, 429);
      const d = throttle();
      const other = { source: '10.2.3.1', client: `app:${randomUUID()}` };
      await d.failed(other);
      for (let i = 1; i < POLICY.perClient.failures; i++) await a.failed(other);
      await d.refresh(other);
      assert.equal(refusal(d, other)?.status, 429, 'a process that saw the key fail reads it again on every attempt, without waiting a second');
      const c = throttle();
      await c.refresh({ source: '10.2.9.9', client });
      assert.equal(refusal(c, { source: '10.2.9.9', client })?.status, 429, 'a process that never saw the client learns it on its first look');
    });

    void it('invariant: concurrent failures on two processes are all counted (the store decides the count)', async () => {
      freshClock();
      const a = throttle();
      const b = throttle();
      const client = `app:${randomUUID()}`;
      await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).failed({ source: `10.3.0.${String(i)}`, client })));
      assert.equal(await store.authFailures.count(client, Math.floor(clock.now() / MINUTE) * MINUTE), 40);
    });

    void it('invariant: a lock ends with its window by the injected clock, and not before', async () => {
      freshClock();
      const t = throttle();
      const subject = { source: '10.4.0.1', client: `app:${randomUUID()}` };
      for (let i = 0; i < POLICY.perClient.failures; i++) await t.failed(subject);
      clock.advance(MINUTE - 1);
      assert.equal(refusal(t, subject)?.headers['retry-after'], '1', 'Retry-After rounds up to a whole second');
      clock.advance(1);
      await t.refresh(subject);
      assert.equal(refusal(t, subject), undefined, 'the next window counts afresh');
      const other = throttle();
      await other.refresh(subject);
      assert.equal(refusal(other, subject), undefined, 'also in a process that reads the store');
    });

    void it('a success writes nothing and reads each key at most once per second', async () => {
      freshClock();
      const { store: spied, calls } = counting(store.authFailures);
      const t = new ClientAuthThrottle({ store: spied, clock, policy: POLICY });
      const subject = { source: '10.5.0.1', client: `app:${randomUUID()}` };
      for (let i = 0; i < 100; i++) {
        await t.refresh(subject);
        t.check(subject);
      }
      assert.deepEqual(calls, { increment: 0, count: 2 }, 'one read per key (source and client), no write');
      clock.advance(SECOND);
      await t.refresh(subject);
      assert.deepEqual(calls, { increment: 0, count: 4 });
    });

    void it('a store outage fails neither check nor failed: the local count still locks', async () => {
      freshClock();
      const errors: unknown[] = [];
      const broken: AuthFailureStore = {
        increment: () => Promise.reject(new Error('down')),
        count: () => Promise.reject(new Error('down')),
        purgeExpired: () => Promise.resolve(0),
      };
      const t = new ClientAuthThrottle({ store: broken, clock, policy: POLICY, onError: (err) => errors.push(err) });
      const subject = { source: '10.6.0.1', client: 'app:x' };
      await t.refresh(subject);
      for (let i = 0; i < POLICY.perClient.failures; i++) await t.failed(subject);
      assert.equal(refusal(t, subject)?.status, 429);
      assert.ok(errors.length > 0);
    });
  });

void describe('sourceKey', () => {
  void it('counts IPv4 as is (also IPv4-mapped) and IPv6 by its /64', () => {
    assert.equal(sourceKey('10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:DB8:1:2::9%eth0'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  });

  void it('invariant: every address of one /64 counts as one source', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }), (address, low) => {
        const full = sourceKey(address);
        fc.pre(full.endsWith('::/64') && !address.includes('.'));
        const prefix = full.slice(0, -'::/64'.length);
        assert.equal(sourceKey(`${prefix}:${low.map((g) => g.toString(16)).join(':')}`), full);
      }),
    );
  });

  void it("the default policy is at most Entra smart lockout's 10 failures a minute per client", () => {
    assert.ok(DEFAULT_CLIENT_AUTH_THROTTLE.perClient.failures <= 10 && DEFAULT_CLIENT_AUTH_THROTTLE.perClient.windowMs >= MINUTE);
  });
});
