import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { AgentAuditPipeline, AuditBatchRefusedError, batchesOf } from '../../../src/agent/audit/pipeline.js';
import { DropCounter, recordOf } from '../../../src/agent/audit/fold.js';
import type { AgentAuditEvent } from '../../../src/agent/contracts.js';
import { FakeClock } from '../../../src/shared/clock.js';
import {
  AGENT_AUDIT_FIELD_LIMITS,
  AGENT_SURFACES,
  AUDIT_TRUNCATION_MARKER,
  AUDIT_UPLOAD_MAX_BYTES,
  type AgentAuditRecord,
} from '../../../src/shared/host-protocol.js';
import { CONTROL_CHARACTER } from '../../../src/shared/resource.js';
import { runFixture } from '../../support/child-process.js';
import { untilTrue } from '../../support/poll.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-audit-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function event(overrides: Partial<AgentAuditEvent> = {}): AgentAuditEvent {
  return {
    decision: 'served',
    source: 'cache',
    surface: 'imds',
    identity: '11111111-1111-1111-1111-111111111111',
    audience: 'https://management.azure.com/',
    caller: { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/node' },
    status: 200,
    ...overrides,
  };
}

/** An authority stand-in for the uploader: stores by id (idempotent, as the host API does), can be "down". */
class FakeAuthority {
  readonly byId = new Map<string, AgentAuditRecord>();
  readonly order: string[] = [];
  readonly batches: number[] = [];
  down = false;
  calls = 0;
  upload = (records: AgentAuditRecord[]): Promise<void> => {
    this.calls++;
    if (this.down) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
    this.batches.push(records.length);
    for (const r of records) {
      if (this.byId.has(r.id)) continue;
      this.byId.set(r.id, r);
      this.order.push(r.id);
    }
    return Promise.resolve();
  };
  records(): AgentAuditRecord[] {
    return this.order.map((id) => this.byId.get(id)!);
  }
  events(): number {
    return this.records().reduce((n, r) => n + r.count, 0);
  }
}

function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  return untilTrue('the audit pipeline', predicate, timeoutMs, 5);
}

function spoolFiles(dataDir: string): string[] {
  return readdirSync(join(dataDir, 'audit-spool')).sort();
}

describe('agent audit pipeline', () => {
  it('folds identical outcomes of one window into one record with a count, first and last time', async () => {
    const clock = new FakeClock(Date.UTC(2026, 10, 30, 15));
    const authority = new FakeAuthority();
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload: authority.upload, clock, autoFlush: false });
    const t0 = clock.now();
    for (let i = 0; i < 1000; i++) {
      pipeline.record(event());
      clock.advance(1);
    }
    pipeline.record(event({ source: 'authority' }));
    pipeline.record(event({ decision: 'refused', source: undefined, status: 400, reason: 'identity_not_found', identity: undefined }));
    pipeline.record(event({ caller: { address: '127.0.0.1', pid: 43 } }));
    assert.equal(await pipeline.uploadNow(), true);
    const records = authority.records();
    assert.equal(records.length, 4);
    const folded = records.find((r) => r.count === 1000)!;
    assert.equal(folded.at, t0);
    assert.equal(folded.lastAt, t0 + 999);
    assert.equal(folded.source, 'cache');
    assert.deepEqual(folded.caller, { address: '127.0.0.1', pid: 42, uid: 1000, exe: '/usr/bin/node' });
    assert.match(folded.id, /^[0-9a-f-]{36}$/);
    assert.equal(new Set(records.map((r) => r.id)).size, 4);
    const refused = records.find((r) => r.decision === 'refused')!;
    assert.deepEqual(
      { count: refused.count, status: refused.status, reason: refused.reason, identity: refused.identity },
      { count: 1, status: 400, reason: 'identity_not_found', identity: undefined },
    );
    // A later window is a new record, even for the same outcome.
    pipeline.record(event());
    await pipeline.uploadNow();
    assert.equal(authority.records().length, 5);
    await pipeline.close();
  });

  it("reads an event's caller when the window is folded, so attribution resolved after the request still counts", async () => {
    const authority = new FakeAuthority();
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload: authority.upload, autoFlush: false });
    const caller: AgentAuditEvent['caller'] = { address: '127.0.0.1' };
    pipeline.record(event({ caller }));
    Object.assign(caller, { pid: 4242, uid: 1000, exe: '/usr/bin/curl' }); // what ProcCallerResolver does in the background
    await pipeline.uploadNow();
    assert.deepEqual(authority.records()[0]!.caller, { address: '127.0.0.1', pid: 4242, uid: 1000, exe: '/usr/bin/curl' });
    await pipeline.close();
  });

  it('takes a million events at well under a microsecond each on the hot path, and loses none', async (t) => {
    const authority = new FakeAuthority();
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload: authority.upload, autoFlush: false });
    const e = event();
    let ms = 0;
    const total = performance.now();
    for (let burst = 0; burst < 100; burst++) {
      const started = performance.now();
      for (let i = 0; i < 10_000; i++) pipeline.record(e);
      ms += performance.now() - started;
      await new Promise((resolve) => setImmediate(resolve)); // a server yields between requests: folds run here
    }
    const all = performance.now() - total;
    t.diagnostic(`record(): ${((ms * 1000) / 1_000_000).toFixed(3)} µs per event; with the folds ${((all * 1000) / 1_000_000).toFixed(3)} µs (1e6 events)`);
    assert.ok(await pipeline.uploadNow());
    assert.equal(pipeline.stats().droppedEvents, 0);
    assert.equal(authority.events(), 1_000_000);
    assert.equal(authority.records().length, 1);
    await pipeline.close();
  });

  it('never puts a token or a header secret in a record, whatever a caller attaches to an event', async () => {
    const authority = new FakeAuthority();
    const dataDir = tempDir();
    const pipeline = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, autoFlush: false });
    const sneaky = {
      ...event(),
      token: 'eyJhbGciOiJSUzI1NiJ9.secret-token',
      headers: { 'x-identity-header': 'header-secret-value' },
      caller: { address: '127.0.0.1', secret: 'session-secret-value' },
    } as unknown as AgentAuditEvent;
    pipeline.record(sneaky);
    await pipeline.flush();
    const spooled = spoolFiles(dataDir)
      .map((f) => readFileSync(join(dataDir, 'audit-spool', f), 'utf8'))
      .join('');
    assert.ok(spooled.length > 0);
    for (const secret of ['secret-token', 'header-secret-value', 'session-secret-value']) assert.ok(!spooled.includes(secret), `${secret} reached the spool`);
    await pipeline.uploadNow();
    const [record] = authority.records();
    assert.deepEqual(Object.keys(record!).sort(), ['at', 'audience', 'caller', 'count', 'decision', 'id', 'identity', 'lastAt', 'source', 'status', 'surface']);
    assert.deepEqual(record!.caller, { address: '127.0.0.1' });
    // record() never throws, even on what is not an event at all.
    assert.doesNotThrow(() => pipeline.record(null as unknown as AgentAuditEvent));
    assert.doesNotThrow(() => pipeline.record({} as AgentAuditEvent));
    assert.equal(await pipeline.uploadNow(), true);
    assert.equal(authority.records().length, 1, 'what is not an event is not recorded');
    await pipeline.close();
  });

  it('spools each window as 0600 JSONL in a 0700 directory and removes it once uploaded', async () => {
    const authority = new FakeAuthority();
    authority.down = true;
    const dataDir = tempDir();
    const pipeline = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, autoFlush: false, retryMinMs: 60_000, retryMaxMs: 60_000 });
    pipeline.record(event());
    pipeline.record(event({ audience: 'https://vault.azure.net' }));
    assert.equal(await pipeline.uploadNow(), false);
    const files = spoolFiles(dataDir);
    assert.deepEqual(files, ['0000000000000001.jsonl']);
    assert.equal(statSync(join(dataDir, 'audit-spool')).mode & 0o777, 0o700);
    const path = join(dataDir, 'audit-spool', files[0]!);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.equal((JSON.parse(lines[1]!) as AgentAuditRecord).audience, 'https://vault.azure.net');
    authority.down = false;
    assert.equal(await pipeline.uploadNow(), true);
    assert.deepEqual(spoolFiles(dataDir), []);
    assert.equal(pipeline.stats().spoolBytes, 0);
    await pipeline.close();
  });

  it('keeps spooling while the authority is down, retries with backoff, and sends everything in order on recovery', async () => {
    const authority = new FakeAuthority();
    authority.down = true;
    const dataDir = tempDir();
    const pipeline = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, flushWindowMs: 20, retryMinMs: 10, retryMaxMs: 40, batchRecords: 50 });
    let recorded = 0;
    for (let window = 0; window < 10; window++) {
      for (let i = 0; i < 30; i++) {
        pipeline.record(event({ audience: `https://app-${String(window)}-${String(i)}.example` }));
        recorded++;
      }
      await sleep(25);
    }
    await until(() => pipeline.stats().queuedEvents === 0 && authority.calls >= 3);
    const failedCalls = authority.calls;
    assert.ok(failedCalls >= 3, 'retried');
    assert.equal(authority.records().length, 0);
    assert.ok(pipeline.stats().spoolBytes > 0);
    assert.ok(pipeline.stats().consecutiveFailures >= 3);
    // Recovery: nothing lost, nothing doubled, in the order recorded, no batch above the bound.
    authority.down = false;
    await until(() => authority.records().length === recorded, 5000);
    await pipeline.close({ uploadTimeoutMs: 1000 });
    const audiences = authority.records().map((r) => r.audience);
    const expected: string[] = [];
    for (let window = 0; window < 10; window++) for (let i = 0; i < 30; i++) expected.push(`https://app-${String(window)}-${String(i)}.example`);
    assert.deepEqual(audiences, expected);
    assert.ok(authority.batches.every((n) => n <= 50));
    assert.equal(pipeline.stats().consecutiveFailures, 0);
    assert.deepEqual(spoolFiles(dataDir), []);
  });

  it('resends a batch whose upload failed after the authority stored it; ids make that harmless', async () => {
    const authority = new FakeAuthority();
    let ambiguous = true;
    const upload = async (records: AgentAuditRecord[]): Promise<void> => {
      await authority.upload(records);
      if (ambiguous) {
        ambiguous = false;
        throw new Error('socket hang up'); // stored, but the answer was lost
      }
    };
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload, autoFlush: false, retryMinMs: 5, retryMaxMs: 5 });
    pipeline.record(event());
    assert.equal(await pipeline.uploadNow(), false);
    assert.equal(await pipeline.uploadNow(), true);
    assert.equal(authority.calls, 2);
    assert.equal(authority.records().length, 1);
    await pipeline.close();
  });

  it('gives up on an upload that hangs (a half-open authority), aborts it, and retries', async () => {
    const authority = new FakeAuthority();
    let hang = true;
    let aborted = false;
    const upload = (records: AgentAuditRecord[], signal: AbortSignal): Promise<void> => {
      if (!hang) return authority.upload(records);
      signal.addEventListener('abort', () => (aborted = true));
      return new Promise<void>(() => undefined);
    };
    const pipeline = await AgentAuditPipeline.open({
      dataDir: tempDir(),
      upload,
      autoFlush: false,
      uploadTimeoutMs: 50,
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
    });
    pipeline.record(event());
    assert.equal(await pipeline.uploadNow(), false);
    assert.equal(aborted, true);
    assert.equal(pipeline.stats().consecutiveFailures, 1);
    hang = false;
    assert.equal(await pipeline.uploadNow(), true);
    assert.equal(authority.records().length, 1);
    await pipeline.close();
  });

  it('uploads at most a batch (1000 records) per call', async () => {
    const authority = new FakeAuthority();
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload: authority.upload, autoFlush: false });
    for (let i = 0; i < 2500; i++) pipeline.record(event({ audience: `https://a${String(i)}.example` }));
    assert.equal(await pipeline.uploadNow(), true);
    assert.deepEqual(authority.batches, [1000, 1000, 500]);
    await pipeline.close();
  });

  it('uploads what an earlier run spooled, across a clean shutdown and across kill -9 after the fsync', async () => {
    const dataDir = tempDir();
    const down = new FakeAuthority();
    down.down = true;
    const first = await AgentAuditPipeline.open({ dataDir, upload: down.upload, autoFlush: false, retryMinMs: 60_000, retryMaxMs: 60_000 });
    for (let i = 0; i < 5; i++) first.record(event({ audience: `https://clean-${String(i)}.example` }));
    await first.close(); // flushes the window to the spool

    const writer = runFixture('../agent/runtime/fixtures/audit-writer.ts', [dataDir, '7']);
    try {
      await writer.waitForLine((line) => line === 'durable', 20_000);
    } finally {
      const exit = await writer.stop();
      assert.equal(exit.signal, 'SIGKILL');
    }

    const authority = new FakeAuthority();
    const second = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, autoFlush: false });
    await until(() => authority.records().length === 12);
    await second.close();
    const audiences = authority.records().map((r) => r.audience);
    assert.deepEqual(
      audiences.slice(0, 5),
      [0, 1, 2, 3, 4].map((i) => `https://clean-${String(i)}.example`),
    );
    assert.deepEqual(
      authority
        .records()
        .slice(5)
        .map((r) => r.identity),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `id-${String(i)}`),
    );
  });

  it("skips a torn last line (written, never fsync'd) and uploads the rest", async () => {
    const dataDir = tempDir();
    const down = new FakeAuthority();
    down.down = true;
    const first = await AgentAuditPipeline.open({ dataDir, upload: down.upload, autoFlush: false, retryMinMs: 60_000, retryMaxMs: 60_000 });
    first.record(event());
    await first.close();
    appendFileSync(join(dataDir, 'audit-spool', '0000000000000001.jsonl'), '{"id":"torn","at":17');
    const authority = new FakeAuthority();
    const second = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, autoFlush: false });
    assert.equal(await second.uploadNow(), true);
    assert.equal(authority.records().length, 1);
    await second.close();
  });

  it('bounds the spool: past the cap events are counted, and the count is itself a record once there is room', async () => {
    const authority = new FakeAuthority();
    authority.down = true;
    const dataDir = tempDir();
    const cap = 8 * 1024;
    const pipeline = await AgentAuditPipeline.open({
      dataDir,
      upload: authority.upload,
      autoFlush: false,
      spoolMaxBytes: cap,
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
    });
    let recorded = 0;
    for (let window = 0; window < 20; window++) {
      for (let i = 0; i < 10; i++) {
        pipeline.record(event({ audience: `https://w${String(window)}-${String(i)}.example` }));
        pipeline.record(event({ audience: `https://w${String(window)}-${String(i)}.example` }));
        recorded += 2;
      }
      await pipeline.flush();
    }
    const stats = pipeline.stats();
    assert.ok(stats.spoolBytes <= cap, `spool ${String(stats.spoolBytes)} bytes is within its ${String(cap)}-byte cap`);
    assert.ok(stats.droppedEvents > 0);
    // The drop count is on disk already (in the reserve), not only in memory: a kill -9 now would not lose it.
    const onDisk = spoolFiles(dataDir).flatMap((f) =>
      readFileSync(join(dataDir, 'audit-spool', f), 'utf8')
        .trimEnd()
        .split('\n'),
    );
    assert.ok(onDisk.some((line) => (JSON.parse(line) as AgentAuditRecord).reason === 'audit_dropped:spool_full'));
    // Recovery: every event is accounted for, either in a record or in a drop count.
    authority.down = false;
    assert.equal(await pipeline.uploadNow(), true);
    await pipeline.flush(); // now there is room: the drop count is written and sent
    assert.equal(await pipeline.uploadNow(), true);
    const drops = authority.records().filter((r) => r.reason === 'audit_dropped:spool_full');
    assert.ok(drops.length >= 1);
    assert.equal(
      drops.reduce((n, r) => n + r.count, 0),
      stats.droppedEvents,
    );
    assert.deepEqual(drops[0]!.caller, { address: 'unknown' });
    assert.equal(drops[0]!.decision, 'served');
    assert.ok(drops.every((r) => r.at <= r.lastAt));
    assert.equal(authority.events(), recorded);
    await pipeline.close();
  });

  it('invariant: every text field of a record is bounded and free of control characters, whatever the event carries (property)', () => {
    const L = AGENT_AUDIT_FIELD_LIMITS;
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 50 }),
      fc.string({ unit: 'binary', minLength: 4000, maxLength: 9000 }),
      fc.string({ unit: 'binary-ascii', minLength: 2040, maxLength: 2100 }),
    );
    fc.assert(
      fc.property(text, text, text, text, text, text, (audience, identity, reason, session, address, exe) => {
        const r = recordOf(event({ audience, identity, reason, session, caller: { address, pid: 7, exe } }), 1);
        const fields: [string | undefined, number][] = [
          [r.audience, L.audience],
          [r.identity, L.identity],
          [r.reason, L.reason],
          [r.session, L.session],
          [r.caller.address, L.callerAddress],
          [r.caller.exe, L.callerExe],
        ];
        for (const [value, max] of fields) {
          if (value === undefined) continue;
          assert.ok(value.length <= max, `${String(value.length)} > ${String(max)}`);
          assert.ok(!CONTROL_CHARACTER.test(value), 'no control character');
          assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])/.test(value), 'no surrogate pair cut in half');
        }
        if (audience.length > L.audience) assert.ok(r.audience!.endsWith(AUDIT_TRUNCATION_MARKER));
        if (audience !== '' && audience.length <= 50 && !CONTROL_CHARACTER.test(audience))
          assert.equal(r.audience, audience, 'a short, clean value is kept as it is');
      }),
      { numRuns: 200 },
    );
    assert.equal(recordOf(event({ audience: 'https://x/\u0000\n' }), 1).audience, 'https://x/\\u0000\\u000a');
  });

  it('invariant: drop counts are valid records, past the bound of distinct counters too', () => {
    const drops = new DropCounter();
    for (let status = 100; status < 300; status++) drops.add('window_full', 'refused', 'imds', status, 1, 2, 1);
    drops.add('refused', 'served', 'telnet' as never, 0, 1, 2, 1);
    for (const r of drops.take()) {
      assert.ok(Number.isInteger(r.status) && r.status >= 100 && r.status <= 599, String(r.status));
      assert.ok(AGENT_SURFACES.includes(r.surface), r.surface);
    }
  });

  it('batches are bounded in records and in bytes, in order', () => {
    const records = Array.from({ length: 50 }, (_, i) => recordOf(event({ audience: `https://x/${'a'.repeat(i * 40)}` }), i));
    const batches = batchesOf(records, 7, 8000);
    assert.deepEqual(batches.flat(), records);
    for (const batch of batches) {
      assert.ok(batch.length >= 1 && batch.length <= 7);
      assert.ok(batch.length === 1 || Buffer.byteLength(JSON.stringify(batch)) <= 8000 + batch.length);
    }
    // A full batch of records at every bound fits the host API's body bound.
    const L = AGENT_AUDIT_FIELD_LIMITS;
    const big = recordOf(
      event({
        audience: '\u{1f600}'.repeat(L.audience),
        identity: 'é'.repeat(500),
        reason: 'é'.repeat(500),
        session: 'é'.repeat(500),
        caller: { address: 'é'.repeat(100), exe: '\u{1f600}'.repeat(L.callerExe) },
      }),
      1,
    );
    for (const batch of batchesOf(
      Array.from({ length: 1000 }, () => big),
      1000,
      AUDIT_UPLOAD_MAX_BYTES - 1024,
    )) {
      assert.ok(Buffer.byteLength(JSON.stringify({ records: batch })) <= AUDIT_UPLOAD_MAX_BYTES);
    }
  });

  it('invariant: a record the authority refuses never stops the spool — the batch is split, the record counted as audit_dropped:refused, every other record arrives', async () => {
    const authority = new FakeAuthority();
    const refuseBatch = authority.upload;
    let calls = 0;
    // An authority that refuses a whole batch holding a poisoned record (what the authority did before issue 15).
    const upload = (records: AgentAuditRecord[]): Promise<void> => {
      calls++;
      if (records.some((r) => r.audience === 'https://poison.example')) return Promise.reject(new AuditBatchRefusedError('400 InvalidRequest'));
      return refuseBatch(records);
    };
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload, autoFlush: false, batchRecords: 16, retryMinMs: 60_000, retryMaxMs: 60_000 });
    for (let i = 0; i < 40; i++) pipeline.record(event({ audience: i === 17 ? 'https://poison.example' : `https://ok-${String(i)}.example` }));
    assert.equal(await pipeline.uploadNow(), true, 'the spool is empty: it advanced past the refused record');
    assert.equal(authority.records().length, 39);
    assert.ok(calls < 20, `split in halves, not one call per record (${String(calls)} calls)`);
    // The drop count goes out with the next window, and later records flow.
    pipeline.record(event({ audience: 'https://later.example' }));
    assert.equal(await pipeline.uploadNow(), true);
    const dropped = authority.records().filter((r) => r.reason === 'audit_dropped:refused');
    assert.equal(dropped.length, 1);
    assert.equal(dropped[0]!.count, 1);
    assert.ok(authority.records().some((r) => r.audience === 'https://later.example'));
    assert.ok(!authority.records().some((r) => r.audience === 'https://poison.example'));
    assert.equal(pipeline.stats().consecutiveFailures, 0);
    await pipeline.close();
  });

  it('a failure that is not a refusal of the batch keeps the records spooled and retries them (nothing dropped)', async () => {
    const authority = new FakeAuthority();
    authority.down = true;
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload: authority.upload, autoFlush: false, retryMinMs: 60_000, retryMaxMs: 60_000 });
    pipeline.record(event());
    assert.equal(await pipeline.uploadNow(), false);
    assert.equal(pipeline.stats().droppedEvents, 0);
    authority.down = false;
    assert.equal(await pipeline.uploadNow(), true);
    assert.equal(authority.events(), 1);
    await pipeline.close();
  });
});
