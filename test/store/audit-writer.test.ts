/**
 * AuditWriter (src/store/audit-writer.ts), store-less: a recording AuditStore. "Acknowledged means audited":
 * `record()` resolves only once its event's batch is appended, and rejects when that append fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Writable } from 'node:stream';
import { FakeClock } from '../../src/shared/clock.js';
import { createLogger } from '../../src/shared/logger.js';
import { AuditWriter, type AuditInput } from '../../src/store/audit-writer.js';
import type { AuditEvent, AuditStore } from '../../src/store/types.js';

const START = Date.UTC(2026, 11, 7, 12);

function input(n: number, overrides: Partial<AuditInput> = {}): AuditInput {
  return { tenantId: 't1', actor: `actor-${String(n)}`, action: 'token.issued', target: 'app', outcome: 'success', detail: { n }, ...overrides };
}

/** A store that records each append, fails the ones `fail` says, and can hold an append open. */
function recordingStore(fail: (events: readonly AuditEvent[]) => boolean = () => false) {
  const batches: AuditEvent[][] = [];
  const store: AuditStore = {
    append(events) {
      batches.push([...events]);
      return fail(events) ? Promise.reject(new Error(`disk full (${String(events.length)})`)) : Promise.resolve();
    },
    appendIgnoringDuplicates: () => Promise.reject(new Error('not used')),
    list: () => Promise.reject(new Error('not used')),
  };
  return { store, batches };
}

function capturingLogger() {
  const records: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ destination, level: 'trace' }), records };
}

void describe('AuditWriter', () => {
  void it('resolves record() only after its event is appended, with a fresh id and the clock time unless given', async () => {
    const { store, batches } = recordingStore();
    const clock = new FakeClock(START);
    const writer = new AuditWriter({ store, clock, logger: capturingLogger().logger });
    let resolved = false;
    const first = writer.record(input(1)).then(() => {
      resolved = true;
    });
    const second = writer.record(input(2, { at: START - 5000 }));
    assert.equal(batches.length, 0, 'nothing is appended in the caller’s turn');
    assert.equal(resolved, false);
    await Promise.all([first, second]);
    assert.equal(batches.length, 1, 'events recorded together share one append');
    const [a, b] = batches[0] ?? [];
    assert.ok(a !== undefined && b !== undefined, 'two events in the batch');
    assert.equal(a.at, START);
    assert.equal(b.at, START - 5000);
    assert.match(a.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a.id, b.id);
    assert.deepEqual({ ...a, id: undefined, at: undefined }, { ...input(1), id: undefined, at: undefined });
  });

  void it('appends at most maxBatch events at once (512 by default), in order', async () => {
    const { store, batches } = recordingStore();
    const writer = new AuditWriter({ store, clock: new FakeClock(START), logger: capturingLogger().logger });
    await Promise.all(Array.from({ length: 600 }, (_, i) => writer.record(input(i))));
    assert.deepEqual(
      batches.map((b) => b.length),
      [512, 88],
    );
    assert.deepEqual(
      batches.flat().map((e) => e.detail['n']),
      Array.from({ length: 600 }, (_, i) => i),
    );

    const small = recordingStore();
    const three = new AuditWriter({ store: small.store, clock: new FakeClock(START), logger: capturingLogger().logger, maxBatch: 3 });
    await Promise.all(Array.from({ length: 7 }, (_, i) => three.record(input(i))));
    assert.deepEqual(
      small.batches.map((b) => b.length),
      [3, 3, 1],
    );
  });

  void it('rejects every record of a failed append with its error, logs only the message and count, and goes on with the next batch', async () => {
    const { store, batches } = recordingStore((events) => events[0]?.detail['n'] === 0);
    const { logger, records } = capturingLogger();
    const writer = new AuditWriter({ store, clock: new FakeClock(START), logger, maxBatch: 2 });
    const outcomes = await Promise.allSettled([0, 1, 2].map((n) => writer.record(input(n, { detail: { n, secretText: 'never-logged' } }))));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['rejected', 'rejected', 'fulfilled'],
    );
    assert.equal(((outcomes[0] as PromiseRejectedResult).reason as Error).message, 'disk full (2)');
    assert.equal(batches.length, 2);
    const errors = records.filter((r) => r['level'] === 50);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!['msg'], 'audit write failed');
    assert.equal((errors[0]!['err'] as { message?: string }).message, 'disk full (2)');
    assert.equal(errors[0]!['events'], 2);
    assert.doesNotMatch(JSON.stringify(records), /never-logged|actor-0/, 'the events themselves are not logged');

    // After a failed drain, a new record starts a new one.
    await writer.record(input(3));
    assert.equal(batches.length, 3);
  });

  void it('flush() waits for everything recorded so far, including records made while a batch is being written', async () => {
    let release: () => void = () => undefined;
    const batches: number[] = [];
    const store: AuditStore = {
      append: (events) => {
        batches.push(events.length);
        return batches.length === 1 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
      },
      appendIgnoringDuplicates: () => Promise.reject(new Error('not used')),
      list: () => Promise.reject(new Error('not used')),
    };
    const writer = new AuditWriter({ store, clock: new FakeClock(START), logger: capturingLogger().logger });
    let done = 0;
    void writer.record(input(1)).then(() => done++);
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(batches, [1], 'the first batch is being written');
    void writer.record(input(2)).then(() => done++);
    const flushed = writer.flush();
    release();
    await flushed;
    assert.equal(done, 2, 'both records are committed when flush() resolves');
    assert.deepEqual(batches, [1, 1]);
    await writer.flush();
  });

  void it('writes a batch outside the async context of the caller that started it', async () => {
    const context = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    const store: AuditStore = {
      append: () => {
        seen.push(context.getStore());
        return Promise.resolve();
      },
      appendIgnoringDuplicates: () => Promise.reject(new Error('not used')),
      list: () => Promise.reject(new Error('not used')),
    };
    const writer = new AuditWriter({ store, clock: new FakeClock(START), logger: capturingLogger().logger });
    await context.run('caller transaction', () => writer.record(input(1)));
    assert.deepEqual(seen, [undefined]);
  });
});
