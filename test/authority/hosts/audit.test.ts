/**
 * Agent audit ingestion (src/authority/hosts/audit.ts): each record of an upload is checked on its own; the
 * valid ones are stored, the others are counted in one `agent.audit.dropped` event of the host. One bad
 * record must never refuse a batch: the agent would send it again for ever and no later record of that
 * host would arrive (issue 15, finding 5).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { AGENT_AUDIT_FIELD_LIMITS, HOST_API_PATHS, type HostCredentialGrant } from '../../../src/shared/host-protocol.js';
import { putResourceGroup } from '../../../src/directory/resources.js';
import { AUDIT_DROPPED_ACTION } from '../../../src/authority/hosts/audit.js';
import { admin, call, hostAssertion, hostKey, type HostKey, type JsonResponse } from './helpers.js';
import { uploadRecord } from '../../support/agent-audit.js';

const MACHINES = 'providers/Microsoft.HybridCompute/machines';

/** A valid record of the contract. */
function valid(now: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return uploadRecord(randomUUID(), now, overrides);
}

/** One record of each way a record can break the contract (each alone in a batch with valid ones). */
function badRecords(now: number): [string, unknown][] {
  const L = AGENT_AUDIT_FIELD_LIMITS;
  return [
    ['audience past its bound (the finding: resource > 2048)', valid(now, { audience: `https://vault.azure.net/${'a'.repeat(L.audience)}` })],
    ['audience with a NUL', valid(now, { audience: 'https://vault.azure.net/\u0000' })],
    ['identity past its bound', valid(now, { identity: 'i'.repeat(L.identity + 1) })],
    ['reason past its bound', valid(now, { reason: 'r'.repeat(L.reason + 1) })],
    ['session past its bound', valid(now, { session: 's'.repeat(L.session + 1) })],
    ['caller.exe past its bound', valid(now, { caller: { address: '127.0.0.1', exe: `/${'x'.repeat(L.callerExe)}` } })],
    ['caller.address past its bound', valid(now, { caller: { address: '1'.repeat(L.callerAddress + 1) } })],
    ['caller.address with a line break', valid(now, { caller: { address: '127.0.0.1\nforged' } })],
    ['no caller', valid(now, { caller: {} })],
    ['unknown surface', valid(now, { surface: 'telnet' })],
    ['id not a UUID', valid(now, { id: 'not-a-uuid' })],
    ['count 0', valid(now, { count: 0 })],
    ['lastAt before at', valid(now, { lastAt: now - 3000 })],
    ["status 0 (an old agent's overflow drop count)", valid(now, { status: 0 })],
    ['decision unknown', valid(now, { decision: 'maybe' })],
    ['source unknown', valid(now, { source: 'disk' })],
    ['not an object', 'record'],
    ['null', null],
    ['an array', [1, 2]],
  ];
}

for (const backend of STORE_BACKENDS)
  describe(`agent audit ingestion (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let clock: FakeClock;
    let key: HostKey;
    let grant: HostCredentialGrant;

    before(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestAuthority({ backend, clock });
      await putResourceGroup(t.ctx.store, { subscriptionId: t.subscriptionId, name: 'audit-rg', location: 'local', clock });
      const path = `/subscriptions/${t.subscriptionId}/resourceGroups/audit-rg/${MACHINES}/audited`;
      const join = await admin(t, 'POST', `${path}/createJoinToken`);
      assert.equal(join.status, 200, join.body);
      key = await hostKey();
      const enrolled = await call(t, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: join.json<{ token: string }>().token, publicJwk: key.publicJwk } });
      assert.equal(enrolled.status, 201, enrolled.body);
      grant = enrolled.json<HostCredentialGrant>();
    });
    after(async () => {
      await t.close();
    });

    const upload = async (records: unknown[]): Promise<JsonResponse> =>
      call(t, 'POST', HOST_API_PATHS.audit, { bearer: await hostAssertion(t, key, grant.hostResourceId), body: { records } });
    const droppedEvents = () => t.ctx.store.audit.list({ action: AUDIT_DROPPED_ACTION, involving: [[grant.hostResourceId]], limit: 1000 });

    it('invariant: one bad record never refuses its batch — the valid records are stored, the bad one counted in agent.audit.dropped', async () => {
      for (const [what, bad] of badRecords(clock.now())) {
        const before = valid(clock.now());
        const after = valid(clock.now(), { decision: 'served', source: 'cache', status: 200, reason: undefined });
        const known = new Set((await droppedEvents()).map((e) => e.id));
        const response = await upload([before, bad, after]);
        assert.equal(response.status, 200, `${what}: ${response.body}`);
        assert.deepEqual(response.json(), { accepted: 2, stored: 2, refused: 1 }, what);
        for (const record of [before, after]) {
          assert.ok(
            (await t.ctx.store.audit.list({ involving: [[grant.hostResourceId]], limit: 1000 })).some((e) => e.id === record['id']),
            `${what}: valid record stored`,
          );
        }
        const added = (await droppedEvents()).filter((e) => !known.has(e.id));
        assert.equal(added.length, 1, `${what}: one agent.audit.dropped event`);
        const event = added[0]!;
        assert.equal(event.actor, grant.hostResourceId);
        assert.equal(event.target, grant.hostResourceId);
        assert.equal(event.tenantId, t.tenantId);
        assert.equal(event.outcome, 'failure');
        assert.equal(event.detail['count'], 1, what);
        const reasons = event.detail['reasons'] as { reason: string; count: number }[];
        assert.equal(reasons.length, 1, what);
        assert.match(reasons[0]!.reason, /\brecord(\.[\w.]+)? (must be|repeats)/, what);
        assert.ok(
          !JSON.stringify(event).includes('\u0000') && !JSON.stringify(event).includes('aaaaaaaa'),
          `${what}: the refused value is not copied into the event`,
        );

        // The same batch again (its answer was lost): stored once, counted once.
        assert.deepEqual((await upload([before, bad, after])).json(), { accepted: 2, stored: 0, refused: 1 }, what);
        assert.equal((await droppedEvents()).filter((e) => !known.has(e.id)).length, 1, `${what}: a retried batch is counted once`);
      }
    });

    it('an upload without a bad record writes no agent.audit.dropped event', async () => {
      const known = (await droppedEvents()).length;
      const response = await upload([valid(clock.now()), valid(clock.now())]);
      assert.deepEqual(response.json(), { accepted: 2, stored: 2, refused: 0 });
      assert.equal((await droppedEvents()).length, known);
    });

    it('invariant: a batch repeating a record id stores the first and counts the repeat', async () => {
      const record = valid(clock.now());
      const response = await upload([record, { ...record }]);
      assert.deepEqual(response.json(), { accepted: 1, stored: 1, refused: 1 });
    });

    it('invariant: for any mix of valid and bad records, every valid record is stored and every bad one counted (property)', async () => {
      const now = clock.now();
      const bad = badRecords(now).map(([, r]) => r);
      await fc.assert(
        fc.asyncProperty(fc.array(fc.oneof(fc.constant(-1), fc.nat({ max: bad.length - 1 })), { minLength: 1, maxLength: 12 }), async (picks) => {
          const batch = picks.map((p) => (p < 0 ? valid(now) : bad[p]));
          const good = picks.filter((p) => p < 0).length;
          const response = await upload(batch);
          assert.equal(response.status, 200, response.body);
          const answer = response.json<{ accepted: number; stored: number; refused: number }>();
          assert.deepEqual(answer, { accepted: good, stored: good, refused: batch.length - good });
        }),
        { numRuns: 40 },
      );
    });

    it('refuses whole only what is not an upload: no records array, more than 1000 records', async () => {
      for (const body of [{}, { records: 'x' }, { records: Array.from({ length: 1001 }, () => valid(clock.now())) }]) {
        const response = await call(t, 'POST', HOST_API_PATHS.audit, { bearer: await hostAssertion(t, key, grant.hostResourceId), body });
        assert.equal(response.status, 400, response.body);
        assert.equal(response.json<{ error: { code: string } }>().error.code, 'InvalidRequest');
      }
    });
  });
