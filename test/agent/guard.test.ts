/**
 * The agent's guard (src/agent/guard.ts) end to end: every proxy header in any spelling is refused on every
 * path, and an `allowedPeers` address (the DNAT setup) reaches the token surfaces but never the control API.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { createTestHost, rawRequest, startTestAgent, IMDS_PATH, VAULT, type TestAgent, type TestHost } from '../support/world.js';
import { PROXY_HEADERS } from '../../src/agent/guard.js';
import { CONTROL_SESSIONS_PATH, loadOrCreateControlSecret } from '../../src/agent/control.js';

const META = { metadata: 'true' };
const FORWARDED = { error: 'invalid_request', error_description: 'Requests with X-Forwarded-For, Forwarded or another proxy header are not accepted' };

/** A non-loopback IPv4 address of this machine (a source address that is not loopback), if it has one. */
const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address;

const spellings = (name: string): string[] => [name, name.toUpperCase(), name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase())];

describe('agent guard, end to end', () => {
  let t: TestAuthority;
  let host: TestHost;
  let a: TestAgent;

  before(async () => {
    t = await startTestAuthority();
    host = await createTestHost(t);
    a = await startTestAgent(t, host, otherAddress === undefined ? {} : { allowedPeers: [otherAddress] });
  });
  after(async () => {
    await a.agent.close();
    await t.close();
    host.cleanup();
  });

  it('invariant: every proxy header (X-Real-IP, Via, True-Client-IP, …), in any case and even empty, is refused with 400 on every path', async () => {
    for (const name of [
      'x-forwarded-for',
      'forwarded',
      'x-real-ip',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-client-ip',
      'x-original-forwarded-for',
      'true-client-ip',
      'cf-connecting-ip',
      'x-cluster-client-ip',
      'via',
    ]) {
      assert.ok(PROXY_HEADERS.includes(name), `${name} is listed`);
    }
    const calls = a.agent.upstream.grantCalls;
    for (const name of PROXY_HEADERS) {
      for (const spelling of spellings(name)) {
        for (const value of ['127.0.0.1', '']) {
          const requests: [string, Promise<Awaited<ReturnType<TestAgent['get']>>>][] = [
            ['imds', a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, { ...META, [spelling]: value })],
            ['app-service', a.get(`/msi/token?api-version=2019-08-01&resource=${VAULT}`, { 'x-identity-header': a.secret, [spelling]: value })],
            ['cloud-shell', a.post('/oauth2/token', `resource=${VAULT}`, { ...META, 'content-type': 'application/x-www-form-urlencoded', [spelling]: value })],
            ['instance', a.get('/metadata/instance?format=json', { ...META, [spelling]: value })],
            [
              'control',
              a.post(CONTROL_SESSIONS_PATH, '{"identities":["[system]"]}', {
                authorization: `Bearer ${loadOrCreateControlSecret(host.dataDir)}`,
                [spelling]: value,
              }),
            ],
          ];
          for (const [path, pending] of requests) {
            const r = await pending;
            assert.equal(r.status, 400, `${spelling}: ${JSON.stringify(value)} on ${path}: ${r.body}`);
            assert.deepEqual(r.json(), FORWARDED);
          }
        }
      }
    }
    assert.equal(a.agent.upstream.grantCalls, calls, 'no refused request reached the authority');
    // Without them, the same requests are served.
    assert.equal((await a.get(`${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`, META)).status, 200);
  });

  it(
    'invariant: an allowedPeers address reaches the token surfaces but never the control API (403, no session)',
    { skip: otherAddress === undefined ? 'this machine has no non-loopback IPv4 address to send from' : false },
    async () => {
      const from = { localAddress: otherAddress!, timeoutMs: 5000 };
      const token = await rawRequest(
        a.agent.port,
        'GET',
        `${IMDS_PATH}?api-version=2018-02-01&resource=${VAULT}`,
        { ...META, host: '169.254.169.254' },
        undefined,
        from,
      );
      assert.equal(token.status, 200, token.body);
      const control = await rawRequest(
        a.agent.port,
        'POST',
        CONTROL_SESSIONS_PATH,
        { authorization: `Bearer ${loadOrCreateControlSecret(host.dataDir)}`, 'content-type': 'application/json', host: '169.254.169.254' },
        '{"identities":["[system]"]}',
        from,
      );
      assert.equal(control.status, 403, control.body);
      assert.deepEqual(control.json(), { error: 'forbidden', error_description: 'the control API is served to loopback peers only' });
      const refusal = a.audit.events.find((e) => e.surface === 'session' && e.reason === 'not_loopback');
      assert.equal(refusal?.caller.address, otherAddress, 'the refusal is audited with the peer address');
      assert.ok(!a.audit.events.some((e) => e.surface === 'session' && e.decision === 'served'), 'no session was created');
    },
  );
});
