/**
 * Who may use a key (keys spec §3): RBAC roles (Crypto User uses keys but cannot create or delete them; Secrets
 * User gets nothing on keys; GET refused is 403, never 404, so SDKs go remote), access-policy key permissions
 * one by one, removal applying within a second, and an audit trail that names keys and never holds key
 * material or plaintext.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { assignRoleInStore, deleteAssignmentInStore, timeUntil } from '../../rbac/authz/helpers.js';
import type { TestApplication } from '../../support/authority.js';
import { BUILTIN_ROLE_IDS } from '../../../src/rbac/builtin-roles.js';
import { KEY_PERMISSIONS } from '../../../src/vault/contracts.js';
import { startVaultHarness, V, type VaultHarness } from '../harness.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const DIGEST = b64(createHash('sha256').update('x').digest());

describe('vault data plane: who may use keys', () => {
  let h: VaultHarness;
  let officer: TestApplication;
  let other: TestApplication;
  let officerToken: string;
  let otherToken: string;
  let ciphertext: string;
  before(async () => {
    h = await startVaultHarness();
    const kv = await h.createVault('kv1');
    officer = await h.app_('officer');
    other = await h.app_('other');
    await assignRoleInStore(h.t, kv.resourceId, BUILTIN_ROLE_IDS.KeyVaultCryptoOfficer, officer.objectId);
    officerToken = await h.token(officer);
    otherToken = await h.token(other);
    assert.equal((await h.call('kv1', 'POST', `/keys/k1/create?${V}`, officerToken, { kty: 'RSA' })).statusCode, 200);
    ciphertext = (await h.call('kv1', 'POST', `/keys/k1/encrypt?${V}`, officerToken, { alg: 'RSA-OAEP', value: b64(Buffer.from('PLAINTEXT-MARKER')) })).json<{
      value: string;
    }>().value;
  });
  after(async () => h.close());

  const use = (token: string) => ({
    get: () => h.call('kv1', 'GET', `/keys/k1?${V}`, token),
    decrypt: () => h.call('kv1', 'POST', `/keys/k1/decrypt?${V}`, token, { alg: 'RSA-OAEP', value: ciphertext }),
    sign: () => h.call('kv1', 'POST', `/keys/k1/sign?${V}`, token, { alg: 'RS256', value: DIGEST }),
    create: () => h.call('kv1', 'POST', `/keys/k2/create?${V}`, token, { kty: 'EC' }),
    remove: () => h.call('kv1', 'DELETE', `/keys/k1?${V}`, token),
  });

  it('RBAC: nothing without a role (403, never 404); Crypto User decrypts and signs but cannot create or delete; removal applies within 1 s', async () => {
    const kv = (await h.ctx.store.vaults.getByName('kv1'))!;
    const caller = use(otherToken);
    const denied = await caller.get();
    assert.equal(denied.statusCode, 403, 'GET refused is 403: SDKs then go remote-only');
    assert.equal(denied.json<{ error: { innererror: { code: string } } }>().error.innererror.code, 'ForbiddenByRbac');
    assert.ok(denied.json<{ error: { message: string } }>().error.message.includes(`Action: 'Microsoft.KeyVault/vaults/keys/read'`));
    const id = await assignRoleInStore(h.t, kv.resourceId, BUILTIN_ROLE_IDS.KeyVaultCryptoUser, other.objectId);
    assert.ok((await timeUntil(async () => (await caller.decrypt()).statusCode === 200, 1000)) !== undefined);
    assert.equal((await caller.sign()).statusCode, 200);
    assert.equal((await caller.get()).statusCode, 200);
    assert.equal((await caller.create()).statusCode, 403);
    assert.equal((await caller.remove()).statusCode, 403);
    await deleteAssignmentInStore(h.t, id);
    const took = await timeUntil(async () => (await caller.decrypt()).statusCode === 403, 1000);
    assert.ok(took !== undefined && took < 1000, `refused again after ${String(took)} ms`);
  });

  it('RBAC: Secrets User gets 403 on keys; Crypto Service Encryption User wraps and unwraps only', async () => {
    const kv = (await h.ctx.store.vaults.getByName('kv1'))!;
    const caller = use(otherToken);
    const secretsUser = await assignRoleInStore(h.t, kv.resourceId, BUILTIN_ROLE_IDS.KeyVaultSecretsUser, other.objectId);
    await new Promise((r) => setTimeout(r, 50));
    for (const call of [caller.get, caller.decrypt, caller.sign]) assert.equal((await call()).statusCode, 403);
    await deleteAssignmentInStore(h.t, secretsUser);
    const encryptionUser = await assignRoleInStore(h.t, `${kv.resourceId}/keys/k1`, BUILTIN_ROLE_IDS.KeyVaultCryptoServiceEncryptionUser, other.objectId);
    const unwrap = () => h.call('kv1', 'POST', `/keys/k1/unwrapkey?${V}`, otherToken, { alg: 'RSA-OAEP', value: ciphertext });
    assert.ok((await timeUntil(async () => (await unwrap()).statusCode === 200, 1000)) !== undefined, 'a role at the key scope');
    assert.equal((await caller.decrypt()).statusCode, 403);
    assert.equal((await caller.sign()).statusCode, 403);
    await deleteAssignmentInStore(h.t, encryptionUser);
  });

  it('access policies: each of the twenty key permissions grants its operations and no other; secret permissions grant nothing on keys', async () => {
    const vault = await h.createVault('kvap', {
      rbac: false,
      policies: [{ tenantId: h.t.tenantId, objectId: officer.objectId, permissions: { keys: ['all'], secrets: [], certificates: [], storage: [] } }],
    });
    assert.equal((await h.call('kvap', 'POST', `/keys/k1/create?${V}`, officerToken, { kty: 'RSA' })).statusCode, 200);
    const encrypted = (await h.call('kvap', 'POST', `/keys/k1/encrypt?${V}`, officerToken, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) })).json<{
      kid: string;
      value: string;
    }>();
    // Decrypted by the version it was encrypted under: the rotate probe below adds versions.
    const enc = encrypted.value;
    const version = encrypted.kid.split('/').at(-1)!;
    // One request per permission (the operations it alone grants), run against an entry holding only that permission.
    const probes: Record<string, () => Promise<{ statusCode: number }>> = {
      get: () => h.call('kvap', 'GET', `/keys/k1?${V}`, otherToken),
      list: () => h.call('kvap', 'GET', `/keys?${V}`, otherToken),
      update: () => h.call('kvap', 'PATCH', `/keys/k1?${V}`, otherToken, { tags: { a: 'b' } }),
      create: () => h.call('kvap', 'POST', `/keys/ap-create/create?${V}`, otherToken, { kty: 'EC' }),
      import: () => h.call('kvap', 'PUT', `/keys/ap-import?${V}`, otherToken, { key: { kty: 'oct', k: b64(Buffer.alloc(32, 1)) } }),
      decrypt: () => h.call('kvap', 'POST', `/keys/k1/${version}/decrypt?${V}`, otherToken, { alg: 'RSA-OAEP', value: enc }),
      encrypt: () => h.call('kvap', 'POST', `/keys/k1/encrypt?${V}`, otherToken, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) }),
      unwrapkey: () => h.call('kvap', 'POST', `/keys/k1/${version}/unwrapkey?${V}`, otherToken, { alg: 'RSA-OAEP', value: enc }),
      wrapkey: () => h.call('kvap', 'POST', `/keys/k1/wrapkey?${V}`, otherToken, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) }),
      verify: () => h.call('kvap', 'POST', `/keys/k1/verify?${V}`, otherToken, { alg: 'RS256', digest: DIGEST, value: b64(Buffer.alloc(256)) }),
      sign: () => h.call('kvap', 'POST', `/keys/k1/sign?${V}`, otherToken, { alg: 'RS256', value: DIGEST }),
      backup: () => h.call('kvap', 'POST', `/keys/k1/backup?${V}`, otherToken),
      rotate: () => h.call('kvap', 'POST', `/keys/k1/rotate?${V}`, otherToken),
      getrotationpolicy: () => h.call('kvap', 'GET', `/keys/k1/rotationpolicy?${V}`, otherToken),
      setrotationpolicy: () => h.call('kvap', 'PUT', `/keys/k1/rotationpolicy?${V}`, otherToken, { lifetimeActions: [] }),
      release: () => h.call('kvap', 'POST', `/keys/k1/release?${V}`, otherToken, { target: 'x' }),
    };
    const setOther = async (keys: string[], secrets: string[] = []) => {
      vault.properties.accessPolicies = [
        vault.properties.accessPolicies[0]!,
        { tenantId: h.t.tenantId, objectId: other.objectId, permissions: { keys, secrets, certificates: [], storage: [] } },
      ];
      await h.ctx.store.vaults.put(vault);
      await new Promise((r) => setTimeout(r, 20));
    };
    await setOther([], ['all']);
    for (const [name, probe] of Object.entries(probes)) assert.equal((await probe()).statusCode, 403, `${name} with secret permissions only`);
    for (const permission of Object.keys(probes)) {
      await setOther([permission]);
      for (const [name, probe] of Object.entries(probes)) {
        const status = (await probe()).statusCode;
        // A granted operation may still fail for its own reasons (release is not supported: 400); it is never refused.
        const granted =
          name === permission || (permission === 'get' && name === 'getrotationpolicy') || (permission === 'update' && name === 'setrotationpolicy');
        if (granted) assert.notEqual(status, 403, `${name} granted by ${permission}`);
        else assert.equal(status, 403, `${name} refused with only ${permission}`);
      }
    }
    assert.equal(KEY_PERMISSIONS.length, 20);
    await setOther([...KEY_PERMISSIONS]);
    assert.equal((await probes['decrypt']!()).statusCode, 200);
    await setOther([]);
    const took = await timeUntil(async () => (await probes['decrypt']!()).statusCode === 403, 1000);
    assert.ok(took !== undefined && took < 1000, 'removal applies within a second');
  });

  it('audits key operations by name (crypto folded as reads) and never records key material, plaintext or a token', async () => {
    await h.app.close();
    await h.t.ctx.audit.flush();
    const events = await h.t.ctx.store.audit.list({ limit: 5000 });
    const keyEvents = events.filter((e) => e.action.startsWith('vault.keys.'));
    assert.ok(keyEvents.some((e) => e.action === 'vault.keys.create' && e.detail['key'] === 'k1' && e.detail['decision'] === 'allowed'));
    assert.ok(keyEvents.some((e) => e.action === 'vault.keys.decrypt' && e.detail['decision'] === 'denied' && e.detail['status'] === 403));
    const everything = JSON.stringify(events) + h.logLines.join('\n') + h.t.logLines.join('\n');
    assert.ok(!everything.includes('PLAINTEXT-MARKER'));
    assert.ok(!everything.includes(b64(Buffer.from('PLAINTEXT-MARKER'))));
    assert.ok(!everything.includes(officerToken.split('.')[2]!));
    assert.ok(!/"(d|p|q|dp|dq|qi|k)":"[A-Za-z0-9_-]{20,}/.test(everything), 'no private JWK member anywhere');
  });
});
