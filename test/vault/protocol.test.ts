import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ROLE } from '../rbac-authz/helpers.js';
import { assignRoleInStore } from '../rbac-authz/helpers.js';
import { startVaultHarness, V, type VaultHarness } from './harness.js';
import { STORE_BACKENDS, backendSuiteOptions, type TestApplication } from '../helpers/authority.js';

const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';
void ROLE;

for (const backend of STORE_BACKENDS) describe(`vault data plane: protocol (${backend})`, backendSuiteOptions(backend), () => {
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
    for (const path of [`/secrets/mysecret/?${V}`, `//secrets/MySecret?${V}`, `/SECRETS/MySecret?api%2Dversion=2016-10-01`, `/secrets/MySecret/${bundle.id.split('/').at(-1)}?api-version=2099-01-01`]) {
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
    for (const v of ['7.7', '8.0-preview.1', '2027-01-01', '2026-08-01-preview', '7.6-preview.2', '7.0']) assert.equal((await h.call('kv1', 'GET', `/secrets/MySecret?api-version=${v}`, token)).statusCode, 200, v);
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
