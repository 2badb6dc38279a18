/**
 * The keys data plane over the in-process vault app (keys spec §1, §5, §6.A/C/D): routing forms, every key type,
 * crypto results checked with node:crypto against the key's public JWK, the key's own gates, lifecycle, rotation
 * and bad input (status, code, nothing written). RBAC and access policies: access.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash, createPublicKey, publicEncrypt, constants, verify as cryptoVerify, randomBytes, generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { assignRoleInStore } from '../../rbac/authz/helpers.js';
import { startVaultHarness, V, type VaultHarness } from '../harness.js';
import { BUILTIN_ROLE_IDS } from '../../../src/rbac/builtin-roles.js';
import { rotateDueKeys } from '../../../src/vault/keys/index.js';
import { createSecretCipher } from '../../../src/vault/secret-cipher.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64url');
const sha = (alg: string, data: string): Buffer => createHash(alg).update(data).digest();

interface Bundle {
  key: { kid: string; kty: string; key_ops: string[]; n?: string; e?: string; crv?: string; x?: string; y?: string; d?: string; k?: string };
  attributes: Record<string, unknown>;
  tags?: Record<string, string>;
}

describe('vault data plane: keys', () => {
  let h: VaultHarness;
  let token: string;
  const call = (method: string, path: string, body?: unknown) => h.call('kv1', method, path, token, body);
  const json = async <T>(method: string, path: string, body?: unknown, status = 200): Promise<T> => {
    const r = await call(method, path, body);
    assert.equal(r.statusCode, status, `${method} ${path}: ${r.body}`);
    return r.json<T>();
  };
  const create = (name: string, body: unknown) => json<Bundle>('POST', `/keys/${name}/create?${V}`, body);
  const keyCount = async (): Promise<number> => {
    const id = h.vaultId('kv1');
    let n = 0;
    for (const deleted of [false, true])
      for (const e of await h.ctx.store.keys.list(id, { deleted, limit: 1000 })) n += (await h.ctx.store.keys.allVersions(id, e.name)).length || 1;
    return n;
  };

  before(async () => {
    h = await startVaultHarness();
    const vault = await h.createVault('kv1');
    const officer = await h.app_('crypto-officer');
    await assignRoleInStore(h.t, vault.resourceId, BUILTIN_ROLE_IDS.KeyVaultCryptoOfficer, officer.objectId);
    token = await h.token(officer);
  });
  after(async () => h.close());

  it('creates every key type with the service defaults: versioned kid, public parts only, never-empty key_ops', async () => {
    const cases: [unknown, string, string[]][] = [
      [{ kty: 'RSA', key_size: 2048 }, 'RSA', ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']],
      [{ kty: 'RSA-HSM', key_size: 3072 }, 'RSA-HSM', ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey']],
      [{ kty: 'EC', crv: 'P-256K' }, 'EC', ['sign', 'verify']],
      [{ kty: 'EC-HSM', crv: 'P-521' }, 'EC-HSM', ['sign', 'verify']],
      [{ kty: 'oct-HSM', key_size: 128 }, 'oct-HSM', ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey']],
    ];
    for (const [i, [body, kty, ops]] of cases.entries()) {
      const bundle = await create(`Type${String(i)}`, body);
      assert.match(bundle.key.kid, new RegExp(`^https://kv1\\.vault\\.localhost:8443/keys/Type${String(i)}/[0-9a-f]{32}$`));
      assert.equal(bundle.key.kty, kty);
      assert.deepEqual(bundle.key.key_ops, ops);
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(secret in bundle.key, false, `${kty} answers no ${secret}`);
      assert.equal(bundle.attributes['enabled'], true);
      assert.equal(bundle.attributes['exportable'], false);
    }
    const ec = await json<Bundle>('GET', `/keys/type2/?${V}`);
    assert.equal(ec.key.crv, 'P-256K');
    assert.equal(unb64(ec.key.x!).length, 32);
    const old = await json<Bundle>('GET', `/keys/type2?api-version=7.2`);
    assert.equal('exportable' in old.attributes, false, 'exportable appears from 7.3 on');
  });

  it('RSA: encrypt here and decrypt with each algorithm; the versionless // path uses the latest; sign verifies with node:crypto', async () => {
    const bundle = await create('rsa1', { kty: 'RSA', key_size: 2048 });
    const version = bundle.key.kid.split('/').at(-1)!;
    const publicKey = createPublicKey({ key: { kty: 'RSA', n: bundle.key.n!, e: bundle.key.e! }, format: 'jwk' });
    const plain = Buffer.from('seed 002: decrypt me');
    for (const alg of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256']) {
      const enc = await json<{ kid: string; value: string }>('POST', `/keys/rsa1//encrypt?api%2Dversion=7.4`, { alg, value: b64(plain) });
      assert.equal(enc.kid, bundle.key.kid, 'the versioned kid of the version used');
      const dec = await json<{ value: string }>('POST', `/keys/rsa1/${version}/decrypt?${V}`, { alg, value: enc.value });
      assert.equal(unb64(dec.value).toString(), plain.toString(), alg);
      const local =
        alg === 'RSA1_5'
          ? publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, plain)
          : publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === 'RSA-OAEP' ? 'sha1' : 'sha256' }, plain);
      const wrapped = await json<{ value: string }>('POST', `/keys/RSA1/${version}/UNWRAPKEY?${V}`, { alg, value: b64(local) });
      assert.equal(unb64(wrapped.value).toString(), plain.toString(), `${alg} unwrap of what node:crypto wrapped`);
    }
    for (const [alg, hash, padding] of [
      ['RS256', 'sha256', constants.RSA_PKCS1_PADDING],
      ['RS512', 'sha512', constants.RSA_PKCS1_PADDING],
      ['PS384', 'sha384', constants.RSA_PKCS1_PSS_PADDING],
    ] as const) {
      const sig = await json<{ value: string }>('POST', `/keys/rsa1/sign?${V}`, { alg, value: b64(sha(hash, 'message')) });
      assert.equal(unb64(sig.value).length, 256);
      assert.equal(
        cryptoVerify(
          hash,
          Buffer.from('message'),
          { key: publicKey, padding, saltLength: padding === constants.RSA_PKCS1_PSS_PADDING ? 48 : undefined },
          unb64(sig.value),
        ),
        true,
        alg,
      );
      const ok = await json<{ value: boolean }>('POST', `/keys/rsa1/${version}/verify?${V}`, { alg, digest: b64(sha(hash, 'message')), value: sig.value });
      assert.deepEqual(ok, { value: true });
      const bad = await json<{ value: boolean }>('POST', `/keys/rsa1/${version}/verify?${V}`, { alg, digest: b64(sha(hash, 'other')), value: sig.value });
      assert.deepEqual(bad, { value: false }, 'a bad signature is false, not an error');
    }
  });

  it('EC: raw r‖s signatures of the curve length over the given digest, checked by node:crypto', async () => {
    for (const [crv, alg, hash, length] of [
      ['P-256', 'ES256', 'sha256', 64],
      ['P-256K', 'ES256K', 'sha256', 64],
      ['P-384', 'ES384', 'sha384', 96],
      ['P-521', 'ES512', 'sha512', 132],
    ] as const) {
      const bundle = await create(`ec-${alg}`, { kty: 'EC', crv });
      const sig = await json<{ value: string }>('POST', `/keys/ec-${alg}//sign?${V}`, { alg, value: b64(sha(hash, 'hello')) });
      assert.equal(unb64(sig.value).length, length, alg);
      const jwk = { kty: 'EC', crv: crv === 'P-256K' ? 'secp256k1' : crv, x: bundle.key.x!, y: bundle.key.y! };
      assert.equal(
        cryptoVerify(hash, Buffer.from('hello'), { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, unb64(sig.value)),
        true,
        alg,
      );
    }
    const r = await call('POST', `/keys/ec-ES256/sign?${V}`, { alg: 'ES384', value: b64(sha('sha384', 'x')) });
    assert.equal(r.statusCode, 400, 'ES384 on a P-256 key');
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'BadParameter');
  });

  it('AES (oct-HSM): GCM with a server-made 12-byte iv and 16-byte tag, CBCPAD with a server-made iv, KW; a tampered tag is 400', async () => {
    await create('aes', { kty: 'oct-HSM', key_size: 256 });
    const enc = await json<{ value: string; iv: string; tag: string; aad: string }>('POST', `/keys/aes/encrypt?${V}`, {
      alg: 'A256GCM',
      value: b64(Buffer.from('gcm')),
      aad: b64(Buffer.from('ctx')),
    });
    assert.equal(unb64(enc.iv).length, 12);
    assert.equal(unb64(enc.tag).length, 16);
    assert.equal(unb64(enc.aad).toString(), 'ctx');
    const dec = await json<{ value: string }>('POST', `/keys/aes/decrypt?${V}`, { alg: 'A256GCM', value: enc.value, iv: enc.iv, tag: enc.tag, aad: enc.aad });
    assert.equal(unb64(dec.value).toString(), 'gcm');
    const tag = unb64(enc.tag);
    tag[0]! ^= 1;
    const tampered = await call('POST', `/keys/aes/decrypt?${V}`, { alg: 'A256GCM', value: enc.value, iv: enc.iv, tag: b64(tag), aad: enc.aad });
    assert.equal(tampered.statusCode, 400);
    const cbc = await json<{ value: string; iv: string }>('POST', `/keys/aes/encrypt?${V}`, { alg: 'A256CBCPAD', value: b64(Buffer.from('cbc')) });
    assert.equal(unb64(cbc.iv).length, 16);
    const back = await json<{ value: string }>('POST', `/keys/aes/decrypt?${V}`, { alg: 'A256CBCPAD', value: cbc.value, iv: cbc.iv });
    assert.equal(unb64(back.value).toString(), 'cbc');
    const cek = randomBytes(32);
    const wrapped = await json<{ value: string }>('POST', `/keys/aes/wrapkey?${V}`, { alg: 'A256KW', value: b64(cek) });
    const unwrapped = await json<{ value: string }>('POST', `/keys/aes/unwrapkey?${V}`, { alg: 'A256KW', value: wrapped.value });
    assert.deepEqual(unb64(unwrapped.value), cek);
  });

  it('imports RSA and EC JWKs (answering no private part) and refuses malformed ones with 400, writing nothing', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const imported = await json<Bundle>('PUT', `/keys/imported?${V}`, { key: rsa, Hsm: true, tags: { a: 'b' } });
    assert.equal(imported.key.kty, 'RSA-HSM');
    assert.equal(imported.key.n, rsa.n);
    assert.equal(imported.key.d, undefined);
    assert.deepEqual(imported.tags, { a: 'b' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
    assert.equal((await json<Bundle>('PUT', `/keys/imported-ec?${V}`, { key: ec })).key.crv, 'P-256');
    const before = await keyCount();
    for (const body of [{ key: 'nope' }, { key: { ...rsa, d: undefined } }, { key: { kty: 'EC', crv: 'P-999', x: 'AA', y: 'AA', d: 'AA' } }, {}]) {
      const r = await call('PUT', `/keys/bad-import?${V}`, body);
      assert.equal(r.statusCode, 400, JSON.stringify(body).slice(0, 80));
      assert.equal(r.json<{ error: { code: string } }>().error.code, 'BadParameter');
    }
    assert.equal(await keyCount(), before, 'nothing written');
  });

  it('bad input: wrong digest length (Key Vault wording), unknown algorithm, wrong ciphertext size, oversized payload, bad key_ops', async () => {
    await create('bad', { kty: 'RSA' });
    const wrongDigest = await call('POST', `/keys/bad/sign?${V}`, { alg: 'RS256', value: b64(Buffer.alloc(33)) });
    assert.equal(wrongDigest.statusCode, 400);
    assert.equal(
      wrongDigest.json<{ error: { message: string } }>().error.message,
      "Invalid length of 'value': 33 bytes. RS256 requires 32 bytes, encoded with base64url.",
    );
    for (const body of [
      { alg: 'A256GCM', value: b64(Buffer.from('x')) },
      { alg: 'NOPE', value: b64(Buffer.from('x')) },
      { alg: 'RSA-OAEP', value: b64(Buffer.alloc(100 * 1024)) },
      { alg: 'RSA-OAEP', value: '!!!' },
    ]) {
      const r = await call('POST', `/keys/bad/encrypt?${V}`, body);
      assert.equal(r.statusCode, 400, body.alg);
    }
    const short = await call('POST', `/keys/bad/decrypt?${V}`, { alg: 'RSA-OAEP', value: b64(Buffer.alloc(100)) });
    assert.equal(short.statusCode, 400, 'a ciphertext of the wrong size');
    const ops = await call('POST', `/keys/bad-ec/create?${V}`, { kty: 'EC', key_ops: ['sign', 'wrapKey', 'unwrapKey'] });
    assert.equal(ops.statusCode, 400);
    assert.equal(
      ops.json<{ error: { message: string } }>().error.message,
      'Unsupported key operation(s): "wrapKey", "unwrapKey". Supported values are "sign", "verify".',
    );
    assert.equal((await call('GET', `/keys/bad-ec?${V}`)).statusCode, 404);
  });

  it("the key's gates: key_ops (KeyOperationForbidden), disabled (decrypt/sign/unwrap refused, encrypt/wrap/verify allowed), nbf/exp", async () => {
    const b = await create('gated', { kty: 'RSA', key_ops: ['verify', 'encrypt', 'decrypt'] });
    const refused = await call('POST', `/keys/gated/sign?${V}`, { alg: 'RS256', value: b64(sha('sha256', 'x')) });
    assert.equal(refused.statusCode, 403);
    assert.deepEqual(refused.json(), {
      error: { code: 'Forbidden', message: 'Operation sign is not permitted on this key.', innererror: { code: 'KeyOperationForbidden' } },
    });
    await json('PATCH', `/keys/gated/?${V}`, { key_ops: ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'], attributes: { enabled: false } });
    assert.equal((await call('GET', `/keys/gated?${V}`)).statusCode, 200, 'a disabled key is still readable');
    const enc = await json<{ value: string }>('POST', `/keys/gated/encrypt?${V}`, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) });
    for (const [op, body] of [
      ['decrypt', { alg: 'RSA-OAEP', value: enc.value }],
      ['sign', { alg: 'RS256', value: b64(sha('sha256', 'x')) }],
      ['unwrapkey', { alg: 'RSA-OAEP', value: enc.value }],
    ] as const) {
      const r = await call('POST', `/keys/gated/${op}?${V}`, body);
      assert.equal(r.statusCode, 403, op);
      assert.equal(r.json<{ error: { innererror: { code: string } } }>().error.innererror.code, 'KeyDisabled');
    }
    assert.equal((await call('POST', `/keys/gated/wrapkey?${V}`, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) })).statusCode, 200);
    const now = Math.floor(Date.now() / 1000);
    await json('PATCH', `/keys/gated/${b.key.kid.split('/').at(-1)!}?${V}`, { attributes: { enabled: true, exp: now - 10 } });
    const expired = await call('POST', `/keys/gated/encrypt?${V}`, { alg: 'RSA-OAEP', value: b64(Buffer.from('x')) });
    assert.equal(expired.statusCode, 403, 'an expired key does not encrypt');
    assert.equal((await call('POST', `/keys/gated/decrypt?${V}`, { alg: 'RSA-OAEP', value: enc.value })).statusCode, 200, 'but still decrypts');
    await json('PATCH', `/keys/gated?${V}`, { attributes: { exp: null, nbf: now + 3600 } });
    assert.equal((await call('POST', `/keys/gated/sign?${V}`, { alg: 'RS256', value: b64(sha('sha256', 'x')) })).statusCode, 403, 'not yet valid: no sign');
  });

  it('a cached key version serves crypto with no store read; a change to the key applies at once', async () => {
    await create('hot', { kty: 'EC' });
    const sign = () => call('POST', `/keys/hot/sign?${V}`, { alg: 'ES256', value: b64(sha('sha256', 'x')) });
    assert.equal((await sign()).statusCode, 200);
    const reads = h.keyReads();
    for (let i = 0; i < 20; i++) assert.equal((await sign()).statusCode, 200);
    assert.equal(h.keyReads(), reads, 'no store read per request');
    await json('PATCH', `/keys/hot?${V}`, { attributes: { enabled: false } });
    assert.equal((await sign()).statusCode, 403, 'disabled at once');
  });

  it('versions, rotate, rotation policy (normalised), backup/restore with the same versions, delete/recover/purge, /rng, release', async () => {
    const first = await create('life', { kty: 'EC', crv: 'P-384', tags: { t: '1' } });
    const rotated = await json<Bundle>('POST', `/keys/life/rotate?${V}`);
    assert.notEqual(rotated.key.kid, first.key.kid);
    assert.equal(rotated.key.crv, 'P-384');
    assert.deepEqual(rotated.tags, { t: '1' });
    const versions = await json<{ value: { kid: string }[] }>('GET', `/keys/life/versions?${V}`);
    assert.equal(versions.value.length, 2);
    const none = await json<{ lifetimeActions: unknown[] }>('GET', `/keys/life/rotationpolicy?${V}`);
    assert.deepEqual(none.lifetimeActions, [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } }]);
    const policy = await json<{ id: string; lifetimeActions: unknown[]; attributes: Record<string, unknown> }>('PUT', `/keys/life/rotationPolicy?${V}`, {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P90D' }, action: { type: 'rotate' } }],
      attributes: { expiryTime: 'P1Y' },
    });
    assert.equal(policy.id, 'https://kv1.vault.localhost:8443/keys/life/rotationpolicy');
    assert.deepEqual(policy.lifetimeActions, [
      { trigger: { timeAfterCreate: 'P90D' }, action: { type: 'Rotate' } },
      { trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Notify' } },
    ]);
    assert.equal(policy.attributes['expiryTime'], 'P1Y');
    for (const bad of [
      { attributes: { expiryTime: 'P20D' } },
      { lifetimeActions: [{ trigger: { timeBeforeExpiry: 'P30D' }, action: { type: 'Rotate' } }] },
      { lifetimeActions: [{ trigger: {}, action: { type: 'Explode' } }] },
    ]) {
      assert.equal((await call('PUT', `/keys/life/rotationpolicy?${V}`, bad)).statusCode, 400, JSON.stringify(bad));
    }
    assert.equal((await call('GET', `/keys/missing/rotationpolicy?${V}`)).statusCode, 404);

    const backup = await json<{ value: string }>('POST', `/keys/life/backup?${V}`);
    const secretRestore = await call('POST', `/secrets/restore?${V}`, { value: backup.value });
    assert.notEqual(secretRestore.statusCode, 200, 'a key backup never restores as a secret');
    const deleted = await json<Bundle & { recoveryId: string; deletedDate: number; scheduledPurgeDate: number }>('DELETE', `/keys/life?${V}`);
    assert.equal(deleted.recoveryId, 'https://kv1.vault.localhost:8443/deletedkeys/life');
    assert.equal(deleted.scheduledPurgeDate - deleted.deletedDate, 90 * 86400);
    assert.equal(deleted.key.kid, rotated.key.kid);
    const conflict = await call('POST', `/keys/life/create?${V}`, { kty: 'EC' });
    assert.equal(conflict.statusCode, 409);
    assert.equal((await json<{ value: unknown[] }>('GET', `/deletedkeys?${V}`)).value.length, 1);
    await json('POST', `/deletedkeys/life/recover?${V}`);
    assert.equal((await json<Bundle>('GET', `/keys/life?${V}`)).key.kid, rotated.key.kid);
    await json('DELETE', `/keys/life?${V}`);
    assert.equal((await call('DELETE', `/deletedkeys/life?${V}`)).statusCode, 204);
    const restored = await json<Bundle>('POST', `/keys/restore?${V}`, { value: backup.value });
    assert.equal(restored.key.kid, rotated.key.kid, 'the same version ids');
    assert.equal((await json<{ value: unknown[] }>('GET', `/keys/life/versions?${V}`)).value.length, 2);
    assert.deepEqual(
      (await json<{ attributes: Record<string, unknown> }>('GET', `/keys/life/rotationpolicy?${V}`)).attributes['expiryTime'],
      'P1Y',
      'and the policy',
    );
    assert.equal((await call('POST', `/keys/restore?${V}`, { value: backup.value })).statusCode, 409);

    const rng = await json<{ value: string }>('POST', `/rng?${V}`, { count: 16 });
    assert.equal(unb64(rng.value).length, 16);
    assert.equal((await call('POST', `/rng?${V}`, { count: 129 })).statusCode, 400);
    assert.equal((await call('POST', `/keys/life/release?${V}`, { target: 'x' })).statusCode, 400);
  });

  it('the rotation scheduler rotates a key whose Rotate action is due, by the injected clock, once', async () => {
    await create('sched', { kty: 'RSA' });
    await json('PUT', `/keys/sched/rotationpolicy?${V}`, {
      lifetimeActions: [{ trigger: { timeAfterCreate: 'P30D' }, action: { type: 'Rotate' } }],
      attributes: { expiryTime: 'P90D' },
    });
    const deps = { store: h.ctx.store, cipher: createSecretCipher(h.ctx.masterKey), logger: h.ctx.logger };
    const at = (ms: number) => ({ ...deps, clock: { now: () => ms } });
    assert.equal(await rotateDueKeys(at(Date.now() + 29 * 86_400_000)), 0, 'not yet due');
    const scanned = (await h.ctx.store.keys.listRotationPolicies()).length;
    const reads = h.keyReads();
    assert.ok((await rotateDueKeys(at(Date.now() + 31 * 86_400_000))) >= 1);
    assert.equal(h.keyReads() - reads, scanned, 'one read of each key with a policy: a due key is not read again to rotate it');
    const versions = await json<{ value: { kid: string }[] }>('GET', `/keys/sched/versions?${V}`);
    assert.equal(versions.value.length, 2);
    const latest = await json<Bundle>('GET', `/keys/sched?${V}`);
    assert.equal(typeof latest.attributes['exp'], 'number', 'the new version expires as the policy says');
    assert.equal(await rotateDueKeys(at(Date.now() + 32 * 86_400_000)), 0, 'the new version is not due');
  });
});
