/**
 * Token-signing keys: RSA-2048 / RS256 with a self-signed certificate, shaped the way Entra publishes
 * its keys (`kid` == `x5t` == base64url SHA-1 of the certificate, plus `x5c`). The private key is stored
 * only encrypted under the master key, bound to its `kid`.
 */
import { createPrivateKey, webcrypto } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import type { SigningKeyRecord, SigningKeyState } from '../../store/types.js';
import type { MasterKey } from '../../pki/master-key.js';
import type { CryptoKeyPair } from '../../pki/ca.js';
import { createSelfSignedSigningCertificate, generateRsaSigningKeyPair, thumbprints } from '../../pki/ca.js';

/** Subject common name of signing-key certificates. */
export const SIGNING_CERT_SUBJECT = 'openmsi token signing';
/** Certificate validity. Nothing checks it (verifiers pick keys by `kid`); five years mirrors Entra's certs. */
const SIGNING_CERT_VALIDITY_DAYS = 5 * 365;

/** The additional authenticated data that binds an encrypted private key to its `kid`. */
export function signingKeyAad(kid: string): string {
  return `signing-key:${kid}`;
}

/**
 * Generates a new RS256 signing key in `state` (`next` for a pre-published key, `current` to sign right away).
 * `activatedAt` is set to now for `current` keys.
 */
export async function generateSigningKey(options: {
  masterKey: MasterKey;
  clock: Clock;
  state: Extract<SigningKeyState, 'next' | 'current'>;
  /** The RSA pair to certify; default a fresh one (`KeyRotatorOptions.newKeyPair` says why tests pass one). */
  keyPair?: CryptoKeyPair;
}): Promise<SigningKeyRecord> {
  const { masterKey, clock, state } = options;
  if (state !== 'next' && state !== 'current') throw new TypeError("generateSigningKey(): state must be 'next' or 'current'");
  if (typeof clock?.now !== 'function') throw new TypeError('generateSigningKey() needs a clock');

  const keyPair = options.keyPair ?? (await generateRsaSigningKeyPair());
  const certDer = await createSelfSignedSigningCertificate({
    subject: SIGNING_CERT_SUBJECT,
    keyPair,
    clock,
    validityDays: SIGNING_CERT_VALIDITY_DAYS,
  });
  // Entra's convention: kid == x5t == base64url(SHA-1(cert DER)).
  const x5t = thumbprints(certDer).sha1.toString('base64url');
  const kid = x5t;
  const { n, e } = await webcrypto.subtle.exportKey('jwk', keyPair.publicKey);
  if (typeof n !== 'string' || typeof e !== 'string') throw new Error('RSA public key export produced no modulus/exponent');
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keyPair.privateKey));

  const now = clock.now();
  return {
    kid,
    state,
    alg: 'RS256',
    privateKeyEnc: masterKey.encrypt(pkcs8, signingKeyAad(kid)),
    publicJwk: { kty: 'RSA', n, e, kid, x5t, x5c: [certDer.toString('base64')], use: 'sig', alg: 'RS256' },
    createdAt: now,
    activatedAt: state === 'current' ? now : null,
    retiredAt: null,
    publishUntil: null,
    revokedAt: null,
  };
}

/**
 * Decrypts a record's private key.
 *
 * @throws Error when the master key is wrong or the stored blob does not belong to this `kid`.
 */
export function decryptSigningKey(record: SigningKeyRecord, masterKey: MasterKey): KeyObject {
  const der = masterKey.decrypt(record.privateKeyEnc, signingKeyAad(record.kid));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

/** When a key started signing (its creation, for a key created `current`). */
export function activatedAt(record: SigningKeyRecord): number {
  return record.activatedAt ?? record.createdAt;
}

/** The `current` keys, newest activation first. Normally one; more only while a promotion is half done. */
export function currentsNewestFirst(records: readonly SigningKeyRecord[]): SigningKeyRecord[] {
  return records.filter((r) => r.state === 'current').sort((a, b) => activatedAt(b) - activatedAt(a) || b.createdAt - a.createdAt);
}
