import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AgentAuditPipeline } from '../../src/agent/audit/pipeline.js';
import type { AgentAuditEvent } from '../../src/agent/contracts.js';
import { FakeClock } from '../../src/shared/clock.js';
import type { AgentAuditRecord } from '../../src/shared/host-protocol.js';
import { runFixture } from '../fixtures/child-process.js';

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

async function until(predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
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

  it('reads an event\'s caller when the window is folded, so attribution resolved after the request still counts', async () => {
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
    const spooled = spoolFiles(dataDir).map((f) => readFileSync(join(dataDir, 'audit-spool', f), 'utf8')).join('');
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
    const pipeline = await AgentAuditPipeline.open({ dataDir: tempDir(), upload, autoFlush: false, uploadTimeoutMs: 50, retryMinMs: 60_000, retryMaxMs: 60_000 });
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

    const writer = runFixture('../agent-runtime/fixtures/audit-writer.ts', [dataDir, '7']);
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
    assert.deepEqual(audiences.slice(0, 5), [0, 1, 2, 3, 4].map((i) => `https://clean-${String(i)}.example`));
    assert.deepEqual(
      authority.records().slice(5).map((r) => r.identity),
      [0, 1, 2, 3, 4, 5, 6].map((i) => `id-${String(i)}`),
    );
  });

  it('skips a torn last line (written, never fsync\'d) and uploads the rest', async () => {
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
    const pipeline = await AgentAuditPipeline.open({ dataDir, upload: authority.upload, autoFlush: false, spoolMaxBytes: cap, retryMinMs: 60_000, retryMaxMs: 60_000 });
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
    const onDisk = spoolFiles(dataDir).flatMap((f) => readFileSync(join(dataDir, 'audit-spool', f), 'utf8').trimEnd().split('\n'));
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
});
