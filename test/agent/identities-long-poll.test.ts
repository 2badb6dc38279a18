/**
 * The agent's `self` loop (HostIdentities) against a scripted authority, store-less: a long poll from the
 * version held, a plain read when there is none and every reconciliation period, the old interval poll for an
 * authority that sends no version, and failures handled as a plain read's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock } from '../../src/shared/clock.js';
import type { HostDescription } from '../../src/shared/host-protocol.js';
import { HostIdentities } from '../../src/agent/identities.js';
import { UpstreamError, type SelfLongPoll } from '../../src/agent/upstream.js';
import { captureLogs } from '../support/logs.js';
import { untilTrue } from '../support/poll.js';

const HOST = '/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/m';

function description(objectIds: string[], version: string | undefined): HostDescription {
  return {
    tenantId: 't',
    hostResourceId: HOST,
    subscriptionId: 's',
    resourceGroup: 'g',
    name: 'm',
    location: 'local',
    vmId: 'vm',
    identities: objectIds.map((objectId) => ({ type: 'UserAssigned', objectId, clientId: `c-${objectId}`, resourceId: `/x/${objectId}` })),
    credential: { keyId: 'k', expiresOn: 0 },
    ...(version === undefined ? {} : { version }),
  };
}

/** An authority whose `self` answers are scripted: each call is recorded and answered by `answer`. */
function scripted(answer: (poll: SelfLongPoll | undefined, signal: AbortSignal | undefined) => Promise<HostDescription>) {
  const calls: Array<SelfLongPoll | undefined> = [];
  return {
    calls,
    describe: (poll?: SelfLongPoll, signal?: AbortSignal) => {
      calls.push(poll);
      return answer(poll, signal);
    },
  };
}

/** A promise the test resolves or rejects later, rejected on `signal` as a cancelled HTTP call would be. */
function pending<T>(signal: AbortSignal | undefined) {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  return { promise, resolve, reject };
}

void describe('HostIdentities long poll', () => {
  void it('reads once, then long-polls from the version held; a change answered drops the removed identity at once', async () => {
    const waiting: Array<ReturnType<typeof pending<HostDescription>>> = [];
    const authority = scripted((poll, signal) => {
      if (poll === undefined) return Promise.resolve(description(['a', 'b'], 'v1'));
      const p = pending<HostDescription>(signal);
      waiting.push(p);
      return p.promise;
    });
    const removed: string[][] = [];
    const identities = new HostIdentities({
      describe: authority.describe,
      pollMs: 60_000,
      longPollSeconds: 20,
      logger: captureLogs().logger,
      clock: new FakeClock(),
      onRemoved: (ids) => void removed.push(ids),
      onHostNotRecognised: () => assert.fail('not refused'),
    });
    identities.start();
    try {
      await untilTrue('the first long poll', () => waiting.length === 1, 5000, 5);
      assert.deepEqual(authority.calls, [undefined, { since: 'v1', waitSeconds: 20 }]);
      const started = performance.now();
      waiting[0]!.resolve(description(['a'], 'v2'));
      await untilTrue('the next long poll', () => waiting.length === 2, 5000, 1);
      assert.ok(performance.now() - started < 1000);
      assert.deepEqual(removed, [['b']]);
      assert.equal(identities.resolve({ kind: 'object', value: 'b' }), undefined);
      assert.deepEqual(authority.calls[2], { since: 'v2', waitSeconds: 20 }, 'polls on from the new version, with no pause');
      assert.equal(identities.refreshes, 1);
      assert.equal(identities.longPolls, 1);
    } finally {
      identities.stop();
    }
    // Stopping cancels the pending long poll.
    await assert.rejects(waiting[1]!.promise, /aborted/);
  });

  void it('reconciles with a plain read every reconcileMs while long-polling', async () => {
    const clock = new FakeClock();
    let version = 0;
    const authority = scripted((poll) => {
      version++;
      // Each long poll answers at once (a change), so the loop turns quickly; the clock moves only when told.
      const answer = description(['a'], poll === undefined ? `plain-${String(version)}` : `v${String(version)}`);
      return new Promise<HostDescription>((resolve) => setImmediate(() => resolve(answer)));
    });
    const identities = new HostIdentities({
      describe: authority.describe,
      pollMs: 60_000,
      longPollSeconds: 20,
      reconcileMs: 300_000,
      logger: captureLogs().logger,
      clock,
      onRemoved: () => undefined,
      onHostNotRecognised: () => undefined,
    });
    identities.start();
    try {
      await untilTrue('some long polls', () => identities.longPolls >= 3, 5000, 1);
      assert.equal(identities.refreshes, 1, 'no plain read before the period');
      clock.advance(300_000);
      await untilTrue('a reconciliation', () => identities.refreshes === 2, 5000, 1);
    } finally {
      identities.stop();
    }
  });

  void it('an authority without versions is polled every pollMs with plain reads, as before the long poll', async () => {
    const authority = scripted(() => Promise.resolve(description(['a'], undefined)));
    const identities = new HostIdentities({
      describe: authority.describe,
      pollMs: 30,
      longPollSeconds: 20,
      logger: captureLogs().logger,
      clock: new FakeClock(),
      onRemoved: () => undefined,
      onHostNotRecognised: () => undefined,
    });
    const started = performance.now();
    identities.start();
    try {
      await untilTrue('three plain reads', () => authority.calls.length >= 3, 5000, 5);
      assert.ok(performance.now() - started >= 55, 'paced by pollMs');
      assert.ok(
        authority.calls.every((c) => c === undefined),
        'never a long poll',
      );
    } finally {
      identities.stop();
    }
  });

  void it('a long poll refused with host-not-recognised clears the identities and reports it; other failures keep them', async () => {
    let refuse = false;
    const authority = scripted((poll) => {
      if (poll === undefined) return Promise.resolve(description(['a'], 'v1'));
      return Promise.reject(refuse ? new UpstreamError('host-not-recognised', 'HostNotRecognised', { status: 401 }) : new UpstreamError('unavailable', 'down'));
    });
    const refused: UpstreamError[] = [];
    const identities = new HostIdentities({
      describe: authority.describe,
      pollMs: 20,
      longPollSeconds: 20,
      logger: captureLogs().logger,
      clock: new FakeClock(),
      onRemoved: () => undefined,
      onHostNotRecognised: (err) => void refused.push(err),
    });
    identities.start();
    try {
      await untilTrue('failed long polls', () => authority.calls.filter((c) => c !== undefined).length >= 2, 5000, 5);
      assert.equal(identities.resolve({ kind: 'object', value: 'a' })?.objectId, 'a', 'an outage keeps the last list');
      assert.equal(identities.lastError?.kind, 'unavailable');
      refuse = true;
      await untilTrue('the refusal', () => refused.length > 0, 5000, 5);
      assert.equal(identities.resolve({ kind: 'object', value: 'a' }), undefined);
      assert.equal(identities.host, undefined);
    } finally {
      identities.stop();
    }
  });
});
