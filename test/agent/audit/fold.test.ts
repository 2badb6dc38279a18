/**
 * Audit folding (src/agent/audit/fold.ts), store-less: what of an event reaches a record (only the contract's
 * fields, each bounded and without raw control characters), how events fold, and how drops are counted. The
 * spool and upload pipeline around it is test/agent/runtime/audit.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AuditWindow, boundedField, DropCounter, DROP_REASON_PREFIX, DROPPED_CALLER_ADDRESS, foldKey, recordOf } from '../../../src/agent/audit/fold.js';
import type { AgentAuditEvent } from '../../../src/agent/contracts.js';
import { AGENT_AUDIT_FIELD_LIMITS as L, AUDIT_TRUNCATION_MARKER as MARK, type AgentAuditRecord } from '../../../src/shared/host-protocol.js';
import { refusedImdsEvent } from '../../support/agent-audit.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const event = refusedImdsEvent;

void describe('boundedField', () => {
  void it('drops what is not a non-empty string', () => {
    for (const value of ['', undefined, null, 7, ['a'], { a: 1 }]) assert.equal(boundedField(value, 10), undefined, JSON.stringify(value));
  });

  void it('writes every C0 and C1 control character as \\uXXXX and keeps the rest', () => {
    assert.equal(boundedField('a\u0000b\nc\u001fd\u007fe\u0085f\u009fg', 100), 'a\\u0000b\\u000ac\\u001fd\\u007fe\\u0085f\\u009fg');
    assert.equal(boundedField(' ~\u00a0é€😀', 100), ' ~\u00a0é€😀');
  });

  void it('keeps a value of exactly max characters; cuts a longer one to max, ending in the marker', () => {
    assert.equal(boundedField('x'.repeat(20), 20), 'x'.repeat(20));
    const cut = boundedField('x'.repeat(21), 20);
    assert.equal(cut, 'x'.repeat(20 - MARK.length) + MARK);
    assert.equal(cut?.length, 20);
    // The escapes count: four control characters become 24 characters.
    assert.equal(boundedField('\u0000'.repeat(4), 24), '\\u0000'.repeat(4));
    assert.equal(boundedField('\u0000'.repeat(4), 23)?.length, 23);
  });

  void it('never splits a surrogate pair at the cut', () => {
    const keep = 20 - MARK.length;
    // A pair whose high half would be the last character kept: the whole pair goes.
    const value = `${'x'.repeat(keep - 1)}😀${'y'.repeat(30)}`;
    assert.equal(boundedField(value, 20), `${'x'.repeat(keep - 1)}${MARK}`);
    // A pair wholly before the cut stays.
    const before = `${'x'.repeat(keep - 2)}😀${'y'.repeat(30)}`;
    assert.equal(boundedField(before, 20), `${'x'.repeat(keep - 2)}😀${MARK}`);
    // A BMP character just below and just above the high-surrogate range is kept.
    for (const c of ['\ud7ff', '\udc00']) assert.equal(boundedField(`${'x'.repeat(keep - 1)}${c}${'y'.repeat(30)}`, 20), `${'x'.repeat(keep - 1)}${c}${MARK}`);
    // Both ends of the high-surrogate range.
    for (const pair of ['\ud800\udc00', '\udbff\udfff'])
      assert.equal(boundedField(`${'x'.repeat(keep - 1)}${pair}${'y'.repeat(30)}`, 20), `${'x'.repeat(keep - 1)}${MARK}`);
  });
});

void describe('recordOf', () => {
  void it('copies exactly the contract’s fields of an event, nothing a caller attached', () => {
    const attached = {
      ...event({ source: 'cache', identity: 'oid-1', session: 's-1', decision: 'served', status: 200 }),
      token: 'eyJ.secret',
      headers: { 'x-identity-header': 'h' },
    };
    const record = recordOf(attached, 1000, 'id-1');
    assert.deepEqual(record, {
      id: 'id-1',
      at: 1000,
      lastAt: 1000,
      count: 1,
      decision: 'served',
      surface: 'imds',
      caller: { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/python3' },
      status: 200,
      source: 'cache',
      identity: 'oid-1',
      audience: 'https://vault.azure.net',
      reason: 'invalid_resource',
      session: 's-1',
    });
    assert.match(recordOf(event(), 1).id, UUID, 'a fresh UUID unless given');
  });

  void it('anything but served is refused; absent optional fields stay absent', () => {
    const record = recordOf(event({ decision: 'maybe' as 'served', audience: undefined, reason: undefined }), 5, 'id');
    assert.equal(record.decision, 'refused');
    assert.deepEqual(Object.keys(record).sort(), ['at', 'caller', 'count', 'decision', 'id', 'lastAt', 'status', 'surface']);
  });

  void it('refuses what is not an event', () => {
    assert.throws(() => recordOf({ ...event(), surface: undefined } as unknown as AgentAuditEvent, 1), { name: 'TypeError', message: 'not an audit event' });
    assert.throws(() => recordOf({ ...event(), status: '400' } as unknown as AgentAuditEvent, 1), TypeError);
  });

  void it('bounds every text field to its limit and escapes control characters in each', () => {
    const long = (n: number) => 'a'.repeat(n + 5);
    const record = recordOf(
      event({
        identity: long(L.identity),
        audience: long(L.audience),
        reason: long(L.reason),
        session: long(L.session),
        caller: { address: long(L.callerAddress), exe: long(L.callerExe) },
      }),
      1,
    );
    assert.deepEqual(
      [
        record.identity?.length,
        record.audience?.length,
        record.reason?.length,
        record.session?.length,
        record.caller.address.length,
        record.caller.exe?.length,
      ],
      [L.identity, L.audience, L.reason, L.session, L.callerAddress, L.callerExe],
    );
    for (const field of [record.identity, record.audience, record.reason, record.session, record.caller.address, record.caller.exe])
      assert.ok(field?.endsWith(MARK));
    const nul = recordOf(event({ identity: 'i\n', audience: 'a\n', reason: 'r\n', session: 's\n', caller: { address: 'c\n', exe: 'e\n' } }), 1);
    assert.deepEqual(
      [nul.identity, nul.audience, nul.reason, nul.session, nul.caller.address, nul.caller.exe],
      ['i\\u000a', 'a\\u000a', 'r\\u000a', 's\\u000a', 'c\\u000a', 'e\\u000a'],
    );
  });

  void it('caller: address "unknown" when absent; pid and uid only whole numbers from 0 to 2^32; exe only when a string', () => {
    assert.deepEqual(recordOf(event({ caller: undefined as unknown as AgentAuditEvent['caller'] }), 1).caller, { address: DROPPED_CALLER_ADDRESS });
    assert.deepEqual(recordOf(event({ caller: { address: '' } }), 1).caller, { address: 'unknown' });
    for (const field of ['pid', 'uid'] as const) {
      for (const ok of [0, 2 ** 32, 7]) assert.equal(recordOf(event({ caller: { address: 'a', [field]: ok } }), 1).caller[field], ok, `${field} ${String(ok)}`);
      for (const bad of [-1, 2 ** 32 + 1, 1.5, '7', Number.NaN]) {
        assert.equal(
          field in recordOf(event({ caller: { address: 'a', [field]: bad } as unknown as AgentAuditEvent['caller'] }), 1).caller,
          false,
          `${field} ${String(bad)}`,
        );
      }
    }
    assert.equal('exe' in recordOf(event({ caller: { address: 'a', exe: '' } }), 1).caller, false);
  });
});

void describe('foldKey', () => {
  void it('differs when any field but id, times and count differs', () => {
    const base: AgentAuditRecord = recordOf(event({ source: 'cache', identity: 'i', session: 's' }), 1, 'id');
    const same = { ...base, id: 'other', at: 9, lastAt: 99, count: 5 };
    assert.equal(foldKey(same), foldKey(base));
    const variants: Partial<AgentAuditRecord>[] = [
      { decision: 'served' },
      { source: 'authority' },
      { surface: 'arc' },
      { identity: 'j' },
      { audience: 'https://management.azure.com/' },
      { caller: { ...base.caller, address: '127.0.0.2' } },
      { caller: { ...base.caller, pid: 43 } },
      { caller: { ...base.caller, uid: 1001 } },
      { caller: { ...base.caller, exe: '/bin/sh' } },
      { status: 401 },
      { reason: 'other' },
      { session: 't' },
    ];
    const keys = new Set([foldKey(base), ...variants.map((v) => foldKey({ ...base, ...v }))]);
    assert.equal(keys.size, variants.length + 1);
  });
});

void describe('DropCounter', () => {
  void it('counts by kind, decision, surface and status, with the earliest and latest time, and resets on take', () => {
    const drops = new DropCounter();
    drops.add('spool_full', 'served', 'imds', 200, 50, 60, 3);
    drops.add('spool_full', 'served', 'imds', 200, 40, 55, 2);
    drops.add('spool_full', 'served', 'imds', 200, 45, 70, 1);
    drops.add('spool_full', 'refused', 'imds', 200, 1, 1, 1);
    drops.add('spool_error', 'served', 'imds', 200, 1, 1, 1);
    drops.add('spool_full', 'served', 'arc', 200, 1, 1, 1);
    drops.add('spool_full', 'served', 'imds', 201, 1, 1, 1);
    assert.equal(drops.total, 10);
    assert.equal(drops.size, 5);
    const taken = drops.take();
    for (const r of taken) {
      assert.match(r.id, UUID);
      assert.deepEqual(r.caller, { address: 'unknown' });
    }
    assert.deepEqual(
      taken.map((r) => [r.reason, r.decision, r.surface, r.status, r.count, r.at, r.lastAt]),
      [
        ['audit_dropped:spool_full', 'served', 'imds', 200, 6, 40, 70],
        ['audit_dropped:spool_full', 'refused', 'imds', 200, 1, 1, 1],
        ['audit_dropped:spool_error', 'served', 'imds', 200, 1, 1, 1],
        ['audit_dropped:spool_full', 'served', 'arc', 200, 1, 1, 1],
        ['audit_dropped:spool_full', 'served', 'imds', 201, 1, 1, 1],
      ],
    );
    assert.equal(drops.size, 0);
    assert.deepEqual(drops.take(), []);
    assert.equal(drops.total, 10, 'the total is of every drop since the counter was made');
  });

  void it('says what it counts with values of the contract: a status outside 100..599 as 500, an unknown surface as imds', () => {
    const drops = new DropCounter();
    for (const status of [0, 99, 600, 200.5, Number.NaN]) drops.add('refused', 'refused', 'imds', status, 1, 1, 1);
    drops.add('refused', 'refused', 'telnet' as 'imds', 100, 1, 1, 1);
    drops.add('refused', 'refused', 'imds', 599, 1, 1, 1);
    assert.deepEqual(
      drops.take().map((r) => [r.surface, r.status, r.count]),
      [
        ['imds', 500, 5],
        ['imds', 100, 1],
        ['imds', 599, 1],
      ],
    );
  });

  void it('past 64 distinct counters, one overflow counter per kind keeps counting, as a valid record', () => {
    const drops = new DropCounter();
    for (let status = 100; status < 164; status++) drops.add('queue_full', 'refused', 'imds', status, 1, 1, 1);
    assert.equal(drops.size, 64);
    drops.add('queue_full', 'served', 'arc', 200, 5, 6, 2);
    drops.add('queue_full', 'refused', 'session', 300, 3, 9, 3);
    drops.add('queue_full', 'refused', 'imds', 100, 1, 1, 1);
    drops.add('spool_full', 'refused', 'imds', 300, 1, 1, 4);
    assert.equal(drops.size, 66);
    const taken = drops.take();
    assert.equal(taken[0]?.count, 2, 'a counter already known keeps counting past the bound');
    assert.deepEqual(
      taken.slice(64).map((r) => [r.reason, r.decision, r.surface, r.status, r.count, r.at, r.lastAt]),
      [
        ['audit_dropped:queue_full', 'served', 'arc', 200, 5, 3, 9],
        ['audit_dropped:spool_full', 'refused', 'imds', 300, 4, 1, 1],
      ],
    );
  });

  void it('addRecord counts a record; restore puts taken counts back under their kind without adding to the total', () => {
    const drops = new DropCounter();
    drops.addRecord('window_full', recordOf(event(), 7, 'id'));
    const taken = drops.take();
    assert.deepEqual(
      taken.map((r) => [r.reason, r.count, r.at, r.status]),
      [[`${DROP_REASON_PREFIX}window_full`, 1, 7, 400]],
    );
    drops.add('window_full', 'refused', 'imds', 400, 10, 12, 2);
    drops.restore(taken);
    assert.equal(drops.total, 3);
    assert.deepEqual(
      drops.take().map((r) => [r.reason, r.count, r.at, r.lastAt]),
      [['audit_dropped:window_full', 3, 7, 12]],
    );
  });
});

void describe('AuditWindow', () => {
  void it('folds identical outcomes into one record with a count and the first and last time', () => {
    const drops = new DropCounter();
    const window = new AuditWindow(10, drops);
    window.add(event(), 50);
    window.add(event(), 20);
    window.add(event(), 80);
    window.add(event({ status: 401 }), 30);
    assert.equal(window.queued, 4);
    const records = window.take();
    assert.equal(window.queued, 0);
    assert.deepEqual(
      records.map((r) => [r.status, r.count, r.at, r.lastAt]),
      [
        [400, 3, 20, 80],
        [401, 1, 30, 30],
      ],
    );
    for (const r of records) assert.match(r.id, UUID);
    assert.notEqual(records[0]?.id, records[1]?.id);
    assert.deepEqual(window.take(), [], 'a new window starts empty');
  });

  void it('keeps the earliest and latest time whatever order the events come in', () => {
    const window = new AuditWindow(10, new DropCounter());
    for (const at of [50, 80, 20, 60]) window.add(event(), at);
    assert.deepEqual(
      window.take().map((r) => [r.count, r.at, r.lastAt]),
      [[4, 20, 80]],
    );
  });

  void it('reads the caller when folding, so attribution resolved after the request counts', () => {
    const window = new AuditWindow(10, new DropCounter());
    const caller: { address: string; pid?: number } = { address: '127.0.0.1' };
    window.add(event({ caller }), 1);
    caller.pid = 77;
    assert.equal(window.take()[0]?.caller.pid, 77);
  });

  void it('keeps folding into known records past its bound, and counts new ones as window_full drops', () => {
    const drops = new DropCounter();
    const window = new AuditWindow(2, drops);
    window.add(event({ status: 400 }), 1);
    window.add(event({ status: 401 }), 2);
    window.add(event({ status: 402 }), 3);
    window.add(event({ status: 400 }), 4);
    window.fold();
    window.add(event({ status: 403 }), 5);
    const records = window.take();
    assert.deepEqual(
      records.map((r) => [r.status, r.count]),
      [
        [400, 2],
        [401, 1],
      ],
    );
    assert.deepEqual(
      drops.take().map((r) => [r.reason, r.status, r.count, r.at]),
      [
        ['audit_dropped:window_full', 402, 1, 3],
        ['audit_dropped:window_full', 403, 1, 5],
      ],
    );
  });

  void it('skips what is not an event and goes on', () => {
    const window = new AuditWindow(10, new DropCounter());
    window.add({ surface: 7 } as unknown as AgentAuditEvent, 1);
    window.add(event(), 2);
    assert.deepEqual(
      window.take().map((r) => r.at),
      [2],
    );
  });
});
