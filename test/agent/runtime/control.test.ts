import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { loadOrCreateControlSecret, controlSecretPath, CONTROL_SESSIONS_PATH, hostIdentityCheck, parseSessionRequest } from '../../../src/agent/control.js';
import type { HostDescription } from '../../../src/shared/host-protocol.js';
import { SessionRegistry } from '../../../src/agent/sessions.js';
import { openSession } from '../../../src/cli/commands/run.js';
import { harnessHost, startHarness, until, type Harness } from './harness.js';
import { withinOrFail } from '../../support/poll.js';

async function post(
  h: Harness,
  body: string,
  headers: Record<string, string>,
  method = 'POST',
): Promise<{ status: number; headers: Headers; json: { error?: string; error_description?: string } | undefined }> {
  // Bounded: a broken check that opened a session stream would otherwise keep the body (and the file) open.
  const res = await fetch(`${h.url}${CONTROL_SESSIONS_PATH}`, {
    method,
    headers,
    body: method === 'GET' ? undefined : body,
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text === '' ? undefined : (JSON.parse(text) as { error?: string; error_description?: string }) };
}

describe('sessions', () => {
  it('hand out 256-bit secrets, find a session only by its exact secret, and forget it when revoked', () => {
    const sessions = new SessionRegistry({ maxSessions: 2 });
    const a = sessions.create(['app-id']);
    const b = sessions.create(['[system]', 'other']);
    assert.equal(Buffer.from(a.secret, 'base64url').length, 32);
    assert.notEqual(a.secret, b.secret);
    assert.deepEqual(sessions.bySecret(a.secret), { id: a.id, identities: ['app-id'] });
    assert.deepEqual(sessions.bySecret(b.secret)?.identities, ['[system]', 'other']);
    assert.equal(sessions.bySecret(a.secret.slice(0, -1)), undefined);
    assert.equal(sessions.bySecret(a.secret + 'x'), undefined);
    assert.equal(sessions.bySecret(''), undefined);
    assert.throws(() => sessions.create(['x']), { name: 'TooManySessionsError' });
    assert.equal(sessions.revoke(a.id), true);
    assert.equal(sessions.bySecret(a.secret), undefined);
    assert.equal(sessions.revoke(a.id), false);
    assert.equal(sessions.size, 1);
  });
});

describe('agent control API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ heartbeatMs: 20 });
  });
  after(async () => {
    await h.close();
  });

  it('keeps its secret in a 0600 file created once', () => {
    assert.equal(statSync(controlSecretPath(h.dataDir)).mode & 0o777, 0o600);
    assert.equal(loadOrCreateControlSecret(h.dataDir), h.controlSecret);
    assert.ok(Buffer.from(h.controlSecret, 'base64url').length >= 32);
  });

  it('replaces a control secret found readable by others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-control-'));
    try {
      const first = loadOrCreateControlSecret(dir);
      chmodSync(controlSecretPath(dir), 0o644);
      const second = loadOrCreateControlSecret(dir);
      assert.notEqual(second, first);
      assert.equal(statSync(controlSecretPath(dir)).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a missing or wrong control secret with 401 and an IMDS-style body', async () => {
    const body = JSON.stringify({ identities: ['app-id'] });
    for (const headers of [
      {} as Record<string, string>,
      { Authorization: 'Bearer wrong' },
      { Authorization: h.controlSecret },
      { Authorization: `Bearer  ${h.controlSecret}` },
      { Authorization: `Basic ${h.controlSecret}` },
    ]) {
      const res = await post(h, body, headers);
      assert.equal(res.status, 401);
      assert.equal(res.json?.error, 'unauthorized');
      assert.equal(typeof res.json?.error_description, 'string');
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
    }
    assert.equal(h.sessions.size, 0);
    assert.ok(h.events.some((e) => e.surface === 'session' && e.decision === 'refused' && e.status === 401 && e.reason === 'unauthorized'));
  });

  it('refuses other methods, browsers, and bodies that are not 1..16 selectors', async () => {
    const auth = { Authorization: `Bearer ${h.controlSecret}` };
    assert.equal((await post(h, '', auth, 'GET')).status, 405);
    assert.equal((await post(h, JSON.stringify({ identities: ['a'] }), { ...auth, Origin: 'http://evil.example' })).status, 403);
    for (const bad of [
      'not json',
      '{}',
      '{"identities":[]}',
      '{"identities":[""]}',
      '{"identities":[" "]}',
      '{"identities":[1]}',
      JSON.stringify({ identities: Array(17).fill('a') }),
      JSON.stringify({ identities: ['a'.repeat(513)] }),
    ]) {
      const res = await post(h, bad, auth);
      assert.equal(res.status, 400, bad);
      assert.equal(res.json?.error, 'invalid_request');
    }
    assert.deepEqual(parseSessionRequest(JSON.stringify({ identities: ['a'.repeat(512), '[system]'] })), ['a'.repeat(512), '[system]']);
    assert.equal(h.sessions.size, 0);
  });

  it('leaves other paths alone', async () => {
    const res = await fetch(`${h.url}/openmsi/agent/other`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 404);
  });

  it('streams a session whose secret works until the connection closes, then revokes it at once', async () => {
    const session = await openSession(h.url, h.controlSecret, ['app-id', '[system]']);
    assert.equal(session.grant.expiresWith, 'connection');
    const ok = await h.token(session.grant.secret);
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body).identities, ['app-id', '[system]']);
    // Heartbeats flow and the session stays.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await h.token(session.grant.secret)).status, 200);

    session.connection.destroy();
    await until(() => h.sessions.size === 0, 2000, 'the session to end');
    assert.equal((await h.token(session.grant.secret)).status, 401);
    const mine = h.events.filter((e) => e.session === session.grant.id);
    assert.deepEqual(
      mine.map((e) => [e.decision, e.status, e.reason]),
      [
        ['served', 201, undefined],
        ['served', 201, 'session_ended'],
      ],
    );
    assert.ok(!JSON.stringify(h.events).includes(session.grant.secret), 'no secret in any audit event');
    assert.ok(!JSON.stringify(h.events).includes(h.controlSecret), 'no control secret in any audit event');
  });

  it('ends every open session stream when the agent closes the control API', async () => {
    const session = await openSession(h.url, h.controlSecret, ['app-id']);
    assert.equal(h.sessions.size, 1);
    h.control.close();
    await withinOrFail(session.ended, 5000, () => 'timed out after 5000 ms waiting for the session stream to end');
    assert.equal(h.sessions.size, 0);
  });

  it('answers a raw client with the grant as the first NDJSON line', async () => {
    const body = JSON.stringify({ identities: ['app-id'] });
    const first = await new Promise<{ status: number; type: string; line: string }>((resolve, reject) => {
      const req = request(`${h.url}${CONTROL_SESSIONS_PATH}`, { method: 'POST', headers: { Authorization: `Bearer ${h.controlSecret}` } }, (res) => {
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.includes('\n')) {
            resolve({ status: res.statusCode!, type: String(res.headers['content-type']), line: text.slice(0, text.indexOf('\n')) });
            req.destroy();
          }
        });
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('no grant line within 5 s')));
      req.end(body);
    });
    assert.equal(first.status, 201);
    assert.equal(first.type, 'application/x-ndjson');
    assert.deepEqual(Object.keys(JSON.parse(first.line)).sort(), ['expiresWith', 'id', 'secret']);
    await until(() => h.sessions.size === 0, 2000, 'the session to end');
  });
});

/** What the agent checks `openmsi run`'s selectors against: the host as last described, re-read once when one does not resolve. */
describe('hostIdentityCheck', () => {
  function hostWith(identities: HostDescription['identities']): HostDescription {
    return { ...harnessHost(), identities };
  }

  it('accepts every way a session may name an identity: [system], name, client id, object id, resource id', async () => {
    const host = harnessHost();
    let refreshes = 0;
    const check = hostIdentityCheck({ host, refresh: () => (refreshes++, Promise.resolve(host)) });
    const [system, app] = host.identities as [HostDescription['identities'][0], HostDescription['identities'][0]];
    for (const selector of ['[system]', 'system', 'app-id', 'APP-ID', app.clientId, app.objectId, app.resourceId, system.objectId]) {
      assert.equal(await check([selector]), undefined, selector);
    }
    assert.equal(refreshes, 0, 'a known identity needs no call to the authority');
  });

  it('refuses selectors that name no identity, naming each and the identities the host has', async () => {
    const host = harnessHost();
    let refreshes = 0;
    const check = hostIdentityCheck({ host, refresh: () => (refreshes++, Promise.resolve(host)) });
    assert.equal(
      await check(['app-id', 'nope', 'other']),
      "'nope', 'other' name no identity of host build-01; it has: [system] (system-assigned, object id 11111111-1111-1111-1111-111111111111), app-id (user-assigned, client id 44444444-4444-4444-4444-444444444444)",
    );
    assert.equal(refreshes, 1, 're-read once: it may just have been assigned');
    const bare = hostWith([]);
    assert.match(
      (await hostIdentityCheck({ host: bare, refresh: () => Promise.resolve(bare) })(['[system]'])) ?? '',
      /it has: none \(assign one with `openmsi vm identity assign`\)$/,
    );
  });

  it('accepts an identity assigned since the last poll, and starts unchecked when the host cannot be described at all', async () => {
    const before = hostWith(harnessHost().identities.slice(0, 1));
    const after = harnessHost();
    const state: { host: HostDescription | undefined } = { host: before };
    const check = hostIdentityCheck({
      get host() {
        return state.host;
      },
      refresh: () => {
        state.host = after;
        return Promise.resolve(after);
      },
    });
    assert.equal(await check(['app-id']), undefined);
    const unreachable = hostIdentityCheck({ host: undefined, refresh: () => Promise.reject(new Error('authority unreachable')) });
    assert.equal(await unreachable(['anything']), undefined);
    const stale = hostIdentityCheck({ host: before, refresh: () => Promise.reject(new Error('authority unreachable')) });
    assert.match((await stale(['app-id'])) ?? '', /^'app-id' names no identity of host build-01; it has: \[system\]/, 'the last known list still answers');
  });
});
