import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestAuthority, registerTestApplication, type TestAuthority } from '../support/authority.js';
import { httpsRequest, postForm } from '../support/https.js';
import { httpGet as get, parseExposition, sampleValue as value, type Sample } from '../support/prometheus.js';

describe('server metrics', () => {
  let t: TestAuthority;
  let metricsUrl: string;
  before(async () => {
    t = await startTestAuthority({ metrics: { port: 0 } });
    metricsUrl = `${String(t.authority.metricsUrl)}/metrics`;
  });
  after(async () => {
    await t.close();
  });

  it('are served on their own loopback listener, not on the public port', async () => {
    const metrics = new URL(metricsUrl);
    assert.equal(metrics.protocol, 'http:');
    assert.equal(metrics.hostname, '127.0.0.1');
    assert.notEqual(metrics.port, new URL(t.url).port);
    assert.equal((await httpsRequest(`${t.url}/metrics`, { ca: t.caPem })).status, 404);
    assert.equal((await get(`${metrics.origin}/`)).status, 404);
  });

  it('a scrape parses: every metric is openmsi_-prefixed and typed, and a real grant moves the token counter and the latency histogram', async () => {
    const first = await get(metricsUrl);
    assert.equal(first.status, 200);
    assert.match(first.contentType, /^text\/plain; version=0\.0\.4/);
    const before = parseExposition(first.body);
    for (const s of before.samples) assert.ok(s.name.startsWith('openmsi_'), s.name);
    for (const [name] of before.types) assert.ok(name.startsWith('openmsi_'), name);
    assert.equal(before.types.get('openmsi_tokens_issued_total'), 'counter');
    assert.equal(before.types.get('openmsi_grant_duration_seconds'), 'histogram');
    assert.equal(before.types.get('openmsi_audit_backlog_events'), 'gauge');
    assert.equal(before.types.get('openmsi_audit_dropped_events_total'), 'counter');
    assert.equal(before.types.get('openmsi_rbac_decision_cache_requests_total'), 'counter');
    assert.equal(before.types.get('openmsi_process_cpu_seconds_total'), 'counter');
    assert.equal(before.types.get('openmsi_store_query_duration_seconds'), 'histogram');
    // The embedded store has no pool.
    assert.equal(before.types.get('openmsi_store_pool_connections'), undefined);
    assert.equal(before.types.get('openmsi_store_notification_lag_seconds'), undefined, 'no LISTEN/NOTIFY on the embedded store');

    const success = { grant_type: 'client_credentials', outcome: 'success' };
    const refused = { grant_type: 'client_credentials', outcome: 'invalid_client' };
    const app = await registerTestApplication(t, 'metrics-app', { certificate: false });
    const tokenUrl = `${t.url}/${t.tenantId}/oauth2/v2.0/token`;
    const ok = await postForm(
      tokenUrl,
      { grant_type: 'client_credentials', client_id: app.appId, client_secret: app.secret, scope: 'https://vault.azure.net/.default' },
      t.caPem,
    );
    assert.equal(ok.status, 200, ok.body);
    const bad = await postForm(
      tokenUrl,
      { grant_type: 'client_credentials', client_id: app.appId, client_secret: 'wrong', scope: 'https://vault.azure.net/.default' },
      t.caPem,
    );
    assert.equal(bad.status, 401, bad.body);
    const odd = await postForm(tokenUrl, { grant_type: 'urn:made-up:grant' }, t.caPem);
    assert.equal(odd.status, 400);

    const after = parseExposition((await get(metricsUrl)).body).samples;
    assert.equal(value(after, 'openmsi_tokens_issued_total', success) - value(before.samples, 'openmsi_tokens_issued_total', success), 1);
    assert.equal(value(after, 'openmsi_tokens_issued_total', refused) - value(before.samples, 'openmsi_tokens_issued_total', refused), 1);
    // A grant type the authority does not have is counted as `other`, so clients cannot add label values.
    assert.equal(value(after, 'openmsi_tokens_issued_total', { grant_type: 'other', outcome: 'unsupported_grant_type' }), 1);
    assert.ok(!after.some((s) => s.labels['grant_type'] === 'urn:made-up:grant'));
    const count = (samples: Sample[]) => value(samples, 'openmsi_grant_duration_seconds_count', { grant_type: 'client_credentials' });
    assert.equal(count(after) - count(before.samples), 2);
    const inf = value(after, 'openmsi_grant_duration_seconds_bucket', { grant_type: 'client_credentials', le: '+Inf' });
    assert.equal(inf, count(after));
    // Grants read the store: its query histogram moved too.
    const queries = (samples: Sample[]) => value(samples, 'openmsi_store_query_duration_seconds_count', { outcome: 'ok' });
    assert.ok(queries(after) > queries(before.samples));
  });
});
