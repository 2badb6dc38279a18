/**
 * How the agent answers when its authority misbehaves, with the authority played by the fake
 * (test/support/fake-authority.ts) so each failure is exact: a 5xx or 429, an answer slower than the upstream
 * timeout, a connection closed without an answer, a host refused. The real authority going down and coming
 * back is `resilience.test.ts`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeAuthority, FakeHost } from '../support/fake-authority.js';
import { startFakeWorld, type FakeWorld, IMDS_PATH, VAULT, type TestAgent } from '../support/world.js';
import { until } from '../support/poll.js';

const META = { metadata: 'true' };
const imds = (resource: string, selector = '') => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}${selector}`;
const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'The identity authority did not answer; retry the request later' };

void describe('agent against a failing authority', () => {
  let t: FakeAuthority;
  let host: FakeHost;
  let a: TestAgent;
  const UPSTREAM_TIMEOUT_MS = 400;

  let world: FakeWorld;
  before(async () => {
    world = await startFakeWorld({ agent: { upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS, rateLimit: { perSecond: 1000 }, retryBaseMs: 100, retryMaxMs: 300 } });
    ({ t, host, a } = world);
  });
  after(() => world.close());

  for (const status of [500, 502, 503, 429]) {
    void it(`an authority answering ${String(status)}: cached tokens still served, misses answered 503 with Retry-After without a call each, a token again once it recovers`, async () => {
      const cachedResource = `https://cached-${String(status)}.example`;
      const cached = await a.get(imds(cachedResource), META);
      assert.equal(cached.status, 200, cached.body);
      t.behaviour = { status };
      try {
        const hit = await a.get(imds(cachedResource), META);
        assert.equal(hit.status, 200);
        assert.equal(hit.json<{ access_token: string }>().access_token, cached.json<{ access_token: string }>().access_token);
        const miss = await a.get(imds(`https://miss-${String(status)}.example`), META);
        assert.equal(miss.status, 503, miss.body);
        assert.match(String(miss.headers['retry-after']), /^[1-9]\d*$/);
        assert.deepEqual(miss.json(), UNAVAILABLE);
        // Within the backoff, more misses are answered from the last failure: an outage is not hammered.
        const calls = t.calls.token;
        for (let i = 0; i < 5; i++) assert.equal((await a.get(imds(`https://miss-${String(i)}-${String(status)}.example`), META)).status, 503);
        assert.ok(t.calls.token - calls <= 1, `${String(t.calls.token - calls)} grant calls for 5 misses in the backoff`);
      } finally {
        t.behaviour = {};
      }
      // Recovery needs no restart: the first miss after the backoff is asked again.
      await until(
        'a token once the authority answers again',
        async () => ((await a.get(imds(`https://miss-${String(status)}.example`), META)).status === 200 ? true : undefined),
        5000,
        50,
      );
    });
  }

  void it('an authority slower than the upstream timeout: the miss is answered 503 within a bound, not held open', async () => {
    t.behaviour = { delayMs: UPSTREAM_TIMEOUT_MS * 5 };
    try {
      const started = Date.now();
      const miss = await a.get(imds('https://slow.example'), META);
      const took = Date.now() - started;
      assert.equal(miss.status, 503, miss.body);
      assert.deepEqual(miss.json(), UNAVAILABLE);
      // The agent retries within its own budget; what matters is that the caller is not held for the slow answer.
      assert.ok(took < UPSTREAM_TIMEOUT_MS * 5, `answered after ${String(took)} ms`);
    } finally {
      t.behaviour = {};
    }
  });

  void it('a connection closed without an answer is an outage (503), never a 500', async () => {
    t.behaviour = { drop: true };
    try {
      const miss = await a.get(imds('https://dropped.example'), META);
      assert.equal(miss.status, 503, miss.body);
      assert.deepEqual(miss.json(), UNAVAILABLE);
    } finally {
      t.behaviour = {};
    }
    await until(
      'a token once the authority answers again',
      async () => ((await a.get(imds('https://dropped.example'), META)).status === 200 ? true : undefined),
      5000,
      50,
    );
  });

  void it('every grant the agent sent carried a host assertion the authority verified (no refusal was needed)', () => {
    assert.ok(t.calls.token > 0);
    assert.ok(t.calls.self > 0, 'the agent read its identities with GET self');
    assert.ok(!a.logLines.some((l) => /HostNotRecognised|host-not-recognised/.test(l)), 'the agent was never refused');
  });

  void it('a host the authority stops recognising gets no more tokens, cached ones included, within the poll bound', async () => {
    const sel = `&client_id=${host.uami.clientId}`;
    assert.equal((await a.get(imds(VAULT, sel), META)).status, 200);
    t.revoke(host);
    const refused = await until(
      'the cached token refused once the host is refused',
      async () => {
        const r = await a.get(imds(VAULT, sel), META);
        return r.status === 403 ? r : undefined;
      },
      5000,
      20,
    );
    assert.equal(refused.json<{ error: string }>().error, 'unauthorized_client');
    assert.equal(a.agent.hostRefused, true);

    // Recognised again: the agent serves again, without a restart.
    t.reinstate(host);
    await until('the agent to serve the host again', async () => ((await a.get(imds(VAULT, sel), META)).status === 200 ? true : undefined), 10_000, 50);
    assert.equal(a.agent.hostRefused, false);
  });
});
