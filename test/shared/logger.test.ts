import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { createLogger, defaultLogFormat, RequestLogController, type LogFormat } from '../../src/shared/logger.js';
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
