import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createLogger, defaultLogFormat, RequestLogController, type LogFormat, censorNested } from '../../src/shared/logger.js';
import type { LevelWithSilent } from 'pino';

const BEARER = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.c2lnbmF0dXJl';
const SECRET = 'Sup3r~Secret~Value~0123456789';

function capture(format: LogFormat, level: LevelWithSilent) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  return { logger: createLogger({ format, level, destination, colorize: false }), lines };
}

/** An app with the authority's request logging, hit with a token in the header and a secret in body and query. */
async function hit(format: LogFormat, level: LevelWithSilent): Promise<string[]> {
  const { logger, lines } = capture(format, level);
  const app = Fastify({ loggerInstance: logger, logController: new RequestLogController() });
  app.post('/token', (request, reply) => {
    // What a careless handler might log: the whole body.
    request.log.debug({ body: request.body as Record<string, unknown> }, 'token request');
    return reply.send({ ok: true });
  });
  await app.ready();
  const response = await app.inject({
    method: 'POST',
    url: `/token?client_secret=${SECRET}`,
    headers: { authorization: `Bearer ${BEARER}`, 'content-type': 'application/json' },
    payload: { client_secret: SECRET, client_assertion: BEARER },
  });
  assert.equal(response.statusCode, 200);
  await app.close();
  return lines;
}

void describe('logger', () => {
  for (const format of ['json', 'pretty'] as const) {
    void it(`${format}: no per-request lines at info; at debug they name method and path and never carry secrets`, async () => {
      const quiet = await hit(format, 'info');
      assert.deepEqual(
        quiet.filter((l) => /request|token/.test(l)),
        [],
      );

      const loud = await hit(format, 'debug');
      const text = loud.join('\n');
      assert.match(text, /incoming request/);
      assert.match(text, /request completed/);
      assert.match(text, /token request/);
      assert.match(text, /\/token/);
      assert.doesNotMatch(text, new RegExp(SECRET));
      assert.doesNotMatch(text, new RegExp(BEARER.split('.')[1]!));
      assert.match(text, /\[redacted\]/);
    });

    void it(`${format}: redacts credential fields in any event, one line per event`, () => {
      const { logger, lines } = capture(format, 'info');
      logger.info(
        { client_secret: SECRET, nested: { access_token: BEARER, password: SECRET }, req: { headers: { authorization: `Bearer ${BEARER}` } } },
        'event one',
      );
      logger.warn({ secretText: SECRET }, 'event two');
      assert.equal(lines.length, 2, lines.join('\n'));
      const text = lines.join('\n');
      assert.doesNotMatch(text, new RegExp(SECRET));
      assert.doesNotMatch(text, new RegExp(BEARER.split('.')[1]!));
      assert.match(lines[0]!, /event one/);
      assert.match(lines[1]!, /event two/);
      if (format === 'json') {
        assert.equal((JSON.parse(lines[0]!) as { client_secret: string }).client_secret, '[redacted]');
      } else {
        // A person's line: time, level name and message, not a JSON object.
        assert.match(lines[0]!, /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: event one /);
        assert.match(lines[1]!, /^\[[\d:.]+\] WARN: event two /);
      }
    });
  }

  void it('colours the pretty format only when asked', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    createLogger({ format: 'pretty', destination, colorize: true }).info('coloured');
    // eslint-disable-next-line no-control-regex
    assert.match(lines.join(''), /\u001b\[\d+m/);
  });

  void it('defaults to pretty on a terminal and JSON otherwise', () => {
    assert.equal(defaultLogFormat({ isTTY: true }), 'pretty');
    assert.equal(defaultLogFormat({ isTTY: false }), 'json');
    assert.equal(defaultLogFormat({}), 'json');
  });
});

/** One JSON logger writing into an array of parsed records. */
function jsonCapture(level?: LevelWithSilent) {
  const records: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) records.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ ...(level === undefined ? {} : { level }), destination }), records };
}

void describe('logger: redaction and serializers pinned by mutation testing', () => {
  // Every credential path on its own: dropping any one of them from REDACT_PATHS leaks its value.
  const placements: [string, (secret: string) => Record<string, unknown>][] = [
    ['headers.authorization', (s) => ({ headers: { authorization: s } })],
    ['client_secret', (s) => ({ client_secret: s })],
    ['client_assertion', (s) => ({ client_assertion: s })],
    ['access_token', (s) => ({ access_token: s })],
    ['password', (s) => ({ password: s })],
    ['secretText', (s) => ({ secretText: s })],
    ['token', (s) => ({ token: s })],
    ['*.client_secret', (s) => ({ form: { client_secret: s } })],
    ['*.client_assertion', (s) => ({ form: { client_assertion: s } })],
    ['*.access_token', (s) => ({ response: { access_token: s } })],
    ['*.password', (s) => ({ user: { password: s } })],
    ['*.secret', (s) => ({ headers: { secret: s } })],
    ['*.secretText', (s) => ({ credential: { secretText: s } })],
    ['*.value', (s) => ({ secret: { value: s } })],
    ['*.token', (s) => ({ cached: { token: s } })],
  ];
  for (const [path, place] of placements) {
    void it(`censors ${path} as [redacted]`, () => {
      const { logger, records } = jsonCapture();
      logger.info(place(SECRET), 'credential-bearing event');
      assert.equal(records.length, 1);
      const text = JSON.stringify(records[0]);
      assert.doesNotMatch(text, new RegExp(SECRET), `${path} leaked: ${text}`);
      assert.match(text, /"\[redacted\]"/, `${path} is censored with the marker, not dropped: ${text}`);
    });
  }

  void it('logs at info by default: debug is dropped, info is kept', () => {
    const { logger, records } = jsonCapture();
    logger.debug('quiet');
    logger.info('loud');
    assert.deepEqual(
      records.map((r) => [r['level'], r['msg']]),
      [[30, 'loud']],
    );
    assert.equal(records[0]!['pid'], process.pid, 'each record carries the process id');
  });

  void it('honours the level asked for', () => {
    const { logger, records } = jsonCapture('warn');
    logger.info('dropped');
    logger.warn('kept');
    assert.deepEqual(
      records.map((r) => r['msg']),
      ['kept'],
    );
  });

  void it('serializes a request as method, path without the query, id and peer: never headers or body', () => {
    const { logger, records } = jsonCapture();
    logger.info(
      { req: { method: 'POST', url: `/token?client_secret=${SECRET}`, id: 'req-1', ip: '10.0.0.9', headers: { cookie: SECRET }, body: { x: SECRET } } },
      'request',
    );
    logger.info({ req: { method: 'GET' } }, 'request without a url');
    logger.info({ res: { statusCode: 401, headers: { 'set-cookie': SECRET } } }, 'reply');
    assert.deepEqual(records[0]!['req'], { method: 'POST', url: '/token', id: 'req-1', remoteAddress: '10.0.0.9' });
    assert.deepEqual(records[1]!['req'], { method: 'GET' });
    assert.deepEqual(records[2]!['res'], { statusCode: 401 });
    assert.doesNotMatch(JSON.stringify(records), new RegExp(SECRET));
  });

  void it('pretty: one uncoloured line per event without pid, hostname or reqId, when writing to a given destination', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _e, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ format: 'pretty', destination });
    logger.info({ reqId: 'req-77', nested: { a: 1, b: { c: 2 } } }, 'pretty event');
    const text = lines.join('');
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /\u001b\[/, 'no colours unless asked, whatever the terminal');
    assert.equal(text.trimEnd().split('\n').length, 1, `one line: ${text}`);
    assert.match(text, /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: pretty event /);
    assert.doesNotMatch(text, /req-77|pid|hostname/);
    assert.match(text, /"c":\s?2/);
  });

  void it('defaultLogFormat() with no argument looks at stdout', () => {
    assert.equal(defaultLogFormat(), process.stdout.isTTY === true ? 'pretty' : 'json');
  });
});

void describe('RequestLogController', () => {
  function fakeRequest(log: ReturnType<typeof jsonCapture>['logger'], routeOptions: Record<string, unknown> = {}) {
    return { log, routeOptions, raw: {}, method: 'GET', url: '/x?y=z', id: 'r1', ip: '10.0.0.1' } as unknown as FastifyRequest;
  }
  function fakeReply(log: ReturnType<typeof jsonCapture>['logger']) {
    return { log, statusCode: 500, elapsedTime: 3 } as unknown as FastifyReply;
  }

  void it('logs nothing for a request whose logging is disabled', () => {
    const { logger, records } = jsonCapture('trace');
    const controller = new RequestLogController({ disableRequestLogging: true });
    controller.incomingRequest(fakeRequest(logger));
    controller.requestCompleted(null, fakeRequest(logger), fakeReply(logger));
    controller.requestCompleted(new Error('boom'), fakeRequest(logger), fakeReply(logger));
    assert.deepEqual(records, []);
  });

  void it('logs incoming and completed requests at debug, and a request that errored at error', () => {
    const { logger, records } = jsonCapture('trace');
    const controller = new RequestLogController();
    controller.incomingRequest(fakeRequest(logger));
    controller.requestCompleted(undefined, fakeRequest(logger), fakeReply(logger));
    controller.requestCompleted(new Error('boom'), fakeRequest(logger), fakeReply(logger));
    assert.deepEqual(
      records.map((r) => [r['level'], r['msg']]),
      [
        [20, 'incoming request'],
        [20, 'request completed'],
        [50, 'request errored'],
      ],
    );
    assert.deepEqual(records[0]!['req'], { method: 'GET', url: '/x', id: 'r1', remoteAddress: '10.0.0.1' });
    assert.deepEqual(records[1]!['res'], { statusCode: 500 });
    assert.equal(records[1]!['responseTime'], 3);
  });
});

void describe('logger: credentials nested at any depth', () => {
  const nestings: [string, (secret: string) => Record<string, unknown>][] = [
    ['a password three levels down', (s) => ({ event: { request: { form: { password: s } } } })],
    ['a client secret in an array of forms', (s) => ({ batch: [{ ok: 1 }, { client_secret: s }] })],
    ['a refresh token in an upstream answer', (s) => ({ upstream: { body: { refresh_token: s } } })],
    ['an id token', (s) => ({ upstream: { body: { id_token: s } } })],
    ['an Authorization header spelled in capitals, deep', (s) => ({ call: { request: { headers: { Authorization: s } } } })],
    ['an X-IDENTITY-HEADER, deep', (s) => ({ call: { headers: { 'X-IDENTITY-HEADER': s } } })],
    ['a secret value in a vault answer', (s) => ({ vault: { answer: { value: s } } })],
    ['anything past the depth bound', (s) => ({ a: { b: { c: { d: { e: { f: { g: { h: { i: s } } } } } } } } })],
    ['anything past the depth bound in nested arrays', (s) => ({ a: [[[[[[[[[s]]]]]]]]] })],
    ['a client assertion two levels down', (s) => ({ call: { form: { client_assertion: s } } })],
    ['an access token two levels down', (s) => ({ call: { answer: { access_token: s } } })],
    ['a secret two levels down', (s) => ({ call: { headers: { secret: s } } })],
    ['a password in a prototype-less object', (s) => ({ call: { form: Object.assign(Object.create(null) as Record<string, unknown>, { password: s }) } })],
  ];
  for (const [what, place] of nestings) {
    void it(`censors ${what}`, () => {
      const { logger, records } = jsonCapture();
      logger.info(place(SECRET), 'nested credential');
      assert.equal(records.length, 1);
      const text = JSON.stringify(records[0]);
      assert.doesNotMatch(text, new RegExp(SECRET), `${what} leaked: ${text}`);
      assert.match(text, /"\[redacted\]"/, `${what} is censored with the marker, not dropped: ${text}`);
    });
  }

  void it("never changes the caller's object, and keeps every other field", () => {
    const event = { outer: { inner: { password: SECRET, kept: 'visible' }, list: [{ token: SECRET }, 'plain'] }, top: 1 };
    const before = structuredClone(event);
    const { logger, records } = jsonCapture();
    logger.info(event, 'nested');
    assert.deepEqual(event, before);
    assert.deepEqual(records[0]?.outer, { inner: { password: '[redacted]', kept: 'visible' }, list: [{ token: '[redacted]' }, 'plain'] });
    assert.equal(records[0]?.top, 1);
  });

  void it('returns the very same object when nothing needs censoring, and leaves null or absent credentials as they are', () => {
    const clean = { a: { b: [1, 'two', { c: null }] }, d: 'x' };
    assert.equal(censorNested(clean), clean);
    const empty = { form: { password: null, token: undefined } };
    assert.equal(censorNested(empty), empty);
  });

  void it('leaves top-level names that are not credentials there (a secret name, a value) and class instances to their serializers', () => {
    class Holder {
      password = SECRET;
    }
    const holder = new Holder();
    const out = censorNested({ secret: 'db-password-name', value: 3, holder });
    assert.equal(out.secret, 'db-password-name');
    assert.equal(out.value, 3);
    assert.equal(out.holder, holder);
  });
});
