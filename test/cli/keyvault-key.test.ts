import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, publicEncrypt, constants, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { openmsi, openmsiJson } from '../support/agent-process.js';
import { newGuid } from '../../src/shared/ids.js';

interface AzKey {
  attributes: Record<string, unknown> & { enabled: boolean; created: string; expires: string | null; exportable: boolean; recoveryLevel: string };
  key: Record<string, unknown> & { kid: string; kty: string; keyOps: string[]; n: string | null; e: string | null; crv: string | null; x: string | null };
  managed: boolean | null;
  releasePolicy: unknown;
  tags: Record<string, string> | null;
}
interface AzKeyItem {
  kid: string;
  name: string;
  attributes: Record<string, unknown>;
  tags: Record<string, string> | null;
}

const JWK_FIELDS = ['crv', 'd', 'dp', 'dq', 'e', 'k', 'keyOps', 'kid', 'kty', 'n', 'p', 'q', 'qi', 't', 'x', 'y'];
/** Standard base64 with padding (what az prints for bytes), not the wire's base64url. */
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64');

void describe('openmsi keyvault key (the keys data plane)', { timeout: 300_000 }, () => {
  let t: TestAuthority;
  let work: string;
  let base: string;
  const kv = (...args: string[]) => ['keyvault', 'key', ...args, '--vault-name', 'cli-keys'];

  before(async () => {
    t = await startTestAuthority();
    base = `https://cli-keys.vault.localhost:${new URL(t.url).port}`;
    work = mkdtempSync(join(tmpdir(), 'openmsi-kv-key-cli-'));
    await openmsiJson(t, ['group', 'create', '-n', 'kv-key-rg', '-l', 'westeurope']);
    await openmsiJson(t, ['keyvault', 'create', '-g', 'kv-key-rg', '-n', 'cli-keys', '--enable-rbac-authorization', 'false', '--retention-days', '7']);
    await openmsiJson(t, ['keyvault', 'create', '-g', 'kv-key-rg', '-n', 'cli-keys2', '--enable-rbac-authorization', 'false']);
    // az's self-permissions on an access-policy vault are the management ones; the crypto ones are granted, as in Azure.
    await openmsiJson(t, ['keyvault', 'set-policy', '-n', 'cli-keys', '--object-id', t.admin.objectId, '--key-permissions', 'all']);
  });
  after(async () => {
    await t.close();
    rmSync(work, { recursive: true, force: true });
  });

  void it("creates RSA, EC and oct-HSM keys with az's flags and prints az's KeyVaultKey JSON", async () => {
    const rsa = await openmsiJson<AzKey>(t, kv('create', '-n', 'rsa1', '--kty', 'RSA', '--size', '3072', '--tags', 'team=a'));
    assert.deepEqual(Object.keys(rsa), ['attributes', 'key', 'managed', 'releasePolicy', 'tags']);
    assert.deepEqual(Object.keys(rsa.key), JWK_FIELDS);
    assert.deepEqual(Object.keys(rsa.attributes), ['created', 'enabled', 'expires', 'exportable', 'notBefore', 'recoverableDays', 'recoveryLevel', 'updated']);
    assert.match(rsa.key.kid, new RegExp(`^${base.replace(/\./g, '\\.')}/keys/rsa1/[0-9a-f]{32}$`));
    assert.equal(rsa.key.kty, 'RSA');
    assert.deepEqual(rsa.key.keyOps, ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']);
    assert.equal(rsa.key.e, 'AQAB', 'bytes in standard base64, as az prints them');
    assert.equal(Buffer.from(rsa.key.n ?? '', 'base64').length, 384);
    assert.match(rsa.key.n ?? '', STD_BASE64);
    assert.equal(rsa.key.d, null);
    assert.equal(rsa.attributes.enabled, true);
    assert.equal(rsa.attributes.exportable, false);
    assert.match(rsa.attributes.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    assert.deepEqual(rsa.tags, { team: 'a' });

    // --curve alone means EC (az's default); --ops limits the operations.
    const ec = await openmsiJson<AzKey>(t, kv('create', '-n', 'ec1', '--curve', 'P-256', '--ops', 'sign', 'verify'));
    assert.equal(ec.key.kty, 'EC');
    assert.equal(ec.key.crv, 'P-256');
    assert.deepEqual(ec.key.keyOps, ['sign', 'verify']);
    assert.equal(Buffer.from(ec.key.x ?? '', 'base64').length, 32);
    const k1 = await openmsiJson<AzKey>(t, kv('create', '-n', 'eck', '--kty', 'EC', '--curve', 'P-256K'));
    assert.equal(k1.key.crv, 'P-256K');

    // --protection hsm makes oct an oct-HSM key.
    const aes = await openmsiJson<AzKey>(t, kv('create', '-n', 'aes1', '--kty', 'oct', '--size', '256', '--protection', 'hsm'));
    assert.equal(aes.key.kty, 'oct-HSM');
    assert.equal(aes.key['k'], null, 'no key material comes back');

    const badKty = await openmsi(t, kv('create', '-n', 'x', '--kty', 'DSA'));
    assert.equal(badKty.code, 1);
    assert.match(badKty.stderr, /invalid choice: 'DSA'/);
  });

  void it('shows, lists and lists versions; set-attributes changes a version', async () => {
    const first = await openmsiJson<AzKey>(t, kv('create', '-n', 'versioned', '--kty', 'EC', '--curve', 'P-384'));
    const second = await openmsiJson<AzKey>(t, kv('create', '-n', 'versioned', '--kty', 'EC', '--curve', 'P-384'));
    const shown = await openmsiJson<AzKey>(t, kv('show', '-n', 'versioned'));
    assert.equal(shown.key.kid, second.key.kid);
    const firstVersion = first.key.kid.split('/').pop() ?? '';
    assert.equal((await openmsiJson<AzKey>(t, kv('show', '-n', 'versioned', '--version', firstVersion))).key.kid, first.key.kid);
    assert.equal((await openmsiJson<AzKey>(t, ['keyvault', 'key', 'show', '--id', first.key.kid])).key.kid, first.key.kid, '--id as az takes it');

    const list = await openmsiJson<AzKeyItem[]>(t, kv('list'));
    const item = list.find((k) => k.name === 'versioned');
    assert.ok(item);
    assert.equal(item.kid, `${base}/keys/versioned`);
    assert.deepEqual(Object.keys(item), ['attributes', 'kid', 'managed', 'name', 'tags']);
    const versions = await openmsiJson<AzKeyItem[]>(t, kv('list-versions', '-n', 'versioned'));
    assert.deepEqual(versions.map((v) => v.kid).sort(), [first.key.kid, second.key.kid].sort());

    const changed = await openmsiJson<AzKey>(
      t,
      kv('set-attributes', '-n', 'versioned', '--enabled', 'false', '--expires', '2031-01-31T00:00:00Z', '--tags', 'a=b'),
    );
    assert.equal(changed.key.kid, second.key.kid);
    assert.equal(changed.attributes.enabled, false);
    assert.equal(changed.attributes.expires, '2031-01-31T00:00:00+00:00');
    assert.deepEqual(changed.tags, { a: 'b' });

    const missing = await openmsi(t, kv('show', '-n', 'no-such-key'));
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.match(missing.stderr, /^error: \(KeyNotFound\) /);
  });

  void it('encrypts and decrypts (base64 and plaintext data types); data encrypted outside with the downloaded public key decrypts in the vault', async () => {
    const enc = await openmsiJson<{ kid: string; result: string; algorithm: string; iv: null; tag: null; aad: null }>(
      t,
      kv('encrypt', '-n', 'rsa1', '-a', 'RSA-OAEP-256', '--value', 'hello vault', '--data-type', 'plaintext'),
    );
    assert.deepEqual(Object.keys(enc), ['aad', 'algorithm', 'iv', 'kid', 'result', 'tag']);
    assert.equal(enc.algorithm, 'RSA-OAEP-256');
    assert.match(enc.kid, /\/keys\/rsa1\/[0-9a-f]{32}$/);
    assert.equal(Buffer.from(enc.result, 'base64').length, 384);
    const plain = await openmsiJson<{ result: string; kid: string; algorithm: string }>(
      t,
      kv('decrypt', '-n', 'rsa1', '-a', 'RSA-OAEP-256', '--value', enc.result, '--data-type', 'plaintext'),
    );
    assert.deepEqual(plain, { algorithm: 'RSA-OAEP-256', kid: enc.kid, result: 'hello vault' });
    const asBase64 = await openmsiJson<{ result: string }>(t, kv('decrypt', '-n', 'rsa1', '-a', 'RSA-OAEP-256', '--value', enc.result));
    assert.equal(asBase64.result, Buffer.from('hello vault').toString('base64'));

    // Encrypted outside the vault with the downloaded public key, decrypted inside (seed 002's direction).
    const pem = join(work, 'rsa1.pub.pem');
    assert.equal((await openmsi(t, kv('download', '-n', 'rsa1', '--file', pem))).code, 0);
    const outside = publicEncrypt({ key: readFileSync(pem), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from('from outside'));
    const inside = await openmsiJson<{ result: string }>(
      t,
      kv('decrypt', '-n', 'rsa1', '-a', 'RSA-OAEP', '--value', outside.toString('base64'), '--data-type', 'plaintext'),
    );
    assert.equal(inside.result, 'from outside');

    // AES-GCM on the oct-HSM key: iv, tag (and aad) in hex, as az prints them.
    const gcm = await openmsiJson<{ result: string; iv: string; tag: string; aad: string }>(
      t,
      kv('encrypt', '-n', 'aes1', '-a', 'A256GCM', '--value', Buffer.from('aes data').toString('base64'), '--aad', '6161'),
    );
    assert.match(gcm.iv, /^[0-9a-f]{24}$/);
    assert.match(gcm.tag, /^[0-9a-f]{32}$/);
    assert.equal(gcm.aad, '6161');
    const back = await openmsiJson<{ result: string }>(
      t,
      kv('decrypt', '-n', 'aes1', '-a', 'A256GCM', '--value', gcm.result, '--iv', gcm.iv, '--tag', gcm.tag, '--aad', '6161', '--data-type', 'plaintext'),
    );
    assert.equal(back.result, 'aes data');

    const wrongAlg = await openmsi(t, kv('encrypt', '-n', 'rsa1', '-a', 'A256GCM', '--value', 'aGk='));
    assert.equal(wrongAlg.code, 1);
    assert.match(wrongAlg.stderr, /^error: \(BadParameter\) /);
    const unknownAlg = await openmsi(t, kv('encrypt', '-n', 'rsa1', '-a', 'ROT13', '--value', 'aGk='));
    assert.equal(unknownAlg.code, 1);
    assert.match(unknownAlg.stderr, /argument --algorithm: invalid choice: 'ROT13'/);
  });

  void it('signs a digest and verifies it (true; false for another digest); node:crypto agrees with the downloaded key', async () => {
    const digest = sha256('signed text');
    const signed = await openmsiJson<{ algorithm: string; keyId: string; signature: string }>(t, kv('sign', '-n', 'ec1', '-a', 'ES256', '--digest', digest));
    assert.deepEqual(Object.keys(signed), ['algorithm', 'keyId', 'signature']);
    assert.equal(Buffer.from(signed.signature, 'base64').length, 64, 'JWS r||s');
    assert.match(signed.signature, STD_BASE64);
    assert.ok(signed.signature.endsWith('='));
    const ok = await openmsiJson<{ isValid: boolean }>(t, kv('verify', '-n', 'ec1', '-a', 'ES256', '--digest', digest, '--signature', signed.signature));
    assert.equal(ok.isValid, true);
    const bad = await openmsiJson<{ isValid: boolean }>(
      t,
      kv('verify', '-n', 'ec1', '-a', 'ES256', '--digest', sha256('other text'), '--signature', signed.signature),
    );
    assert.equal(bad.isValid, false);

    for (const encoding of ['PEM', 'DER'] as const) {
      const file = join(work, `ec1.pub.${encoding}`);
      const downloaded = await openmsi(t, kv('download', '-n', 'ec1', '--file', file, '--encoding', encoding));
      assert.equal(downloaded.code, 0, downloaded.stderr);
      assert.equal(downloaded.stdout, '');
      const key = encoding === 'PEM' ? createPublicKey(readFileSync(file)) : createPublicKey({ key: readFileSync(file), format: 'der', type: 'spki' });
      assert.ok(verify('sha256', Buffer.from('signed text'), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.signature, 'base64')));
    }
    const again = await openmsi(t, kv('download', '-n', 'ec1', '--file', join(work, 'ec1.pub.PEM')));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists/);

    const rs = await openmsiJson<{ signature: string }>(t, kv('sign', '-n', 'rsa1', '-a', 'RS256', '--digest', digest));
    const pem = readFileSync(join(work, 'rsa1.pub.pem'));
    assert.ok(verify('sha256', Buffer.from('signed text'), pem, Buffer.from(rs.signature, 'base64')));
    const k1 = join(work, 'eck.pub.pem');
    assert.equal((await openmsi(t, kv('download', '-n', 'eck', '--file', k1))).code, 0);
    assert.equal(createPublicKey(readFileSync(k1)).asymmetricKeyDetails?.namedCurve, 'secp256k1');

    const short = await openmsi(t, kv('sign', '-n', 'ec1', '-a', 'ES256', '--digest', Buffer.alloc(20).toString('base64')));
    assert.equal(short.code, 1);
    assert.match(short.stderr, /^error: \(BadParameter\) Invalid length/);
  });

  void it('imports a PEM key (encrypted too) that then signs as its original', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const encrypted = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' });
    const imported = await openmsiJson<AzKey>(t, kv('import', '-n', 'imported', '--pem-string', String(encrypted), '--pem-password', 'pw'));
    assert.equal(imported.key.kty, 'EC');
    assert.equal(imported.key.crv, 'P-384');
    assert.equal(imported.key.d, null);
    const digest = createHash('sha384').update('imported').digest('base64');
    const signed = await openmsiJson<{ signature: string }>(t, kv('sign', '-n', 'imported', '-a', 'ES384', '--digest', digest));
    assert.ok(verify('sha384', Buffer.from('imported'), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signed.signature, 'base64')));
    const wrongPassword = await openmsi(t, kv('import', '-n', 'imported2', '--pem-string', String(encrypted), '--pem-password', 'nope'));
    assert.equal(wrongPassword.code, 1);
    assert.match(wrongPassword.stderr, /^error: Import failed: /);
  });

  void it('rotates, and sets and shows a rotation policy (the server adds Notify)', async () => {
    const before = await openmsiJson<AzKey>(t, kv('show', '-n', 'rsa1'));
    const rotated = await openmsiJson<AzKey>(t, kv('rotate', '-n', 'rsa1'));
    assert.notEqual(rotated.key.kid, before.key.kid);
    assert.equal(Buffer.from(rotated.key.n ?? '', 'base64').length, 384, 'same size');
    assert.deepEqual(rotated.tags, { team: 'a' });

    const policy = await openmsiJson<{
      id: string;
      expiresIn: string;
      lifetimeActions: { action: string; timeAfterCreate: string | null; timeBeforeExpiry: string | null }[];
    }>(
      t,
      kv(
        'rotation-policy',
        'update',
        '-n',
        'rsa1',
        '--value',
        '{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}',
      ),
    );
    assert.equal(policy.id, `${base}/keys/rsa1/rotationpolicy`);
    assert.equal(policy.expiresIn, 'P1Y');
    assert.deepEqual(
      policy.lifetimeActions.find((a) => a.action === 'Rotate'),
      { action: 'Rotate', timeAfterCreate: 'P90D', timeBeforeExpiry: null },
    );
    assert.deepEqual(
      policy.lifetimeActions.find((a) => a.action === 'Notify'),
      { action: 'Notify', timeAfterCreate: null, timeBeforeExpiry: 'P30D' },
    );
    assert.deepEqual(await openmsiJson(t, kv('rotation-policy', 'show', '-n', 'rsa1')), policy);
  });

  void it('backs up, deletes, purges and restores a key into the same and another vault', async () => {
    await openmsiJson(t, kv('create', '-n', 'portable', '--kty', 'RSA'));
    const file = join(work, 'portable.bak');
    const backup = await openmsi(t, kv('backup', '-n', 'portable', '--file', file));
    assert.equal(backup.code, 0, backup.stderr);
    assert.ok(existsSync(file));
    assert.equal((await openmsi(t, kv('delete', '-n', 'portable'))).code, 0);
    assert.equal((await openmsi(t, kv('purge', '-n', 'portable'))).code, 0);
    const restored = await openmsiJson<AzKey>(t, kv('restore', '--file', file));
    assert.match(restored.key.kid, /\/keys\/portable\/[0-9a-f]{32}$/);
    assert.deepEqual(Object.keys(restored), ['attributes', 'key', 'managed', 'tags']);
    const elsewhere = await openmsiJson<AzKey>(t, ['keyvault', 'key', 'restore', '--vault-name', 'cli-keys2', '--file', file]);
    assert.match(elsewhere.key.kid, /^https:\/\/cli-keys2\./);
  });

  void it('deletes, lists deleted, shows deleted, recovers and purges', async () => {
    const created = await openmsiJson<AzKey>(t, kv('create', '-n', 'doomed', '--kty', 'EC'));
    const deleted = await openmsiJson<AzKey & { recoveryId: string; deletedDate: string; scheduledPurgeDate: string }>(t, kv('delete', '-n', 'doomed'));
    assert.equal(deleted.recoveryId, `${base}/deletedkeys/doomed`);
    assert.equal(deleted.key.kid, created.key.kid);
    assert.equal(Date.parse(deleted.scheduledPurgeDate) - Date.parse(deleted.deletedDate), 7 * 86_400_000);
    const listed = await openmsiJson<(AzKeyItem & { recoveryId: string })[]>(t, kv('list-deleted'));
    assert.equal(listed.find((k) => k.name === 'doomed')?.recoveryId, deleted.recoveryId);
    const shown = await openmsiJson<{ recoveryId: string }>(t, ['keyvault', 'key', 'show-deleted', '--id', deleted.recoveryId]);
    assert.equal(shown.recoveryId, deleted.recoveryId);
    const recovered = await openmsiJson<AzKey>(t, kv('recover', '-n', 'doomed'));
    assert.equal(recovered.key.kid, created.key.kid);
    assert.equal((await openmsiJson<AzKey>(t, kv('show', '-n', 'doomed'))).key.kid, created.key.kid);

    await openmsiJson(t, kv('delete', '-n', 'doomed'));
    const purged = await openmsi(t, kv('purge', '-n', 'doomed'));
    assert.equal(purged.code, 0, purged.stderr);
    assert.equal(purged.stdout, '');
    const gone = await openmsi(t, kv('show-deleted', '-n', 'doomed'));
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error: \(KeyNotFound\) /);
  });

  void it("set-policy takes the 20 key permissions in az's spellings and refuses others", async () => {
    const app = newGuid();
    const set = await openmsiJson<{ properties: { accessPolicies: { objectId: string; permissions: { keys: string[] } }[] } }>(t, [
      'keyvault',
      'set-policy',
      '-n',
      'cli-keys',
      '--object-id',
      app,
      '--key-permissions',
      'get',
      'wrapKey',
      'unwrapKey',
      'getrotationpolicy',
      'SetRotationPolicy',
      'release',
    ]);
    assert.deepEqual(set.properties.accessPolicies.find((e) => e.objectId === app)?.permissions.keys, [
      'get',
      'wrapkey',
      'unwrapkey',
      'getrotationpolicy',
      'setrotationpolicy',
      'release',
    ]);
    const bad = await openmsi(t, ['keyvault', 'set-policy', '-n', 'cli-keys', '--object-id', app, '--key-permissions', 'steal']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: \(BadRequest\) .*'steal'/);
  });
});
