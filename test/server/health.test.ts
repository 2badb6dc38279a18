import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { startTestAuthority, backendSuiteOptions, captureLogs, type TestAuthority } from '../support/authority.js';
import { httpsRequest } from '../support/https.js';
import { until } from '../support/poll.js';
import { httpGet, parseExposition, sampleValue } from '../support/prometheus.js';
import { FakeClock } from '../../src/shared/clock.js';
import { Readiness, type ReadinessReport } from '../../src/server/readiness.js';
import { LATEST_MIGRATION } from '../../src/store/migrate.js';
import { StoreTimeoutError } from '../../src/store/open.js';
import type { StoreHealth } from '../../src/store/types.js';

type Report = ReadinessReport;

describe('server health and readiness', () => {
  describe('on the embedded store', () => {
    let t: TestAuthority;
    before(async () => {
      t = await startTestAuthority();
    });
    after(async () => {
      await t.close();
    });

    it('GET /healthz answers 200 {"status":"ok"} without credentials', async () => {
      const res = await httpsRequest(`${t.url}/healthz`, { ca: t.caPem });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { status: 'ok' });
      assert.equal(res.headers['cache-control'], 'no-store');
    });

    it('GET /readyz answers 200 with every check ok, and names nothing internal', async () => {
      const res = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { status: 'ready', checks: { store: { state: 'ok' }, signingKeys: { state: 'ok' }, migrations: { state: 'ok' } } });
      assert.ok(!res.body.includes(t.storeLocation) && !res.body.includes(t.dataDir));
    });

    it('the probes are plain GETs: trailing slash and case as the router allows, and not a tenant route', async () => {
      assert.equal((await httpsRequest(`${t.url}/readyz/`, { ca: t.caPem })).status, 200);
      assert.equal((await httpsRequest(`${t.url}/HEALTHZ`, { ca: t.caPem })).status, 200);
      // The tenant routes still own their paths: discovery for the tenant is unchanged.
      assert.equal((await httpsRequest(`${t.url}/${t.tenantId}/v2.0/.well-known/openid-configuration`, { ca: t.caPem })).status, 200);
      assert.equal((await httpsRequest(`${t.url}/healthz`, { ca: t.caPem, method: 'POST', body: '' })).status, 404);
      const head = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem, method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.body, '');
    });
  });

  describe('readiness checks (fake store, fake clock)', () => {
    function fakeStore(answer: () => Promise<string | undefined>): StoreHealth & { calls: number } {
      const store = {
        calls: 0,
        check(_timeoutMs: number) {
          store.calls++;
          return answer();
        },
      };
      return store;
    }

    it('reuses one answer for the cache window, and concurrent probes share one query', async () => {
      const clock = new FakeClock();
      const store = fakeStore(() => Promise.resolve(LATEST_MIGRATION));
      const readiness = new Readiness({ store, keyRing: { hasCurrent: () => true }, clock, logger: captureLogs().logger, cacheMs: 1000 });
      const [a, b] = await Promise.all([readiness.report(), readiness.report()]);
      assert.equal(store.calls, 1);
      assert.equal(a.status, 'ready');
      assert.equal(b, a);
      clock.advance(999);
      await readiness.report();
      assert.equal(store.calls, 1);
      clock.advance(1);
      await readiness.report();
      assert.equal(store.calls, 2);
    });

    it('not ready without a current signing key, or with a schema other than this release', async () => {
      const clock = new FakeClock();
      let hasKey = false;
      let schema: string | undefined = LATEST_MIGRATION;
      const readiness = new Readiness({
        store: fakeStore(() => Promise.resolve(schema)),
        keyRing: { hasCurrent: () => hasKey },
        clock,
        logger: captureLogs().logger,
        cacheMs: 0,
      });
      let report: Report = await readiness.report();
      assert.equal(report.status, 'not_ready');
      assert.deepEqual(report.checks.signingKeys, { state: 'failing', detail: 'no current signing key' });
      assert.equal(report.checks.store.state, 'ok');
      hasKey = true;
      schema = '9999-from-a-later-release';
      clock.advance(1);
      report = await readiness.report();
      assert.equal(report.status, 'not_ready');
      assert.equal(report.checks.migrations.state, 'failing');
      assert.match(report.checks.migrations.detail ?? '', /9999-from-a-later-release.*expects/);
      schema = LATEST_MIGRATION;
      clock.advance(1);
      assert.equal((await readiness.report()).status, 'ready');
    });

    it('a store that fails or times out is failing, the schema unknown, and no error text reaches the body', async () => {
      const clock = new FakeClock();
      let fail: Error = new Error('connect ECONNREFUSED 10.1.2.3:5432 password=hunter2');
      const { logger, lines } = captureLogs();
      const readiness = new Readiness({ store: fakeStore(() => Promise.reject(fail)), keyRing: { hasCurrent: () => true }, clock, logger, cacheMs: 0 });
      let report = await readiness.report();
      assert.equal(report.status, 'not_ready');
      assert.deepEqual(report.checks.store, { state: 'failing', detail: 'the probe query failed' });
      assert.equal(report.checks.migrations.state, 'unknown');
      assert.ok(!JSON.stringify(report).includes('10.1.2.3'));
      assert.equal(lines.filter((l) => l.includes('not ready')).length, 1);
      fail = new StoreTimeoutError('the store did not answer within 1000 ms');
      clock.advance(1);
      report = await readiness.report();
      assert.deepEqual(report.checks.store, { state: 'failing', detail: 'no answer within 1000 ms' });
      // A state is logged when it changes, not on every probe.
      assert.equal(lines.filter((l) => l.includes('not ready')).length, 1);
    });
  });

  describe('on PostgreSQL: unready while the database refuses connections, ready again without a restart', backendSuiteOptions('postgres'), () => {
    let t: TestAuthority;
    let admin: pg.Client;
    let database: string;
    before(async () => {
      t = await startTestAuthority({ backend: 'postgres', metrics: { port: 0 } });
      database = decodeURIComponent(new URL(t.storeLocation).pathname.slice(1));
      admin = new pg.Client({ connectionString: process.env['OPENMSI_TEST_POSTGRES_URL'] });
      await admin.connect();
    });
    after(async () => {
      await admin.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`).catch(() => undefined);
      await admin.end();
      await t.close();
    });

    it('goes 503 with the store failing, then 200 once the database is back; the notification lag goes NaN and back', async () => {
      const ready = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem });
      assert.equal(ready.status, 200);
      const scrapeNow = async () => parseExposition((await httpGet(`${String(t.authority.metricsUrl)}/metrics`)).body);
      const lagOf = (samples: Awaited<ReturnType<typeof scrapeNow>>['samples']) => sampleValue(samples, 'openmsi_store_notification_lag_seconds', {});
      const healthy = await scrapeNow();
      assert.equal(healthy.types.get('openmsi_store_notification_lag_seconds'), 'gauge');
      const lag = lagOf(healthy.samples);
      assert.ok(Number.isFinite(lag) && lag >= 0 && lag < 1, `a NOTIFY is heard back within the 1 s bound: ${String(lag)}`);
      const failuresBefore = sampleValue(healthy.samples, 'openmsi_store_notification_probe_failures_total', {});
      // Contained outage of this test's own database: no new connections, and every open one (the pool's and
      // LISTEN's) cut, as a stopped server would do to them.
      await admin.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
      const down = await until('readyz to answer 503', async () => {
        const res = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem });
        return res.status === 503 ? res : undefined;
      });
      const body = down.json<Report>();
      assert.equal(body.status, 'not_ready');
      assert.equal(body.checks.store.state, 'failing');
      assert.equal(body.checks.signingKeys.state, 'ok');
      assert.equal(body.checks.migrations.state, 'unknown');
      assert.ok(!down.body.includes('postgres') && !down.body.includes(database));
      // Liveness does not depend on the store.
      assert.equal((await httpsRequest(`${t.url}/healthz`, { ca: t.caPem })).status, 200);
      // With LISTEN cut, the probe is not heard: NaN, and the failure counted.
      const blind = (await scrapeNow()).samples;
      assert.ok(Number.isNaN(lagOf(blind)));
      assert.equal(sampleValue(blind, 'openmsi_store_notification_probe_failures_total', {}) - failuresBefore, 1);

      await admin.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`);
      const up = await until('readyz to answer 200 again', async () => {
        const res = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem });
        return res.status === 200 ? res : undefined;
      });
      assert.equal(up.json<Report>().status, 'ready');
      // And the same process serves tokens again.
      assert.ok((await t.adminToken('https://management.azure.com/')).length > 0);
      // The metrics time the store's queries and show the pool.
      const scrape = parseExposition((await httpGet(`${String(t.authority.metricsUrl)}/metrics`)).body).samples;
      assert.ok(sampleValue(scrape, 'openmsi_store_query_duration_seconds_count', { outcome: 'ok' }) >= 1);
      assert.ok(sampleValue(scrape, 'openmsi_store_pool_connections', { state: 'total' }) >= 1);
      // LISTEN reconnects by itself (with backoff): change notices reach this replica again.
      await until('the notification probe to be heard again', async () => (Number.isFinite(lagOf((await scrapeNow()).samples)) ? true : undefined));
    });

    it('a hung database: the probe times out, and later probes wait on the same query instead of adding more', async () => {
      // The admin session holds a lock the probe query needs, so the probe hangs as on a stuck database.
      const locker = new pg.Client({ connectionString: t.storeLocation });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query('LOCK TABLE openmsi_migrations IN ACCESS EXCLUSIVE MODE');
        for (let i = 0; i < 3; i++) await assert.rejects(t.ctx.store.health.check(150), StoreTimeoutError);
        const waiting = await admin.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE '%openmsi_migrations%'",
          [database],
        );
        assert.equal(Number(waiting.rows[0]?.n), 1);
        const res = await until('readyz 503 for the hung store', async () => {
          const r = await httpsRequest(`${t.url}/readyz`, { ca: t.caPem });
          return r.status === 503 ? r : undefined;
        });
        assert.deepEqual(res.json<Report>().checks.store, { state: 'failing', detail: 'no answer within 1000 ms' });
      } finally {
        await locker.query('ROLLBACK');
        await locker.end();
      }
      await until('readyz 200 once the lock is gone', async () => ((await httpsRequest(`${t.url}/readyz`, { ca: t.caPem })).status === 200 ? true : undefined));
    });
  });
});
