import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../support/authority.js';
import { httpsRequest, postForm } from '../../support/https.js';
import { vaultRequest } from '../../support/vault.js';
import { runFixture } from '../../support/child-process.js';
import { initDataDir } from '../../../src/authority/init.js';
import { dataDirLayout } from '../../../src/shared/data-dir.js';

/** Acknowledged writes before the kill: enough to span many group commits. */
const KILL_AFTER = 60;

/**
 * "An acknowledged write survives kill -9": `openmsi server` is SIGKILLed in the middle of a burst of secret
 * writes from 8 concurrent clients; after a restart every version a client was told about reads back with
 * its value.
 */
describe('vault durability under kill -9', () => {
  it('every secret version acknowledged before the kill reads back after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-vault-kill-'));
    const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_LOG_LEVEL: 'warn' };
    const acknowledged: { name: string; version: string; value: string }[] = [];
    try {
      const port = await freePort();
      const { admin, config } = await initDataDir({ dataDir, port, env });
      const ca = readFileSync(dataDirLayout(dataDir).caCert, 'utf8');
      const vaultUri = `https://kv-durable.vault.localhost:${String(port)}/`;
      const tokenFor = async (origin: string, resource: string): Promise<string> => {
        const form = { grant_type: 'client_credentials', client_id: admin.clientId, client_secret: admin.clientSecret, scope: `${resource}/.default` };
        const response = await postForm(`${origin}/${config.tenantId}/oauth2/v2.0/token`, form, ca);
        assert.equal(response.status, 200, response.body);
        return response.json<{ access_token: string }>().access_token;
      };

      let server = runFixture('vault-server.ts', [dataDir], env);
      try {
        const origin = (await server.waitForLine((line) => line.startsWith('ready '), 30_000)).slice('ready '.length);
        const arm = await tokenFor(origin, 'https://management.azure.com');
        const vaultId = `/subscriptions/${config.subscriptionId}/resourceGroups/durable/providers/Microsoft.KeyVault/vaults/kv-durable`;
        const group = await httpsRequest(`${origin}/subscriptions/${config.subscriptionId}/resourcegroups/durable?api-version=2022-09-01`, {
          method: 'PUT',
          ca,
          headers: { authorization: `Bearer ${arm}`, 'content-type': 'application/json' },
          body: JSON.stringify({ location: 'local' }),
        });
        assert.ok(group.status < 300, group.body);
        const vault = await httpsRequest(`${origin}${vaultId}?api-version=2023-07-01`, {
          method: 'PUT',
          ca,
          headers: { authorization: `Bearer ${arm}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            location: 'local',
            properties: {
              tenantId: config.tenantId,
              sku: { family: 'A', name: 'standard' },
              enableRbacAuthorization: false,
              accessPolicies: [{ tenantId: config.tenantId, objectId: admin.objectId, permissions: { secrets: ['get', 'set'] } }],
            },
          }),
        });
        assert.ok(vault.status < 300, vault.body);
        assert.equal(vault.json<{ properties: { vaultUri: string } }>().properties.vaultUri, vaultUri);

        const token = await tokenFor(origin, `https://vault.localhost:${String(port)}`);
        let killed = false;
        const worker = async (w: number) => {
          for (let i = 0; i < 100 && !killed; i++) {
            const name = `burst-${String(w)}-${String(i)}`;
            const value = `value ${String(w)}/${String(i)} ${'x'.repeat(64)}`;
            try {
              const response = await vaultRequest(`${vaultUri}secrets/${name}?api-version=7.4`, {
                method: 'PUT',
                ca,
                headers: { authorization: `Bearer ${token}` },
                body: JSON.stringify({ value }),
              });
              if (response.status === 200) {
                const version = response.json<{ id: string }>().id.split('/').pop()!;
                acknowledged.push({ name, version, value });
              }
            } catch {
              // Cut off by the kill: never acknowledged.
            }
            if (acknowledged.length >= KILL_AFTER && !killed) {
              killed = true;
              server.child.kill('SIGKILL');
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
        assert.ok(killed, 'the burst reached the kill point');
        assert.equal((await server.waitForExit(10_000)).signal, 'SIGKILL');
      } finally {
        await server.stop();
      }

      server = runFixture('vault-server.ts', [dataDir], env);
      try {
        const origin = (await server.waitForLine((line) => line.startsWith('ready '), 30_000)).slice('ready '.length);
        const token = await tokenFor(origin, `https://vault.localhost:${String(port)}`);
        const lost: string[] = [];
        for (const { name, version, value } of acknowledged) {
          const response = await vaultRequest(`${vaultUri}secrets/${name}/${version}?api-version=7.4`, { ca, headers: { authorization: `Bearer ${token}` } });
          if (response.status !== 200 || response.json<{ value: string }>().value !== value) lost.push(`${name}/${version}: HTTP ${String(response.status)}`);
        }
        assert.deepEqual(lost, [], `${String(lost.length)} of ${String(acknowledged.length)} acknowledged writes are lost`);
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
