/**
 * Failover between authorities (`openmsi agent --authority A --authority B`), on two replicas of one fake
 * installation (test/support/fake-authority.ts: shared hosts, keys, used `jti`s and audit records; each its own
 * origin, behaviour and counts): connection refused and 5xx fail over, other answers do not, the agent goes
 * back to the preferred authority once its readiness probe answers, and grants, `self`, renewal and audit
 * uploads all follow. The same against two real `openmsi server` processes on PostgreSQL: test/e2e/replica-failover.test.ts.
 */
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAuthority, type FakeAuthority, type FakeHost } from '../support/fake-authority.js';
import { IMDS_PATH, startAgentIn, type TestAgent } from '../support/world.js';
import { untilTrue } from '../support/poll.js';
import { AuthorityClient, UpstreamError } from '../../src/agent/upstream.js';
import { loadHostCredential } from '../../src/agent/host-credential.js';
import { isFailoverError } from '../../src/agent/authority-pool.js';

const META = { metadata: 'true' };
const imds = (resource: string) => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`;
const PROBE = { authorityProbeMinMs: 50, authorityProbeMaxMs: 200 };

describe('agent failover between authorities', () => {
  let a: FakeAuthority;
  let b: FakeAuthority;
  let host: FakeHost;

  before(async () => {
    a = await startFakeAuthority();
    b = await startFakeAuthority({ replicaOf: a });
    host = await a.addHost();
  });
  after(async () => {
    await a.close();
    await b.close();
    host.cleanup();
  });
  beforeEach(() => {
    a.behaviour = {};
    b.behaviour = {};
  });

  describe('an agent with both', () => {
    let agent: TestAgent;
    beforeEach(async () => {
      if (!a.isUp()) await a.restart();
      agent = await startAgentIn(host.dataDir, { authorityUrls: [a.url, b.url], ...PROBE });
    });
    afterEach(async () => {
      await agent.agent.close();
    });

    it('serves a new audience through B while A refuses connections, keeps serving cached tokens, and goes back to A when it is ready', async () => {
      const before = { a: a.calls.token, b: b.calls.token };
      const cached = await agent.get(imds('https://one.example'), META);
      assert.equal(cached.status, 200, cached.body);
      assert.equal(a.calls.token - before.a, 1, 'the preferred authority served the first grant');

      await a.stop();
      const fresh = await agent.get(imds('https://two.example'), META);
      assert.equal(fresh.status, 200, fresh.body);
      assert.equal(b.calls.token - before.b, 1, 'B served the grant A could not');
      assert.equal(agent.agent.upstream.origin, b.url);
      assert.equal(agent.agent.upstream.pool.failovers, 1);
      const hit = await agent.get(imds('https://one.example'), META);
      assert.equal(hit.json<{ access_token: string }>().access_token, cached.json<{ access_token: string }>().access_token, 'the cache keeps serving');
      // `self` (the identity poll) follows too: the agent stays ready.
      const selfAtB = b.calls.self;
      await untilTrue('a self poll served by B', () => b.calls.self > selfAtB, 5000, 20);
      assert.equal((await agent.get('/readyz')).status, 200);

      await a.restart();
      await untilTrue('the agent back on A', () => agent.agent.upstream.origin === a.url, 5000, 20);
      assert.ok(a.readyProbes > 0, 'A was probed before the agent went back');
      assert.ok(agent.agent.upstream.pool.returns >= 1, agent.logLines.filter((l) => /authorit/.test(l)).join('\n'));
      const atA = a.calls.token;
      assert.equal((await agent.get(imds('https://three.example'), META)).status, 200);
      assert.equal(a.calls.token, atA + 1, 'A serves again');
    });

    it('fails over on a 5xx, and stays on B while A answers its probe with 503', async () => {
      a.behaviour = { status: 503 };
      const atB = b.calls.token;
      const answer = await agent.get(imds('https://five.example'), META);
      assert.equal(answer.status, 200, answer.body);
      assert.equal(b.calls.token, atB + 1);
      assert.equal(agent.agent.upstream.origin, b.url);
      const probes = a.readyProbes;
      await untilTrue('A probed twice', () => a.readyProbes >= probes + 2, 5000, 20);
      assert.equal(agent.agent.upstream.origin, b.url, 'a 503 readiness probe keeps the agent away');
      a.behaviour = {};
      await untilTrue('the agent back on A', () => agent.agent.upstream.origin === a.url, 5000, 20);
    });

    it('serves nothing new when both are down, keeps the cache, and recovers through whichever comes back', async () => {
      const cached = await agent.get(imds('https://six.example'), META);
      assert.equal(cached.status, 200);
      await a.stop();
      b.behaviour = { status: 502 };
      const miss = await agent.get(imds('https://seven.example'), META);
      assert.equal(miss.status, 503, miss.body);
      assert.equal((await agent.get(imds('https://six.example'), META)).status, 200, 'cached tokens keep serving');
      b.behaviour = {};
      // The cache backs off a failed fetch briefly (token-cache.ts); the next request after that is served.
      await untilTrue('seven served', async () => (await agent.get(imds('https://seven.example'), META)).status === 200, 5000, 50);
      assert.equal(agent.agent.upstream.origin, b.url);
    });

    it('renews the host credential through B while A is down, and keeps both authorities in the record', async () => {
      await a.stop();
      const renewsAtB = b.calls.renew;
      await agent.agent.credential.renew();
      assert.equal(b.calls.renew, renewsAtB + 1);
      const saved = await loadHostCredential(host.dataDir);
      assert.equal(saved?.record.keyId, agent.agent.credential.current.record.keyId);
      // The fake's host was written with A alone: the record keeps naming A as preferred.
      assert.equal(saved?.record.authorityUrl, a.url);
      // The new credential works at both (the replicas share it).
      await a.restart();
      await untilTrue('the agent back on A', () => agent.agent.upstream.origin === a.url, 5000, 20);
      assert.equal((await agent.get(imds('https://eight.example'), META)).status, 200);
    });
  });

  it('uploads the audit spool through B while A is down: every record once, none lost', async () => {
    if (!a.isUp()) await a.restart();
    // The real spooled pipeline (no recording sink).
    const agent = await startAgentIn(host.dataDir, { authorityUrls: [a.url, b.url], ...PROBE, auditSink: undefined as never });
    const seen = a.auditRecords.length;
    try {
      assert.equal((await agent.get(imds('https://audit-a.example'), META)).status, 200);
      await a.stop();
      assert.equal((await agent.get(imds('https://audit-b.example'), META)).status, 200);
      assert.equal((await agent.get(imds('https://audit-b.example'), META)).status, 200);
    } finally {
      // Closing flushes the last window and uploads it (to B: A is down).
      await agent.agent.close();
    }
    const records = a.installation.auditRecords.slice(seen);
    const ids = records.map((r) => r.id);
    assert.equal(new Set(ids).size, ids.length, 'no record uploaded twice');
    const served = (audience: string) => records.filter((r) => r.audience === audience && r.decision === 'served').reduce((sum, r) => sum + r.count, 0);
    assert.equal(served('https://audit-a.example'), 1);
    assert.equal(served('https://audit-b.example'), 2);
    assert.ok(b.calls.audit > 0, 'B took the upload');
  });

  describe('the client alone', () => {
    let client: AuthorityClient;
    beforeEach(async () => {
      if (!a.isUp()) await a.restart();
      client = new AuthorityClient({ authorityUrls: [a.url, b.url], probeMinMs: 50, probeMaxMs: 200 });
    });
    afterEach(() => client.close());

    for (const status of [400, 401, 404, 429]) {
      it(`does not try B when A answers ${String(status)} (the installation's answer)`, async () => {
        const saved = (await loadHostCredential(host.dataDir))!;
        a.behaviour = { status };
        const atB = b.calls.token;
        await assert.rejects(client.token(saved.key, saved.record.tokenEndpoint, { kind: 'system' }, 'https://x.example'), UpstreamError);
        assert.equal(b.calls.token, atB);
        assert.equal(client.origin, a.url);
      });
    }

    it('addresses each host assertion and grant to the authority it is sent to (each replica checks its own origin)', async () => {
      const saved = (await loadHostCredential(host.dataDir))!;
      await a.stop();
      // B's fake refuses an assertion whose aud is not B's own origin: these pass only if the agent re-addressed them.
      const issued = await client.token(saved.key, saved.record.tokenEndpoint, { kind: 'system' }, 'https://aud.example');
      assert.equal(typeof issued.accessToken, 'string');
      assert.equal((await client.self(saved.key)).hostResourceId, host.hostId);
      assert.equal(client.origin, b.url);
    });

    it('tells failover errors from the rest', () => {
      assert.equal(isFailoverError(new UpstreamError('unavailable', 'refused')), true);
      assert.equal(isFailoverError(new UpstreamError('unavailable', '503', { status: 503 })), true);
      assert.equal(isFailoverError(new UpstreamError('unavailable', '429', { status: 429 })), false);
      assert.equal(isFailoverError(new UpstreamError('host-not-recognised', 'no', { status: 401 })), false);
      assert.equal(isFailoverError(new Error('other')), false);
    });
  });
});
