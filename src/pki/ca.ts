/**
 * A small local certificate authority: an ECDSA P-256 root, TLS server certificates it issues (so the
 * authority and the vault can speak HTTPS that clients trust via `ca:` or `NODE_EXTRA_CA_CERTS`), and
 * self-signed certificates that give token-signing keys an `x5c`/`x5t` like Entra's.
 *
 * This module is the one place that loads @peculiar/x509, because the library needs the reflect polyfill
 * installed before it is imported. It loads it on first use: a server that already has its certificates
 * starts without it (a quarter of a second of imports on these machines).
 */
import type * as X509 from '@peculiar/x509';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type { Clock } from '../shared/clock.js';
import { DAY, MINUTE } from '../shared/clock.js';

let loaded: Promise<typeof X509> | undefined;

/** @peculiar/x509, after the reflect polyfill, set to Node's WebCrypto (not whatever global it would find). */
function loadX509(): Promise<typeof X509> {
  loaded ??= import('reflect-metadata').then(async () => {
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
    return x509;
  });
  return loaded;
}

/** WebCrypto key types (the project compiles without the DOM lib, so name them through node:crypto). */
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

const subtle = webcrypto.subtle;
const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Backdating absorbs clock skew between this host and clients that check `notBefore`. */
const BACKDATE_MS = 5 * MINUTE;

/** A certificate and its private key, both PEM. */
export interface CertificateAndKey {
  /** `-----BEGIN CERTIFICATE-----` */
  certPem: string;
  /** PKCS#8, `-----BEGIN PRIVATE KEY-----` */
  keyPkcs8Pem: string;
}

function assertClock(clock: unknown, fn: string): asserts clock is Clock {
  if (clock === null || typeof clock !== 'object' || typeof (clock as Clock).now !== 'function') {
    throw new TypeError(`${fn}() needs a clock`);
  }
}

function assertDays(days: unknown, fn: string): asserts days is number {
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1) {
    throw new TypeError(`${fn}(): validityDays must be a positive integer`);
  }
}

function assertCommonName(cn: unknown, fn: string): asserts cn is string {
  if (typeof cn !== 'string' || cn.trim().length === 0) throw new TypeError(`${fn}(): common name must be a non-empty string`);
}

/** JSON name form, so a common name containing `,` or `=` cannot inject extra RDNs. Truncated to X.520's 64-character bound. */
function cnName(commonName: string): X509.JsonName {
  return [{ CN: [commonName.slice(0, 64)] }];
}

/** A positive 128-bit serial with no leading zero byte (so the DER INTEGER needs no padding). */
function newSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function exportPkcs8Pem(key: CryptoKey): Promise<string> {
  return derToPem(Buffer.from(await subtle.exportKey('pkcs8', key)), 'PRIVATE KEY');
}

/**
 * Creates a self-signed ECDSA P-256 root CA (BasicConstraints CA:true, pathLength 0, critical; KeyUsage
 * keyCertSign | cRLSign; SubjectKeyIdentifier).
 */
export async function createCertificateAuthority(options: {
  /** Default `openmsi local CA`; truncated to 64 characters. */
  commonName?: string;
  clock: Clock;
  validityDays?: number;
}): Promise<CertificateAndKey> {
  const x509 = await loadX509();
  const { commonName = 'openmsi local CA', clock, validityDays = 3650 } = options;
  assertCommonName(commonName, 'createCertificateAuthority');
  assertClock(clock, 'createCertificateAuthority');
  assertDays(validityDays, 'createCertificateAuthority');

  const keys = await subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const now = clock.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerialNumber(),
    name: cnName(commonName),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityDays * DAY),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [
      // pathLength 0: this CA issues leaf certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPkcs8Pem: await exportPkcs8Pem(keys.privateKey) };
}

/**
 * Issues an ECDSA P-256 TLS server certificate signed by the CA: SAN with the given DNS names and IP
 * addresses, EKU serverAuth, KeyUsage digitalSignature, AKI pointing at the CA. `notBefore` is backdated
 * five minutes; `notAfter` never outlives the CA.
 *
 * @throws TypeError when no names are given or an IP address is invalid.
 * @throws Error when the CA key does not belong to the CA certificate.
 */
export async function issueServerCertificate(options: {
  caCertPem: string;
  caKeyPkcs8Pem: string;
  hostnames: string[];
  ipAddresses: string[];
  clock: Clock;
  validityDays?: number;
}): Promise<CertificateAndKey> {
  const x509 = await loadX509();
  const { caCertPem, caKeyPkcs8Pem, hostnames, ipAddresses, clock, validityDays = 397 } = options;
  assertClock(clock, 'issueServerCertificate');
  assertDays(validityDays, 'issueServerCertificate');
  if (typeof caCertPem !== 'string' || typeof caKeyPkcs8Pem !== 'string') {
    throw new TypeError('issueServerCertificate(): caCertPem and caKeyPkcs8Pem must be PEM strings');
  }
  if (!Array.isArray(hostnames) || !hostnames.every((h) => typeof h === 'string' && /^[A-Za-z0-9*.-]{1,253}$/.test(h))) {
    throw new TypeError('issueServerCertificate(): hostnames must be an array of DNS names');
  }
  if (!Array.isArray(ipAddresses) || !ipAddresses.every((ip) => typeof ip === 'string' && isIP(ip) !== 0)) {
    throw new TypeError('issueServerCertificate(): ipAddresses must be an array of IPv4/IPv6 addresses');
  }
  if (hostnames.length + ipAddresses.length === 0) {
    throw new TypeError('issueServerCertificate(): at least one hostname or IP address is required');
  }

  const caCert = new x509.X509Certificate(caCertPem);
  const caKey = await subtle.importKey('pkcs8', pemToDer(caKeyPkcs8Pem, 'PRIVATE KEY'), EC_ALG, false, ['sign']);
  const leafKeys = await subtle.generateKey(EC_ALG, true, ['sign', 'verify']);
  const now = clock.now();
  const notAfter = Math.min(now + validityDays * DAY, caCert.notAfter.getTime());
  const subjectCn = (hostnames[0] ?? ipAddresses[0])!;

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: newSerialNumber(),
    subject: cnName(subjectCn),
    issuer: caCert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(notAfter),
    signingAlgorithm: EC_ALG,
    publicKey: leafKeys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([
        ...hostnames.map((value) => ({ type: 'dns' as const, value })),
        ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  // A mismatched CA key would produce a certificate no client accepts; fail here rather than at handshake.
  if (!(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }))) {
    throw new Error('issueServerCertificate(): the CA private key does not match the CA certificate');
  }
  return { certPem: cert.toString('pem'), keyPkcs8Pem: await exportPkcs8Pem(leafKeys.privateKey) };
}

const RSA_SIGNING_ALG = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };

/** A new extractable RSA-2048 RSASSA-PKCS1-v1_5 / SHA-256 key pair, the kind {@link createSelfSignedSigningCertificate} certifies. */
export async function generateRsaSigningKeyPair(): Promise<CryptoKeyPair> {
  return subtle.generateKey(RSA_SIGNING_ALG, true, ['sign', 'verify']);
}

/**
 * A self-signed certificate for a token-signing key pair, so the published JWK can carry `x5c` and a SHA-1
 * `x5t` the way Entra's keys do. Nothing validates its chain; it only binds the public key.
 *
 * @param options.subject The subject common name, e.g. `openmsi token signing`.
 * @param options.keyPair An RSA (RSASSA-PKCS1-v1_5) WebCrypto key pair; the certificate is signed with it.
 * @returns The certificate, DER.
 */
export async function createSelfSignedSigningCertificate(options: {
  subject: string;
  keyPair: CryptoKeyPair;
  clock: Clock;
  validityDays: number;
}): Promise<Buffer> {
  const x509 = await loadX509();
  const { subject, keyPair, clock, validityDays } = options;
  assertCommonName(subject, 'createSelfSignedSigningCertificate');
  assertClock(clock, 'createSelfSignedSigningCertificate');
  assertDays(validityDays, 'createSelfSignedSigningCertificate');
  if (keyPair?.privateKey?.algorithm?.name !== 'RSASSA-PKCS1-v1_5') {
    throw new TypeError('createSelfSignedSigningCertificate(): keyPair must be an RSASSA-PKCS1-v1_5 CryptoKeyPair');
  }
  const now = clock.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerialNumber(),
    name: cnName(subject),
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityDays * DAY),
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    keys: keyPair,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keyPair.publicKey),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** SHA-1 and SHA-256 thumbprints of a certificate (DER bytes or PEM text). */
export function thumbprints(derOrPem: Uint8Array | string): { sha1: Buffer; sha256: Buffer } {
  const der = typeof derOrPem === 'string' ? pemToDer(derOrPem, 'CERTIFICATE') : derOrPem;
  if (!(der instanceof Uint8Array)) throw new TypeError('thumbprints() takes DER bytes or a PEM string');
  return { sha1: createHash('sha1').update(der).digest(), sha256: createHash('sha256').update(der).digest() };
}

/**
 * Decodes the first PEM block (of type `label` when given).
 *
 * @throws Error when there is no such block.
 */
export function pemToDer(pem: string, label?: string): Buffer {
  if (typeof pem !== 'string') throw new TypeError('pemToDer() takes a string');
  const want = label === undefined ? '[A-Z0-9 ]+' : label.replace(/[^A-Z0-9 ]/g, '');
  const match = new RegExp(`-----BEGIN (${want})-----([A-Za-z0-9+/=\\s]*?)-----END \\1-----`).exec(pem);
  if (!match) throw new Error(`No ${label ?? 'PEM'} block found`);
  return Buffer.from(match[2]!.replace(/\s+/g, ''), 'base64');
}

/** Encodes DER as PEM with 64-character lines. */
export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  if (!(der instanceof Uint8Array)) throw new TypeError('derToPem() takes DER bytes');
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
