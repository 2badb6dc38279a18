// The keys crypto module's behaviour: generation and import of every key type, the public JWK, round trips of
// every algorithm, RSA1_5 implicit rejection, and the KeyCryptoError refusals the routes turn into 400s.
// Known-answer vectors are in crypto-vectors.test.ts.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  ENCRYPTION_ALGORITHMS,
  KeyCryptoError,
  SIGNATURE_ALGORITHMS,
  generateKeyMaterial,
  importKeyMaterial,
  prepareKey,
  publicJwk,
  type CurveName,
  type KeyMaterial,
  type PreparedKey,
} from '../../../src/vault/keys/crypto/index.js';
import { emsaPssEncode, emsaPssVerify } from '../../../src/vault/keys/crypto/pss.js';

const INVALID_JWK = 'The property "key" must be a valid JsonWebKey object.';
const INVALID_RSA = 'RSA key is not valid - cannot instantiate crypto service';
const PRIVATE_FIELDS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const isCryptoError = (message: string | RegExp) => (err: unknown) => {
  assert.ok(err instanceof KeyCryptoError, `a KeyCryptoError, got ${String(err)}`);
  if (typeof message === 'string') assert.equal(err.message, message);
  else assert.match(err.message, message);
  return true;
};

const CURVE_WIDTH: Record<CurveName, number> = { 'P-256': 32, 'P-256K': 32, 'P-384': 48, 'P-521': 66 };
const CURVE_ALG: Record<CurveName, [string, string, number]> = {
  'P-256': ['ES256', 'sha256', 64],
  'P-256K': ['ES256K', 'sha256', 64],
  'P-384': ['ES384', 'sha384', 96],
  'P-521': ['ES512', 'sha512', 132],
};

describe('keys crypto: tables', () => {
  it('lists every Key Vault encryption and signature algorithm', () => {
    assert.deepEqual(
      [...ENCRYPTION_ALGORITHMS].sort(),
      [
        'A128CBC',
        'A128CBCPAD',
        'A128GCM',
        'A128KW',
        'A192CBC',
        'A192CBCPAD',
        'A192GCM',
        'A192KW',
        'A256CBC',
        'A256CBCPAD',
        'A256GCM',
        'A256KW',
        'CKM_AES_KEY_WRAP',
        'CKM_AES_KEY_WRAP_PAD',
        'RSA-OAEP',
        'RSA-OAEP-256',
        'RSA1_5',
      ].sort(),
    );
    assert.deepEqual(
      [...SIGNATURE_ALGORITHMS].sort(),
      ['ES256', 'ES256K', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'RSNULL'].sort(),
    );
  });
});

describe('keys crypto: RSA keys', () => {
  const keys = new Map<number, { material: KeyMaterial; key: PreparedKey }>();
  before(async () => {
    for (const size of [2048, 3072, 4096]) {
      const material = await generateKeyMaterial({ kind: 'RSA', size });
      keys.set(size, { material, key: prepareKey(material) });
    }
  });

  it('generates 2048 by default with exponent 65537, and 3072 and 4096 on request', async () => {
    const fresh = await generateKeyMaterial({ kind: 'RSA' });
    assert.equal(fresh.size, 2048);
    assert.deepEqual(createPrivateKey({ key: Buffer.from(fresh.secret), format: 'der', type: 'pkcs8' }).asymmetricKeyDetails, {
      modulusLength: 2048,
      publicExponent: 65537n,
    });
    for (const [size, { material }] of keys) {
      assert.equal(material.size, size);
      assert.equal(createPrivateKey({ key: Buffer.from(material.secret), format: 'der', type: 'pkcs8' }).asymmetricKeyDetails?.modulusLength, size);
    }
  });

  it('publicJwk gives n and e only, base64url without padding, equal to node:crypto public export', () => {
    for (const { material } of keys.values()) {
      const jwk = publicJwk(material);
      assert.deepEqual(Object.keys(jwk).sort(), ['e', 'n']);
      const expected = createPublicKey(createPrivateKey({ key: Buffer.from(material.secret), format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
      assert.deepEqual(jwk, { n: expected.n, e: expected.e });
      assert.equal((jwk as { e: string }).e, 'AQAB');
      assert.match((jwk as { n: string }).n, /^[A-Za-z0-9_-]+$/);
    }
  });

  it('every size round-trips RSA1_5, RSA-OAEP and RSA-OAEP-256 through encrypt/decrypt and wrapKey/unwrapKey at the longest plaintext', () => {
    for (const [size, { key }] of keys) {
      const k = size / 8;
      for (const [alg, max] of [
        ['RSA1_5', k - 11],
        ['RSA-OAEP', k - 42],
        ['RSA-OAEP-256', k - 66],
      ] as const) {
        const plaintext = randomBytes(max);
        const encrypted = key.encrypt(alg, { value: plaintext });
        assert.equal(encrypted.value.length, k);
        assert.deepEqual(Buffer.from(key.decrypt(alg, encrypted).value), plaintext, `${alg} ${size}`);
        const wrapped = key.wrapKey(alg, { value: plaintext.subarray(0, 32) });
        assert.deepEqual(Buffer.from(key.unwrapKey(alg, wrapped).value), plaintext.subarray(0, 32));
        assert.throws(
          () => key.encrypt(alg, { value: randomBytes(max + 1) }),
          isCryptoError(`The plaintext is too long for ${alg} with a ${size}-bit key: ${max + 1} bytes, at most ${max}.`),
        );
      }
    }
  });

  it('decrypts what node:crypto encrypts with the public key (as the SDKs do locally)', () => {
    const { material, key } = keys.get(2048)!;
    const publicKey = createPublicKey(createPrivateKey({ key: Buffer.from(material.secret), format: 'der', type: 'pkcs8' }));
    const secret = Buffer.from('a data encryption key, 32 bytes!');
    const pkcs1 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
    assert.deepEqual(Buffer.from(key.decrypt('RSA1_5', { value: pkcs1 }).value), secret);
    const oaep256 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret);
    assert.deepEqual(Buffer.from(key.unwrapKey('RSA-OAEP-256', { value: oaep256 }).value), secret);
    assert.throws(() => key.decrypt('RSA-OAEP', { value: oaep256 }), isCryptoError('The ciphertext could not be decrypted with RSA-OAEP and this key.'));
  });

  it('every size signs and verifies RS*, PS* and RSNULL; a changed digest or signature verifies false, never throws', () => {
    for (const [size, { key }] of keys) {
      for (const [alg, hash] of [
        ['RS256', 'sha256'],
        ['RS384', 'sha384'],
        ['RS512', 'sha512'],
        ['PS256', 'sha256'],
        ['PS384', 'sha384'],
        ['PS512', 'sha512'],
      ] as const) {
        const digest = createHash(hash).update(`${alg} ${size}`).digest();
        const signature = key.sign(alg, digest);
        assert.equal(signature.length, size / 8);
        assert.equal(key.verify(alg, digest, signature), true, `${alg} ${size}`);
        const otherDigest = Buffer.from(digest);
        otherDigest[3]! ^= 4;
        assert.equal(key.verify(alg, otherDigest, signature), false);
        const otherSignature = Buffer.from(signature);
        otherSignature[10]! ^= 1;
        assert.equal(key.verify(alg, digest, otherSignature), false);
        assert.equal(key.verify(alg, digest, signature.subarray(1)), false, 'short signature');
        assert.equal(key.verify(alg, digest, Buffer.alloc(size / 8, 0xff)), false, 'signature above the modulus');
      }
      const digestInfo = Buffer.concat([Buffer.from('3031300d060960864801650304020105000420', 'hex'), createHash('sha256').update('x').digest()]);
      const raw = key.sign('RSNULL', digestInfo);
      assert.deepEqual(Buffer.from(raw), Buffer.from(key.sign('RS256', createHash('sha256').update('x').digest())), 'RSNULL over a DigestInfo is RS256');
      assert.equal(key.verify('RSNULL', digestInfo, raw), true);
      assert.equal(key.verify('RSNULL', digestInfo.subarray(1), raw), false);
    }
  });

  it("a wrong digest length is refused with Key Vault's exact message, on sign and on verify", () => {
    const { key } = keys.get(2048)!;
    assert.throws(
      () => key.sign('RS256', Buffer.alloc(33)),
      isCryptoError("Invalid length of 'value': 33 bytes. RS256 requires 32 bytes, encoded with base64url."),
    );
    assert.throws(
      () => key.sign('PS384', Buffer.alloc(32)),
      isCryptoError("Invalid length of 'value': 32 bytes. PS384 requires 48 bytes, encoded with base64url."),
    );
    assert.throws(
      () => key.verify('RS512', Buffer.alloc(0), Buffer.alloc(256)),
      isCryptoError("Invalid length of 'value': 0 bytes. RS512 requires 64 bytes, encoded with base64url."),
    );
    assert.throws(() => key.sign('RSNULL', Buffer.alloc(246)), isCryptoError(/Invalid length of 'value': 246 bytes\. RSNULL accepts at most 245 bytes/));
  });

  it('a ciphertext of the wrong size, or not below the modulus, is refused; algorithms of other key types are refused', () => {
    const { key } = keys.get(2048)!;
    for (const alg of ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256']) {
      assert.throws(
        () => key.decrypt(alg, { value: Buffer.alloc(255, 1) }),
        isCryptoError(`The ciphertext for ${alg} must be 256 bytes with this 2048-bit key, not 255.`),
      );
    }
    assert.throws(() => key.decrypt('RSA1_5', { value: Buffer.alloc(256, 0xff) }), isCryptoError(/not below the modulus/));
    assert.throws(() => key.encrypt('A256GCM', { value: Buffer.alloc(1) }), isCryptoError('Algorithm A256GCM is not valid for an RSA key.'));
    assert.throws(() => key.sign('ES256', Buffer.alloc(32)), isCryptoError('Algorithm ES256 is not valid for an RSA key.'));
    assert.throws(
      () => key.encrypt('RS256', { value: Buffer.alloc(1) }),
      isCryptoError('Algorithm RS256 is a signature algorithm and cannot be used to encrypt.'),
    );
    assert.throws(() => key.sign('RSA-OAEP', Buffer.alloc(32)), isCryptoError('Algorithm RSA-OAEP is an encryption algorithm and cannot be used to sign.'));
    assert.throws(() => key.encrypt('rsa-oaep', { value: Buffer.alloc(1) }), isCryptoError('Unsupported algorithm for encrypt: rsa-oaep.'));
  });

  describe('RSA1_5 implicit rejection', () => {
    // Raw blocks encrypted with the public key, so the padding inside is exactly the one chosen.
    const block = (first: number, second: number, psLength: number, separator: boolean, message: Buffer): Buffer => {
      const ps = Buffer.alloc(psLength, 0x5a);
      const body = Buffer.concat([Buffer.of(first, second), ps, separator ? Buffer.of(0) : Buffer.alloc(0), message]);
      assert.equal(body.length, 256);
      return body;
    };
    const message = Buffer.from('sixteen byte msg');
    const cases: Record<string, Buffer> = {
      'bad first byte': block(0x01, 0x02, 256 - 3 - 16, true, message),
      'bad second byte': block(0x00, 0x01, 256 - 3 - 16, true, message),
      'padding of 7 bytes': block(0x00, 0x02, 7, true, randomBytes(256 - 10).fill(0x33)),
      'no zero separator': block(0x00, 0x02, 254, false, Buffer.alloc(0)),
    };

    it('bad first byte, bad second byte, short padding and no separator all decrypt (no throw) to distinct, repeatable, plausible messages', () => {
      const { material, key } = keys.get(2048)!;
      const publicKey = createPublicKey(createPrivateKey({ key: Buffer.from(material.secret), format: 'der', type: 'pkcs8' }));
      const outputs = new Set<string>();
      for (const [name, em] of Object.entries(cases)) {
        const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, em);
        const first = Buffer.from(key.decrypt('RSA1_5', { value: ciphertext }).value);
        const again = Buffer.from(key.unwrapKey('RSA1_5', { value: ciphertext }).value);
        assert.deepEqual(again, first, `${name}: the same output for the same ciphertext`);
        assert.ok(first.length <= 256 - 11, `${name}: at most k − 11 bytes (${first.length})`);
        assert.notDeepEqual(first, message);
        outputs.add(first.toString('hex'));
      }
      assert.equal(outputs.size, Object.keys(cases).length);
      // The same block under a fresh ciphertext is another pseudo-random message: it depends on the ciphertext.
      const twice = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, cases['bad first byte']!);
      assert.equal(Buffer.from(key.decrypt('RSA1_5', { value: twice }).value).toString('hex'), [...outputs][0]);
    });

    it('another key gives another synthetic message for the same bad block', () => {
      const a = keys.get(2048)!;
      const em = cases['no zero separator']!;
      const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const otherKey = prepareKey(importKeyMaterial(other.privateKey.export({ format: 'jwk' })));
      const publicKey = createPublicKey(createPrivateKey({ key: Buffer.from(a.material.secret), format: 'der', type: 'pkcs8' }));
      const ca = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, em);
      const cb = publicEncrypt({ key: other.publicKey, padding: constants.RSA_NO_PADDING }, em);
      assert.notDeepEqual(Buffer.from(a.key.decrypt('RSA1_5', { value: ca }).value), Buffer.from(otherKey.decrypt('RSA1_5', { value: cb }).value));
    });
  });
});

describe('keys crypto: EC keys', () => {
  const curves: CurveName[] = ['P-256', 'P-256K', 'P-384', 'P-521'];

  it('generates P-256 by default and every curve on request; publicJwk has crv, x and y at full width, no d', async () => {
    assert.equal((await generateKeyMaterial({ kind: 'EC' })).curve, 'P-256');
    for (const curve of curves) {
      for (let i = 0; i < 3; i++) {
        const material = await generateKeyMaterial({ kind: 'EC', curve });
        assert.equal(material.curve, curve);
        const jwk = publicJwk(material) as { crv: string; x: string; y: string };
        assert.deepEqual(Object.keys(jwk).sort(), ['crv', 'x', 'y']);
        assert.equal(jwk.crv, curve);
        assert.equal(Buffer.from(jwk.x, 'base64url').length, CURVE_WIDTH[curve]);
        assert.equal(Buffer.from(jwk.y, 'base64url').length, CURVE_WIDTH[curve]);
        assert.doesNotMatch(jwk.x + jwk.y, /=/);
      }
    }
  });

  for (const curve of curves) {
    const [alg, hash, length] = CURVE_ALG[curve];
    it(`${curve}: ${alg} signs a digest into ${length} bytes r‖s and verifies it; other algorithms and digest sizes are refused`, async () => {
      const key = prepareKey(await generateKeyMaterial({ kind: 'EC', curve }));
      const digest = createHash(hash).update(curve).digest();
      const signature = key.sign(alg, digest);
      assert.equal(signature.length, length);
      assert.equal(key.verify(alg, digest, signature), true);
      assert.equal(key.verify(alg, digest, signature.subarray(1)), false, 'short');
      assert.equal(key.verify(alg, digest, Buffer.alloc(length)), false, 'r = s = 0');
      assert.equal(key.verify(alg, digest, Buffer.alloc(length, 0xff)), false, 'r, s beyond the order');
      assert.throws(
        () => key.sign(alg, Buffer.concat([digest, Buffer.of(0)])),
        isCryptoError(`Invalid length of 'value': ${digest.length + 1} bytes. ${alg} requires ${digest.length} bytes, encoded with base64url.`),
      );
      for (const otherCurve of curves.filter((c) => c !== curve)) {
        const otherAlg = CURVE_ALG[otherCurve][0];
        assert.throws(() => key.sign(otherAlg, digest), isCryptoError(`Algorithm ${otherAlg} is not valid for a ${curve} key; it needs a ${otherCurve} key.`));
        assert.throws(() => key.verify(otherAlg, digest, signature), isCryptoError(/is not valid for a/));
      }
      assert.throws(() => key.sign('RS256', Buffer.alloc(32)), isCryptoError('Algorithm RS256 is not valid for an EC key.'));
      assert.throws(() => key.encrypt('RSA-OAEP', { value: Buffer.alloc(1) }), isCryptoError('Algorithm RSA-OAEP is not valid for an EC key.'));
      assert.throws(() => key.wrapKey('A256KW', { value: Buffer.alloc(16) }), isCryptoError('Algorithm A256KW is not valid for an EC key.'));
    });
  }
});

describe('keys crypto: oct keys', () => {
  it('generates 256 bits by default and 128 and 192 on request; publicJwk is empty (never k)', async () => {
    assert.equal((await generateKeyMaterial({ kind: 'oct' })).secret.length, 32);
    for (const size of [128, 192, 256]) {
      const material = await generateKeyMaterial({ kind: 'oct', size });
      assert.equal(material.size, size);
      assert.equal(material.secret.length, size / 8);
      assert.deepEqual(publicJwk(material), {});
    }
  });

  for (const bits of [128, 192, 256] as const) {
    it(`${bits}-bit key: GCM, CBC, CBCPAD, KW, CKM_AES_KEY_WRAP and CKM_AES_KEY_WRAP_PAD round-trip; other sizes' algorithms are refused`, async () => {
      const key = prepareKey(await generateKeyMaterial({ kind: 'oct', size: bits }));
      const aad = Buffer.from('aad');
      const gcm = key.encrypt(`A${bits}GCM`, { value: Buffer.from('hello key vault'), aad });
      assert.equal(gcm.iv?.length, 12);
      assert.equal(gcm.tag?.length, 16);
      assert.deepEqual(gcm.aad, aad, 'aad echoed');
      assert.equal(gcm.value.length, 15);
      assert.equal(Buffer.from(key.decrypt(`A${bits}GCM`, { value: gcm.value, iv: gcm.iv, tag: gcm.tag, aad }).value).toString(), 'hello key vault');
      assert.notDeepEqual(key.encrypt(`A${bits}GCM`, { value: Buffer.from('hello key vault') }).iv, gcm.iv, 'a fresh IV every time');

      const cbc = key.encrypt(`A${bits}CBC`, { value: Buffer.alloc(32, 7) });
      assert.equal(cbc.iv?.length, 16, 'an iv is generated and returned');
      assert.equal(cbc.value.length, 32, 'no padding');
      assert.deepEqual(Buffer.from(key.decrypt(`A${bits}CBC`, { value: cbc.value, iv: cbc.iv }).value), Buffer.alloc(32, 7));
      const givenIv = Buffer.alloc(16, 9);
      assert.deepEqual(key.encrypt(`A${bits}CBC`, { value: Buffer.alloc(16), iv: givenIv }).iv, givenIv, 'a given iv is used and echoed');

      const pad = key.encrypt(`A${bits}CBCPAD`, { value: Buffer.from('not a block multiple') });
      assert.equal(pad.value.length, 32);
      assert.equal(Buffer.from(key.decrypt(`A${bits}CBCPAD`, { value: pad.value, iv: pad.iv! }).value).toString(), 'not a block multiple');

      const secret = randomBytes(32);
      for (const alg of [`A${bits}KW`, 'CKM_AES_KEY_WRAP', 'CKM_AES_KEY_WRAP_PAD']) {
        const wrapped = key.wrapKey(alg, { value: secret });
        assert.equal(wrapped.value.length, 40);
        assert.deepEqual(Buffer.from(key.unwrapKey(alg, { value: wrapped.value }).value), secret, alg);
      }
      const odd = key.wrapKey('CKM_AES_KEY_WRAP_PAD', { value: Buffer.from('seven b') });
      assert.equal(Buffer.from(key.unwrapKey('CKM_AES_KEY_WRAP_PAD', { value: odd.value }).value).toString(), 'seven b');

      const other = bits === 128 ? 256 : 128;
      assert.throws(
        () => key.encrypt(`A${other}GCM`, { value: Buffer.alloc(1) }),
        isCryptoError(`Algorithm A${other}GCM needs a ${other}-bit key; this key has ${bits} bits.`),
      );
      assert.throws(
        () => key.wrapKey(`A${other}KW`, { value: Buffer.alloc(16) }),
        isCryptoError(`Algorithm A${other}KW needs a ${other}-bit key; this key has ${bits} bits.`),
      );
    });
  }

  it('refuses bad inputs: tampered GCM tag, missing iv/tag, CBC not a block multiple, bad CBCPAD padding, KW lengths, algorithms for the wrong operation', async () => {
    const key = prepareKey(await generateKeyMaterial({ kind: 'oct', size: 256 }));
    const gcm = key.encrypt('A256GCM', { value: Buffer.from('payload') });
    const tag = Buffer.from(gcm.tag!);
    tag[15]! ^= 0x80;
    assert.throws(() => key.decrypt('A256GCM', { value: gcm.value, iv: gcm.iv!, tag }), isCryptoError(/could not be decrypted with A256GCM/));
    assert.throws(() => key.decrypt('A256GCM', { value: gcm.value, iv: gcm.iv! }), isCryptoError("Algorithm A256GCM requires 'tag'."));
    assert.throws(() => key.decrypt('A256GCM', { value: gcm.value, tag: gcm.tag! }), isCryptoError("Algorithm A256GCM requires 'iv'."));
    assert.throws(
      () => key.decrypt('A256GCM', { value: gcm.value, iv: gcm.iv!, tag: gcm.tag!.subarray(0, 12) }),
      isCryptoError("Invalid length of 'tag': 12 bytes. A256GCM requires 16 bytes."),
    );
    assert.throws(
      () => key.encrypt('A256CBC', { value: Buffer.alloc(17) }),
      isCryptoError("Invalid length of 'value': 17 bytes. A256CBC requires the plaintext to be a multiple of 16 bytes."),
    );
    assert.throws(
      () => key.decrypt('A256CBC', { value: Buffer.alloc(20), iv: Buffer.alloc(16) }),
      isCryptoError(/A256CBC requires the ciphertext to be a multiple of 16 bytes/),
    );
    assert.throws(() => key.decrypt('A256CBC', { value: Buffer.alloc(16) }), isCryptoError("Algorithm A256CBC requires 'iv'."));
    assert.throws(
      () => key.encrypt('A256CBC', { value: Buffer.alloc(16), iv: Buffer.alloc(12) }),
      isCryptoError("Invalid length of 'iv': 12 bytes. A256CBC requires 16 bytes."),
    );
    // A block of zeros under CBC without padding, then opened as CBCPAD: its last byte is not valid PKCS#7.
    const iv = Buffer.alloc(16);
    const raw = key.encrypt('A256CBC', { value: Buffer.alloc(16, 0), iv });
    assert.throws(() => key.decrypt('A256CBCPAD', { value: raw.value, iv }), isCryptoError(/could not be decrypted with A256CBCPAD/));
    assert.throws(() => key.wrapKey('A256KW', { value: Buffer.alloc(20) }), isCryptoError(/A256KW wraps at least 16 bytes, a multiple of 8/));
    assert.throws(() => key.wrapKey('A256KW', { value: Buffer.alloc(8) }), isCryptoError(/A256KW wraps at least 16 bytes/));
    assert.throws(() => key.unwrapKey('A256KW', { value: Buffer.alloc(16) }), isCryptoError(/A256KW unwraps at least 24 bytes/));
    assert.throws(
      () => key.encrypt('A256KW', { value: Buffer.alloc(16) }),
      isCryptoError('Algorithm A256KW is a key wrap algorithm and cannot be used to encrypt; use wrapKey or unwrapKey.'),
    );
    assert.throws(
      () => key.decrypt('CKM_AES_KEY_WRAP_PAD', { value: Buffer.alloc(16) }),
      isCryptoError(/is a key wrap algorithm and cannot be used to decrypt/),
    );
    assert.throws(
      () => key.wrapKey('A256GCM', { value: Buffer.alloc(16) }),
      isCryptoError('Algorithm A256GCM cannot be used to wrapKey; use encrypt or decrypt.'),
    );
    assert.throws(() => key.encrypt('RSA-OAEP', { value: Buffer.alloc(16) }), isCryptoError('Algorithm RSA-OAEP is not valid for an oct key.'));
    assert.throws(() => key.sign('ES256', Buffer.alloc(32)), isCryptoError('Algorithm ES256 is not valid for an oct key.'));
    assert.throws(() => key.verify('RS256', Buffer.alloc(32), Buffer.alloc(32)), isCryptoError('Algorithm RS256 is not valid for an oct key.'));
  });
});

describe('keys crypto: import', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }) as Record<string, string>;
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ format: 'jwk' }) as Record<string, string>;
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'jwk' }) as Record<string, string>;

  it('imports a node-generated RSA JWK with all CRT parts (RSA and RSA-HSM), and the key works as the original', () => {
    for (const kty of ['RSA', 'RSA-HSM']) {
      const material = importKeyMaterial({ ...rsa, kty, key_ops: ['sign'] });
      assert.equal(material.kind, 'RSA');
      assert.equal(material.size, 2048);
      assert.deepEqual(publicJwk(material), { n: rsa['n'], e: rsa['e'] });
      const key = prepareKey(material);
      const ct = publicEncrypt({ key: createPublicKey({ key: rsa, format: 'jwk' }), padding: constants.RSA_PKCS1_OAEP_PADDING }, Buffer.from('x'));
      assert.equal(Buffer.from(key.decrypt('RSA-OAEP', { value: ct }).value).toString(), 'x');
    }
  });

  it("imports EC JWKs: secp256k1 as P-256K (crv P-256K or node's secp256k1), P-384; oct and oct-HSM", () => {
    for (const crv of ['P-256K', 'secp256k1']) {
      const material = importKeyMaterial({ ...k1, crv });
      assert.equal(material.curve, 'P-256K');
      assert.deepEqual(publicJwk(material), { crv: 'P-256K', x: k1['x'], y: k1['y'] });
    }
    assert.deepEqual(publicJwk(importKeyMaterial({ ...p384, kty: 'EC-HSM' })), { crv: 'P-384', x: p384['x'], y: p384['y'] });
    for (const [kty, bytes] of [
      ['oct', 16],
      ['oct-HSM', 24],
      ['oct', 32],
    ] as const) {
      const secret = randomBytes(bytes);
      const material = importKeyMaterial({ kty, k: secret.toString('base64url') });
      assert.deepEqual({ kind: material.kind, size: material.size, secret: Buffer.from(material.secret) }, { kind: 'oct', size: bytes * 8, secret });
    }
  });

  it('accepts padded base64url and standard base64 as well as base64url', () => {
    const secret = Buffer.from('fb'.repeat(32), 'hex'); // base64 of 0xfb bytes uses '+' and '/'
    for (const k of [secret.toString('base64url'), secret.toString('base64'), `${secret.toString('base64url')}=`]) {
      assert.deepEqual(Buffer.from(importKeyMaterial({ kty: 'oct', k }).secret), secret, k);
    }
    const padded = Object.fromEntries(Object.entries(rsa).map(([name, v]) => [name, name === 'kty' ? v : Buffer.from(v, 'base64url').toString('base64')]));
    assert.deepEqual(publicJwk(importKeyMaterial(padded)), { n: rsa['n'], e: rsa['e'] });
  });

  it("refuses malformed keys with Key Vault's JsonWebKey message", () => {
    const cases: [string, unknown][] = [
      ['null', null],
      ['a string', 'RSA'],
      ['an array', [rsa]],
      ['no kty', { ...rsa, kty: undefined }],
      ['an unknown kty', { ...rsa, kty: 'DSA' }],
      ['RSA without d', { ...rsa, d: undefined }],
      ['RSA without qi', { ...rsa, qi: undefined }],
      ['RSA with garbage base64 in n', { ...rsa, n: `${rsa['n']!.slice(0, 20)}!${rsa['n']!.slice(21)}` }],
      ['EC without d', { ...p384, d: undefined }],
      ['EC with a wrong crv', { ...p384, crv: 'P-256' }],
      ['EC with an unknown crv', { ...p384, crv: 'P-512' }],
      ['EC with x too long', { ...p384, x: Buffer.alloc(49, 1).toString('base64url') }],
      ["EC with another key's d", { ...p384, d: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ format: 'jwk' }).d }],
      ['EC with a number for x', { ...p384, x: 12 }],
      ['oct without k', { kty: 'oct' }],
      ['oct with garbage k', { kty: 'oct', k: 'AAAA AAAA' }],
      ['oct with a one-char tail', { kty: 'oct', k: 'AAAAA' }],
    ];
    for (const [name, jwk] of cases) assert.throws(() => importKeyMaterial(jwk), isCryptoError(INVALID_JWK), name);
  });

  it("refuses RSA parts that are not one key with Key Vault's RSA message", () => {
    const flip = (value: string): string => {
      const bytes = Buffer.from(value, 'base64url');
      bytes[bytes.length - 1]! ^= 2;
      return bytes.toString('base64url');
    };
    for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'e']) {
      assert.throws(() => importKeyMaterial({ ...rsa, [field]: flip(rsa[field]!) }), isCryptoError(INVALID_RSA), field);
    }
  });

  it('refuses unsupported sizes: 1024-bit RSA, 100-bit and 512-bit AES', () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    assert.throws(() => importKeyMaterial(small), isCryptoError('The RSA key size 1024 is not supported. Supported sizes are 2048, 3072 and 4096 bits.'));
    assert.throws(() => importKeyMaterial({ kty: 'oct', k: Buffer.alloc(13).toString('base64url') }), isCryptoError(/The oct key size 104 is not supported/));
    assert.throws(() => importKeyMaterial({ kty: 'oct', k: Buffer.alloc(64).toString('base64url') }), isCryptoError(/The oct key size 512 is not supported/));
  });

  it('generation refuses unsupported sizes, curves, exponents and kinds', async () => {
    await assert.rejects(
      generateKeyMaterial({ kind: 'RSA', size: 1024 }),
      isCryptoError('The RSA key size 1024 is not supported. Supported sizes are 2048, 3072 and 4096 bits.'),
    );
    await assert.rejects(generateKeyMaterial({ kind: 'RSA', publicExponent: 4 }), isCryptoError(/public exponent 4 is not supported/));
    await assert.rejects(generateKeyMaterial({ kind: 'oct', size: 100 }), isCryptoError(/The oct key size 100 is not supported/));
    await assert.rejects(
      generateKeyMaterial({ kind: 'EC', curve: 'P-224' as CurveName }),
      isCryptoError('The curve P-224 is not supported. Supported curves are P-256, P-256K, P-384 and P-521.'),
    );
    await assert.rejects(generateKeyMaterial({ kind: 'DSA' as 'RSA' }), isCryptoError(/The key type DSA is not supported/));
  });

  it('publicJwk never carries a private field, for any key type', async () => {
    const materials = [
      importKeyMaterial(rsa),
      importKeyMaterial(k1),
      importKeyMaterial(p384),
      await generateKeyMaterial({ kind: 'EC', curve: 'P-521' }),
      await generateKeyMaterial({ kind: 'oct' }),
    ];
    for (const material of materials) {
      const jwk = publicJwk(material);
      for (const field of PRIVATE_FIELDS) assert.equal(Object.hasOwn(jwk, field), false, `${material.kind} ${field}`);
    }
  });
});

describe('keys crypto: properties', () => {
  it('AES encrypt/decrypt and wrap/unwrap round-trip any payload (property)', async () => {
    const key = prepareKey(await generateKeyMaterial({ kind: 'oct', size: 256 }));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }), (value, aad) => {
        const gcm = key.encrypt('A256GCM', { value, ...(aad === undefined ? {} : { aad }) });
        assert.deepEqual(
          Buffer.from(key.decrypt('A256GCM', { value: gcm.value, iv: gcm.iv!, tag: gcm.tag!, ...(aad === undefined ? {} : { aad }) }).value),
          Buffer.from(value),
        );
        const cbc = key.encrypt('A256CBCPAD', { value });
        assert.deepEqual(Buffer.from(key.decrypt('A256CBCPAD', { value: cbc.value, iv: cbc.iv! }).value), Buffer.from(value));
        if (value.length > 0) {
          const kwp = key.wrapKey('CKM_AES_KEY_WRAP_PAD', { value });
          assert.deepEqual(Buffer.from(key.unwrapKey('CKM_AES_KEY_WRAP_PAD', { value: kwp.value }).value), Buffer.from(value));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('RSA1_5 decrypt never throws on a k-byte ciphertext below the modulus, and answers at most k − 11 bytes (property)', async () => {
    const material = await generateKeyMaterial({ kind: 'RSA' });
    const key = prepareKey(material);
    const publicKey = createPublicKey(createPrivateKey({ key: Buffer.from(material.secret), format: 'der', type: 'pkcs8' }));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 255, maxLength: 255 }), fc.uint8Array({ maxLength: 245 }), (block, message) => {
        // Any block below the modulus (leading zero byte), and any real encryption.
        const ciphertext = publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, Buffer.concat([Buffer.of(0), block]));
        const out = key.decrypt('RSA1_5', { value: ciphertext }).value;
        assert.ok(out.length <= 245);
        const good = key.encrypt('RSA1_5', { value: message });
        assert.deepEqual(Buffer.from(key.decrypt('RSA1_5', good).value), Buffer.from(message));
      }),
      { numRuns: 100 },
    );
  });

  it('ES256 and PS256 signatures over any digest verify, and not under another digest (property)', async () => {
    const ec = prepareKey(await generateKeyMaterial({ kind: 'EC' }));
    const rsa = prepareKey(await generateKeyMaterial({ kind: 'RSA' }));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 255 }), (digest, bit) => {
        const other = Buffer.from(digest);
        other[bit >> 3]! ^= 1 << (bit & 7);
        for (const [key, alg] of [
          [ec, 'ES256'],
          [rsa, 'PS256'],
        ] as const) {
          const signature = key.sign(alg, digest);
          assert.equal(key.verify(alg, digest, signature), true);
          assert.equal(key.verify(alg, other, signature), false);
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe('keys crypto: EMSA-PSS structure (RFC 8017 §9.1.2), on crafted encodings', () => {
  // A 2047-bit encoding (a 2048-bit modulus): emLen 256, the top bit of the first byte must be clear.
  const EM_BITS = 2047;
  const mHash = createHash('sha256').update('pss').digest();
  const salt = Buffer.alloc(32, 7);
  const valid = (): Buffer => emsaPssEncode('sha256', mHash, EM_BITS, salt);
  const dbLength = 256 - 32 - 1;
  const separator = dbLength - 32 - 1;

  it('verifies its own encoding, and refuses each structural fault even when the hash still matches', () => {
    assert.equal(emsaPssVerify('sha256', mHash, valid(), EM_BITS, 32), true);
    const faults: [string, (em: Buffer) => void][] = [
      ['trailer not 0xbc', (em) => (em[255] = 0xbd)],
      ['top bit set', (em) => (em[0]! |= 0x80)],
      ['a padding byte not zero', (em) => (em[5]! ^= 0x01)],
      ['the first padding byte not zero', (em) => (em[0]! ^= 0x01)],
      ['the last padding byte not zero', (em) => (em[separator - 1]! ^= 0x01)],
      ['no 0x01 separator', (em) => (em[separator]! ^= 0x03)],
    ];
    for (const [what, fault] of faults) {
      const em = valid();
      fault(em);
      assert.equal(emsaPssVerify('sha256', mHash, em, EM_BITS, 32), false, what);
    }
  });

  it('refuses a digest or an encoding of the wrong length, and a salt length the encoding cannot hold; the exact limit holds', () => {
    assert.equal(emsaPssVerify('sha256', mHash.subarray(1), valid(), EM_BITS, 32), false, 'short digest');
    assert.equal(emsaPssVerify('sha256', mHash, valid().subarray(1), EM_BITS, 32), false, 'short encoding');
    assert.equal(emsaPssVerify('sha256', mHash, Buffer.concat([valid(), Buffer.of(0)]), EM_BITS, 32), false, 'long encoding');
    assert.equal(emsaPssVerify('sha256', mHash, valid(), EM_BITS, 31), false, 'another salt length');
    const longest = Buffer.alloc(256 - 32 - 2, 9); // emLen = hLen + sLen + 2: no padding bytes at all
    assert.equal(emsaPssVerify('sha256', mHash, emsaPssEncode('sha256', mHash, EM_BITS, longest), EM_BITS, longest.length), true, 'the longest salt');
    assert.equal(emsaPssVerify('sha256', mHash, valid(), EM_BITS, longest.length + 1), false, 'a salt longer than the encoding holds');
    assert.throws(() => emsaPssEncode('sha256', mHash, EM_BITS, Buffer.alloc(longest.length + 1)), RangeError);
    assert.throws(() => emsaPssEncode('sha256', mHash.subarray(1), EM_BITS, salt), RangeError);
    assert.equal(dbLength, 223);
  });
});
