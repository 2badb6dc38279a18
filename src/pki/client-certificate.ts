/**
 * Self-signed client certificates for `ad sp create-for-rbac --create-cert`: plain PKI, used by the CLI and
 * by tests, with no directory rules in it.
 */
import { webcrypto } from 'node:crypto';
import { DAY, type Clock } from '../shared/clock.js';
import { createSelfSignedSigningCertificate, derToPem, generateRsaSigningKeyPair } from './ca.js';

/** Longest lifetime of a client credential, in years (Entra allows much less by policy; this is a sanity bound). */
export const MAX_CREDENTIAL_YEARS = 100;

/** `ms` plus whole calendar years, in UTC. */
export function addYears(ms: number, years: number): number {
  const d = new Date(ms);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.getTime();
}

/**
 * A new RSA-2048 key and a self-signed certificate for it, for `--create-cert`. The private key never
 * leaves the caller: only the certificate is registered.
 */
export async function createClientCertificate(options: { commonName: string; years?: number; clock: Clock }): Promise<{ certPem: string; keyPem: string }> {
  const years = options.years ?? 1;
  if (!Number.isInteger(years) || years < 1 || years > MAX_CREDENTIAL_YEARS) {
    throw new TypeError(`certificate validity must be a whole number of years from 1 to ${String(MAX_CREDENTIAL_YEARS)}`);
  }
  const commonName = options.commonName.slice(0, 64) || 'openmsi client';
  const keyPair = await generateRsaSigningKeyPair();
  const now = options.clock.now();
  const validityDays = Math.round((addYears(now, years) - now) / DAY);
  // The same self-signed RSA certificate shape the signing keys use: digitalSignature, not a CA.
  const der = await createSelfSignedSigningCertificate({ subject: commonName, keyPair, clock: options.clock, validityDays });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keyPair.privateKey));
  return { certPem: derToPem(der, 'CERTIFICATE'), keyPem: derToPem(pkcs8, 'PRIVATE KEY') };
}
