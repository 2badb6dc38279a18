import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { FakeClock, MINUTE, SECOND } from '../../src/shared/clock.js';
import { DEFAULT_REFUSAL_MAX_KEYS, OVERFLOW_SOURCE } from '../../src/authority/refusal-audit.js';
import { openStore } from '../../src/store/open.js';
import type { AuditEvent } from '../../src/store/types.js';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * A flood of unauthenticated refused token requests (unknown tenant, malformed body, unknown client) is
 * audited in a bounded way: one row per (source, reason) per interval with a count, at most
 * DEFAULT_REFUSAL_MAX_KEYS + 1 rows per interval. Refusals of a known client are written once per (client,
 * source, reason) and interval at once, the rest counted in one row at the interval's end.
 */
void describe('bounded audit of unauthenticated refusals', () => {
  let t: TestAuthority;
  let clock: FakeClock;
  before(async () => {
    // Start mid-interval, so the whole flood falls in one interval.
    clock = new FakeClock(Math.floor(Date.now() / MINUTE) * MINUTE + SECOND);
    t = await startTestAuthority({ clock });
  });
  after(async () => {
    await t.close();
  });

  async function send(count: number, request: (i: number) => InjectOptions) {
    const statuses = new Map<number, number>();
    for (let start = 0; start < count; start += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, count - start) }, (_, j) => t.app.inject(request(start + j))));
      for (const r of batch) statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
    }
    return statuses;
  }

  const denied = async (list: (q: { action: string; limit: number }) => Promise<AuditEvent[]>) => list({ action: 'token.denied', limit: 1_000_000 });

  void it('10,000 refused requests from a flood write at most one row per source and reason, capped per interval', async () => {
    const tokenPath = `/${t.tenantId}/oauth2/v2.0/token`;
    const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
    const baseline = (await denied((q) => t.ctx.store.audit.list(q))).length;

    // 4,000 to an unknown tenant, 3,000 JSON bodies, 2,000 unknown client ids: three sources, three reasons.
    const unknownTenant = await send(4000, () => ({
      method: 'POST',
      url: `/${randomUUID()}/oauth2/v2.0/token`,
      headers: FORM,
      remoteAddress: '10.0.0.1',
      payload: form({ grant_type: 'client_credentials', client_id: randomUUID(), client_secret: 'x', scope: 'https://vault.azure.net/.default' }),
    }));
    assert.deepEqual([...unknownTenant], [[400, 4000]]);
    const malformed = await send(3000, () => ({
      method: 'POST',
      url: tokenPath,
      headers: { 'content-type': 'application/json' },
      remoteAddress: '10.0.0.2',
      payload: '{"grant_type":"client_credentials"}',
    }));
    assert.deepEqual([...malformed], [[400, 3000]]);
    const unknownClient = await send(2000, () => ({
      method: 'POST',
      url: tokenPath,
      headers: FORM,
      remoteAddress: '10.0.0.3',
      payload: form({ grant_type: 'client_credentials', client_id: randomUUID(), client_secret: 'x', scope: 'https://vault.azure.net/.default' }),
    }));
    assert.deepEqual([...unknownClient], [[400, 2000]]);
    // 1,000 more, each from its own address: past the cap, the rest are counted in one overflow row.
    await send(1000, (i) => ({
      method: 'POST',
      url: `/nosuchtenant${String(i)}/oauth2/token`,
      headers: FORM,
      remoteAddress: `10.1.${String(i >> 8)}.${String(i & 255)}`,
      payload: 'grant_type=client_credentials',
    }));
    // A known client's refusals: the first of the interval is written at once, the rest are counted.
    for (let i = 0; i < 3; i++) {
      const r = await t.app.inject({
        method: 'POST',
        url: tokenPath,
        headers: FORM,
        remoteAddress: '10.0.0.4',
        payload: form({ grant_type: 'client_credentials', client_id: t.admin.clientId, client_secret: 'wrong', scope: 'https://vault.azure.net/.default' }),
      });
      assert.equal(r.statusCode, 401);
    }
    await t.ctx.audit.flush();
    const during = (await denied((q) => t.ctx.store.audit.list(q))).slice(0, -baseline || undefined);
    assert.equal(during.length, 1, "only the known client's first refusal is written while the interval runs");
    assert.ok(
      during.every((e) => e.actor === t.admin.clientId && e.detail['aadsts'] === 7000215 && e.tenantId === t.tenantId && e.detail['aggregated'] === undefined),
    );

    // The next interval: its first refusal flushes the previous interval.
    clock.advance(MINUTE);
    await t.app.inject({
      method: 'POST',
      url: `/${randomUUID()}/oauth2/token`,
      headers: FORM,
      remoteAddress: '10.0.0.1',
      payload: 'grant_type=client_credentials',
    });
    await t.app.inject({
      method: 'POST',
      url: tokenPath,
      headers: FORM,
      remoteAddress: '10.0.0.4',
      payload: form({ grant_type: 'client_credentials', client_id: t.admin.clientId, client_secret: 'wrong', scope: 'https://vault.azure.net/.default' }),
    });
    await t.ctx.audit.flush();
    const aggregated = (await denied((q) => t.ctx.store.audit.list(q))).filter((e) => e.detail['aggregated'] === true);
    const known = aggregated.filter((e) => e.actor !== 'anonymous');
    assert.deepEqual(
      known.map((e) => [e.actor, e.tenantId, e.detail['source'], e.detail['reason'], e.detail['count']]),
      [[t.admin.clientId, t.tenantId, '10.0.0.4', 'invalid_client/7000215', 2]],
      "the known client's other two refusals, counted in one row of its own",
    );
    const rows = aggregated.filter((e) => e.actor === 'anonymous');
    assert.equal(rows.length, DEFAULT_REFUSAL_MAX_KEYS + 1, 'one row per (source, reason) up to the cap, plus the overflow row');
    const total = rows.reduce((sum, e) => sum + (e.detail['count'] as number), 0);
    assert.equal(total, 10_000, 'every refusal is counted');
    const bySource = new Map(rows.map((e) => [e.detail['source'] as string, e]));
    assert.equal(bySource.get('10.0.0.1')?.detail['count'], 4000);
    assert.equal(bySource.get('10.0.0.1')?.detail['reason'], 'invalid_request/90002');
    assert.equal(bySource.get('10.0.0.2')?.detail['count'], 3000);
    assert.equal(bySource.get('10.0.0.2')?.detail['reason'], 'invalid_request/900561');
    assert.equal(bySource.get('10.0.0.3')?.detail['count'], 2000);
    assert.equal(bySource.get('10.0.0.3')?.detail['reason'], 'unauthorized_client/700016');
    assert.equal(bySource.get(OVERFLOW_SOURCE)?.detail['count'], 3, '1,003 distinct keys: three past the cap');
    for (const e of rows) {
      assert.equal((e.detail['windowEnd'] as number) - (e.detail['windowStart'] as number), MINUTE);
      assert.ok((e.detail['windowStart'] as number) <= e.at && e.at < (e.detail['windowEnd'] as number));
    }

    // Closing the authority flushes the interval still open.
    await t.authority.close();
    const store = await openStore(t.storeLocation);
    try {
      const last = (await denied((q) => store.audit.list(q))).filter((e) => e.detail['aggregated'] === true && e.actor === 'anonymous');
      assert.equal(last.length, rows.length + 1);
      assert.equal(last[0]?.detail['count'], 1);
      assert.equal(last[0]?.detail['windowStart'], rows[0]!.detail['windowEnd']);
    } finally {
      await store.close();
    }
  });
});
