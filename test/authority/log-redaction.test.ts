import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { postForm, httpsRequest } from '../support/https.js';
import { createLogger } from '../../src/shared/logger.js';

/**
 * Secrets and tokens never reach the log. Each test makes the authority (or the logger) see a credential
 * where a careless change would log it: the Authorization header, the body, the query string. It also
 * checks that the requests were logged at all, so that the test cannot pass by logging nothing.
 */
void describe('log redaction', () => {
  void describe('the authority at trace level', () => {
    let t: TestAuthority;
    before(async () => {
      t = await startTestAuthority();
    });
    after(async () => {
      await t.close();
    });

    void it('never logs a bearer token, a Basic secret, or a secret in the body or the query string', async () => {
      const token = await t.adminToken('https://management.azure.com/');
      const secret = t.admin.clientSecret;
      const querySecret = `q-${randomUUID()}`;
      const identityHeader = `h-${randomUUID()}`;
      const tokenUrl = `${t.url}/${t.tenantId}/oauth2/v2.0/token`;
      const before = t.logLines.length;

      // A management call with a bearer token, a secret-looking query parameter and an identity header.
      const managed = await httpsRequest(`${t.url}/subscriptions/${t.subscriptionId}/resourcegroups?api-version=2023-01-31&sig=${querySecret}`, {
        ca: t.caPem,
        headers: { authorization: `Bearer ${token}`, 'x-identity-header': identityHeader, secret: identityHeader },
      });
      assert.equal(managed.status, 200, managed.body);
      // A token request with the secret in the body, in HTTP Basic, and in the query string.
      const inBody = await postForm(
        tokenUrl,
        { grant_type: 'client_credentials', client_id: t.admin.clientId, client_secret: secret, scope: 'https://vault.azure.net/.default' },
        t.caPem,
      );
      assert.equal(inBody.status, 200, inBody.body);
      const issued = inBody.json<{ access_token: string }>().access_token;
      const basic = Buffer.from(`${t.admin.clientId}:${encodeURIComponent(secret)}`).toString('base64');
      assert.equal(
        (
          await postForm(tokenUrl, { grant_type: 'client_credentials', scope: 'https://vault.azure.net/.default' }, t.caPem, {
            authorization: `Basic ${basic}`,
          })
        ).status,
        200,
      );
      await postForm(
        `${tokenUrl}?client_secret=${encodeURIComponent(querySecret)}`,
        { grant_type: 'client_credentials', client_id: t.admin.clientId, scope: 'https://vault.azure.net/.default' },
        t.caPem,
      );
      // Refused requests and an unknown route, each carrying credentials.
      await httpsRequest(`${t.url}/subscriptions/${t.subscriptionId}/resourcegroups?api-version=2023-01-31&token=${querySecret}`, {
        ca: t.caPem,
        headers: { authorization: `Bearer ${token}x` },
      });
      await httpsRequest(`${t.url}/no/such/route?client_secret=${querySecret}`, { ca: t.caPem, headers: { authorization: `Bearer ${token}` } });

      const written = t.logLines.slice(before);
      const log = written.join('\n');
      // The requests were logged (method and path), so the checks below are not vacuous.
      assert.ok(
        written.some((l) => l.includes(`/subscriptions/${t.subscriptionId}/resourcegroups`)),
        'the management request was logged',
      );
      assert.ok(
        written.some((l) => l.includes(`/${t.tenantId}/oauth2/v2.0/token`)),
        'the token requests were logged',
      );
      assert.ok(
        written.some((l) => l.includes('/no/such/route')),
        'the unknown route was logged',
      );
      const needles: [string, string][] = [
        ['bearer token', token],
        ['bearer token signature', token.split('.')[2]!],
        ['issued token signature', issued.split('.')[2]!],
        ['client secret', secret],
        ['url-encoded client secret', encodeURIComponent(secret)],
        ['Basic credentials', basic],
        ['query-string secret', querySecret],
        ['identity header', identityHeader],
      ];
      for (const [what, needle] of needles) assert.equal(log.includes(needle), false, `the ${what} reached the log`);
    });
  });

  void describe('createLogger', () => {
    function capture(level: 'debug' | 'info') {
      const lines: string[] = [];
      const destination = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
          callback();
        },
      });
      return { logger: createLogger({ level, destination }), lines };
    }

    void it('censors credential fields wherever a debug record carries them', () => {
      const { logger, lines } = capture('debug');
      const secrets = Object.fromEntries(
        [
          'authorization',
          'basic',
          'identity',
          'header',
          'client_secret',
          'client_assertion',
          'access_token',
          'password',
          'secret',
          'secretText',
          'value',
          'token',
        ].map((k) => [k, `${k}-${randomUUID()}`]),
      );
      logger.debug(
        { req: { headers: { authorization: `Bearer ${secrets['authorization']!}`, 'x-identity-header': secrets['identity'], secret: secrets['header'] } } },
        'raw request',
      );
      logger.debug({ headers: { authorization: `Basic ${secrets['basic']!}` } }, 'raw headers');
      logger.debug(
        {
          client_secret: secrets['client_secret'],
          client_assertion: secrets['client_assertion'],
          access_token: secrets['access_token'],
          password: secrets['password'],
          secretText: secrets['secretText'],
          token: secrets['token'],
        },
        'top level',
      );
      logger.debug(
        {
          body: { client_secret: secrets['client_secret'], client_assertion: secrets['client_assertion'] },
          result: {
            access_token: secrets['access_token'],
            secret: secrets['secret'],
            value: secrets['value'],
            token: secrets['token'],
            password: secrets['password'],
            secretText: secrets['secretText'],
          },
        },
        'nested',
      );
      assert.equal(lines.length, 4, 'every debug record was written');
      const log = lines.join('\n');
      for (const [name, value] of Object.entries(secrets)) assert.equal(log.includes(value), false, `${name} reached the log`);
      assert.ok(log.includes('[redacted]'));
    });

    void it('logs a request by method and path only: no headers, no query string', () => {
      const { logger, lines } = capture('debug');
      const secret = randomUUID();
      logger.debug(
        {
          req: {
            method: 'POST',
            url: `/tenant/oauth2/token?client_secret=${secret}`,
            id: 'r1',
            ip: '127.0.0.1',
            headers: { cookie: secret, 'x-ms-token': secret },
          },
        },
        'incoming request',
      );
      assert.equal(lines.length, 1);
      const record = JSON.parse(lines[0]!) as { req: Record<string, unknown> };
      assert.deepEqual(record.req, { method: 'POST', url: '/tenant/oauth2/token', id: 'r1', remoteAddress: '127.0.0.1' });
      assert.equal(lines[0]!.includes(secret), false);
    });
  });
});
