/** HostChanges, store-less: which notices wake which long polls, the read-race sequence, timeouts and close. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HostChanges } from '../../../src/authority/hosts/changes.js';
import { HOST_CHANNEL, PRINCIPAL_CHANNEL, hostChangeKey, type StoreNotifications } from '../../../src/store/types.js';

function notifications() {
  const listeners = new Map<string, Set<(payload: string) => void>>();
  const bus: StoreNotifications & { emit(channel: string, payload: string): void } = {
    subscribe(channel, fn) {
      let set = listeners.get(channel);
      if (set === undefined) listeners.set(channel, (set = new Set()));
      set.add(fn);
      return () => set.delete(fn);
    },
    ready: () => Promise.resolve(),
    emit(channel, payload) {
      for (const fn of listeners.get(channel) ?? []) fn(payload);
    },
  };
  return bus;
}

void describe('HostChanges', () => {
  void it('wakes a wait on a notice for one of its keys (resource, identity through principal deletions), not for others', async () => {
    const bus = notifications();
    const changes = new HostChanges(bus);
    const keys = [hostChangeKey.resource('/subscriptions/s/x/host'), hostChangeKey.identity('OID-1')];
    const waiting = changes.wait(keys, changes.sequence, 10_000);
    bus.emit(HOST_CHANNEL, hostChangeKey.resource('/subscriptions/s/x/other'));
    assert.equal(changes.waiting, 2, 'another resource does not wake it');
    bus.emit(PRINCIPAL_CHANNEL, 'oid-1');
    assert.equal(await waiting, true);
    assert.equal(changes.waiting, 0, 'a woken wait leaves no registration behind');
    changes.close();
  });

  void it('a notice between the read and the wait makes the wait return at once; a quiet wait times out', async () => {
    const bus = notifications();
    const changes = new HostChanges(bus);
    const before = changes.sequence;
    bus.emit(HOST_CHANNEL, 'resource:/unrelated');
    assert.equal(await changes.wait(['resource:/mine'], before, 10_000), true);
    const started = performance.now();
    // The wait's own timer is unref'd (it must not hold a server open); this one keeps the test's loop alive.
    const keepAlive = setTimeout(() => undefined, 5000);
    assert.equal(await changes.wait(['resource:/mine'], changes.sequence, 50), false);
    clearTimeout(keepAlive);
    assert.ok(performance.now() - started >= 45);
    assert.equal(changes.waiting, 0);
    changes.close();
  });

  void it('an abort ends a wait; close ends every wait and makes later ones return at once', async () => {
    const bus = notifications();
    const changes = new HostChanges(bus);
    const abort = new AbortController();
    const aborted = changes.wait(['resource:/a'], changes.sequence, 10_000, abort.signal);
    abort.abort();
    assert.equal(await aborted, false);
    const pending = changes.wait(['resource:/b'], changes.sequence, 10_000);
    changes.close();
    assert.equal(await pending, true);
    assert.equal(changes.closed, true);
    assert.equal(await changes.wait(['resource:/b'], changes.sequence, 10_000), false);
    bus.emit(HOST_CHANNEL, 'resource:/b');
    const sequence = changes.sequence;
    bus.emit(HOST_CHANNEL, 'resource:/c');
    assert.equal(changes.sequence, sequence, 'no longer listening');
  });
});
