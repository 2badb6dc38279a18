/**
 * Keeps the TLS server certificate covering the vault domain. Data dirs initialised before the vault existed
 * hold a certificate without `*.{vaultDomain}`, and a vault domain can be changed in config.json; on start the
 * certificate is re-issued by the data dir's own CA with every name it had plus the wildcard, so vault hosts
 * are trusted wherever the CA already is. Nothing else changes: same CA, same names, a fresh key.
 */
import { writePrivateFile } from '../shared/private-files.js';
import type { Clock } from '../shared/clock.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { issueServerCertificate } from '../pki/ca.js';
import type { MasterKey } from '../pki/master-key.js';
import { readDataDirPem, readEncryptedDataDirFile } from '../pki/data-dir-files.js';
import { certificateNames } from '../authority/urls.js';

const IP = /^[\d.]+$|:/;

/** The wildcard the server certificate needs for vault hosts. */
export function vaultWildcard(vaultDomain: string): string {
  return `*.${vaultDomain}`;
}

/**
 * Re-issues the server certificate when it lacks `*.{vaultDomain}`; true when it did. The CA key is read
 * (and decrypted) only then.
 */
export async function ensureVaultCertificate(options: { dataDir: string; masterKey: MasterKey; vaultDomain: string; clock: Clock }): Promise<boolean> {
  const layout = dataDirLayout(options.dataDir);
  const chain = readDataDirPem(layout.serverCert, 'the TLS server certificate', 'CERTIFICATE');
  const names = certificateNames(chain);
  const wildcard = vaultWildcard(options.vaultDomain);
  if (names.some((n) => n.toLowerCase() === wildcard)) return false;

  const caCertPem = readDataDirPem(layout.caCert, 'the CA certificate', 'CERTIFICATE');
  const caKeyPkcs8Pem = readEncryptedDataDirFile(layout.caKey, 'the CA private key', options.masterKey, 'ca-key');
  const server = await issueServerCertificate({
    caCertPem,
    caKeyPkcs8Pem,
    hostnames: [...names.filter((n) => !IP.test(n)), wildcard],
    ipAddresses: names.filter((n) => IP.test(n)),
    clock: options.clock,
  });
  // Key first: a crash between the two writes leaves a new key with the old certificate, which the next start
  // detects (the certificate still lacks the wildcard) and repairs.
  writePrivateFile(layout.serverKey, options.masterKey.encrypt(server.keyPkcs8Pem, 'tls-server-key'));
  writePrivateFile(layout.serverCert, `${server.certPem.trimEnd()}\n${caCertPem.trimEnd()}\n`);
  return true;
}
