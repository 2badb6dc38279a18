/**
 * The agent's control API (src/agent/control.ts), store-less and socket-less: requests and responses are plain
 * event emitters that record what was written, so each refusal (peer, browser or proxy, method, secret, body,
 * identities), the session stream and its end are pinned in milliseconds. The loopback harness end to end is
 * test/agent/runtime/control.test.ts.
 */
import { afterEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONTROL_SESSIONS_PATH,
  controlSecretPath,
  createControlApi,
  loadOrCreateControlSecret,
  parseSessionRequest,
  readControlSecret,
  type ControlApiOptions,
} from '../../src/agent/control.js';
import type { AgentAuditEvent } from '../../src/agent/contracts.js';
import { PROXY_HEADERS } from '../../src/agent/guard.js';
import { SessionRegistry } from '../../src/agent/sessions.js';

const SECRET = 'c'.repeat(43);

class FakeSocket {
  destroyed = false;
  calls: string[] = [];
  readonly remoteAddress: string | undefined;
  constructor(remoteAddress: string | undefined) {
    this.remoteAddress = remoteAddress;
  }
  setTimeout(ms: number): void {
    this.calls.push(`setTimeout(${String(ms)})`);
  }
  setKeepAlive(on: boolean, ms: number): void {
    this.calls.push(`setKeepAlive(${String(on)},${String(ms)})`);
  }
}

class FakeRequest extends EventEmitter {
  readonly socket: FakeSocket;
  readonly url: string | undefined;
  readonly method: string;
  readonly headers: Record<string, string>;
  constructor(socket: FakeSocket, url: string | undefined, method: string, headers: Record<string, string>) {
    super();
    this.socket = socket;
    this.url = url;
    this.method = method;
    this.headers = headers;
  }
}

class FakeResponse extends EventEmitter {
  status: number | undefined;
  headers: Record<string, string | number> = {};
  chunks: string[] = [];
  ended = false;
  destroyed = false;
  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  end(chunk?: string): this {
    if (chunk !== undefined) this.chunks.push(chunk);
    this.ended = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    this.emit('close');
    return this;
  }
  get body(): string {
    return this.chunks.join('');
  }
  json(): Record<string, unknown> {
    return JSON.parse(this.body) as Record<string, unknown>;
  }
}

function api(overrides: Partial<ControlApiOptions> = {}) {
  const events: AgentAuditEvent[] = [];
  const sessions = overrides.sessions ?? new SessionRegistry();
  const control = createControlApi({ controlSecret: SECRET, sessions, audit: { record: (e) => events.push(e) }, heartbeatMs: 0, ...overrides });
  return { control, events, sessions };
}

interface Sent {
  handled: boolean;
  req: FakeRequest;
  res: FakeResponse;
}

/** Sends one request; the body (when given) arrives after the call, as node delivers it. */
function send(
  control: ReturnType<typeof createControlApi>,
  options: { peer?: string | undefined; url?: string | undefined; method?: string; headers?: Record<string, string>; body?: string | Buffer[] } = {},
): Sent {
  const socket = new FakeSocket('peer' in options ? options.peer : '127.0.0.1');
  const req = new FakeRequest(socket, 'url' in options ? options.url : CONTROL_SESSIONS_PATH, options.method ?? 'POST', {
    authorization: `Bearer ${SECRET}`,
    ...options.headers,
  });
  const res = new FakeResponse();
  const handled = control.handleControlRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  const body = options.body ?? '{"identities":["app-id"]}';
  for (const chunk of typeof body === 'string' ? [Buffer.from(body)] : body) req.emit('data', chunk);
  req.emit('end');
  return { handled, req, res };
}

/** Lets the promise callbacks of checkIdentities run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

afterEach(() => mock.timers.reset());

void describe('agent control API (store-less)', () => {
  void it('handles its path only (any query), and nothing else', () => {
    const { control } = api();
    assert.equal(send(control, { url: `${CONTROL_SESSIONS_PATH}?x=1` }).handled, true);
    for (const url of [`${CONTROL_SESSIONS_PATH}/`, '/openmsi/agent/other', '/', undefined]) {
      const { handled, res } = send(control, { url });
      assert.equal(handled, false, String(url));
      assert.equal(res.status, undefined, 'nothing answered');
    }
  });

  void it('refuses a peer that is not loopback with 403, audited with its address, before anything else', () => {
    const { control, events, sessions } = api();
    for (const peer of ['10.0.0.5', '169.254.169.254', '::ffff:10.0.0.5', undefined]) {
      const { res, handled } = send(control, { peer, method: 'GET', headers: { authorization: 'wrong', origin: 'http://x' } });
      assert.equal(handled, true, 'answered here, never passed on');
      assert.equal(res.status, 403, String(peer));
      assert.deepEqual(res.json(), { error: 'forbidden', error_description: 'the control API is served to loopback peers only' });
    }
    assert.deepEqual(events[0], { decision: 'refused', surface: 'session', caller: { address: '10.0.0.5' }, status: 403, reason: 'not_loopback' });
    assert.deepEqual(events[2]?.caller, { address: '10.0.0.5' }, 'a mapped address is audited canonical');
    assert.deepEqual(events[3]?.caller, { address: 'unknown' });
    assert.equal(sessions.size, 0);
    for (const peer of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(send(control, { peer }).res.status, 201, peer);
  });

  void it('refuses a browser (any Origin) or a proxied request with 403', () => {
    const { control, events } = api();
    for (const headers of [{ origin: 'null' }, { origin: '' }, ...PROXY_HEADERS.map((name) => ({ [name]: '' }))]) {
      const { res } = send(control, { headers });
      assert.equal(res.status, 403, JSON.stringify(headers));
      assert.deepEqual(res.json(), { error: 'forbidden', error_description: 'requests from a browser or through a proxy are refused' });
    }
    assert.deepEqual(events[0], { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 403, reason: 'forwarded_or_browser' });
  });

  void it('refuses every method but POST with 405 and Allow: POST', () => {
    const { control, events } = api();
    for (const method of ['GET', 'PUT', 'DELETE', 'post']) {
      const { res } = send(control, { method });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers['Allow'], 'POST');
      assert.deepEqual(res.json(), { error: 'invalid_request', error_description: 'use POST' });
    }
    assert.deepEqual(events[0], { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 405, reason: 'method_not_allowed' });
  });

  void it('refuses anything but exactly `Bearer <control secret>` with 401 and a challenge', () => {
    const { control, events, sessions } = api();
    for (const authorization of [
      '',
      SECRET,
      `xBearer ${SECRET}`,
      `Basic Bearer ${SECRET}`,
      `Bearer ${SECRET}x`,
      `Bearer ${SECRET.slice(1)}`,
      `bearer ${SECRET}`,
      `Bearer  ${SECRET}`,
      `Bearer ${SECRET} `,
      `Basic ${SECRET}`,
      'Bearer ',
    ]) {
      const { res } = send(control, { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.equal(res.headers['WWW-Authenticate'], 'Bearer realm="openmsi-agent"');
      assert.equal(res.json()['error'], 'unauthorized');
    }
    const { res } = send(control, { headers: { authorization: undefined as unknown as string } });
    assert.equal(res.status, 401, 'no header');
    assert.equal(events[0]?.reason, 'unauthorized');
    assert.equal(sessions.size, 0);
  });

  void it('a request that errors while its body is read (a reset connection) is ignored, never an uncaught error', () => {
    const { control } = api();
    const socket = new FakeSocket('127.0.0.1');
    const req = new FakeRequest(socket, CONTROL_SESSIONS_PATH, 'POST', { authorization: `Bearer ${SECRET}` });
    control.handleControlRequest(req as unknown as IncomingMessage, new FakeResponse() as unknown as ServerResponse);
    assert.doesNotThrow(() => req.emit('error', new Error('aborted')));
  });

  void it('every refusal is JSON, not cached, with its exact length', () => {
    const { control } = api();
    const { res } = send(control, { method: 'GET' });
    assert.deepEqual(
      { type: res.headers['Content-Type'], cache: res.headers['Cache-Control'], length: res.headers['Content-Length'] },
      { type: 'application/json; charset=utf-8', cache: 'no-store', length: Buffer.byteLength(res.body) },
    );
    assert.equal(res.ended, true);
  });

  void it('refuses a body over 16 KiB with 413, and reads one of exactly 16 KiB', () => {
    const { control, events } = api();
    const big = send(control, { body: [Buffer.alloc(8192, 32), Buffer.alloc(8193, 32)] });
    assert.equal(big.res.status, 413);
    assert.deepEqual(big.res.json(), { error: 'invalid_request', error_description: 'the body must be at most 16384 bytes' });
    assert.deepEqual(events[0], { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 413, reason: 'invalid_request' });
    const json = '{"identities":["app-id"]}';
    const exact = send(control, { body: [Buffer.from(json), Buffer.alloc(16384 - json.length, 32)] });
    assert.equal(exact.res.status, 201, 'whitespace after the JSON, 16384 bytes in all');
  });

  void it('refuses a body that is not 1 to 16 selectors with 400, saying why', () => {
    const { control, events } = api();
    const { res } = send(control, { body: '{"identities":[]}' });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json(), { error: 'invalid_request', error_description: 'identities must be an array of 1 to 16 identity names or ids' });
    assert.deepEqual(events[0], { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 400, reason: 'invalid_request' });
  });

  void it('parseSessionRequest: 1 to 16 non-blank strings of at most 512 characters', () => {
    assert.deepEqual(parseSessionRequest(JSON.stringify({ identities: Array(16).fill('a') })), Array(16).fill('a'));
    assert.deepEqual(parseSessionRequest(JSON.stringify({ identities: ['x'.repeat(512)] })), ['x'.repeat(512)]);
    for (const body of ['null', '[]', '"x"', '{"identities":"a"}', '{"identities":[]}', JSON.stringify({ identities: Array(17).fill('a') })]) {
      assert.equal(parseSessionRequest(body), 'identities must be an array of 1 to 16 identity names or ids', body);
    }
    for (const body of [
      '{"identities":[""]}',
      '{"identities":["  "]}',
      '{"identities":[null]}',
      JSON.stringify({ identities: ['x'.repeat(513)] }),
      '{"identities":["a",2]}',
    ]) {
      assert.equal(parseSessionRequest(body), 'each identity must be a non-empty string of at most 512 characters', body);
    }
    assert.equal(parseSessionRequest('{'), 'the body must be JSON: {"identities": ["NAME-OR-ID", ...]}');
  });

  void it('starts a session: 201 NDJSON whose first line is the grant, audited without the secret; the socket is kept open', () => {
    const { control, events, sessions } = api();
    const { res, req } = send(control, { body: '{"identities":["app-id","[system]"]}' });
    assert.equal(res.status, 201);
    assert.deepEqual(res.headers, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    assert.equal(res.ended, false, 'the stream stays open');
    assert.ok(res.body.endsWith('\n'));
    const grant = JSON.parse(res.body) as { id: string; secret: string; expiresWith: string };
    assert.deepEqual(Object.keys(grant).sort(), ['expiresWith', 'id', 'secret']);
    assert.equal(grant.expiresWith, 'connection');
    assert.deepEqual(sessions.bySecret(grant.secret), { id: grant.id, identities: ['app-id', '[system]'] });
    assert.deepEqual(events, [{ decision: 'served', surface: 'session', caller: { address: '127.0.0.1' }, status: 201, session: grant.id }]);
    assert.ok(!JSON.stringify(events).includes(grant.secret));
    assert.deepEqual(req.socket.calls, ['setTimeout(0)', 'setKeepAlive(true,10000)']);
  });

  void it('ends the session when its response closes, once, audited as session_ended', () => {
    const { control, events, sessions } = api();
    const { res } = send(control);
    const { id } = JSON.parse(res.body) as { id: string };
    res.emit('close');
    res.emit('close');
    assert.equal(sessions.size, 0);
    assert.deepEqual(
      events.map((e) => [e.decision, e.status, e.reason, e.session]),
      [
        ['served', 201, undefined, id],
        ['served', 201, 'session_ended', id],
      ],
    );
  });

  void it('close() ends every open session stream', () => {
    const { control, sessions } = api();
    const a = send(control);
    const b = send(control);
    assert.equal(sessions.size, 2);
    control.close();
    assert.equal(a.res.destroyed && b.res.destroyed, true);
    assert.equal(sessions.size, 0);
    const c = send(control);
    a.res.emit('close');
    control.close();
    assert.equal(c.res.destroyed, true);
  });

  void it('starts nothing for a connection already gone, and ends at once one that goes while the grant is written', () => {
    const { control, sessions, events } = api();
    const socket = new FakeSocket('127.0.0.1');
    socket.destroyed = true;
    const req = new FakeRequest(socket, CONTROL_SESSIONS_PATH, 'POST', { authorization: `Bearer ${SECRET}` });
    const res = new FakeResponse();
    control.handleControlRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    req.emit('data', Buffer.from('{"identities":["a"]}'));
    req.emit('end');
    assert.equal(res.status, undefined);
    assert.equal(sessions.size, 0);
    assert.equal(events.length, 0);

    const late = new FakeSocket('127.0.0.1');
    const req2 = new FakeRequest(late, CONTROL_SESSIONS_PATH, 'POST', { authorization: `Bearer ${SECRET}` });
    const res2 = new FakeResponse();
    res2.write = (chunk: string) => {
      res2.chunks.push(chunk);
      late.destroyed = true;
      return true;
    };
    control.handleControlRequest(req2 as unknown as IncomingMessage, res2 as unknown as ServerResponse);
    req2.emit('data', Buffer.from('{"identities":["a"]}'));
    req2.emit('end');
    assert.equal(res2.status, 201);
    assert.equal(sessions.size, 0, 'revoked at once');
    assert.equal(events.at(-1)?.reason, 'session_ended');
  });

  void it('answers 503 with Retry-After when too many sessions are live; other failures are not swallowed', () => {
    const { control, events } = api({ sessions: new SessionRegistry({ maxSessions: 1 }) });
    send(control);
    const { res } = send(control);
    assert.equal(res.status, 503);
    assert.equal(res.headers['Retry-After'], '5');
    assert.deepEqual(res.json(), { error: 'temporarily_unavailable', error_description: '1 sessions are live; end one first' });
    assert.deepEqual(events.at(-1), { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 503, reason: 'too_many_sessions' });
    const broken = new SessionRegistry();
    broken.create = () => {
      throw new Error('boom');
    };
    const b = api({ sessions: broken });
    assert.throws(() => send(b.control), /boom/);
  });

  void it('checks the identities first: a problem is 400 identity_not_found with its description, a failed check 500', async () => {
    const problem = api({ checkIdentities: (s) => Promise.resolve(s.includes('ghost') ? "'ghost' names no identity" : undefined) });
    const refused = send(problem.control, { body: '{"identities":["ghost"]}' });
    await settle();
    assert.equal(refused.res.status, 400);
    assert.deepEqual(refused.res.json(), { error: 'identity_not_found', error_description: "'ghost' names no identity" });
    assert.deepEqual(problem.events.at(-1), {
      decision: 'refused',
      surface: 'session',
      caller: { address: '127.0.0.1' },
      status: 400,
      reason: 'identity_not_found',
    });
    assert.equal(problem.sessions.size, 0);
    const ok = send(problem.control, { body: '{"identities":["app-id"]}' });
    await settle();
    assert.equal(ok.res.status, 201);

    for (const [thrown, message] of [
      [new Error('authority down'), 'cannot check the identities: authority down'],
      ['plain', 'cannot check the identities: plain'],
    ] as const) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- a check may reject with anything
      const failing = api({ checkIdentities: () => Promise.reject(thrown) });
      const { res } = send(failing.control);
      await settle();
      assert.equal(res.status, 500);
      assert.deepEqual(res.json(), { error: 'internal_error', error_description: message });
      assert.deepEqual(failing.events.at(-1), { decision: 'refused', surface: 'session', caller: { address: '127.0.0.1' }, status: 500, reason: 'internal' });
      assert.equal(failing.sessions.size, 0);
    }
  });

  void it('attributes audit records with the caller resolver when given', () => {
    const { control, events } = api({ callers: { callerOf: () => ({ address: '127.0.0.1', pid: 42, exe: '/usr/bin/openmsi' }) } });
    send(control, { method: 'GET' });
    assert.deepEqual(events[0]?.caller, { address: '127.0.0.1', pid: 42, exe: '/usr/bin/openmsi' });
  });

  void it('writes a heartbeat line every heartbeatMs (15 s by default) until the session ends; none when 0', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    const byDefault = createControlApi({ controlSecret: SECRET, sessions: new SessionRegistry(), audit: { record: () => undefined } });
    const { res } = send(byDefault);
    const lines = () => res.chunks.length;
    const first = lines();
    mock.timers.tick(14_999);
    assert.equal(lines(), first);
    mock.timers.tick(1);
    assert.equal(lines(), first + 1);
    assert.equal(res.chunks.at(-1), '\n');
    res.emit('close');
    mock.timers.tick(60_000);
    assert.equal(lines(), first + 1, 'no heartbeat after the end');

    const { control } = api({ heartbeatMs: 0 });
    const quiet = send(control);
    mock.timers.tick(60_000);
    assert.equal(quiet.res.chunks.length, 1);
  });
});

void describe('agent control secret', () => {
  void it('reads the secret trimmed; refuses a missing file or one too short to be a secret, saying what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-control-unit-'));
    try {
      assert.throws(
        () => readControlSecret(dir),
        (e: unknown) => e instanceof Error && e.message.startsWith(`no agent control secret at ${controlSecretPath(dir)}: start \`openmsi agent\``),
      );
      writeFileSync(controlSecretPath(dir), `${'s'.repeat(32)}\n`, { mode: 0o600 });
      assert.equal(readControlSecret(dir), 's'.repeat(32));
      writeFileSync(controlSecretPath(dir), `${'s'.repeat(31)}\n`, { mode: 0o600 });
      assert.throws(() => readControlSecret(dir), /does not hold a control secret; delete it and restart the agent/);
      rmSync(controlSecretPath(dir));
      mkdtempSync(join(dir, 'x'));
      writeFileSync(join(dir, 'not-a-dir'), '');
      assert.throws(() => readControlSecret(join(dir, 'not-a-dir')), /^Error: cannot read .*not-a-dir\/control\.secret: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('keeps a private secret file as it is, and replaces one readable by group or others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-control-unit-'));
    try {
      writeFileSync(controlSecretPath(dir), `${'k'.repeat(43)}\n`, { mode: 0o600 });
      chmodSync(controlSecretPath(dir), 0o600);
      assert.equal(loadOrCreateControlSecret(dir), 'k'.repeat(43), 'an existing private secret is kept');
      for (const mode of [0o640, 0o604, 0o610]) {
        writeFileSync(controlSecretPath(dir), `${'k'.repeat(43)}\n`);
        chmodSync(controlSecretPath(dir), mode);
        const replaced = loadOrCreateControlSecret(dir);
        assert.notEqual(replaced, 'k'.repeat(43), mode.toString(8));
        assert.equal(Buffer.from(replaced, 'base64url').length, 32);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
