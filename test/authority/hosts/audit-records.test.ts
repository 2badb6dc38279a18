/**
 * The agent audit upload's contract (src/authority/hosts/audit.ts), store-less: `parseUpload` (which records
 * are stored, which are refused and why), `toAuditEvent` (what a stored record says) and `droppedEvent` (how
 * the refused ones are counted). The route itself is test/authority/hosts/audit.test.ts (an authority per run).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AUDIT_DROPPED_ACTION, droppedEvent, parseUpload, toAuditEvent, type RefusedRecord } from '../../../src/authority/hosts/audit.js';
import type { AuthenticatedHost } from '../../../src/authority/hosts/authenticate.js';
import { AGENT_AUDIT_FIELD_LIMITS as L, AGENT_SURFACES, AUDIT_UPLOAD_MAX_RECORDS, type AgentAuditRecord } from '../../../src/shared/host-protocol.js';
import { uploadRecord } from '../../support/agent-audit.js';

const NOW = Date.UTC(2026, 11, 7, 12);
const MAX_TIME = 253_402_300_799_999;
const HOST_ID = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m1';
const caller = { host: { id: HOST_ID }, tenantId: 'tenant-1' } as unknown as AuthenticatedHost;
const ID = '6f1c2b9e-3d4a-4b8c-9e7f-0a1b2c3d4e5f';

function valid(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return uploadRecord(ID, NOW, overrides);
}

/** The one record's outcome: the parsed record, or the refusal's reason. */
function one(record: unknown): AgentAuditRecord | string {
  const { records, refused } = parseUpload({ records: [record] });
  assert.equal(records.length + refused.length, 1);
  return records[0] ?? refused[0]!.reason;
}

function accepts(overrides: Record<string, unknown>, what: string): AgentAuditRecord {
  const r = one(valid(overrides));
  assert.equal(typeof r, 'object', `${what}: refused (${JSON.stringify(r)})`);
  return r as AgentAuditRecord;
}

function refuses(record: unknown, field: RegExp, what: string): void {
  const r = one(record);
  assert.equal(typeof r, 'string', `${what}: accepted`);
  assert.match(r as string, field, what);
}

void describe('agent audit records: the contract, record by record', () => {
  void it('accepts a valid record as it came, optional fields only when sent', () => {
    assert.deepEqual(accepts({}, 'valid'), {
      id: ID,
      at: NOW - 2000,
      lastAt: NOW - 1000,
      count: 3,
      decision: 'refused',
      surface: 'imds',
      caller: { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/python3' },
      status: 400,
      audience: 'https://vault.azure.net',
      reason: 'invalid_resource',
    });
    const minimal = { id: ID, at: 0, lastAt: 0, count: 1, decision: 'served', surface: 'arc', caller: { address: 'a' }, status: 200 };
    assert.deepEqual(one(minimal), minimal);
    const full = accepts({ source: 'cache', identity: 'oid-1', session: 'sess-1', decision: 'served' }, 'full');
    assert.deepEqual([full.source, full.identity, full.session, full.decision], ['cache', 'oid-1', 'sess-1', 'served']);
    assert.equal(accepts({ source: 'authority' }, 'authority').source, 'authority');
    for (const surface of AGENT_SURFACES) assert.equal(accepts({ surface }, surface).surface, surface);
  });

  void it('refuses what is not an object', () => {
    for (const value of [null, 'record', 42, [1, 2], undefined]) refuses(value, /record must be an object/, String(value));
  });

  void it('text fields: 1 to their bound, no control characters; optional ones may be absent, never empty', () => {
    const fields: [string, number][] = [
      ['identity', L.identity],
      ['audience', L.audience],
      ['reason', L.reason],
      ['session', L.session],
    ];
    for (const [field, max] of fields) {
      assert.equal(accepts({ [field]: 'x'.repeat(max) }, `${field} at its bound`)[field as 'reason'], 'x'.repeat(max));
      assert.equal(accepts({ [field]: 'x' }, `${field} of one character`)[field as 'reason'], 'x');
      assert.equal(field in accepts({ [field]: undefined }, `${field} absent`), false);
      for (const [what, value] of [
        ['past its bound', 'x'.repeat(max + 1)],
        ['empty', ''],
        ['a NUL', 'a\u0000b'],
        ['a line break', 'a\nb'],
        ['a DEL', 'a\u007fb'],
        ['a C1 control', 'a\u0085b'],
        ['a number', 7],
        ['null', null],
      ] as const) {
        refuses(
          valid({ [field]: value }),
          new RegExp(`record\\.${field} must be a string of 1 to ${String(max)} characters without control characters`),
          `${field} ${what}`,
        );
      }
    }
  });

  void it('id: a UUID, required', () => {
    refuses(valid({ id: undefined }), /record\.id must be a string of 1 to 36/, 'no id');
    refuses(valid({ id: 'not-a-uuid' }), /record\.id must be a UUID/, 'not a UUID');
    refuses(valid({ id: `${ID}0` }), /record\.id must be a string of 1 to 36/, '37 characters');
    refuses(valid({ id: 42 }), /record\.id must be a string/, 'a number');
    assert.equal(accepts({ id: ID.toUpperCase() }, 'upper case').id, ID.toUpperCase());
  });

  void it('whole numbers within their bounds: at, lastAt (not before at), count, status', () => {
    const bounds: [string, number, number, Record<string, unknown>][] = [
      ['at', 0, MAX_TIME, { lastAt: MAX_TIME }],
      ['lastAt', NOW - 2000, MAX_TIME, {}],
      ['count', 1, Number.MAX_SAFE_INTEGER, {}],
      ['status', 100, 599, {}],
    ];
    for (const [field, min, max, extra] of bounds) {
      assert.equal(accepts({ ...extra, [field]: min }, `${field} at its minimum`)[field as 'count'], min);
      assert.equal(accepts({ ...extra, [field]: max }, `${field} at its maximum`)[field as 'count'], max);
      for (const [what, value] of [
        ['below its minimum', min - 1],
        ['above its maximum', max + 1],
        ['a fraction', min + 0.5],
        ['a string', String(min)],
        ['absent', undefined],
        ['NaN', Number.NaN],
      ] as const) {
        refuses(valid({ ...extra, [field]: value }), new RegExp(`record\\.${field} must be a whole number from \\d+ to \\d+`), `${field} ${what}`);
      }
    }
    refuses(valid({ at: NOW, lastAt: NOW - 1 }), /record\.lastAt must be a whole number from 1796/, 'lastAt before at: its minimum is at');
    refuses(valid({ at: MAX_TIME + 1, lastAt: MAX_TIME + 1 }), /record\.at must be a whole number from 0 to 253402300799999/, 'after year 9999');
  });

  void it("decision, source, surface: only the contract's values", () => {
    for (const decision of ['maybe', 'SERVED', undefined, null])
      refuses(valid({ decision }), /record\.decision must be 'served' or 'refused'/, String(decision));
    for (const source of ['disk', 'CACHE', 'UPSTREAM', null, '']) {
      refuses(valid({ source }), /record\.source must be 'cache', 'authority' or 'upstream'/, String(source));
    }
    for (const source of ['cache', 'authority', 'upstream']) assert.equal(accepts({ source, decision: 'served' }, source).source, source);
    for (const surface of ['telnet', 'IMDS', 7, undefined]) {
      refuses(valid({ surface }), new RegExp(`record\\.surface must be one of ${AGENT_SURFACES.join(', ')}`), String(surface));
    }
  });

  void it('caller: an object with an address; pid and uid whole numbers to 2^32; exe bounded text', () => {
    for (const c of [null, 'x', [{ address: 'a' }], undefined])
      refuses(valid({ caller: c }), /record\.caller must be an object with an address/, JSON.stringify(c) ?? 'undefined');
    for (const address of [undefined, '', 7, 'a'.repeat(L.callerAddress + 1), '127.0.0.1\nforged', 'a\u0000']) {
      refuses(
        valid({ caller: { address } }),
        new RegExp(`record\\.caller\\.address must be a string of 1 to ${String(L.callerAddress)} characters without control characters`),
        `address ${String(address)}`,
      );
    }
    assert.deepEqual(accepts({ caller: { address: 'a'.repeat(L.callerAddress) } }, 'address at its bound').caller, { address: 'a'.repeat(L.callerAddress) });
    for (const field of ['pid', 'uid']) {
      assert.equal(accepts({ caller: { address: 'a', [field]: 0 } }, `${field} 0`).caller[field as 'pid'], 0);
      assert.equal(accepts({ caller: { address: 'a', [field]: 2 ** 32 } }, `${field} 2^32`).caller[field as 'pid'], 2 ** 32);
      for (const value of [-1, 2 ** 32 + 1, 1.5, '42', null]) {
        refuses(
          valid({ caller: { address: 'a', [field]: value } }),
          new RegExp(`record\\.caller\\.${field} must be a whole number from 0 to 4294967296`),
          `${field} ${String(value)}`,
        );
      }
    }
    assert.equal(accepts({ caller: { address: 'a', exe: 'e'.repeat(L.callerExe) } }, 'exe at its bound').caller.exe, 'e'.repeat(L.callerExe));
    for (const exe of ['', 'e'.repeat(L.callerExe + 1), '/bin/a\nb', 7, null]) {
      refuses(
        valid({ caller: { address: 'a', exe } }),
        new RegExp(`record\\.caller\\.exe must be a string of 1 to ${String(L.callerExe)} characters without control characters`),
        `exe ${String(exe)}`,
      );
    }
    // Fields the contract does not know are not copied.
    assert.deepEqual(accepts({ caller: { address: 'a', cwd: '/home/secret' } }, 'unknown caller field').caller, { address: 'a' });
    assert.equal('extra' in accepts({ extra: 'x' }, 'unknown field'), false);
  });
});

void describe('agent audit upload: the batch', () => {
  void it('refuses whole only a body without a records array or with more than the maximum', () => {
    for (const body of [{}, { records: 'x' }, { records: { length: 1 } }, { records: null }]) {
      assert.throws(() => parseUpload(body), { message: /'records' must be an array of audit records/ });
    }
    const records = Array.from({ length: AUDIT_UPLOAD_MAX_RECORDS + 1 }, () => 'bad');
    assert.throws(() => parseUpload({ records }), { message: /at most 1000 records may be sent at once/ });
    assert.equal(parseUpload({ records: records.slice(1) }).refused.length, AUDIT_UPLOAD_MAX_RECORDS);
    assert.deepEqual(parseUpload({ records: [] }), { records: [], refused: [] });
  });

  void it('stores the first of a repeated id (in any case) and refuses the repeat, with a digest of each refused record', () => {
    const first = valid();
    const second = valid({ id: ID.toUpperCase(), count: 9 });
    const other = valid({ id: '7f1c2b9e-3d4a-4b8c-9e7f-0a1b2c3d4e5f' });
    const { records, refused } = parseUpload({ records: [first, 'junk', second, other] });
    assert.deepEqual(
      records.map((r) => [r.id, r.count]),
      [
        [ID, 3],
        [other['id'], 3],
      ],
    );
    assert.deepEqual(
      refused.map((r) => r.reason),
      ['The request is invalid: record must be an object.', "The request is invalid: record.id repeats an earlier record's id."],
    );
    const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex');
    assert.deepEqual(
      refused.map((r) => r.digest),
      [sha('junk'), sha(second)],
    );
    assert.equal(parseUpload({ records: [undefined] }).refused[0]?.digest, createHash('sha256').update('undefined').digest('hex'));
  });
});

void describe('agent audit events', () => {
  void it('a served record: actor is the identity, success, the detail lists what the record said', () => {
    const record = accepts({ decision: 'served', source: 'cache', identity: 'oid-1', status: 200, reason: undefined, session: 's-1' }, 'served');
    assert.deepEqual(toAuditEvent(caller, record), {
      id: ID,
      at: NOW - 2000,
      tenantId: 'tenant-1',
      actor: 'oid-1',
      action: 'agent.token.served',
      target: HOST_ID,
      outcome: 'success',
      detail: {
        surface: 'imds',
        caller: { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/python3' },
        count: 3,
        lastAt: new Date(NOW - 1000).toISOString(),
        status: 200,
        audience: 'https://vault.azure.net',
        session: 's-1',
        source: 'cache',
        identity: 'oid-1',
      },
    });
  });

  void it('a refused record without an identity: actor is the host, failure, no absent field in the detail', () => {
    const record = accepts({ audience: undefined }, 'refused');
    const event = toAuditEvent(caller, record);
    assert.deepEqual(
      [event.actor, event.action, event.outcome, event.tenantId, event.target],
      [HOST_ID, 'agent.token.refused', 'failure', 'tenant-1', HOST_ID],
    );
    assert.deepEqual(Object.keys(event.detail), ['surface', 'caller', 'count', 'lastAt', 'status', 'reason']);
  });

  void it('agent.audit.dropped: the host’s, counting every refused record with at most ten reasons, its id a UUID of the host and the records', () => {
    const refused = (n: number, reasons = n): RefusedRecord[] =>
      Array.from({ length: n }, (_, i) => ({ reason: `reason ${String(i % reasons)}`, digest: createHash('sha256').update(String(i)).digest('hex') }));
    const event = droppedEvent(caller, refused(14, 12), NOW);
    assert.deepEqual(
      { ...event, id: undefined },
      {
        id: undefined,
        at: NOW,
        tenantId: 'tenant-1',
        actor: HOST_ID,
        action: AUDIT_DROPPED_ACTION,
        target: HOST_ID,
        outcome: 'failure',
        detail: {
          count: 14,
          reasons: [
            { reason: 'reason 0', count: 2 },
            { reason: 'reason 1', count: 2 },
            ...Array.from({ length: 8 }, (_, i) => ({ reason: `reason ${String(i + 2)}`, count: 1 })),
          ],
        },
      },
    );
    assert.equal(AUDIT_DROPPED_ACTION, 'agent.audit.dropped');
    assert.match(event.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    // The same batch again gives the same id (counted once); another host, or other records, another id.
    assert.equal(droppedEvent(caller, refused(14, 12), NOW + 5000).id, event.id);
    const upper = { ...caller, host: { id: HOST_ID.toUpperCase() } } as unknown as AuthenticatedHost;
    assert.equal(droppedEvent(upper, refused(14, 12), NOW).id, event.id, 'the host id in any case');
    const other = { ...caller, host: { id: `${HOST_ID}2` } } as unknown as AuthenticatedHost;
    assert.notEqual(droppedEvent(other, refused(14, 12), NOW).id, event.id);
    assert.notEqual(droppedEvent(caller, refused(13, 12), NOW).id, event.id);
    assert.notEqual(droppedEvent(caller, refused(14, 12).reverse(), NOW).id, event.id);
    const h = createHash('sha256').update(HOST_ID.toLowerCase());
    for (const r of refused(14, 12)) h.update('\n').update(r.digest);
    const hex = h.digest('hex');
    assert.equal(
      event.id,
      `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${hex.slice(18, 20)}-${hex.slice(20, 32)}`,
    );
  });
});
