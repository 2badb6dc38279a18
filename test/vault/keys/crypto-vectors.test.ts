// Known-answer tests of the keys crypto module against published vectors (RFC 3394, RFC 5649, the GCM specification,
// RFC 6979, OpenSSL's RSA1_5 implicit-rejection vectors, Wycheproof's RSASSA-PSS vectors: vectors/README.md) and
// against OpenSSL itself (RS256 and PSS encodings, RSA1_5 implicit rejection).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { importKeyMaterial, prepareKey } from '../../../src/vault/keys/crypto/index.js';
import { implicitRejectionKey, unpadPkcs1Type2 } from '../../../src/vault/keys/crypto/pkcs1.js';
import { emsaPssEncode, emsaPssVerify, mgf1 } from '../../../src/vault/keys/crypto/pss.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const b64u = (h: string): string => hex(h).toString('base64url');

describe('keys crypto: published known-answer vectors', () => {
  it('A256KW wraps RFC 3394 §4.6 (256-bit KEK, 256-bit key data) to the published ciphertext, and unwraps it', () => {
    const key = prepareKey(importKeyMaterial({ kty: 'oct-HSM', k: b64u('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F') }));
    const data = hex('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F');
    const expected = hex('28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21');
    assert.deepEqual(Buffer.from(key.wrapKey('A256KW', { value: data }).value), expected);
    assert.deepEqual(Buffer.from(key.wrapKey('CKM_AES_KEY_WRAP', { value: data }).value), expected, 'CKM_AES_KEY_WRAP is RFC 3394 too');
    assert.deepEqual(Buffer.from(key.unwrapKey('A256KW', { value: expected }).value), data);
    const altered = Buffer.from(expected);
    altered[5]! ^= 1;
    assert.throws(() => key.unwrapKey('A256KW', { value: altered }), { name: 'KeyCryptoError', message: /could not be unwrapped/ });
  });

  it('CKM_AES_KEY_WRAP_PAD wraps RFC 5649 §6 (20 bytes under a 192-bit KEK) to the published ciphertext', () => {
    const key = prepareKey(importKeyMaterial({ kty: 'oct', k: b64u('5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8') }));
    const data = hex('c37b7e6492584340 bed1220780894115 5068f738');
    const expected = hex('138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a');
    assert.deepEqual(Buffer.from(key.wrapKey('CKM_AES_KEY_WRAP_PAD', { value: data }).value), expected);
    assert.deepEqual(Buffer.from(key.unwrapKey('CKM_AES_KEY_WRAP_PAD', { value: expected }).value), data);
  });

  // GCM specification (McGrew & Viega), test case 16: 256-bit key, 96-bit IV, 20 bytes of AAD, 60 bytes of plaintext.
  const gcm16 = {
    k: '_v_pkoZlcxxtao-UZzCDCP7_6ZKGZXMcbWqPlGcwgwg',
    iv: hex('cafebabefacedbaddecaf888'),
    aad: hex('feedfacedeadbeeffeedfacedeadbeefabaddad2'),
    plaintext: hex('d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39'),
    ciphertext: hex('522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662'),
    tag: hex('76fc6ece0f4e1768cddf8853bb2d551b'),
  };

  it('A256GCM decrypts GCM spec test case 16 to the published plaintext; one flipped tag bit is refused', () => {
    const key = prepareKey(importKeyMaterial({ kty: 'oct-HSM', k: gcm16.k }));
    const input = { value: gcm16.ciphertext, iv: gcm16.iv, aad: gcm16.aad, tag: gcm16.tag };
    assert.deepEqual(Buffer.from(key.decrypt('A256GCM', input).value), gcm16.plaintext);
    for (const bit of [0, 77, 127]) {
      const tag = Buffer.from(gcm16.tag);
      tag[bit >> 3]! ^= 1 << (bit & 7);
      assert.throws(() => key.decrypt('A256GCM', { ...input, tag }), { name: 'KeyCryptoError', message: /could not be decrypted with A256GCM/ });
    }
    assert.throws(() => key.decrypt('A256GCM', { ...input, aad: gcm16.aad.subarray(1) }), { name: 'KeyCryptoError' }, 'other aad');
  });

  // RFC 6979 §A.2.5: P-256, SHA-256, deterministic k. s is in the high half: lowS must be off for the exact bytes.
  const rfc6979 = {
    jwk: {
      kty: 'EC',
      crv: 'P-256',
      d: b64u('C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721'),
      x: b64u('60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6'),
      y: b64u('7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299'),
    },
    sample: hex('EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716' + 'F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8'),
    test: hex('F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367' + '019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083'),
  };

  it('ES256 over SHA-256("sample") and SHA-256("test") gives the RFC 6979 §A.2.5 signatures byte for byte (high S kept)', () => {
    const key = prepareKey(importKeyMaterial(rfc6979.jwk));
    for (const [message, expected] of [
      ['sample', rfc6979.sample],
      ['test', rfc6979.test],
    ] as const) {
      const digest = createHash('sha256').update(message).digest();
      const signature = Buffer.from(key.sign('ES256', digest));
      assert.equal(signature.toString('hex'), expected.toString('hex'), message);
      assert.equal(key.verify('ES256', digest, expected), true);
    }
  });
});

/** The PrivateKey blocks and Decrypt cases of an evp_test file (only the keywords the implicit-rejection section uses). */
function parseEvpDecrypt(text: string): { keys: Map<string, string>; cases: { key: string; comment: string; ciphertext: Buffer; plaintext: Buffer }[] } {
  const keys = new Map<string, string>();
  const cases: { key: string; comment: string; ciphertext: Buffer; plaintext: Buffer }[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const lines = stanza.split('\n').filter((line) => line !== '');
    const comment = lines
      .filter((line) => line.startsWith('#') && !line.includes('old FIPS provider'))
      .map((line) => line.replace(/^#\s*/, ''))
      .join(' ');
    const fields = lines.filter((line) => !line.startsWith('#'));
    const pem = /^PrivateKey = (\S+)$/.exec(fields[0] ?? '');
    if (pem) {
      keys.set(pem[1]!, `${fields.slice(1).join('\n')}\n`);
      continue;
    }
    const values = new Map(fields.map((line) => line.split(/ = ?/, 2) as [string, string]));
    const key = values.get('Decrypt');
    if (key === undefined) continue;
    assert.deepEqual(
      [...values.keys()].filter((k) => !['Decrypt', 'Input', 'Output', 'FIPSversion', 'Availablein'].includes(k)),
      [],
      stanza,
    );
    const output = values.get('Output')!;
    const plaintext = output.startsWith('"') ? Buffer.from(JSON.parse(output) as string) : hex(output);
    cases.push({ key, comment, ciphertext: hex(values.get('Input')!), plaintext });
  }
  return { keys, cases };
}

describe('RSA1_5 implicit rejection: OpenSSL’s published vectors (vectors/openssl-rsa-implicit-rejection.txt)', () => {
  const { keys, cases } = parseEvpDecrypt(readFileSync(new URL('vectors/openssl-rsa-implicit-rejection.txt', import.meta.url), 'utf8'));
  const bitsOf = (name: string): number => createPrivateKey(keys.get(name)!).asymmetricKeyDetails!.modulusLength!;

  it('the file holds the 48 published cases over RSA-2048-2, RSA-2049 and RSA-3072', () => {
    assert.deepEqual([...keys.keys()], ['RSA-2048-2', 'RSA-2049', 'RSA-3072']);
    assert.deepEqual(
      [...keys.keys()].map((name) => [bitsOf(name), cases.filter((c) => c.key === name).length]),
      [
        [2048, 23],
        [2049, 9],
        [3072, 16],
      ],
    );
    assert.equal(cases.filter((c) => c.plaintext.toString() === 'lorem ipsum' || c.plaintext.toString() === 'forty two').length, 17, 'valid paddings');
  });

  for (const name of ['RSA-2048-2', 'RSA-3072']) {
    describe(`${name} through prepareKey(...).decrypt('RSA1_5')`, () => {
      const key = prepareKey(importKeyMaterial(createPrivateKey(keys.get(name)!).export({ format: 'jwk' })));
      const k = bitsOf(name) / 8;
      for (const [i, c] of cases.entries()) {
        if (c.key !== name) continue;
        it(`#${i + 1} ${c.comment} (${c.plaintext.length} bytes)`, () => {
          if (c.ciphertext.length === k) {
            assert.equal(Buffer.from(key.decrypt('RSA1_5', { value: c.ciphertext }).value).toString('hex'), c.plaintext.toString('hex'));
            assert.equal(Buffer.from(key.unwrapKey('RSA1_5', { value: c.ciphertext }).value).toString('hex'), c.plaintext.toString('hex'), 'unwrapKey');
            return;
          }
          // OpenSSL reads a short ciphertext as the integer it spells (left-padded with zeros); the vault wants exactly k
          // bytes and says so (the length is public). Padded to k bytes, it gives OpenSSL's answer.
          assert.throws(() => key.decrypt('RSA1_5', { value: c.ciphertext }), { name: 'KeyCryptoError', message: new RegExp(`must be ${k} bytes`) });
          const padded = Buffer.concat([Buffer.alloc(k - c.ciphertext.length), c.ciphertext]);
          assert.equal(Buffer.from(key.decrypt('RSA1_5', { value: padded }).value).toString('hex'), c.plaintext.toString('hex'));
        });
      }
    });
  }

  // The vault imports 2048, 3072 and 4096-bit keys only; the odd 2049-bit modulus (k = 257) still checks the unpadding
  // itself, after the raw RSA operation, as rsa.ts runs it.
  it('RSA-2049 (not importable here): unpadPkcs1Type2 after the raw RSA operation gives every published plaintext', () => {
    const privateKey = createPrivateKey(keys.get('RSA-2049')!);
    assert.throws(() => importKeyMaterial(privateKey.export({ format: 'jwk' })), { name: 'KeyCryptoError', message: /2049 is not supported/ });
    const k = 257;
    const rejectionKey = implicitRejectionKey(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'), k);
    for (const c of cases.filter((c) => c.key === 'RSA-2049')) {
      const ciphertext = Buffer.concat([Buffer.alloc(k - c.ciphertext.length), c.ciphertext]);
      const em = privateDecrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, ciphertext);
      assert.equal(unpadPkcs1Type2(em, ciphertext, rejectionKey).toString('hex'), c.plaintext.toString('hex'), c.comment);
    }
  });
});

describe('PS256 verification: Wycheproof rsa_pss_2048_sha256_mgf1_32_test.json (vectors/wycheproof-…)', () => {
  interface WycheproofPss {
    algorithm: string;
    testGroups: {
      sha: string;
      mgf: string;
      mgfSha: string;
      sLen: number;
      keySize: number;
      publicKey: { modulus: string; publicExponent: string };
      tests: { tcId: number; comment: string; flags: string[]; msg: string; sig: string; result: 'valid' | 'invalid' | 'acceptable' }[];
    }[];
  }
  const file = JSON.parse(readFileSync(new URL('vectors/wycheproof-rsa_pss_2048_sha256_mgf1_32_test.json', import.meta.url), 'utf8')) as WycheproofPss;
  const group = file.testGroups[0]!;
  // The vault cannot prepare a public key alone (PreparedKey holds private material), so this is rsa.ts's PS* verify
  // around the module's emsaPssVerify: length k, the raw public operation (RSA_NO_PADDING), EM of emBits = 2047.
  const publicKey = createPublicKey({
    key: { kty: 'RSA', n: hex(group.publicKey.modulus).toString('base64url'), e: hex(group.publicKey.publicExponent).toString('base64url') },
    format: 'jwk',
  });
  const k = 256;
  const emBits = 2047;
  const openSignature = (signature: Buffer): Buffer | undefined => {
    if (signature.length !== k) return undefined;
    try {
      return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, signature);
    } catch {
      return undefined;
    }
  };

  it('is the group the vault uses: RSASSA-PSS, 2048-bit, SHA-256, MGF1-SHA-256, sLen 32; 63 valid and 45 invalid cases', () => {
    assert.equal(file.algorithm, 'RSASSA-PSS');
    assert.equal(file.testGroups.length, 1);
    assert.deepEqual([group.keySize, group.sha, group.mgf, group.mgfSha, group.sLen], [2048, 'SHA-256', 'MGF1', 'SHA-256', 32]);
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.deepEqual(
      ['valid', 'invalid', 'acceptable'].map((result) => group.tests.filter((t) => t.result === result).length),
      [63, 45, 0],
    );
  });

  it('emsaPssVerify says true for every valid case and false for every invalid one', () => {
    for (const t of group.tests) {
      if (t.result === 'acceptable') continue;
      const digest = createHash('sha256').update(hex(t.msg)).digest();
      const em = openSignature(hex(t.sig));
      const verdict = em !== undefined && emsaPssVerify('sha256', digest, em, emBits, 32);
      assert.equal(verdict, t.result === 'valid', `tcId ${t.tcId} (${t.comment}, ${t.flags.join(', ')}): ${t.result}`);
    }
  });

  it('emsaPssEncode with the salt of each valid signature gives that signature’s EM byte for byte', () => {
    for (const t of group.tests.filter((t) => t.result === 'valid')) {
      const em = openSignature(hex(t.sig))!;
      const dbLength = k - 32 - 1;
      const db = mgf1('sha256', em.subarray(dbLength, dbLength + 32), dbLength);
      for (let i = 0; i < dbLength; i++) db[i]! ^= em[i]!;
      const salt = db.subarray(dbLength - 32);
      const digest = createHash('sha256').update(hex(t.msg)).digest();
      assert.deepEqual(emsaPssEncode('sha256', digest, emBits, salt), em, `tcId ${t.tcId}`);
    }
  });
});

describe('keys crypto: agreement with OpenSSL', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaJwk = rsa.privateKey.export({ format: 'jwk' });

  it('RS256/384/512 over a digest equal node:crypto.sign of the message (PKCS#1 v1.5 is deterministic)', () => {
    const key = prepareKey(importKeyMaterial(rsaJwk));
    for (const [alg, hash] of [
      ['RS256', 'sha256'],
      ['RS384', 'sha384'],
      ['RS512', 'sha512'],
    ] as const) {
      const digest = createHash(hash).update('abc').digest();
      const signature = Buffer.from(key.sign(alg, digest));
      assert.deepEqual(signature, sign(hash, Buffer.from('abc'), rsa.privateKey), alg);
      assert.equal(key.verify(alg, digest, signature), true);
    }
  });

  // OpenSSL's own EMSA-PSS encoding: sign with node:crypto, open the signature with the raw public operation, take the
  // salt out, and encode again here with that salt: the bytes must be the same.
  for (const modulusLength of [2048, 3072]) {
    it(`EMSA-PSS encoding equals OpenSSL's byte for byte with OpenSSL's salt (${modulusLength}-bit modulus, SHA-256/384/512)`, () => {
      const pair = generateKeyPairSync('rsa', { modulusLength });
      const k = Math.ceil(modulusLength / 8);
      const emBits = modulusLength - 1;
      const emLen = Math.ceil(emBits / 8);
      for (const [hash, hLen] of [
        ['sha256', 32],
        ['sha384', 48],
        ['sha512', 64],
      ] as const) {
        const message = Buffer.from(`pss ${hash}`);
        const mHash = createHash(hash).update(message).digest();
        const signature = sign(hash, message, { key: pair.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen });
        const block = publicEncrypt({ key: pair.publicKey, padding: constants.RSA_NO_PADDING }, signature);
        assert.ok(block.subarray(0, k - emLen).every((b) => b === 0));
        const em = block.subarray(k - emLen);
        const dbLength = emLen - hLen - 1;
        const db = mgf1(hash, em.subarray(dbLength, dbLength + hLen), dbLength);
        for (let i = 0; i < dbLength; i++) db[i]! ^= em[i]!;
        const salt = db.subarray(dbLength - hLen);
        assert.deepEqual(emsaPssEncode(hash, mHash, emBits, salt), em, hash);
        assert.equal(emsaPssVerify(hash, mHash, em, emBits, hLen), true);
        const wrongDigest = Buffer.from(mHash);
        wrongDigest[0]! ^= 1;
        assert.equal(emsaPssVerify(hash, wrongDigest, em, emBits, hLen), false);
      }
    });
  }

  it('PS256/384/512 signatures verify with node:crypto (saltLength = hLen) and node:crypto PSS signatures verify here', () => {
    const key = prepareKey(importKeyMaterial(rsaJwk));
    for (const [alg, hash, hLen] of [
      ['PS256', 'sha256', 32],
      ['PS384', 'sha384', 48],
      ['PS512', 'sha512', 64],
    ] as const) {
      const message = Buffer.from(`message for ${alg}`);
      const digest = createHash(hash).update(message).digest();
      const ours = Buffer.from(key.sign(alg, digest));
      assert.equal(ours.length, 256);
      assert.equal(verify(hash, message, { key: rsa.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen }, ours), true, alg);
      const theirs = sign(hash, message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: hLen });
      assert.equal(key.verify(alg, digest, theirs), true, `${alg} from node`);
      const maxSalt = sign(hash, message, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
      assert.equal(key.verify(alg, digest, maxSalt), false, 'the salt length is the hash length, as Key Vault signs and verifies');
    }
  });

  const curves = [
    ['P-256', 'prime256v1', 'ES256', 'sha256', 64],
    ['P-256K', 'secp256k1', 'ES256K', 'sha256', 64],
    ['P-384', 'secp384r1', 'ES384', 'sha384', 96],
    ['P-521', 'secp521r1', 'ES512', 'sha512', 132],
  ] as const;
  for (const [crv, nodeCurve, alg, hash, length] of curves) {
    it(`${alg} (${crv}) signatures verify with node:crypto (ieee-p1363) and node:crypto's verify here`, () => {
      const pair = generateKeyPairSync('ec', { namedCurve: nodeCurve });
      const key = prepareKey(importKeyMaterial(pair.privateKey.export({ format: 'jwk' })));
      for (let i = 0; i < 4; i++) {
        const message = Buffer.from(`message ${i} for ${alg}`);
        const digest = createHash(hash).update(message).digest();
        const ours = key.sign(alg, digest);
        assert.equal(ours.length, length);
        assert.equal(verify(hash, message, { key: pair.publicKey, dsaEncoding: 'ieee-p1363' }, ours), true);
        const theirs = sign(hash, message, { key: pair.privateKey, dsaEncoding: 'ieee-p1363' });
        assert.equal(key.verify(alg, digest, theirs), true);
        const other = Buffer.from(digest);
        other[other.length - 1]! ^= 0x80;
        assert.equal(key.verify(alg, other, theirs), false, 'another digest');
      }
    });
  }

  it('ES256 verify accepts the high-S twin of a signature (OpenSSL does too)', () => {
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const key = prepareKey(importKeyMaterial(pair.privateKey.export({ format: 'jwk' })));
    const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const digest = createHash('sha256').update('twin').digest();
    const signature = Buffer.from(key.sign('ES256', digest));
    const s = BigInt(`0x${signature.subarray(32).toString('hex')}`);
    const twin = Buffer.concat([signature.subarray(0, 32), hex((n - s).toString(16).padStart(64, '0'))]);
    assert.equal(key.verify('ES256', digest, twin), true);
    assert.equal(verify('sha256', Buffer.from('twin'), { key: createPublicKey(pair.privateKey), dsaEncoding: 'ieee-p1363' }, twin), true);
  });

  describe('RSA1_5 decryption with implicit rejection matches OpenSSL 4.0 (vectors/rsa1_5-implicit-rejection.json)', () => {
    const vectors = JSON.parse(readFileSync(new URL('vectors/rsa1_5-implicit-rejection.json', import.meta.url), 'utf8')) as {
      jwk: Record<string, string>;
      cases: Record<string, { ciphertext: string; plaintext: string }>;
    };
    const key = prepareKey(importKeyMaterial(vectors.jwk));
    for (const [name, { ciphertext, plaintext }] of Object.entries(vectors.cases)) {
      it(`${name}: the same bytes as OpenSSL (${plaintext.length / 2} bytes)`, () => {
        const value = hex(ciphertext);
        assert.equal(Buffer.from(key.decrypt('RSA1_5', { value }).value).toString('hex'), plaintext);
        assert.equal(Buffer.from(key.unwrapKey('RSA1_5', { value }).value).toString('hex'), plaintext, 'unwrapKey alike');
      });
    }
    it('the good cases carry the chosen message; the bad ones differ from each other', () => {
      assert.equal(hex(vectors.cases['good']!.plaintext).toString('utf8'), 'hello key vault');
      assert.equal(vectors.cases['goodEmpty']!.plaintext, '');
      const bad = ['badFirstByte', 'badSecondByte', 'shortPs', 'noSeparator'].map((n) => vectors.cases[n]!.plaintext);
      assert.equal(new Set(bad).size, bad.length);
    });
  });
});
