import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createOpenmsiServer, type OpenmsiServer } from '../../src/server/server.js';
import { deleteResource } from '../../src/directory/resources.js';
import { UpstreamError } from '../../src/agent/upstream.js';
import { captureLogs, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, describeFromStore, startTestAgent, IMDS_PATH, VAULT, type TestAgent, type TestHost } from '../support/world.js';

const META = { metadata: 'true' };
const imds = (resource: string, selector = '') => `${IMDS_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}${selector}`;

describe('agent during an authority outage', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;
  let current: Pick<TestAuthority, 'ctx' | 'tenantId'>;
  let restarted: OpenmsiServer | undefined;
  let down = false;

  before(async () => {
    t = await startTestAuthority();
    current = t;
    host = await createTestHost(t);
    const fromStore = describeFromStore(() => current, host);
    a = await startTestAgent(t, host, {
      // `self` fails like the real call does while the authority is down.
      describeHost: () => (down ? Promise.reject(new UpstreamError('unavailable', 'down')) : fromStore()),
      retryBaseMs: 100,
      retryMaxMs: 400,
    });
  });
  after(async () => {
    await a.agent.close();
    if (restarted !== undefined) {
      await restarted.close();
      rmSync(t.dataDir, { recursive: true, force: true });
    } else await t.close();
    host.cleanup();
  });

  it('keeps serving cached tokens, answers a retryable 503 for new audiences, and recovers alone', async () => {
    const cached = await a.get(imds(VAULT), META);
    assert.equal(cached.status, 200);
    const cachedUser = await a.get(imds(VAULT, `&client_id=${host.uami.clientId}`), META);
    assert.equal(cachedUser.status, 200);

    down = true;
    await t.authority.close();

    for (let i = 0; i < 3; i++) {
      const hit = await a.get(imds(VAULT), META);
      assert.equal(hit.status, 200, hit.body);
      assert.equal(hit.json<{ access_token: string }>().access_token, cached.json<{ access_token: string }>().access_token);
      assert.equal((await a.get(imds(VAULT, `&client_id=${host.uami.clientId}`), META)).status, 200);
    }
    const miss = await a.get(imds('https://storage.azure.com'), META);
    assert.equal(miss.status, 503, miss.body);
    assert.equal(miss.headers['retry-after'], '5');
    assert.deepEqual(miss.json(), { error: 'temporarily_unavailable', error_description: 'The identity authority did not answer; retry the request later' });
    assert.ok(!miss.body.includes('unreachable'));
    const appService = await a.get(`/msi/token?api-version=2019-08-01&resource=https://storage.azure.com`, { 'x-identity-header': a.secret });
    assert.equal(appService.status, 503);
    assert.ok(appService.headers['retry-after']);

    // Restart the same authority (same data dir, same port); the agent is not restarted.
    const { logger } = captureLogs();
    restarted = await createOpenmsiServer({
      dataDir: t.dataDir,
      logger,
      env: { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' },
      host: '127.0.0.1',
      port: Number(new URL(t.url).port),
      autoRotate: false,
    });
    await restarted.listen();
    current = { ctx: restarted.ctx, tenantId: t.tenantId };
    down = false;

    const started = Date.now();
    let recovered: Awaited<ReturnType<TestAgent['get']>> | undefined;
    while (Date.now() - started < 5000) {
      const r = await a.get(imds('https://storage.azure.com'), META);
      if (r.status === 200) {
        recovered = r;
        break;
      }
      assert.equal(r.status, 503, r.body);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(recovered, 'recovered without restarting the agent');
    assert.equal(recovered.json<{ resource: string }>().resource, 'https://storage.azure.com');
    assert.equal((await a.get(imds(VAULT), META)).status, 200);
  });
});

describe('agent when the host is no longer recognised', () => {
  let t: TestAuthority;

  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  it('a revoked host credential stops every token at once (cache cleared), with a clear log line', async () => {
    const host = await createTestHost(t);
    const a = await startTestAgent(t, host);
    try {
      assert.equal((await a.get(imds(VAULT), META)).status, 200);
      await t.ctx.store.hostCredentials.revoke(host.keyId, t.ctx.clock.now());
      // A new audience reaches the authority, which refuses the host: refused at once.
      const miss = await a.get(imds('https://storage.azure.com'), META);
      assert.equal(miss.status, 403, miss.body);
      assert.equal(miss.json<{ error: string }>().error, 'unauthorized_client');
      assert.ok(!miss.body.includes('unreachable'));
      // …and the cached token is no longer served either.
      const hit = await a.get(imds(VAULT), META);
      assert.equal(hit.status, 403, hit.body);
      assert.equal(a.agent.hostRefused, true);
      assert.equal(a.agent.cache.size, 0);
      assert.ok(a.logLines.some((line) => /does not recognise this host/.test(line)));
      // The agent still answers (the refusal), it does not crash.
      assert.equal((await a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': a.secret })).status, 403);
    } finally {
      await a.agent.close();
      host.cleanup();
    }
  });

  it('a deleted host (its system identity deleted with it) is refused within one poll, cached tokens included', async () => {
    const host = await createTestHost(t);
    const a = await startTestAgent(t, host);
    try {
      assert.equal((await a.get(imds(VAULT), META)).status, 200);
      const started = Date.now();
      await deleteResource(t.ctx.store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: host.resourceGroup,
        type: 'Microsoft.HybridCompute/machines',
        name: host.name,
        clock: t.ctx.clock,
      });
      let status = 200;
      while (status === 200 && Date.now() - started < 5000) {
        status = (await a.get(imds(VAULT), META)).status;
        if (status === 200) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const measured = Date.now() - started;
      assert.equal(status, 403);
      assert.ok(measured <= a.agent.identities.pollMs + 500, `${String(measured)} ms`);
    } finally {
      await a.agent.close();
      host.cleanup();
    }
  });
});
