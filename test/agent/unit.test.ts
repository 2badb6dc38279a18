import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeClock } from '../../src/shared/clock.js';
import type { HostIdentity } from '../../src/shared/host-protocol.js';
import { RequestGuard, isLoopback } from '../../src/agent/guard.js';
import { TokenCache, successBody } from '../../src/agent/token-cache.js';
import { UpstreamError, type IssuedToken } from '../../src/agent/upstream.js';
import { RateLimiter } from '../../src/agent/rate-limit.js';
import {
  AgentError,
  header,
  parseParams,
  refuse,
  requireResource,
  selectorOf,
  serveToken,
  sessionAllows,
  unknownSessionSelectors,
  type SurfaceContext,
  type TokenRequest,
} from '../../src/agent/surfaces/common.js';
import type { HostIdentities, IdentitySelector } from '../../src/agent/identities.js';
import type { AgentAuditEvent } from '../../src/agent/contracts.js';
import { captureLogs } from '../support/logs.js';

const request = (remoteAddress: string, headers: Record<string, string>) => ({ socket: { remoteAddress }, headers }) as unknown as IncomingMessage;

describe('agent guard', () => {
  it('loopback means 127.0.0.0/8, ::1 and IPv4-mapped 127.x only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(a), a);
    for (const a of ['10.0.0.1', '169.254.169.254', '::ffff:10.0.0.1', '0.0.0.0', '::', 'fe80::1', '1127.0.0.1', undefined])
      assert.ok(!isLoopback(a), String(a));
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
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1:80', 'LOCALHOST:80'])
      assert.equal(on80.check(request('127.0.0.1', { host })), undefined, host);
    const other = new RequestGuard();
    other.setPort(50342);
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1:80', 'evil.example:50342'])
      assert.equal(other.check(request('127.0.0.1', { host }))?.reason, 'foreign_host', host);
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
  const identity: HostIdentity = {
    type: 'UserAssigned',
    objectId: 'OID-1',
    clientId: 'cid-1',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u',
  };

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
    assert.deepEqual(Object.keys(body), [
      'access_token',
      'refresh_token',
      'expires_in',
      'expires_on',
      'ext_expires_in',
      'not_before',
      'resource',
      'token_type',
      'client_id',
    ]);
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

describe('agent token cache: decisions pinned by mutation testing', () => {
  const identity: HostIdentity = {
    type: 'UserAssigned',
    objectId: 'OID-1',
    clientId: 'cid-1',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/u',
  };
  const settle = () => new Promise((r) => setImmediate(r));

  function setup() {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const state = { calls: 0, fail: undefined as UpstreamError | undefined };
    const fetch = (): Promise<IssuedToken> => {
      state.calls++;
      if (state.fail !== undefined) return Promise.reject(state.fail);
      const now = Math.floor(clock.now() / 1000);
      return Promise.resolve({ accessToken: `token-${String(state.calls)}`, expiresOn: now + 3600, notBefore: now, receivedAt: now });
    };
    const cache = new TokenCache({ fetch, logger: captureLogs().logger, clock, random: () => 0.5, maxEntries: 10, retryBaseMs: 1000, retryMaxMs: 8000 });
    return { clock, state, cache };
  }

  it('invariant: a token is served until 5 s before its expiry and never after; the sweep drops expired entries', async () => {
    const { cache, clock, state } = setup();
    const { entry } = await cache.obtain(identity, 'r');
    state.fail = new UpstreamError('unavailable', 'down');
    clock.set(entry.token.expiresOn * 1000 - 5000);
    assert.equal(cache.peek(identity, 'r'), entry, 'exactly 5 s left: served');
    await settle();
    clock.advance(1);
    assert.equal(cache.peek(identity, 'r'), undefined);
    assert.equal(cache.size, 1);
    clock.set(entry.token.expiresOn * 1000 - 1);
    cache.sweep();
    assert.equal(cache.size, 1, 'not yet expired: kept (never served)');
    clock.set(entry.token.expiresOn * 1000);
    cache.sweep();
    assert.equal(cache.size, 0);
    assert.equal(successBody(entry, clock.now() + 60_000).includes('"expires_in":"0"'), true, 'expires_in is never negative');
  });

  it('invariant: object ids match in any case, resources exactly: another spelling of a resource is another token', async () => {
    const { cache, state } = setup();
    await cache.obtain(identity, 'https://Vault.azure.net');
    assert.ok(cache.peek({ ...identity, objectId: 'oid-1' }, 'https://Vault.azure.net'), 'the object id in another case');
    assert.equal(cache.peek(identity, 'https://vault.azure.net'), undefined);
    assert.equal(cache.peek({ ...identity, objectId: 'OID-2' }, 'https://Vault.azure.net'), undefined);
    assert.equal((await cache.obtain(identity, 'https://vault.azure.net')).source, 'authority');
    assert.equal(state.calls, 2);
  });

  it('invariant: a background refresh told the identity is gone drops its token at once; other failures keep it', async () => {
    const { cache, clock, state } = setup();
    const { entry } = await cache.obtain(identity, 'r');
    await cache.obtain(identity, 'other');
    state.fail = new UpstreamError('unavailable', 'down');
    clock.set(entry.refreshAt);
    assert.ok(cache.peek(identity, 'r'), 'served at half-life');
    await settle();
    assert.equal(state.calls, 3);
    assert.ok(cache.peek(identity, 'r'), 'kept through an outage');
    state.fail = new UpstreamError('identity-not-found', 'gone');
    clock.advance(10_000);
    cache.sweep();
    await settle();
    assert.equal(state.calls, 5, 'both entries retried');
    assert.equal(cache.peek(identity, 'r'), undefined);
    assert.equal(cache.size, 0);
  });

  it('concurrent misses share one authority call; after an outage a miss fails fast until the backoff ends', async () => {
    const { cache, clock, state } = setup();
    const [a, b] = await Promise.all([cache.obtain(identity, 'r'), cache.obtain(identity, 'r')]);
    assert.equal(a.entry, b.entry);
    assert.equal(state.calls, 1);
    const down = new UpstreamError('unavailable', 'down');
    state.fail = down;
    await assert.rejects(cache.obtain(identity, 'x'), (err: unknown) => err === down);
    assert.equal(state.calls, 2);
    clock.advance(749);
    await assert.rejects(cache.obtain(identity, 'y'), (err: unknown) => err === down);
    assert.equal(state.calls, 2, 'within the backoff (1 s jittered to 750 ms): no call');
    clock.advance(1);
    state.fail = undefined;
    assert.equal((await cache.obtain(identity, 'y')).source, 'authority');
    assert.equal(state.calls, 3);
    state.fail = new UpstreamError('identity-not-found', 'gone');
    await assert.rejects(cache.obtain(identity, 'z'));
    state.fail = undefined;
    assert.equal((await cache.obtain(identity, 'z')).source, 'authority', 'only unavailability backs off');
  });
});

describe('agent token pipeline: serveToken and its checks (fake context)', () => {
  const system: HostIdentity = {
    type: 'SystemAssigned',
    objectId: 'SYS-OID',
    clientId: 'sys-cid',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/m',
  };
  const uami: HostIdentity = {
    type: 'UserAssigned',
    objectId: 'UAMI-OID',
    clientId: 'uami-cid',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-one',
  };
  const uami2: HostIdentity = {
    type: 'UserAssigned',
    objectId: 'UAMI2-OID',
    clientId: 'uami2-cid',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-two',
  };
  const all = [system, uami, uami2];
  const RESOURCE = 'https://vault.azure.net';

  interface Answer {
    status: number;
    headers: Record<string, string | number>;
    body: Record<string, string>;
  }

  /** A SurfaceContext over a real TokenCache and RateLimiter, a scripted authority and host identity list. */
  function pipeline(options: { identities?: HostIdentity[]; burst?: number } = {}) {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const identities = options.identities ?? all;
    const state = {
      hostRefused: false,
      refuseHostDuringFetch: false,
      fail: undefined as UpstreamError | Error | undefined,
      fetched: [] as string[],
      resolveFresh: 0,
      resolveFreshFails: undefined as UpstreamError | undefined,
      refreshes: 0,
      notRecognised: 0,
    };
    const fetch = (identity: HostIdentity, resource: string): Promise<IssuedToken> => {
      state.fetched.push(`${identity.objectId} ${resource}`);
      if (state.refuseHostDuringFetch) state.hostRefused = true;
      if (state.fail !== undefined) return Promise.reject(state.fail);
      const now = Math.floor(clock.now() / 1000);
      return Promise.resolve({ accessToken: `token-of-${identity.objectId}`, expiresOn: now + 3600, notBefore: now, receivedAt: now });
    };
    const logs = captureLogs();
    const audits: AgentAuditEvent[] = [];
    const cache = new TokenCache({ fetch, logger: logs.logger, clock, random: () => 0.5, maxEntries: 10, retryBaseMs: 1000, retryMaxMs: 8000 });
    const resolve = (selector: IdentitySelector): HostIdentity | undefined => {
      if (selector.kind === 'system') return identities.find((i) => i.type === 'SystemAssigned');
      const v = selector.value.toLowerCase();
      return identities.find((i) => (selector.kind === 'client' ? i.clientId : selector.kind === 'object' ? i.objectId : i.resourceId).toLowerCase() === v);
    };
    const fakeIdentities = {
      host: { identities },
      resolve,
      resolveFresh: (selector: IdentitySelector) => {
        state.resolveFresh++;
        if (state.resolveFreshFails !== undefined) return Promise.reject(state.resolveFreshFails);
        return Promise.resolve(resolve(selector));
      },
      refresh: () => {
        state.refreshes++;
        return Promise.resolve({ identities });
      },
    } as unknown as HostIdentities;
    const ctx: SurfaceContext = {
      clock,
      logger: logs.logger,
      identities: fakeIdentities,
      cache,
      limiter: new RateLimiter({ perSecond: 1, burst: options.burst ?? 1000, clock }),
      audit: { record: (event) => void audits.push(event) },
      callers: { callerOf: () => ({ address: '127.0.0.1' }) },
      sessions: { bySecret: () => undefined },
      machineSecretDigest: Buffer.alloc(32),
      imds: true,
      appService: true,
      retryAfterSeconds: 7,
      hostRefused: () => state.hostRefused,
      onHostNotRecognised: () => void state.notRecognised++,
    };
    /** Serves one request to completion and returns what the surface answered (bounded: a fake, never a socket). */
    const serve = async (request: Partial<TokenRequest> & Pick<TokenRequest, 'selector'>): Promise<Answer> => {
      let answer: Answer | undefined;
      const res = {
        headersSent: false,
        writeHead(status: number, headers: Record<string, string | number>) {
          answer = { status, headers, body: {} };
          return { end: (body: string) => void (answer!.body = JSON.parse(body) as Record<string, string>) };
        },
      } as unknown as ServerResponse;
      const req = { socket: {}, headers: {} } as unknown as IncomingMessage;
      await serveToken(ctx, req, res, { surface: 'imds', resource: RESOURCE, ...request });
      assert.ok(answer !== undefined, 'answered');
      return answer;
    };
    return { ctx, clock, state, audits, logs, cache, serve };
  }
  const byClient = (identity: HostIdentity): IdentitySelector => ({ kind: 'client', value: identity.clientId });

  it('invariant: a session is served only the identities it names, on a cache hit as on a miss', async () => {
    const p = pipeline();
    const session = { id: 'sess-1', identities: ['app-one'] };
    // A miss for another identity: refused before the authority is asked.
    const miss = await p.serve({ selector: byClient(uami2), session });
    assert.equal(miss.status, 400);
    assert.equal(miss.body.error_description, 'Identity not found');
    assert.deepEqual(p.state.fetched, []);
    // The other identity's token cached by a request without a session: still refused to the session.
    assert.equal((await p.serve({ selector: byClient(uami2) })).status, 200);
    const hit = await p.serve({ selector: byClient(uami2), session });
    assert.equal(hit.status, 400);
    assert.equal(hit.body.access_token, undefined);
    assert.equal(p.audits.at(-1)?.decision, 'refused');
    assert.equal(p.audits.at(-1)?.session, 'sess-1');
    // Its own identity is served, by selector and (its only identity) without one.
    assert.equal((await p.serve({ selector: byClient(uami), session })).body.access_token, 'token-of-UAMI-OID');
    assert.equal((await p.serve({ selector: { kind: 'system' }, session })).body.access_token, 'token-of-UAMI-OID');
  });

  it('invariant: a session without a selector gets its only identity, or the system one it names, never an identity it does not name', async () => {
    const p = pipeline();
    const withSystem = { id: 's', identities: ['[system]', 'app-one'] };
    assert.equal((await p.serve({ selector: { kind: 'system' }, session: withSystem })).body.access_token, 'token-of-SYS-OID');
    const twoUser = { id: 's2', identities: ['app-one', 'uami2-cid'] };
    const refused = await p.serve({ selector: { kind: 'system' }, session: twoUser });
    assert.equal(refused.status, 400, 'two user-assigned identities and no selector: ambiguous, and the system identity is not named');
    assert.equal(refused.body.error_description, 'Identity not found');
    const none = { id: 's3', identities: ['nothing-of-this-host'] };
    assert.equal((await p.serve({ selector: { kind: 'system' }, session: none })).status, 400);
    // A session whose only user-assigned identity is named, on a host without a system identity.
    const noSystem = pipeline({ identities: [uami, uami2] });
    assert.equal(
      (await noSystem.serve({ selector: { kind: 'system' }, session: { id: 's4', identities: ['app-two'] } })).body.access_token,
      'token-of-UAMI2-OID',
    );
  });

  it('invariant: once the authority no longer recognises the host, nothing is served, not even a cached token', async () => {
    const p = pipeline();
    assert.equal((await p.serve({ selector: byClient(uami) })).status, 200);
    p.state.hostRefused = true;
    for (const selector of [byClient(uami), byClient(uami2), { kind: 'system' } as const]) {
      const answer = await p.serve({ selector });
      assert.equal(answer.status, 403);
      assert.equal(answer.body.error, 'unauthorized_client');
      assert.equal(answer.body.access_token, undefined);
    }
    assert.equal(p.state.fetched.length, 1, 'the authority was not asked again');
    // Refused while the fetch was in flight: the token it got is not handed out.
    const q = pipeline();
    q.state.refuseHostDuringFetch = true;
    const answer = await q.serve({ selector: byClient(uami) });
    assert.equal(answer.status, 403);
    assert.equal(answer.body.access_token, undefined);
  });

  it('rate-limits per identity on a cache hit as on a miss, with Retry-After', async () => {
    const p = pipeline({ burst: 1 });
    assert.equal((await p.serve({ selector: byClient(uami) })).status, 200);
    const hit = await p.serve({ selector: byClient(uami) });
    assert.equal(hit.status, 429);
    assert.equal(hit.headers['retry-after'], '1');
    assert.equal(hit.body.access_token, undefined);
    assert.equal((await p.serve({ selector: byClient(uami2) })).status, 200, 'another identity has its own budget');
    assert.deepEqual(
      [p.audits.at(-2)?.reason, p.audits.at(-2)?.identity, p.audits.at(-2)?.audience],
      ['rate_limited', 'UAMI-OID', RESOURCE],
      'the refusal is audited with its identity and audience',
    );
    const miss = await p.serve({ selector: byClient(uami2), resource: 'https://storage.azure.com' });
    assert.equal(miss.status, 429);
    assert.equal(p.state.fetched.length, 2, 'a refused miss does not ask the authority');
  });

  it('an unknown selector is looked up again before the refusal; an unknown identity is never served', async () => {
    const p = pipeline();
    const answer = await p.serve({ selector: { kind: 'client', value: 'not-on-this-host' } });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error_description, 'Identity not found');
    assert.equal(p.state.resolveFresh, 1);
    assert.deepEqual(p.state.fetched, []);
    assert.equal(p.audits.at(-1)?.identity, undefined);
    // The identity list cannot be read: a retryable 503, audited without an identity.
    p.state.resolveFreshFails = new UpstreamError('unavailable', 'down');
    const down = await p.serve({ selector: { kind: 'client', value: 'not-on-this-host' } });
    assert.equal(down.status, 503);
    assert.equal(p.audits.at(-1)?.identity, undefined);
  });

  it('maps each authority failure to its answer: 503 with Retry-After, 400 invalid_resource, 400 identity, 403 host, 500 otherwise', async () => {
    const cases: [UpstreamError | Error, number, string, (p: ReturnType<typeof pipeline>) => void][] = [
      [new UpstreamError('unavailable', 'down'), 503, 'temporarily_unavailable', (p) => assert.equal(p.audits.at(-1)?.reason, 'authority_unavailable')],
      [new UpstreamError('invalid-resource', 'no'), 400, 'invalid_resource', () => undefined],
      [new UpstreamError('identity-not-found', 'gone'), 400, 'invalid_request', (p) => assert.equal(p.state.refreshes, 1, 'the identity list is re-read')],
      [new UpstreamError('host-not-recognised', 'revoked'), 403, 'unauthorized_client', (p) => assert.equal(p.state.notRecognised, 1)],
      [new UpstreamError('refused', 'no', { status: 401 }), 500, 'server_error', (p) => assert.equal(p.audits.at(-1)?.reason, 'authority_refused')],
      [new Error('bug'), 500, 'server_error', (p) => assert.equal(p.audits.at(-1)?.reason, 'authority_refused')],
    ];
    for (const [fail, status, error, check] of cases) {
      const p = pipeline();
      p.state.fail = fail;
      const answer = await p.serve({ selector: byClient(uami) });
      assert.equal(answer.status, status, fail.message);
      assert.equal(answer.body.error, error, fail.message);
      assert.equal(answer.body.access_token, undefined);
      if (status === 503) assert.equal(answer.headers['retry-after'], '7');
      assert.equal(p.audits.at(-1)?.identity, 'UAMI-OID');
      assert.equal(p.audits.at(-1)?.decision, 'refused');
      check(p);
    }
  });

  it('echoes a user-assigned identity’s ids only when asked (Arc), never the system identity’s', async () => {
    const p = pipeline();
    const echoed = await p.serve({ selector: byClient(uami), echo: true });
    assert.equal(echoed.body.object_id, 'UAMI-OID');
    assert.equal(echoed.body.msi_res_id, uami.resourceId);
    assert.equal((await p.serve({ selector: byClient(uami) })).body.object_id, undefined);
    assert.equal((await p.serve({ selector: { kind: 'system' }, echo: true })).body.object_id, undefined);
    assert.equal((await p.serve({ selector: byClient(uami), echo: 'yes' as unknown as boolean })).body.object_id, undefined);
    const served = p.audits.filter((e) => e.decision === 'served');
    assert.deepEqual(
      served.map((e) => e.source),
      ['authority', 'cache', 'authority', 'cache'],
    );
    assert.ok(
      served.every((e) => e.status === 200 && e.audience === RESOURCE && e.surface === 'imds'),
      'served records',
    );
  });

  it('answers JSON with no-store and no CORS; a refusal after the answer started writes nothing; a throwing audit sink never loses the answer', async () => {
    const p = pipeline();
    const answer = await p.serve({ selector: byClient(uami) });
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8');
    assert.ok(!Object.keys(answer.headers).some((h) => h.startsWith('access-control-')), 'no CORS header');
    const written: unknown[] = [];
    const started = { headersSent: true, writeHead: (...args: unknown[]) => void written.push(args) } as unknown as ServerResponse;
    const req = { socket: {}, headers: {} } as unknown as IncomingMessage;
    const audited = p.audits.length;
    refuse(p.ctx, req, started, 'imds', new Error('late'));
    assert.deepEqual(written, []);
    assert.equal(p.audits.length, audited);
    // Anything but an AgentError is answered as a 500 and audited as internal.
    let status = 0;
    const fresh = { headersSent: false, writeHead: (s: number) => ((status = s), { end: () => undefined }) } as unknown as ServerResponse;
    refuse(p.ctx, req, fresh, 'imds', new Error('bug'));
    assert.equal(status, 500);
    assert.equal(p.audits.at(-1)?.reason, 'internal');
    p.ctx.audit = {
      record: () => {
        throw new Error('sink down');
      },
    };
    assert.equal((await p.serve({ selector: byClient(uami) })).status, 200);
    assert.ok(
      p.logs.lines.some((l) => l.includes('the audit sink threw')),
      'logged',
    );
  });
});

describe('agent request checks', () => {
  const system: HostIdentity = {
    type: 'SystemAssigned',
    objectId: 'Sys-Oid',
    clientId: 'Sys-Cid',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.HybridCompute/machines/app-one',
  };
  const user: HostIdentity = {
    type: 'UserAssigned',
    objectId: 'User-Oid',
    clientId: 'User-Cid',
    resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-one',
  };

  it('invariant: a session selector names an identity by [system] (system only), client or object id, ARM id or name (user-assigned only), in any case', () => {
    const session = (...identities: string[]) => ({ id: 'x', identities });
    for (const s of ['[system]', ' SYSTEM ', 'system', 'sys-cid', 'SYS-OID']) assert.ok(sessionAllows(session(s), system), s);
    for (const s of ['user-cid', 'USER-OID', 'app-one', 'APP-ONE', user.resourceId.toUpperCase(), ` ${user.resourceId} `])
      assert.ok(sessionAllows(session(s), user), s);
    // The system identity's resource id is the machine's; its last segment is the machine's name: neither names it.
    for (const s of ['app-one', system.resourceId, 'user-cid', '']) assert.equal(sessionAllows(session(s), system), false, s);
    for (const s of ['[system]', 'system', 'sys-cid', 'app', 'one', '/subscriptions/s', '']) assert.equal(sessionAllows(session(s), user), false, s);
    assert.equal(sessionAllows(session(), user), false, 'a session with no selectors names nothing');
    assert.deepEqual(unknownSessionSelectors(['app-one', 'nope', '[system]'], [user]), ['nope', '[system]']);
    assert.deepEqual(unknownSessionSelectors(['app-one'], []), ['app-one']);
  });

  it('parses the query as IMDS does: + and percent-decoding, empty parts skipped, bad encoding and duplicates refused', () => {
    const params = parseParams('resource=https%3A%2F%2Fa.example%2F&&Client_ID=x+y&flag');
    assert.deepEqual(
      [...params],
      [
        ['resource', 'https://a.example/'],
        ['client_id', 'x y'],
        ['flag', ''],
      ],
    );
    assert.equal(parseParams('').size, 0);
    assert.equal(parseParams('a=b=c').get('a'), 'b=c');
    assert.throws(
      () => parseParams('resource=%E0%A4%A'),
      (err: unknown) => err instanceof AgentError && err.status === 400 && err.reason === 'bad_query',
    );
    assert.throws(
      () => parseParams('r%65source=a&resource=b'),
      (err: unknown) => err instanceof AgentError && err.reason === 'duplicate_parameter',
    );
    assert.throws(
      () => selectorOf(parseParams('object_id=a&principal_id=a')),
      (err: unknown) => err instanceof AgentError && err.reason === 'multiple_selectors',
    );
    assert.deepEqual(selectorOf(parseParams('msi_res_id=/x&resource=r')), { kind: 'resource', value: '/x' });
  });

  it('invariant: a request without a valid resource is refused before any identity, cache or authority call', () => {
    for (const q of ['', 'resource='])
      assert.throws(
        () => requireResource(parseParams(q)),
        (err: unknown) => err instanceof AgentError && err.reason === 'missing_parameter',
        q,
      );
    for (const bad of ['not a uri', 'https://a.example/\u0000', `https://${'a'.repeat(2100)}.example`, 'http://vault.azure.net']) {
      assert.throws(
        () => requireResource(new Map([['resource', bad]])),
        (err: unknown) => err instanceof AgentError && err.status === 400 && err.error === 'invalid_resource',
        JSON.stringify(bad),
      );
    }
    assert.equal(requireResource(new Map([['resource', 'https://vault.azure.net']])), 'https://vault.azure.net');
  });

  it('reads a repeated header as one joined value, so exact checks fail', () => {
    const req = { headers: { metadata: ['true', 'true'], single: 'v' } } as unknown as IncomingMessage;
    assert.equal(header(req, 'metadata'), 'true, true');
    assert.equal(header(req, 'single'), 'v');
    assert.equal(header(req, 'absent'), undefined);
  });
});
