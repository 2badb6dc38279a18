/**
 * RefusalAudit (src/authority/refusal-audit.ts) on its own: a fake clock and a recording `record`. The
 * end-to-end flood through the token endpoint is test/authority/refusal-audit.test.ts; this file pins each
 * decision of the aggregation (the keys, the cap, the rows' fields, when an interval is written) in
 * milliseconds, for the `audit` mutation group.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, MINUTE, SECOND } from '../../src/shared/clock.js';
import { DEFAULT_REFUSAL_INTERVAL_MS, DEFAULT_REFUSAL_MAX_KEYS, OVERFLOW_SOURCE, RefusalAudit } from '../../src/authority/refusal-audit.js';
import type { AuditInput } from '../../src/store/audit-writer.js';

const T0 = 10 * MINUTE;

function recorder() {
  const written: AuditInput[] = [];
  return { written, record: (e: AuditInput) => Promise.resolve(void written.push(e)) };
}

/** Resolves when `check` holds, polling on a ref'd timer; rejects after `ms` (only a broken timer gets there). */
async function eventually(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${String(ms)} ms: ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }
}

void describe('RefusalAudit', () => {
  void it('writes an interval only once it has ended by the clock, or on close', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock, maxKeys: 2 });
    for (const source of ['a', 'a', 'b', 'c', 'd']) refusals.count({ source, reason: 'r' });
    clock.advance(MINUTE - 1);
    await refusals.flushEnded();
    assert.equal(written.length, 0, 'the interval has not ended');
    clock.advance(1);
    await refusals.flushEnded();
    assert.deepEqual(
      written.map((e) => [e.detail['source'], e.detail['count']]),
      [
        ['a', 2],
        ['b', 1],
        [OVERFLOW_SOURCE, 2],
      ],
    );
    await refusals.flushEnded();
    assert.equal(written.length, 3, 'nothing is written twice');
    refusals.count({ source: 'a', reason: 'r' });
    await refusals.close();
    assert.equal(written.length, 4);
    assert.equal(written[3]?.detail['windowStart'], 11 * MINUTE);
  });

  void it('with writeFirst, writes the first refusal of each (tenant, caller, source, reason) at once and counts the rest per interval', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock, writeFirst: true });
    const known = { tenantId: 't1', actor: 'app-1', target: 't1', detail: { status: 401 } };
    for (let i = 0; i < 1000; i++) refusals.count({ ...known, source: '10.0.0.1', reason: 'invalid_client/7000215' });
    refusals.count({ ...known, source: '10.0.0.2', reason: 'invalid_client/7000215' });
    refusals.count({ ...known, actor: 'app-2', source: '10.0.0.1', reason: 'invalid_client/7000215' });
    await refusals.flushEnded();
    assert.deepEqual(
      written.map((e) => [e.actor, e.tenantId, e.target, e.detail['source'], e.detail['status'], e.detail['aggregated']]),
      [
        ['app-1', 't1', 't1', '10.0.0.1', 401, undefined],
        ['app-1', 't1', 't1', '10.0.0.2', 401, undefined],
        ['app-2', 't1', 't1', '10.0.0.1', 401, undefined],
      ],
      'one row per key at once',
    );
    clock.advance(MINUTE);
    await refusals.flushEnded();
    assert.equal(written.length, 4, 'keys with nothing after their first write no row at the interval end');
    assert.deepEqual([written[3]?.actor, written[3]?.detail['source'], written[3]?.detail['count']], ['app-1', '10.0.0.1', 999]);
    await refusals.close();
  });
});

void describe('RefusalAudit: decisions pinned by mutation testing', () => {
  void it('an aggregated row carries the key, the count, the first and last refusal and the interval', async () => {
    const clock = new FakeClock(T0 + 5 * SECOND);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock });
    refusals.count({ source: '10.0.0.1', reason: 'invalid_request/90002' });
    clock.advance(10 * SECOND);
    refusals.count({ source: '10.0.0.1', reason: 'invalid_request/90002' });
    clock.advance(10 * SECOND);
    refusals.count({ source: '10.0.0.1', reason: 'invalid_request/90002', tenantId: 't1', actor: 'app-1' });
    await refusals.flush();
    assert.deepEqual(written, [
      {
        at: T0 + 15 * SECOND,
        tenantId: null,
        actor: 'anonymous',
        action: 'token.denied',
        target: '10.0.0.1',
        outcome: 'failure',
        detail: {
          aggregated: true,
          source: '10.0.0.1',
          reason: 'invalid_request/90002',
          count: 2,
          firstAt: T0 + 5 * SECOND,
          lastAt: T0 + 15 * SECOND,
          windowStart: T0,
          windowEnd: T0 + MINUTE,
        },
      },
      {
        at: T0 + 25 * SECOND,
        tenantId: 't1',
        actor: 'app-1',
        action: 'token.denied',
        target: '10.0.0.1',
        outcome: 'failure',
        detail: {
          aggregated: true,
          source: '10.0.0.1',
          reason: 'invalid_request/90002',
          count: 1,
          firstAt: T0 + 25 * SECOND,
          lastAt: T0 + 25 * SECOND,
          windowStart: T0,
          windowEnd: T0 + MINUTE,
        },
      },
    ]);
  });

  void it('keeps source, reason, tenant and caller apart: each distinct value is its own row', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock });
    const base = { source: 's', reason: 'r', tenantId: 't', actor: 'a' };
    for (const refusal of [
      base,
      base,
      { ...base, source: 's2' },
      { ...base, reason: 'r2' },
      { ...base, tenantId: 't2' },
      { ...base, actor: 'a2' },
      { ...base, tenantId: null },
    ]) {
      refusals.count(refusal);
    }
    await refusals.flush();
    assert.deepEqual(
      written.map((e) => [e.detail['source'], e.detail['reason'], e.tenantId, e.actor, e.detail['count']]),
      [
        ['s', 'r', 't', 'a', 2],
        ['s2', 'r', 't', 'a', 1],
        ['s', 'r2', 't', 'a', 1],
        ['s', 'r', 't2', 'a', 1],
        ['s', 'r', 't', 'a2', 1],
        ['s', 'r', null, 'a', 1],
      ],
    );
  });

  void it('caps distinct keys per interval at maxKeys (1000 by default); the rest go into one overflow row', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock });
    for (let i = 0; i < DEFAULT_REFUSAL_MAX_KEYS; i++) refusals.count({ source: `s${String(i)}`, reason: 'r' });
    refusals.count({ source: 's0', reason: 'r' });
    clock.advance(SECOND);
    refusals.count({ source: 'past-the-cap', reason: 'r', tenantId: 't1', actor: 'app-1' });
    clock.advance(SECOND);
    refusals.count({ source: 'also-past', reason: 'r2' });
    await refusals.flush();
    assert.equal(OVERFLOW_SOURCE, '*', 'the overflow row is the documented source `*`, never an address');
    assert.equal(written.length, DEFAULT_REFUSAL_MAX_KEYS + 1);
    assert.equal(written[0]?.detail['count'], 2, 'a key already known is still counted at the cap');
    assert.deepEqual(written.at(-1), {
      at: T0 + 2 * SECOND,
      tenantId: null,
      actor: 'anonymous',
      action: 'token.denied',
      target: OVERFLOW_SOURCE,
      outcome: 'failure',
      detail: {
        aggregated: true,
        source: OVERFLOW_SOURCE,
        reason: 'overflow',
        count: 2,
        firstAt: T0 + SECOND,
        lastAt: T0 + 2 * SECOND,
        windowStart: T0,
        windowEnd: T0 + MINUTE,
      },
    });
  });

  void it('with maxKeys 1, the second key of an interval overflows; the next interval starts empty', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock, maxKeys: 1, intervalMs: 1 });
    refusals.count({ source: 'a', reason: 'r' });
    refusals.count({ source: 'b', reason: 'r' });
    clock.advance(1);
    refusals.count({ source: 'b', reason: 'r' });
    await refusals.flush();
    assert.deepEqual(
      written.map((e) => [e.detail['source'], e.detail['count'], e.detail['windowStart'], e.detail['windowEnd']]),
      [
        ['a', 1, T0, T0 + 1],
        [OVERFLOW_SOURCE, 1, T0, T0 + 1],
        ['b', 1, T0 + 1, T0 + 2],
      ],
    );
  });

  void it('intervals are aligned to multiples of their length, and the next refusal writes the ended one', async () => {
    const clock = new FakeClock(T0 + 59 * SECOND);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock });
    refusals.count({ source: 'a', reason: 'r' });
    clock.advance(SECOND);
    refusals.count({ source: 'a', reason: 'r' });
    assert.equal(written.length, 1, 'crossing the boundary writes the interval that ended');
    assert.deepEqual([written[0]?.detail['windowStart'], written[0]?.detail['windowEnd']], [T0, T0 + MINUTE]);
    await refusals.flush();
    assert.deepEqual([written[1]?.detail['windowStart'], written[1]?.detail['windowEnd']], [T0 + MINUTE, T0 + 2 * MINUTE]);
    assert.equal(DEFAULT_REFUSAL_INTERVAL_MS, MINUTE);
  });

  void it('flushEnded() and flush() with nothing counted write nothing', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock });
    await refusals.flushEnded();
    await refusals.flush();
    clock.advance(MINUTE);
    await refusals.flushEnded();
    assert.deepEqual(written, []);
  });

  void it('with writeFirst, the first row carries the refusal’s target and detail, source and reason winning over the detail’s', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock, writeFirst: true, action: 'agent.refused' });
    refusals.count({
      source: '10.0.0.1',
      reason: 'r',
      tenantId: 't1',
      actor: 'app-1',
      target: 'the-app',
      detail: { status: 401, source: 'forged', reason: 'forged' },
    });
    refusals.count({ source: '10.0.0.2', reason: 'r' });
    clock.advance(SECOND);
    refusals.count({ source: '10.0.0.1', reason: 'r', tenantId: 't1', actor: 'app-1' });
    clock.advance(SECOND);
    refusals.count({ source: '10.0.0.1', reason: 'r', tenantId: 't1', actor: 'app-1' });
    await refusals.flush();
    assert.deepEqual(written.slice(0, 2), [
      {
        at: T0,
        tenantId: 't1',
        actor: 'app-1',
        action: 'agent.refused',
        target: 'the-app',
        outcome: 'failure',
        detail: { status: 401, source: '10.0.0.1', reason: 'r' },
      },
      {
        at: T0,
        tenantId: null,
        actor: 'anonymous',
        action: 'agent.refused',
        target: '10.0.0.2',
        outcome: 'failure',
        detail: { source: '10.0.0.2', reason: 'r' },
      },
    ]);
    assert.equal(written.length, 3);
    assert.equal(written[2]?.action, 'agent.refused');
    assert.deepEqual(
      [written[2]?.detail['count'], written[2]?.detail['firstAt'], written[2]?.detail['lastAt']],
      [2, T0 + SECOND, T0 + 2 * SECOND],
      'the counted row covers the refusals after the first one written',
    );
  });

  void it('flushEnded() resolves only once the rows are committed; a failed write goes to onError and is not retried', async () => {
    const clock = new FakeClock(T0);
    let commit: () => void = () => undefined;
    const errors: unknown[] = [];
    let calls = 0;
    let committed = false;
    const refusals = new RefusalAudit({
      record: () => {
        calls++;
        if (calls === 1) {
          return new Promise<void>((resolve) => {
            commit = () => {
              committed = true;
              resolve();
            };
          });
        }
        return Promise.reject(new Error('store down'));
      },
      clock,
      onError: (err) => errors.push(err),
    });
    refusals.count({ source: 'a', reason: 'r' });
    clock.advance(MINUTE);
    const flushed = refusals.flushEnded();
    setImmediate(() => commit());
    await flushed;
    assert.equal(committed, true, 'flushEnded() waited for the write');
    refusals.count({ source: 'b', reason: 'r' });
    await refusals.close();
    assert.deepEqual(
      errors.map((e) => (e as Error).message),
      ['store down'],
    );
    await refusals.flush();
    assert.equal(calls, 2, 'the failed interval is not written again');
  });

  void it('without onError, a failed write is swallowed', async () => {
    const refusals = new RefusalAudit({ record: () => Promise.reject(new Error('store down')), clock: new FakeClock(T0) });
    refusals.count({ source: 'a', reason: 'r' });
    await refusals.close();
  });

  void it('start() flushes an ended interval in the background, checking at most every interval (10 s at most)', async () => {
    const clock = new FakeClock(T0);
    const { written, record } = recorder();
    const refusals = new RefusalAudit({ record, clock, intervalMs: 20 });
    refusals.start();
    refusals.count({ source: 'a', reason: 'r' });
    clock.advance(20);
    await eventually(() => written.length === 1, 2000, 'the background flush');
    await refusals.close();
  });

  void it('refuses an interval or key cap that is not positive', () => {
    const clock = new FakeClock(T0);
    const record = () => Promise.resolve();
    for (const intervalMs of [0, 0.5, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new RefusalAudit({ record, clock, intervalMs }), { name: 'TypeError', message: /positive interval/ }, String(intervalMs));
    }
    for (const maxKeys of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => new RefusalAudit({ record, clock, maxKeys }), { name: 'TypeError', message: /positive key cap/ }, String(maxKeys));
    }
    assert.doesNotThrow(() => new RefusalAudit({ record, clock, intervalMs: 1, maxKeys: 1 }));
  });
});
