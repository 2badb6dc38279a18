// Encrypts data for the app with the key's PUBLIC half only: no vault, no credential, no network. Anyone who
// has the public JWK can seal; only a caller the vault lets unwrap with the key can open.
//
// Envelope encryption: a fresh AES-256-GCM data key encrypts the data (any size); the data key is wrapped with
// RSA-OAEP-256 (SHA-256, MGF1-SHA-256) under the vault key. The output names the key version it was sealed for.
//
//   node examples/decrypt-with-key/seal.js app-data-key.jwk.json < plain.txt > sealed.json
import { createCipheriv, createPublicKey, constants, publicEncrypt, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const jwkPath = process.argv[2];
if (!jwkPath) throw new Error('usage: seal.js PUBLIC-JWK-FILE < plaintext > sealed.json');
const jwk = JSON.parse(readFileSync(jwkPath, 'utf8'));
const publicKey = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
const plaintext = readFileSync(0);

const dataKey = randomBytes(32);
const iv = randomBytes(12);
const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
const wrappedKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const sealed = {
  kid: jwk.kid,
  alg: 'RSA-OAEP-256',
  enc: 'A256GCM',
  wrappedKey: b64url(wrappedKey),
  iv: b64url(iv),
  tag: b64url(cipher.getAuthTag()),
  ciphertext: b64url(ciphertext),
};
console.log(JSON.stringify(sealed, null, 2));
