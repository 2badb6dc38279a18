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

    void it("invariant: a failure learns the store's count at once: a process whose one failure makes the limit is locked without a refresh", async () => {
      freshClock();
      const a = throttle();
      const b = throttle();
      const client = `app:${randomUUID()}`;
      for (let i = 1; i < POLICY.perClient.failures; i++) await a.failed({ source: `10.7.0.${String(i)}`, client });
      await b.failed({ source: '10.7.1.1', client });
      assert.equal(refusal(b, { source: '10.7.1.2', client })?.status, 429, "b's own failure returned the shared count, which is the limit");
    });

    void it('invariant: after a window ends the limit applies afresh, and locks again', async () => {
      freshClock();
      const t = throttle();
      const subject = { source: '10.8.0.1', client: `app:${randomUUID()}` };
      for (let i = 0; i < POLICY.perClient.failures; i++) await t.failed(subject);
      assert.equal(refusal(t, subject)?.status, 429);
      clock.advance(MINUTE);
      assert.equal(refusal(t, subject), undefined, 'the old window no longer counts');
      for (let i = 0; i < POLICY.perClient.failures - 1; i++) await t.failed(subject);
      assert.equal(refusal(t, subject), undefined, 'one short of the limit in the new window');
      await t.failed(subject);
      assert.equal(refusal(t, subject)?.status, 429, 'the limit locks again in the new window');
    });

    void it('invariant: subjects that name no client share only their source, never a client lock', async () => {
      freshClock();
      const t = throttle();
      for (let i = 0; i < POLICY.perClient.failures + 1; i++) await t.failed({ source: `10.9.0.${String(i)}` });
      assert.equal(refusal(t, { source: '10.9.1.1' }), undefined, 'anonymous failures from many sources lock none of them');
    });

    void it('invariant: a store read that answers after its window ended never locks the new window', async () => {
      freshClock();
      const pending: Array<(n: number) => void> = [];
      const slow: AuthFailureStore = {
        increment: (...a) => store.authFailures.increment(...a),
        count: () => new Promise<number>((resolve) => pending.push(resolve)),
        purgeExpired: (now) => store.authFailures.purgeExpired(now),
      };
      const t = new ClientAuthThrottle({ store: slow, clock, policy: POLICY });
      const subject = { source: '10.10.0.1', client: `app:${randomUUID()}` };
      const reading = t.refresh(subject);
      clock.advance(MINUTE); // the window ends while the read is out, and the new window has a failure already
      await t.failed(subject);
      assert.equal(pending.length, 2, 'one read per key');
      for (const release of pending) release(POLICY.perSource.failures + POLICY.perClient.failures); // the old window's counts: over both limits
      await reading;
      assert.equal(refusal(t, subject), undefined, "the previous window's count does not lock the new one");
    });

    void it('invariant: concurrent failures lock at the limit at once, and a store answer that lags behind them does not unlock', async () => {
      freshClock();
      const answers: Array<(n: number) => void> = [];
      const lagging: AuthFailureStore = {
        increment: () => new Promise<number>((resolve) => answers.push(resolve)),
        count: () => Promise.resolve(0),
        purgeExpired: () => Promise.resolve(0),
      };
      const t = new ClientAuthThrottle({ store: lagging, clock, policy: POLICY });
      const subject = { source: '10.14.0.1', client: `app:${randomUUID()}` };
      // Three guesses in flight on this process, none of their writes answered yet.
      const writes = Array.from({ length: POLICY.perClient.failures }, () => t.failed(subject));
      assert.equal(refusal(t, subject)?.status, 429, 'locked as soon as the third failure is known here');
      // The first write's answer (source and client keys): the store had counted only that one.
      answers[0]!(1);
      answers[1]!(1);
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(refusal(t, subject)?.status, 429, 'a lower shared count never lowers what this process knows');
      for (const answer of answers.slice(2)) answer(POLICY.perClient.failures);
      await Promise.all(writes);
    });

    void it('store failures are reported to onError, from refresh and from failed', async () => {
      freshClock();
      const errors: unknown[] = [];
      const down = new Error('down');
      const broken: AuthFailureStore = { increment: () => Promise.reject(down), count: () => Promise.reject(down), purgeExpired: () => Promise.resolve(0) };
      const t = new ClientAuthThrottle({ store: broken, clock, policy: POLICY, onError: (err) => errors.push(err) });
      await t.refresh({ source: '10.11.0.1', client: 'app:y' });
      assert.deepEqual(errors, [down, down], 'one per key read');
      await t.failed({ source: '10.11.0.1', client: 'app:y' });
      assert.deepEqual(errors, [down, down, down, down], 'one per key written');
    });

    void it("the store keeps a failure until its window ends (its expiry), so a purge leaves another process's lock", async () => {
      freshClock();
      const a = throttle();
      const client = `app:${randomUUID()}`;
      for (let i = 0; i < POLICY.perClient.failures; i++) await a.failed({ source: `10.12.0.${String(i)}`, client });
      await store.authFailures.purgeExpired(clock.now() + MINUTE - SECOND);
      const b = throttle();
      await b.refresh({ source: '10.12.1.1', client });
      assert.equal(refusal(b, { source: '10.12.1.1', client })?.status, 429);
    });

    void it('remembers at most maxLocalKeys keys: the least recently failing is forgotten here, and read back from the store', async () => {
      freshClock();
      const t = new ClientAuthThrottle({ store: store.authFailures, clock, policy: POLICY, maxLocalKeys: 2 });
      const first = { source: '10.13.0.1', client: `app:${randomUUID()}` };
      for (let i = 0; i < POLICY.perClient.failures; i++) await t.failed(first);
      assert.equal(refusal(t, first)?.status, 429);
      await t.failed({ source: '10.13.0.2' }); // two more keys (source 10.13.0.2 and... only its source): first's client key is now oldest
      await t.failed({ source: '10.13.0.3' });
      assert.equal(refusal(t, { source: '10.13.0.4', client: first.client }), undefined, 'forgotten here');
      await t.refresh({ source: '10.13.0.4', client: first.client });
      assert.equal(refusal(t, { source: '10.13.0.4', client: first.client })?.status, 429, 'and read back from the store');
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

void describe('ClientAuthThrottle policy', () => {
  void it('refuses a limit under one failure or not whole, and a window under a second; takes the boundaries', () => {
    const make = (perClient: { failures: number; windowMs: number }, perSource = POLICY.perSource) =>
      new ClientAuthThrottle({
        store: { increment: () => Promise.resolve(0), count: () => Promise.resolve(0), purgeExpired: () => Promise.resolve(0) },
        clock: new FakeClock(0),
        policy: { perClient, perSource },
      });
    for (const failures of [0, -1, 1.5, Number.NaN]) assert.throws(() => make({ failures, windowMs: MINUTE }), /positive failure count/, String(failures));
    for (const windowMs of [999, 0, 1500.5, Number.NaN]) assert.throws(() => make({ failures: 3, windowMs }), /at least a second/, String(windowMs));
    assert.throws(() => make(POLICY.perClient, { failures: 0, windowMs: MINUTE }), /positive failure count/, 'the source limit is checked too');
    assert.throws(() => make(POLICY.perClient, { failures: 3, windowMs: 10 }), /at least a second/, 'the source window is checked too');
    assert.doesNotThrow(() => make({ failures: 1, windowMs: 1000 }));
  });

  void it('the default policy limits sources too, with more room than one client', () => {
    assert.ok(DEFAULT_CLIENT_AUTH_THROTTLE.perSource.failures > DEFAULT_CLIENT_AUTH_THROTTLE.perClient.failures);
    assert.ok(DEFAULT_CLIENT_AUTH_THROTTLE.perSource.windowMs >= MINUTE);
  });
});

void describe('sourceKey', () => {
  void it('counts IPv4 as is (also IPv4-mapped) and IPv6 by its /64', () => {
    assert.equal(sourceKey('10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:DB8:1:2::9%eth0'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    // Only a whole ::ffff:a.b.c.d is IPv4: multi-digit octets, nothing before or after.
    assert.equal(sourceKey('::ffff:10.200.30.44'), '10.200.30.44');
    assert.equal(sourceKey('2001:db8::ffff:10.0.0.1'), '2001:db8:0:0::/64');
    assert.equal(sourceKey('::ffff:10.0.0.1x'), '::ffff:10.0.0.1x', 'not an address: counted as written');
    // A long tail after :: lands in the /64.
    assert.equal(sourceKey('1::2:3:4:5:6:7'), '1:0:2:3::/64');
    assert.equal(sourceKey('1:2::3:4:5:6:7'), '1:2:0:3::/64');
    assert.equal(sourceKey('::2:3:4:5:6:7:8'), '0:2:3:4::/64');
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
