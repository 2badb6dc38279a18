import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError, toApiError } from '../../src/shared/api-error.js';
import { OAuthError, toOAuthError } from '../../src/shared/oauth-error.js';
import { requestFailureOf } from '../../src/shared/request-failure.js';
import { DirectoryError, DirectoryErrors } from '../../src/directory/errors.js';
import { errorCodeOf, translateDirectoryError } from '../../src/management/errors.js';

/** An error as fastify raises it for a request it refuses before any handler runs. */
function fastifyError(code: string, statusCode: number, message = 'refused'): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

const LIMIT = 1234;

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
});
