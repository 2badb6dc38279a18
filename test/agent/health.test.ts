import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FakeAuthority, FakeHost } from '../support/fake-authority.js';
import { startFakeWorld, type FakeWorld, type TestAgent } from '../support/world.js';
import { until } from '../support/poll.js';
import { FakeClock } from '../../src/shared/clock.js';
import { agentReadiness, type AgentReadinessReport } from '../../src/agent/health.js';

const READY: AgentReadinessReport = { status: 'ready', checks: { hostCredential: { state: 'ok' }, authority: { state: 'ok' } } };

void describe('agent health and readiness', () => {
  let t: FakeAuthority;
  let host: FakeHost;
  let a: TestAgent;

  let world: FakeWorld;
  before(async () => {
    world = await startFakeWorld({ agent: { upstreamTimeoutMs: 400, retryBaseMs: 100, retryMaxMs: 300, readyStaleMs: 600 } });
    ({ t, host, a } = world);
  });
  after(() => world.close());

  void it('GET /healthz answers 200 {"status":"ok"}, GET /readyz 200 with each check ok; no Metadata header needed, nothing about the host in either', async () => {
    const live = await a.get('/healthz');
    assert.equal(live.status, 200);
    assert.deepEqual(live.json(), { status: 'ok' });
    assert.equal(live.headers['cache-control'], 'no-store');
    const ready = await until('the agent ready', async () => {
      const res = await a.get('/readyz');
      return res.status === 200 ? res : undefined;
    });
    assert.deepEqual(ready.json(), READY);
    for (const secret of [host.hostId, host.system.objectId, host.uami.clientId, t.url]) assert.ok(!ready.body.includes(secret));
    assert.equal((await a.post('/readyz', '')).status, 405);
  });

  void it('the probes pass the guard like every path: a proxy header or a foreign Host is refused', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const forwarded = await a.get(path, { 'x-forwarded-for': '203.0.113.7' });
      assert.equal(forwarded.status, 400);
      assert.equal(forwarded.json<{ error: string }>().error, 'invalid_request');
      assert.equal((await a.get(path, { via: '1.1 proxy' })).status, 400);
      assert.equal((await a.get(path, { host: 'attacker.example' })).status, 400);
    }
    // Refusals are audited as for any path.
    assert.ok(a.audit.events.some((e) => e.reason === 'forwarded'));
  });

  void it('unready while the authority does not answer, ready again once it does; live throughout', async () => {
    t.behaviour = { status: 503 };
    try {
      const down = await until('readyz 503', async () => {
        const res = await a.get('/readyz');
        return res.status === 503 ? res : undefined;
      });
      const body = down.json<AgentReadinessReport>();
      assert.equal(body.status, 'not_ready');
      assert.equal(body.checks.authority.state, 'failing');
      assert.equal(body.checks.hostCredential.state, 'ok');
      assert.equal((await a.get('/healthz')).status, 200);
    } finally {
      t.behaviour = {};
    }
    await until('readyz 200 again', async () => ((await a.get('/readyz')).status === 200 ? true : undefined));
  });

  void it('unready with the host refused', async () => {
    t.revoke(host);
    const down = await until('readyz 503 for a refused host', async () => {
      const res = await a.get('/readyz');
      return res.status === 503 && res.json<AgentReadinessReport>().checks.hostCredential.state === 'failing' ? res : undefined;
    });
    assert.deepEqual(down.json<AgentReadinessReport>().checks.hostCredential, { state: 'failing', detail: 'the authority does not recognise this host' });
  });
});

void describe('agentReadiness (fake clock)', () => {
  void it('an expired credential, no answer yet, and a stale answer are each unready; the stale bound is at least three polls', () => {
    const clock = new FakeClock();
    const now = clock.now();
    let expiresOn = now / 1000 + 60;
    let answeredAt: number | undefined;
    const report = () =>
      agentReadiness({
        clock,
        credentialExpiresOn: () => expiresOn,
        hostRefused: () => false,
        lastAuthorityAnswerAt: () => answeredAt,
        pollMs: 20_000,
        staleMs: 1000,
      });
    assert.equal(report().checks.authority.detail, 'the authority has not answered yet');
    answeredAt = now;
    assert.deepEqual(report(), READY);
    clock.advance(60_000);
    assert.equal(report().checks.authority.state, 'ok');
    clock.advance(1);
    assert.equal(report().checks.authority.state, 'failing');
    answeredAt = clock.now();
    expiresOn = clock.now() / 1000;
    assert.deepEqual(report().checks.hostCredential, { state: 'failing', detail: 'the host credential has expired' });
  });
});
