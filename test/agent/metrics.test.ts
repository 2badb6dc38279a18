import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeAuthority, type FakeAuthority, type FakeHost } from '../support/fake-authority.js';
import { startAgentIn, IMDS_PATH, type TestAgent } from '../support/world.js';
import { httpGet, parseExposition, sampleValue } from '../support/prometheus.js';

const META = { metadata: 'true' };
const imds = (resource: string) => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}`;

void describe('agent metrics', () => {
  let t: FakeAuthority;
  let host: FakeHost;
  let a: TestAgent;
  let metricsUrl: string;

  before(async () => {
    t = await startFakeAuthority();
    host = await t.addHost();
    a = await startAgentIn(host.dataDir, { upstreamTimeoutMs: 400, retryBaseMs: 50, retryMaxMs: 100, metrics: { port: 0 } });
    metricsUrl = `${String(a.agent.metricsUrl)}/metrics`;
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
  });

  void it('are on their own loopback listener, and the agent port has no /metrics', async () => {
    const url = new URL(metricsUrl);
    assert.equal(url.hostname, '127.0.0.1');
    assert.notEqual(Number(url.port), a.agent.port);
    assert.equal((await a.get('/metrics', META)).status, 404);
  });

  void it('count tokens served by surface, cache hits and misses, and upstream errors by kind', async () => {
    const before = parseExposition((await httpGet(metricsUrl)).body);
    assert.equal(before.types.get('openmsi_agent_tokens_served_total'), 'counter');
    assert.equal(before.types.get('openmsi_agent_token_cache_total'), 'counter');
    assert.equal(before.types.get('openmsi_agent_upstream_errors_total'), 'counter');
    for (const s of before.samples) assert.ok(s.name.startsWith('openmsi_'), s.name);

    assert.equal((await a.get(imds('https://metrics-a.example'), META)).status, 200); // miss
    assert.equal((await a.get(imds('https://metrics-a.example'), META)).status, 200); // hit
    t.behaviour = { status: 503 };
    try {
      assert.equal((await a.get(imds('https://metrics-b.example'), META)).status, 503); // miss, authority unavailable
    } finally {
      t.behaviour = {};
    }
    const after = parseExposition((await httpGet(metricsUrl)).body).samples;
    const delta = (name: string, labels: Record<string, string>) => sampleValue(after, name, labels) - sampleValue(before.samples, name, labels);
    assert.equal(delta('openmsi_agent_tokens_served_total', { surface: 'imds' }), 2);
    assert.equal(delta('openmsi_agent_token_cache_total', { result: 'hit' }), 1);
    assert.equal(delta('openmsi_agent_token_cache_total', { result: 'miss' }), 2);
    assert.equal(delta('openmsi_agent_upstream_errors_total', { kind: 'unavailable' }), 1);
    // No identity, resource or token appears in any label.
    const text = (await httpGet(metricsUrl)).body;
    for (const secret of ['metrics-a.example', host.system.objectId, host.hostId]) assert.ok(!text.includes(secret));
  });
});
