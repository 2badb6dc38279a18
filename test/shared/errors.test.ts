import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { ApiError, apiErrorHandler, apiNotFoundHandler, toApiError } from '../../src/shared/api-error.js';
import { FakeClock } from '../../src/shared/clock.js';
import { OAuthError, oauthErrorHandler, toOAuthError } from '../../src/shared/oauth-error.js';
import { requestFailureOf } from '../../src/shared/request-failure.js';
import { DirectoryError, DirectoryErrors } from '../../src/directory/errors.js';
import { errorCodeOf, translateDirectoryError } from '../../src/management/errors.js';

/** An error as fastify raises it for a request it refuses before any handler runs. */
function fastifyError(code: string, statusCode: number, message = 'refused'): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

const LIMIT = 1234;

/** A lower layer's error, which a server translates into its family. */
class TakenError extends Error {}

describe('error families', () => {
  it('recognise fastify request errors once, and render them in each family', () => {
    const cases: { err: Error; api: [number, string]; oauth: [number, string] }[] = [
      { err: fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), api: [413, 'RequestEntityTooLarge'], oauth: [413, 'invalid_request'] },
      { err: fastifyError('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415), api: [415, 'UnsupportedMediaType'], oauth: [400, 'invalid_request'] },
      { err: fastifyError('FST_ERR_CTP_EMPTY_JSON_BODY', 400), api: [400, 'InvalidRequestContent'], oauth: [400, 'invalid_request'] },
      { err: fastifyError('FST_ERR_CTP_INVALID_JSON_BODY', 400), api: [400, 'InvalidRequestContent'], oauth: [400, 'invalid_request'] },
      { err: fastifyError('FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400), api: [400, 'InvalidRequestContent'], oauth: [400, 'invalid_request'] },
      { err: fastifyError('FST_ERR_SOMETHING_ELSE', 405), api: [405, 'BadRequest'], oauth: [500, 'server_error'] },
      { err: new Error('a bug'), api: [500, 'InternalServerError'], oauth: [500, 'server_error'] },
    ];
    for (const { err, api, oauth } of cases) {
      const apiError = toApiError(err, { bodyLimit: LIMIT });
      assert.deepEqual([apiError.status, apiError.code], api, (err as { code?: string }).code ?? err.message);
      const oauthError = toOAuthError(err, { bodyLimit: LIMIT });
      assert.deepEqual([oauthError.status, oauthError.error], oauth, (err as { code?: string }).code ?? err.message);
    }
    assert.match(toApiError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), { bodyLimit: LIMIT }).message, /1234-byte limit/);
    assert.match(toOAuthError(fastifyError('FST_ERR_CTP_BODY_TOO_LARGE', 413), { bodyLimit: LIMIT }).message, /1234-byte limit/);
    assert.deepEqual(requestFailureOf(Object.assign(new Error('body/x must be string'), { validation: [] })), {
      kind: 'validation',
      message: 'body/x must be string',
    });
    assert.equal(requestFailureOf('not an error'), undefined);
  });

  it('pass their own errors through unchanged, and never leak an internal message', () => {
    const api = new ApiError(409, 'Conflict', 'taken');
    assert.equal(toApiError(api, { bodyLimit: LIMIT }), api);
    const oauth = new OAuthError(401, 'invalid_client', 'no');
    assert.equal(toOAuthError(oauth, { bodyLimit: LIMIT }), oauth);
    assert.doesNotMatch(toApiError(new Error('secret detail'), { bodyLimit: LIMIT }).message, /secret/);
    assert.doesNotMatch(toOAuthError(new Error('secret detail'), { bodyLimit: LIMIT }).message, /secret/);
  });

  it('give every directory error a client status in one table, keeping its code and message', () => {
    const args = ['a', ['T1', 'T2'], 'c', 'd'] as const;
    for (const [name, make] of Object.entries(DirectoryErrors)) {
      const err = (make as (...a: readonly unknown[]) => unknown)(...args);
      assert.ok(err instanceof DirectoryError, name);
      const api = translateDirectoryError(err);
      assert.ok(api !== undefined, name);
      assert.ok(api.status >= 400 && api.status < 500, `${name}: ${String(api.status)}`);
      assert.equal(api.message, err.message, name);
      assert.equal(errorCodeOf(err), api.code, name);
    }
    const gone = translateDirectoryError(DirectoryErrors.resourceTypeNotFound('Microsoft.Fake/things', ['A/b']));
    assert.deepEqual([gone?.status, gone?.code], [404, 'NoRegisteredProviderFound']);
    const create = translateDirectoryError(DirectoryErrors.noRegisteredProvider('Microsoft.Fake/things', ['A/b']));
    assert.deepEqual([create?.status, create?.code], [400, 'NoRegisteredProviderFound']);
    assert.equal(translateDirectoryError(new Error('x')), undefined);
    assert.equal(errorCodeOf(new Error('x')), 'InternalServerError');
  });

  it('serve any fastify server: one handler per family, and the 404', async () => {
    const app: FastifyInstance = Fastify();
    const audited: string[] = [];
    await app.register((oauth, _opts, done) => {
      oauth.setErrorHandler(
        oauthErrorHandler({
          clock: new FakeClock(Date.UTC(2026, 0, 2, 3, 4, 5)),
          headers: { 'cache-control': 'no-store' },
          logMessage: 'failed',
          onError: async (_request, error) => {
            audited.push(error.error);
            return Promise.resolve();
          },
        }),
      );
      oauth.post('/oauth', { bodyLimit: 16 }, async () => Promise.reject(new OAuthError(401, 'invalid_client', 'who?', { aadsts: 7000215 })));
      done();
    });
    await app.register((api, _opts, done) => {
      api.setErrorHandler(
        apiErrorHandler({ logMessage: 'failed', translate: (err) => (err instanceof TakenError ? new ApiError(409, 'Conflict', 'taken') : undefined) }),
      );
      api.post('/api', { bodyLimit: 16 }, async () => Promise.reject(new TakenError('domain')));
      done();
    });
    app.setNotFoundHandler(apiNotFoundHandler);
    try {
      const refused = await app.inject({ method: 'POST', url: '/oauth', headers: { 'client-request-id': '11111111-2222-3333-4444-555555555555' } });
      assert.equal(refused.statusCode, 401);
      assert.equal(refused.headers['cache-control'], 'no-store');
      const body = refused.json<{ error: string; error_codes: number[]; correlation_id: string; timestamp: string }>();
      assert.deepEqual(
        [body.error, body.error_codes, body.correlation_id, body.timestamp],
        ['invalid_client', [7000215], '11111111-2222-3333-4444-555555555555', '2026-01-02 03:04:05Z'],
      );
      const tooLarge = await app.inject({
        method: 'POST',
        url: '/oauth',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ a: 'x'.repeat(64) }),
      });
      assert.equal(tooLarge.statusCode, 413);
      assert.match(tooLarge.json<{ error_description: string }>().error_description, /16-byte limit/);
      assert.deepEqual(audited, ['invalid_client', 'invalid_request']);

      const conflict = await app.inject({ method: 'POST', url: '/api' });
      assert.deepEqual([conflict.statusCode, conflict.json()], [409, { error: { code: 'Conflict', message: 'taken' } }]);
      const apiTooLarge = await app.inject({
        method: 'POST',
        url: '/api',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ a: 'x'.repeat(64) }),
      });
      assert.deepEqual(
        [apiTooLarge.statusCode, apiTooLarge.json()],
        [413, { error: { code: 'RequestEntityTooLarge', message: 'The request content is larger than the 16-byte limit.' } }],
      );
      const missing = await app.inject({ method: 'GET', url: '/nowhere?x=1' });
      assert.deepEqual([missing.statusCode, missing.json()], [404, { error: { code: 'NotFound', message: 'No route matches GET /nowhere.' } }]);
    } finally {
      await app.close();
    }
  });
});
