import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir } from '../../src/authority/init.js';
import { ensureVaultCertificate } from '../../src/server/vault-certificate.js';
import { certificateNames } from '../../src/authority/urls.js';
import { issueServerCertificate } from '../../src/pki/ca.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';
import { systemClock } from '../../src/shared/clock.js';

const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' };

async function withDataDir(fn: (dataDir: string, masterKey: MasterKey) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-cert-'));
  try {
    await initDataDir({ dataDir, env, hostnames: ['authority.internal'] });
    await fn(dataDir, MasterKey.fromEnvOrFile({ env, dataDir }));
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function serverMaterial(dataDir: string, masterKey: MasterKey): { chain: string; names: string[]; keyMatches: boolean } {
  const layout = dataDirLayout(dataDir);
  const chain = readFileSync(layout.serverCert, 'utf8');
  const key = masterKey.decrypt(readFileSync(layout.serverKey, 'utf8'), 'tls-server-key').toString('utf8');
  return { chain, names: certificateNames(chain), keyMatches: new X509Certificate(chain).checkPrivateKey(createPrivateKey(key)) };
}

describe('the server certificate covers vault hosts', () => {
  it('openmsi init issues it with *.vault.localhost beside localhost and the loopback addresses', async () => {
    await withDataDir(async (dataDir, masterKey) => {
      const { names } = serverMaterial(dataDir, masterKey);
      for (const name of ['localhost', 'authority.internal', '*.vault.localhost', '127.0.0.1'])
        assert.ok(names.includes(name), `${name} in ${names.join(', ')}`);
      assert.equal(await ensureVaultCertificate({ dataDir, masterKey, vaultDomain: 'vault.localhost', clock: systemClock }), false, 'nothing to do');
    });
  });

  it('a certificate from before the vault is re-issued by the same CA with every old name plus the wildcard, and a matching key', async () => {
    await withDataDir(async (dataDir, masterKey) => {
      const layout = dataDirLayout(dataDir);
      const ca = readFileSync(layout.caCert, 'utf8');
      const caKey = masterKey.decrypt(readFileSync(layout.caKey, 'utf8'), 'ca-key').toString('utf8');
      const old = await issueServerCertificate({
        caCertPem: ca,
        caKeyPkcs8Pem: caKey,
        hostnames: ['localhost', 'authority.internal'],
        ipAddresses: ['127.0.0.1', '::1'],
        clock: systemClock,
      });
      writeFileSync(layout.serverCert, `${old.certPem.trimEnd()}\n${ca.trimEnd()}\n`);
      writeFileSync(layout.serverKey, masterKey.encrypt(old.keyPkcs8Pem, 'tls-server-key'));

      assert.equal(await ensureVaultCertificate({ dataDir, masterKey, vaultDomain: 'vault.localhost', clock: systemClock }), true);
      const after = serverMaterial(dataDir, masterKey);
      assert.deepEqual([...after.names].sort(), ['*.vault.localhost', '0:0:0:0:0:0:0:1', '127.0.0.1', 'authority.internal', 'localhost'].sort());
      assert.ok(after.keyMatches, 'the new key belongs to the new certificate');
      assert.ok(new X509Certificate(after.chain).verify(new X509Certificate(ca).publicKey), 'signed by the data dir CA');
      assert.ok(after.chain.trimEnd().endsWith(ca.trimEnd()), 'the chain still carries the CA');

      assert.equal(await ensureVaultCertificate({ dataDir, masterKey, vaultDomain: 'kv.example.test', clock: systemClock }), true, 'a new vault domain');
      assert.ok(serverMaterial(dataDir, masterKey).names.includes('*.kv.example.test'));
    });
  });
});
