import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readEncryptedDataDirFile } from '../../../src/pki/data-dir-files.js';
import { dataDirLayout } from '../../../src/shared/data-dir.js';
import { buildVaultApp } from '../../../src/vault/app.js';
import { assignRoleInStore } from '../../rbac/authz/helpers.js';
import { startVaultHarness, type VaultHarness } from '../../vault/harness.js';

const SECRETS_OFFICER = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7';

describe('vault data plane: the real @azure/keyvault-secrets SecretClient over HTTPS', () => {
  let h: VaultHarness;
  let server: FastifyInstance;
  let port: number;
  before(async () => {
    h = await startVaultHarness();
    const layout = dataDirLayout(h.t.dataDir);
    const tls = {
      cert: readFileSync(layout.serverCert, 'utf8'),
      key: readEncryptedDataDirFile(layout.serverKey, 'the TLS server key', h.t.ctx.masterKey, 'tls-server-key'),
    };
    server = await buildVaultApp(h.ctx, { tls });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
  });
  after(async () => {
    await server.close();
    await h.close();
  });

  it('runs every operation unchanged', async () => {
    const kv1 = await h.createVault('sdk1');
    const kv2 = await h.createVault('sdk2');
    const app = await h.app_('sdk-app');
    await assignRoleInStore(h.t, kv1.resourceId, SECRETS_OFFICER, app.objectId);
    await assignRoleInStore(h.t, kv2.resourceId, SECRETS_OFFICER, app.objectId);
    const child = fileURLToPath(new URL('./sdk-child.mjs', import.meta.url));
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [child],
        {
          env: {
            ...process.env,
            NODE_EXTRA_CA_CERTS: h.t.caPath,
            AUTHORITY: h.t.url,
            CLIENT_ID: app.appId,
            CLIENT_SECRET: app.secret,
            VAULT1: `https://sdk1.vault.localhost:${String(port)}/`,
            VAULT2: `https://sdk2.vault.localhost:${String(port)}/`,
          },
          timeout: 120_000,
        },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)),
      );
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!);
    assert.equal(result.ok, true, result.error);
    assert.equal(result.get, 'sdk-value');
    assert.equal(result.updated, 'ct2');
    assert.ok(result.listed >= 27, String(result.listed));
    assert.equal(result.versions, 27);
    assert.equal(result.deleted, 'bulk-0');
    assert.equal(result.recovered, 'bulk-0');
    assert.equal(result.purged, 404);
    assert.equal(result.restored, 'sdk-one');
    assert.equal(result.restoredValue, 'sdk-value-25');
    assert.equal(result.disabled, '403 SecretDisabled');
    assert.equal(result.expired, 'old');
  });
});
