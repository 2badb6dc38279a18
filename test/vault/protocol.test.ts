import assert from 'node:assert/strict';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ROLE } from '../rbac/authz/helpers.js';
import { assignRoleInStore } from '../rbac/authz/helpers.js';
import { startVaultHarness, V, type VaultHarness } from './harness.js';
import { STORE_BACKENDS, backendSuiteOptions, type TestApplication } from '../support/authority.js';

const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';
void ROLE;

for (const backend of STORE_BACKENDS)
  describe(`vault data plane: protocol (${backend})`, backendSuiteOptions(backend), () => {
    let h: VaultHarness;
    let officer: TestApplication;
    let token: string;
    before(async () => {
      h = await startVaultHarness({ backend });
      const vault = await h.createVault('kv1');
      officer = await h.app_('officer');
      await assignRoleInStore(h.t, vault.resourceId, SECRETS_OFFICER, officer.objectId);
      token = await h.token(officer);
    });
    after(async () => h.close());

    it('challenges a request without a token before reading its body', async () => {
      const r = await h.call('kv1', 'PUT', `/secrets/s1?${V}`, undefined, '{not json');
      assert.equal(r.statusCode, 401);
      assert.deepEqual(r.json(), { error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' } });
      assert.equal(r.headers['www-authenticate'], `Bearer authorization="${h.t.ctx.urls.origin}/${h.t.tenantId}", resource="https://vault.localhost:8443"`);
      assert.equal(await h.versionCount(), 0);
    });

    /**
     * Sends `head` (and `firstChunk` of the body) on a fresh connection to the listening app; resolves with what
     * came back and whether the server closed the connection, once it closed or `waitMs` passed (bounded).
     */
    async function rawExchange(port: number, head: string, firstChunk: Buffer, waitMs: number): Promise<{ response: string; closedByServer: boolean }> {
      return new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let response = '';
        let done = false;
        const finish = (closedByServer: boolean) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          socket.destroy();
          resolve({ response, closedByServer });
        };
        const timer = setTimeout(() => finish(false), waitMs);
        socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
        socket.on('end', () => finish(true));
        socket.on('close', () => finish(true));
        socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? finish(true) : reject(err)));
        socket.write(head);
        socket.write(firstChunk);
      });
    }

    it('invariant: a request refused before its body is read gets its answer and a closed connection; its announced body is not drained', async () => {
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = h.app.server.address() as AddressInfo;
      const nobody = await h.token(await h.app_('nobody'));
      const TEN_MIB = 10 * 1024 * 1024;
      const head = (vault: string, authorization: string | undefined, framing: string) =>
        `PUT /secrets/big?${V} HTTP/1.1\r\nHost: ${vault}.vault.localhost:8443\r\nContent-Type: application/json\r\n${framing}${authorization === undefined ? '' : `Authorization: Bearer ${authorization}\r\n`}\r\n`;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const refusals: [string, string, string | undefined, string, Buffer][] = [
        ['no token', 'kv1', undefined, `Content-Length: ${String(TEN_MIB)}\r\n`, chunk],
        [
          'no token, chunked',
          'kv1',
          undefined,
          'Transfer-Encoding: chunked\r\n',
          Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
        ],
        ['a malformed token', 'kv1', 'not.a.token', `Content-Length: ${String(TEN_MIB)}\r\n`, chunk],
        ['a token without rights', 'kv1', nobody, `Content-Length: ${String(TEN_MIB)}\r\n`, chunk],
        ['an unknown vault', 'nosuchvault', undefined, `Content-Length: ${String(TEN_MIB)}\r\n`, chunk],
      ];
      for (const [label, vault, authorization, framing, first] of refusals) {
        const { response, closedByServer } = await rawExchange(port, head(vault, authorization, framing), first, 5_000);
        assert.match(response, /^HTTP\/1\.1 (401|403|404) /, `${label}: ${response.slice(0, 200)}`);
        assert.match(response, /\r\nconnection: close\r\n/i, label);
        assert.ok(closedByServer, `${label}: the server closed the connection instead of reading the rest of the body`);
      }
      // The challenge request every SDK sends (no token, an empty body) keeps its connection.
      const empty = await rawExchange(port, head('kv1', undefined, 'Content-Length: 0\r\n'), Buffer.alloc(0), 300);
      assert.match(empty.response, /^HTTP\/1\.1 401 /);
      assert.doesNotMatch(empty.response, /\r\nconnection: close\r\n/i);
      assert.equal(empty.closedByServer, false);
      assert.equal(await h.versionCount(), 0);
    });

    it('sets and gets a secret (trailing slash, double slash, case, api%2Dversion)', async () => {
      const set = await h.call('kv1', 'PUT', `/secrets/MySecret?${V}`, token, { value: 'hunter2', contentType: 'text/plain', tags: { a: 'b' } });
      assert.equal(set.statusCode, 200, set.body);
      const bundle = set.json();
      assert.equal(bundle.value, 'hunter2');
      assert.match(bundle.id, /^https:\/\/kv1\.vault\.localhost:8443\/secrets\/MySecret\/[0-9a-f]{32}$/);
      assert.equal(bundle.attributes.recoverableDays, 90);
      assert.equal(bundle.attributes.recoveryLevel, 'Recoverable+Purgeable');
      assert.equal(set.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(set.headers['x-ms-keyvault-region'], 'westeurope');
      for (const path of [
        `/secrets/mysecret/?${V}`,
        `//secrets/MySecret?${V}`,
        `/SECRETS/MySecret?api%2Dversion=2016-10-01`,
        `/secrets/MySecret/${bundle.id.split('/').at(-1)}?api-version=2099-01-01`,
      ]) {
        const r = await h.call('kv1', 'GET', path, token);
        assert.equal(r.statusCode, 200, `${path}: ${r.body}`);
        assert.equal(r.json().value, 'hunter2');
      }
      const old = await h.call('kv1', 'GET', `/secrets/MySecret?api-version=2016-10-01`, token);
      assert.equal(old.json().attributes.recoverableDays, undefined);
    });

    it('refuses unknown api-versions and a missing one with BadParameter', async () => {
      const r = await h.call('kv1', 'GET', `/secrets/MySecret?api-version=7.3-foo`, token);
      assert.equal(r.statusCode, 400);
      assert.equal(r.json().error.code, 'BadParameter');
      assert.match(r.json().error.message, /^The specified version \(7\.3-foo\) is not recognized\. Consider using the latest supported version/);
      for (const v of ['2015-06-01', '6.0', '']) assert.equal((await h.call('kv1', 'GET', `/secrets/MySecret?api-version=${v}`, token)).statusCode, 400, v);
      for (const v of ['7.7', '8.0-preview.1', '2027-01-01', '2026-08-01-preview', '7.6-preview.2', '7.0'])
        assert.equal((await h.call('kv1', 'GET', `/secrets/MySecret?api-version=${v}`, token)).statusCode, 200, v);
    });

    it('answers bad input with BadParameter and writes nothing', async () => {
      const before = await h.versionCount();
      const cases: [string, unknown][] = [
        [`/secrets/bad_name?${V}`, { value: 'x' }],
        [`/secrets/${'a'.repeat(128)}?${V}`, { value: 'x' }],
        [`/secrets/ok?${V}`, '{"value":'],
        [`/secrets/ok?${V}`, { value: 'x'.repeat(25 * 1024 + 1) }],
        [`/secrets/ok?${V}`, { value: 'x', contentType: 'c'.repeat(256) }],
        [`/secrets/ok?${V}`, { value: 'x', tags: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`t${String(i)}`, 'v'])) }],
        [`/secrets/ok?${V}`, { value: 'x', tags: { t: 'v'.repeat(513) } }],
        [`/secrets/ok?${V}`, { nope: 1 }],
      ];
      for (const [path, body] of cases) {
        const r = await h.call('kv1', 'PUT', path, token, body);
        assert.equal(r.statusCode, 400, `${path}: ${r.body}`);
        assert.equal(r.json().error.code, 'BadParameter');
      }
      const bad = await h.call('kv1', 'PUT', `/secrets/bad_name?${V}`, token, { value: 'x' });
      assert.equal(bad.json().error.message, 'The request URI contains an invalid name: bad_name');
      assert.equal(await h.versionCount(), before);
      const unknown = await h.call('kv1', 'GET', `/secrets/MySecret/${'0'.repeat(32)}?${V}`, token);
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().error.code, 'SecretNotFound');
    });

    it('refuses tokens for another audience, of an unknown key, alg none, and expired', async () => {
      const arm = await h.token(officer, 'https://management.azure.com');
      const r = await h.call('kv1', 'GET', `/secrets/MySecret?${V}`, arm);
      assert.equal(r.statusCode, 401);
      assert.match(r.json().error.message, /^AKV10022: Invalid audience\./);
      assert.ok(r.headers['www-authenticate']);
      const [header, payload] = token.split('.') as [string, string, string];
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
      const r2 = await h.call('kv1', 'GET', `/secrets/MySecret?${V}`, none);
      assert.equal(r2.statusCode, 401);
      const h2 = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>;
      const unknownKid = `${Buffer.from(JSON.stringify({ ...h2, kid: 'nope' })).toString('base64url')}.${token.split('.').slice(1).join('.')}`;
      const r3 = await h.call('kv1', 'GET', `/secrets/MySecret?${V}`, unknownKid);
      assert.equal(r3.statusCode, 401);
      assert.match(r3.json().error.message, /^AKV10046/);
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, number>;
      const expired = `${header}.${Buffer.from(JSON.stringify({ ...claims, exp: 1000 })).toString('base64url')}.${token.split('.')[2]!}`;
      const r4 = await h.call('kv1', 'PUT', `/secrets/x1?${V}`, expired, { value: 'v' });
      assert.equal(r4.statusCode, 401);
      assert.equal(r4.json().error.code, 'Unauthorized');
      assert.equal((await h.call('nosuchvault', 'GET', `/secrets/MySecret?${V}`, token)).statusCode, 404);
    });
  });
