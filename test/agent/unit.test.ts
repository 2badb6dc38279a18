import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { FakeClock } from '../../src/shared/clock.js';
import type { HostIdentity } from '../../src/shared/host-protocol.js';
import { RequestGuard, isLoopback } from '../../src/agent/guard.js';
import { TokenCache, successBody } from '../../src/agent/token-cache.js';
import { UpstreamError, type IssuedToken } from '../../src/agent/upstream.js';
import { RateLimiter } from '../../src/agent/rate-limit.js';
import { parseParams, selectorOf } from '../../src/agent/surfaces/common.js';
import { captureLogs } from '../helpers/authority.js';

const request = (remoteAddress: string, headers: Record<string, string>) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

describe('agent guard', () => {
  it('loopback means 127.0.0.0/8, ::1 and IPv4-mapped 127.x only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of ['10.0.0.1', '169.254.169.254', '::ffff:10.0.0.1', '0.0.0.0', '::', 'fe80::1', '1127.0.0.1', undefined]) assert.ok(!isLoopback(a), String(a));
  });

  it('refuses a non-loopback peer with 403 (before anything else), unless listed for the DNAT setup', () => {
    const guard = new RequestGuard();
    guard.setPort(50342);
    const refused = guard.check(request('192.168.1.20', { host: '127.0.0.1:50342', metadata: 'true' }));
    assert.equal(refused?.status, 403);
    assert.equal(refused?.body, JSON.stringify({ error: 'forbidden', error_description: 'Only callers on this host (loopback) are served' }));
    assert.equal(guard.check(request('127.0.0.1', { host: '127.0.0.1:50342' })), undefined);
    const dnat = new RequestGuard({ allowedPeers: ['10.0.0.7'] });
    dnat.setPort(50342);
    assert.equal(dnat.check(request('10.0.0.7', { host: '169.254.169.254' })), undefined);
    assert.equal(dnat.check(request('10.0.0.8', { host: '169.254.169.254' }))?.status, 403);
  });

  it('a Host without a port is this agent only when it listens on port 80', () => {
    const on80 = new RequestGuard();
    on80.setPort(80);
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1:80', 'LOCALHOST:80']) assert.equal(on80.check(request('127.0.0.1', { host })), undefined, host);
    const other = new RequestGuard();
    other.setPort(50342);
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1:80', 'evil.example:50342']) assert.equal(other.check(request('127.0.0.1', { host }))?.reason, 'foreign_host', host);
  });

  it('refuses Forwarded as well as X-Forwarded-For, and a missing Host', () => {
    const guard = new RequestGuard();
    guard.setPort(1234);
    assert.equal(guard.check(request('127.0.0.1', { host: '127.0.0.1:1234', forwarded: 'for=1.2.3.4' }))?.reason, 'forwarded');
    assert.equal(guard.check(request('127.0.0.1', {}))?.reason, 'foreign_host');
  });
});

describe('agent query parsing', () => {
  it('refuses a repeated name in any case, keeps percent-decoding, ignores empty selectors', () => {
    assert.throws(() => parseParams('resource=a&RESOURCE=b'), /Duplicate query parameter 'resource'/);
    assert.equal(parseParams('resource=https%3A%2F%2Fvault.azure.net%2F').get('resource'), 'https://vault.azure.net/');
    assert.deepEqual(selectorOf(parseParams('client_id=&resource=x')), { kind: 'system' });
    assert.deepEqual(selectorOf(parseParams('principalId=ABC')), { kind: 'object', value: 'ABC' });
    assert.throws(() => selectorOf(parseParams('client_id=a&msi-res-id=b')), /Only one of/);
  });
});

describe('agent rate limiter', () => {
  it('allows the burst, then answers the wait in whole seconds, and refills with time', () => {
    const clock = new FakeClock();
    const limiter = new RateLimiter({ perSecond: 2, burst: 2, clock });
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 1);
    assert.equal(limiter.take('b'), 0, 'per identity');
    clock.advance(500);
    assert.equal(limiter.take('a'), 0);
  });
});

describe('agent token cache (fake authority)', () => {
  const identity: HostIdentity = { type: 'UserAssigned', objectId: 'OID-1', clientId: 'cid-1', resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u' };

  function setup() {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const state = { calls: 0, fail: false as false | 'unavailable' | 'identity-not-found' };
    const fetch = (): Promise<IssuedToken> => {
      state.calls++;
      if (state.fail !== false) return Promise.reject(new UpstreamError(state.fail, 'scripted'));
      const now = Math.floor(clock.now() / 1000);
      return Promise.resolve({ accessToken: `token-${String(state.calls)}`, expiresOn: now + 3600, notBefore: now, receivedAt: now });
    };
    const cache = new TokenCache({ fetch, logger: captureLogs().logger, clock, random: () => 0.5, maxEntries: 3, retryBaseMs: 1000, retryMaxMs: 8000 });
    return { clock, state, cache };
  }
  const settle = () => new Promise((r) => setImmediate(r));

  it('builds the §8.4 body with strings, expires_in = exp - now, and the Arc echo when asked', async () => {
    const { cache, clock } = setup();
    const { entry } = await cache.obtain(identity, 'https://vault.azure.net/');
    clock.advance(10_500);
    const body = JSON.parse(successBody(entry, clock.now())) as Record<string, string>;
    assert.deepEqual(Object.keys(body), ['access_token', 'refresh_token', 'expires_in', 'expires_on', 'ext_expires_in', 'not_before', 'resource', 'token_type', 'client_id']);
    assert.equal(body['expires_in'], '3590');
    assert.equal(body['ext_expires_in'], '3590');
    assert.equal(body['resource'], 'https://vault.azure.net/');
    assert.equal(body['client_id'], 'cid-1');
    const echoed = JSON.parse(successBody(entry, clock.now(), { object_id: 'OID-1', msi_res_id: identity.resourceId })) as Record<string, string>;
    assert.equal(echoed['object_id'], 'OID-1');
    assert.equal(echoed['msi_res_id'], identity.resourceId);
  });

  it('keeps serving during an outage, retries in the background with exponential backoff, recovers without traffic', async () => {
    const { cache, clock, state } = setup();
    await cache.obtain(identity, 'r');
    state.fail = 'unavailable';
    clock.advance(1800_000);
    assert.equal(cache.peek(identity, 'r')?.token.accessToken, 'token-1', 'due: served, refresh started');
    await settle();
    assert.equal(state.calls, 2);
    const retryDelays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before: number = state.calls;
      let waited = 0;
      while (state.calls === before && waited < 20_000) {
        clock.advance(100);
        waited += 100;
        cache.sweep();
        await settle();
      }
      retryDelays.push(waited);
    }
    // 1 s, 2 s, 4 s, 8 s (capped), each jittered to 75 % with random() = 0.5.
    assert.deepEqual(retryDelays, [800, 1500, 3000, 6000]);
    assert.equal(cache.peek(identity, 'r')?.token.accessToken, 'token-1');
    await assert.rejects(cache.obtain(identity, 'new-audience'), (err: UpstreamError) => err.kind === 'unavailable');
    state.fail = false;
    for (let i = 0; i < 200 && cache.peek(identity, 'r')?.token.accessToken === 'token-1'; i++) {
      clock.advance(100);
      cache.sweep();
      await settle();
    }
    assert.notEqual(cache.peek(identity, 'r')?.token.accessToken, 'token-1', 'recovered alone');
  });

  it('stops serving a token near its expiry, drops identities, stays bounded, and ignores fetches from before clear()', async () => {
    const { cache, clock, state } = setup();
    await cache.obtain(identity, 'r');
    state.fail = 'unavailable';
    clock.advance(3596_000);
    assert.equal(cache.peek(identity, 'r'), undefined, 'less than 5 s left');
    state.fail = false;
    await cache.obtain(identity, 'r');
    cache.dropIdentities(['oid-1']);
    assert.equal(cache.size, 0, 'object ids compare case-insensitively');
    for (const r of ['a', 'b', 'c', 'd']) await cache.obtain(identity, r);
    assert.equal(cache.size, 3);
    assert.equal(cache.peek(identity, 'a'), undefined, 'oldest evicted');
    const pending = cache.obtain(identity, 'late');
    cache.clear();
    await pending;
    assert.equal(cache.size, 0);
  });
});
