/**
 * The agent's guard (src/agent/guard.ts), sessions (src/agent/sessions.ts) and secret digests
 * (src/agent/secret-digest.ts) on their own, store-less: requests are plain objects with a socket address and
 * headers. The end-to-end guard (every path, a real socket from another address) is test/agent/guard.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { hasProxyHeader, PROXY_HEADERS, RequestGuard } from '../../src/agent/guard.js';
import { digestOf, secretMatches } from '../../src/agent/secret-digest.js';
import { SessionRegistry, TooManySessionsError } from '../../src/agent/sessions.js';

const PORT = 50342;

function request(remoteAddress: string | undefined, headers: Record<string, string | undefined> = {}): IncomingMessage {
  return { socket: { remoteAddress }, headers: { host: `127.0.0.1:${String(PORT)}`, ...headers } } as unknown as IncomingMessage;
}

function guard(allowedPeers?: string[]): RequestGuard {
  const g = new RequestGuard(allowedPeers === undefined ? undefined : { allowedPeers });
  g.setPort(PORT);
  return g;
}

/** The refusal's status and reason, or 'ok'. */
function outcome(g: RequestGuard, req: IncomingMessage): string {
  const refusal = g.check(req);
  return refusal === undefined ? 'ok' : `${String(refusal.status)} ${refusal.reason}`;
}

// The list as documented (docs/agent.md, the module's comment): each one refused on its own.
const EXPECTED_PROXY_HEADERS = [
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-forwarded',
  'forwarded',
  'forwarded-for',
  'x-real-ip',
  'x-client-ip',
  'x-original-forwarded-for',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
  'x-host',
  'x-original-host',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-proxyuser-ip',
  'via',
];

void describe('agent guard (store-less)', () => {
  void it('serves a loopback peer naming this agent, and refuses one naming another host', () => {
    const g = guard();
    for (const peer of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) assert.equal(outcome(g, request(peer)), 'ok', peer);
    assert.equal(outcome(g, request('127.0.0.1', { host: 'evil.example:50342' })), '400 foreign_host');
  });

  void it('refuses a peer that is neither loopback nor allowed with 403, whatever else the request says', () => {
    const g = guard(['169.254.169.254']);
    for (const peer of ['10.0.0.5', '169.254.169.253', '::ffff:10.0.0.5', '', undefined]) {
      assert.equal(outcome(g, request(peer)), '403 non_loopback_peer', String(peer));
      assert.equal(outcome(g, request(peer, { 'x-forwarded-for': '127.0.0.1' })), '403 non_loopback_peer', `${String(peer)} with a proxy header`);
    }
    assert.equal(outcome(guard(), request('169.254.169.254')), '403 non_loopback_peer', 'no peer is allowed unless configured');
    assert.equal(outcome(new RequestGuard(), request('10.0.0.5')), '403 non_loopback_peer');
  });

  void it('serves an allowedPeers address (the DNAT setup) like a loopback one, and only that address', () => {
    const g = guard(['10.1.2.3']);
    assert.equal(outcome(g, request('10.1.2.3', { host: '169.254.169.254' })), 'ok');
    assert.equal(outcome(g, request('10.1.2.3')), 'ok');
    assert.equal(outcome(g, request('10.1.2.4')), '403 non_loopback_peer');
    assert.equal(outcome(g, request('10.1.2.3', { via: '1.1 proxy' })), '400 forwarded', 'an allowed peer is still checked for proxy headers');
    assert.equal(outcome(g, request('10.1.2.3', { host: 'evil.example' })), '400 foreign_host', 'and for its Host');
  });

  void it('refuses every proxy header, with any value, even empty', () => {
    assert.deepEqual([...PROXY_HEADERS].sort(), [...EXPECTED_PROXY_HEADERS].sort());
    const g = guard();
    for (const name of EXPECTED_PROXY_HEADERS) {
      for (const value of ['127.0.0.1', '']) {
        assert.equal(hasProxyHeader({ headers: { [name]: value } }), true, `${name}: ${JSON.stringify(value)}`);
        assert.equal(outcome(g, request('127.0.0.1', { [name]: value })), '400 forwarded', name);
      }
    }
    assert.equal(hasProxyHeader({ headers: { host: 'localhost', 'x-identity-header': 's', metadata: 'true' } }), false);
    assert.equal(hasProxyHeader({ headers: {} }), false);
  });

  void it('accepts only the Host names of this agent: the port it listens on, or 169.254.169.254 on port 80; in any case', () => {
    const g = guard();
    for (const host of [
      `127.0.0.1:${String(PORT)}`,
      `localhost:${String(PORT)}`,
      `[::1]:${String(PORT)}`,
      '169.254.169.254',
      '169.254.169.254:80',
      `LOCALHOST:${String(PORT)}`,
    ]) {
      assert.equal(outcome(g, request('127.0.0.1', { host })), 'ok', host);
    }
    for (const host of [
      '127.0.0.1',
      'localhost',
      '[::1]',
      `127.0.0.1:${String(PORT + 1)}`,
      `localhost:${String(PORT)}.evil.example`,
      `evil.example:${String(PORT)}`,
      '169.254.169.254:8080',
      '',
      undefined,
    ]) {
      assert.equal(outcome(g, request('127.0.0.1', { host })), '400 foreign_host', String(host));
    }
    // On port 80, a Host without a port names this agent too.
    const on80 = new RequestGuard();
    on80.setPort(80);
    for (const host of ['127.0.0.1', 'localhost', '[::1]', '127.0.0.1:80', 'localhost:80', '169.254.169.254'])
      assert.equal(outcome(on80, request('127.0.0.1', { host })), 'ok', host);
    assert.equal(outcome(on80, request('127.0.0.1', { host: '127.0.0.1:50342' })), '400 foreign_host');
    // A new port replaces the old one.
    g.setPort(PORT + 1);
    assert.equal(outcome(g, request('127.0.0.1', { host: `127.0.0.1:${String(PORT)}` })), '400 foreign_host');
    assert.equal(outcome(g, request('127.0.0.1', { host: `127.0.0.1:${String(PORT + 1)}` })), 'ok');
  });

  void it('refuses every Host before the port is known', () => {
    const g = new RequestGuard();
    assert.equal(outcome(g, request('127.0.0.1', { host: '169.254.169.254' })), '400 foreign_host');
  });

  void it('the refusals answer 403 forbidden and 400 invalid_request', () => {
    const g = guard();
    const refusals = [g.check(request('10.0.0.1')), g.check(request('127.0.0.1', { via: 'x' })), g.check(request('127.0.0.1', { host: 'x' }))];
    assert.deepEqual(
      refusals.map((r) => [r?.status, r?.error]),
      [
        [403, 'forbidden'],
        [400, 'invalid_request'],
        [400, 'invalid_request'],
      ],
    );
  });
});

void describe('agent secret digests', () => {
  void it('digestOf is the SHA-256 of the UTF-8 secret', () => {
    for (const secret of ['s3cret', 'é€😀', '']) assert.deepEqual(digestOf(secret), createHash('sha256').update(Buffer.from(secret, 'utf8')).digest());
  });

  void it('secretMatches only the secret whose digest it is', () => {
    const d = digestOf('the-secret');
    assert.equal(secretMatches('the-secret', d), true);
    for (const other of ['the-secreT', 'the-secret ', '', 'the-secre']) assert.equal(secretMatches(other, d), false, other);
  });
});

void describe('agent sessions (store-less)', () => {
  void it('holds each session under its own secret, frozen, and forgets the secret itself', () => {
    const registry = new SessionRegistry();
    const identities = ['app-id', '[system]'];
    const created = registry.create(identities);
    identities.push('added-later');
    const session = registry.bySecret(created.secret);
    assert.deepEqual(session, { id: created.id, identities: ['app-id', '[system]'] });
    assert.ok(Object.isFrozen(session) && Object.isFrozen(session?.identities), 'a session cannot be widened after it was created');
    assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(Buffer.from(created.secret, 'base64url').length, 32, '256 random bits');
    assert.equal(registry.size, 1);
  });

  void it('revoking one session leaves the others', () => {
    const registry = new SessionRegistry();
    const a = registry.create(['a']);
    const b = registry.create(['b']);
    assert.equal(registry.revoke(a.id), true);
    assert.equal(registry.bySecret(a.secret), undefined);
    assert.deepEqual(registry.bySecret(b.secret)?.identities, ['b']);
    assert.deepEqual(registry.byId(b.id)?.identities, ['b']);
    assert.equal(registry.revoke('no-such-id'), false);
    assert.equal(registry.size, 1);
  });

  void it('allows exactly maxSessions live sessions (1024 by default)', () => {
    const one = new SessionRegistry({ maxSessions: 1 });
    one.create(['a']);
    assert.throws(() => one.create(['b']), TooManySessionsError);
    const registry = new SessionRegistry();
    for (let i = 0; i < 1024; i++) registry.create([String(i)]);
    assert.throws(() => registry.create(['more']), { name: 'TooManySessionsError', message: '1024 sessions are live; end one first' });
  });
});
