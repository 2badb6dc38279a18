import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { httpsRequest } from '../../support/https.js';
import { HOST_API_PATHS, type HostCredentialGrant } from '../../../src/shared/host-protocol.js';
import { admin, hostAssertion, hostKey } from './helpers.js';

/**
 * The host API never logs or audits what authenticates a host: the join token (or its secret), or a host
 * assertion. Each request carries one where a careless change would log it (body, header, query string),
 * and the test checks that the requests were logged at all, so it cannot pass by logging nothing.
 */
void describe('host API log and audit redaction', () => {
  let t: TestAuthority;
  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  void it('never logs or audits a join token, its secret or a host assertion', async () => {
    const json = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
      httpsRequest(`${t.url}${path}`, { method, ca: t.caPem, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal((await admin(t, 'PUT', `/subscriptions/${t.subscriptionId}/resourceGroups/redaction-rg`, { location: 'local' })).status, 201);
    const created = await admin(
      t,
      'POST',
      `/subscriptions/${t.subscriptionId}/resourceGroups/redaction-rg/providers/Microsoft.HybridCompute/machines/box/createJoinToken`,
    );
    const { token, hostResourceId } = created.json<{ token: string; hostResourceId: string }>();
    const secret = token.split('.')[1]!;
    const before = t.logLines.length;

    const key = await hostKey();
    // Refused first (the token in the query string and a malformed key), then enrolled; then a reuse.
    assert.equal(
      (await json('POST', `${HOST_API_PATHS.enrol}?joinToken=${encodeURIComponent(token)}`, { joinToken: token, publicJwk: { kty: 'EC' } })).status,
      400,
    );
    const enrolled = await json('POST', HOST_API_PATHS.enrol, { joinToken: token, publicJwk: key.publicJwk });
    assert.equal(enrolled.status, 201, enrolled.body);
    assert.equal((await json('POST', HOST_API_PATHS.enrol, { joinToken: token, publicJwk: (await hostKey()).publicJwk })).status, 401);
    const grant = enrolled.json<HostCredentialGrant>();
    // Host calls with assertions: accepted, replayed, and one in the query string.
    const assertion = await hostAssertion(t, key, hostResourceId);
    const self = () =>
      httpsRequest(`${t.url}${HOST_API_PATHS.self}?assertion=${assertion}`, { ca: t.caPem, headers: { authorization: `Bearer ${assertion}` } });
    assert.equal((await self()).status, 200);
    assert.equal((await self()).status, 401);
    const renewAssertion = await hostAssertion(t, key, hostResourceId);
    assert.equal(
      (await json('POST', HOST_API_PATHS.renew, { publicJwk: (await hostKey()).publicJwk }, { authorization: `Bearer ${renewAssertion}` })).status,
      201,
    );
    const auditAssertion = await hostAssertion(t, key, hostResourceId);
    const record = {
      id: randomUUID(),
      at: Date.now(),
      lastAt: Date.now(),
      count: 1,
      decision: 'served',
      surface: 'imds',
      caller: { address: '127.0.0.1' },
      status: 200,
    };
    assert.equal((await json('POST', HOST_API_PATHS.audit, { records: [record] }, { authorization: `Bearer ${auditAssertion}` })).status, 200);
    await t.ctx.audit.flush();

    const written = t.logLines.slice(before);
    const log = written.join('\n');
    for (const path of [HOST_API_PATHS.enrol, HOST_API_PATHS.self, HOST_API_PATHS.renew, HOST_API_PATHS.audit]) {
      assert.ok(
        written.some((l) => l.includes(path)),
        `${path} was logged`,
      );
    }
    const audit = JSON.stringify(await t.ctx.store.audit.list({ limit: 1000 }));
    assert.ok(audit.includes(grant.keyId), 'the enrolment was audited');
    const needles: [string, string][] = [
      ['join token', token],
      ['join token secret', secret],
      ['url-encoded join token', encodeURIComponent(token)],
      ['host assertion', assertion],
      ['host assertion signature', assertion.split('.')[2]!],
      ['renewal assertion signature', renewAssertion.split('.')[2]!],
      ['audit upload assertion signature', auditAssertion.split('.')[2]!],
    ];
    for (const [what, needle] of needles) {
      assert.equal(log.includes(needle), false, `the ${what} reached the log`);
      assert.equal(audit.includes(needle), false, `the ${what} reached the audit trail`);
    }
  });
});
