import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { FakeClock } from '../../src/shared/clock.js';
import type { FakeAuthority, FakeHost } from '../support/fake-authority.js';
import { startFakeWorld, type FakeWorld, IMDS_PATH, VAULT, type TestAgent } from '../support/world.js';
import { until } from '../support/poll.js';

/*
 * The agent's cache and rate decisions against the fake authority (test/support/fake-authority.ts), which counts
 * the calls it receives: a cache hit is proved on the authority's side, not only by the agent's own counter.
 */
const META = { metadata: 'true' };
const imds = (resource: string, selector = '') => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}${selector}`;

describe('agent token cache', () => {
  let t: FakeAuthority;
  let host: FakeHost;
  let a: TestAgent;

  let world: FakeWorld;
  before(async () => {
    world = await startFakeWorld({ agent: { rateLimit: { perSecond: 1000 } } });
    ({ t, host, a } = world);
  });
  after(() => world.close());

  it('a cache hit does not call the authority', async () => {
    const calls = a.agent.upstream.grantCalls;
    const received = t.calls.token;
    const first = await a.get(imds('https://hit.example'), META);
    assert.equal(first.status, 200);
    assert.equal(a.agent.upstream.grantCalls, calls + 1);
    for (let i = 0; i < 20; i++) {
      const again = await a.get(imds('https://hit.example'), META);
      assert.equal(again.json<{ access_token: string }>().access_token, first.json<{ access_token: string }>().access_token);
    }
    assert.equal(a.agent.upstream.grantCalls, calls + 1);
    assert.equal(t.calls.token, received + 1, 'the authority saw one grant');
    // Another spelling of the same audience is another entry (resource is echoed as requested).
    await a.get(imds('https://hit.example/'), META);
    assert.equal(a.agent.upstream.grantCalls, calls + 2);
  });

  it('N concurrent misses for one key make one authority call', async () => {
    const calls = a.agent.upstream.grantCalls;
    const received = t.calls.token;
    const answers = await Promise.all(Array.from({ length: 25 }, () => a.get(imds('https://single-flight.example', `&client_id=${host.uami.clientId}`), META)));
    assert.ok(answers.every((r) => r.status === 200));
    assert.equal(new Set(answers.map((r) => r.json<{ access_token: string }>().access_token)).size, 1);
    assert.equal(a.agent.upstream.grantCalls, calls + 1);
    assert.equal(t.calls.token, received + 1, 'the authority saw one grant');
  });

  it('identity removed from the host is refused within the stated bound, cached tokens included', async () => {
    const sel = `&client_id=${host.uami2.clientId}`;
    assert.equal((await a.get(imds(VAULT, sel), META)).status, 200);
    assert.equal((await a.get(imds(VAULT, sel), META)).status, 200, 'cached');
    const started = Date.now();
    t.setAssigned(host, host.uami2, false);
    let refusedAt: number | undefined;
    while (Date.now() - started < 5000) {
      const r = await a.get(imds(VAULT, sel), META);
      if (r.status === 400) {
        assert.deepEqual(r.json(), { error: 'invalid_request', error_description: 'Identity not found' });
        refusedAt = Date.now();
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(refusedAt !== undefined, 'refused within 5 s');
    const measured = refusedAt - started;
    // The stated bound: one poll interval plus one `self` round trip (here 200 ms + a local call).
    assert.ok(measured <= a.agent.identities.pollMs + 500, `refused after ${String(measured)} ms (poll ${String(a.agent.identities.pollMs)} ms)`);
    process.stdout.write(`# measured identity-removal bound: ${String(measured)} ms (poll interval ${String(a.agent.identities.pollMs)} ms)\n`);
    // The others keep working.
    assert.equal((await a.get(imds(VAULT, `&client_id=${host.uami.clientId}`), META)).status, 200);
  });

  it('an unknown selector refreshes the identity list on demand (single flight) before refusing', async () => {
    const before = a.agent.identities.refreshes;
    const answers = await Promise.all(Array.from({ length: 10 }, () => a.get(imds(VAULT, `&object_id=${host.other.objectId}`), META)));
    assert.ok(answers.every((r) => r.status === 400));
    assert.ok(a.agent.identities.refreshes - before <= 2, `${String(a.agent.identities.refreshes - before)} refreshes`);
  });
});

describe('agent rate limit', () => {
  let host: FakeHost;
  let a: TestAgent;
  let world: FakeWorld;
  before(async () => {
    world = await startFakeWorld({ agent: { rateLimit: { perSecond: 5, burst: 5 } } });
    ({ host, a } = world);
  });
  after(() => world.close());

  it('answers 429 with Retry-After beyond the per-identity limit; other identities are unaffected', async () => {
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<TestAgent['get']>> | undefined;
    for (let i = 0; i < 8; i++) {
      const r = await a.get(imds(VAULT), META);
      statuses.push(r.status);
      if (r.status === 429) limited ??= r;
    }
    assert.ok(
      statuses.slice(0, 5).every((s) => s === 200),
      statuses.join(),
    );
    assert.ok(limited, statuses.join());
    assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
    assert.deepEqual(limited.json(), {
      error: 'too_many_requests',
      error_description: 'Too many token requests for this identity; retry after the Retry-After delay',
    });
    assert.equal((await a.get(imds(VAULT, `&client_id=${host.uami.clientId}`), META)).status, 200);
  });
});

describe('agent refresh at half-life (fake clock)', () => {
  let a: TestAgent;
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  let world: FakeWorld;
  before(async () => {
    world = await startFakeWorld({ authority: { clock, tokenLifetimeSeconds: 3600 }, agent: { clock, random: () => 0.5 } });
    ({ a } = world);
  });
  after(() => world.close());

  it('serves the cached token before half-life, refreshes in the background after it, then serves the new one', async () => {
    const calls = a.agent.upstream.grantCalls;
    const first = (await a.get(imds(VAULT), META)).json<{ access_token: string; expires_in: string }>();
    const exp = decodeJwt(first.access_token).exp!;
    assert.equal(first.expires_in, String(exp - Math.floor(clock.now() / 1000)), 'expires_in = exp - now');
    // random() = 0.5 puts the refresh exactly at half-life.
    const halfLifeMs = ((exp - Math.floor(clock.now() / 1000)) * 1000) / 2;
    clock.advance(halfLifeMs - 30_000);
    const before = (await a.get(imds(VAULT), META)).json<{ access_token: string; expires_in: string }>();
    assert.equal(before.access_token, first.access_token);
    assert.equal(before.expires_in, String(exp - Math.floor(clock.now() / 1000)));
    assert.equal(a.agent.upstream.grantCalls, calls + 1, 'no refresh before half-life');
    clock.advance(60_000);
    const during = (await a.get(imds(VAULT), META)).json<{ access_token: string }>();
    assert.equal(during.access_token, first.access_token, 'the request that triggers the refresh is served from the cache');
    // Waits on the condition itself (the refreshed token served), bounded, not on a time that assumes an idle machine.
    const after = await until(
      'the refreshed token served',
      async () => {
        const served = (await a.get(imds(VAULT), META)).json<{ access_token: string; expires_in: string }>();
        return served.access_token === first.access_token ? undefined : served;
      },
      20_000,
      20,
    );
    assert.equal(a.agent.upstream.grantCalls, calls + 2, 'one background refresh');
    assert.equal(after.expires_in, String(decodeJwt(after.access_token).exp! - Math.floor(clock.now() / 1000)));
    assert.ok(decodeJwt(after.access_token).exp! > decodeJwt(first.access_token).exp!);
  });
});
