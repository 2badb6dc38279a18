import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { freePort } from '../support/authority.js';
import { postForm } from '../support/https.js';
import { runFixture } from '../support/child-process.js';
import { initDataDir } from '../../src/authority/init.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';
import { openStore } from '../../src/store/open.js';

/**
 * "Acknowledged means audited": an authority process is SIGKILLed in the middle of a burst of token
 * requests; every token a client received must have its `token.issued` row in the audit trail.
 *
 * The authority's audit store waits {@link AUDIT_DELAY_MS} before each write (test/support/slow-audit-authority.ts),
 * and the kill follows an acknowledgement at once: if a response were ever sent before its audit row was
 * committed, that token's row would still be waiting when the kill lands, so the test fails every time,
 * not only when the kill happens to hit a batch in flight.
 */
const AUDIT_DELAY_MS = 300;
/** Acknowledged tokens before the kill: each group commit holds several, so this spans many batches. */
const KILL_AFTER = 60;

describe('audit durability under kill -9', () => {
  it('every token handed out before the kill is in the audit trail', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'openmsi-audit-kill-'));
    const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '', OPENMSI_LOG_LEVEL: 'info' };
    const acknowledged: string[] = [];
    try {
      const port = await freePort();
      const { admin, config } = await initDataDir({ dataDir, port, env });
      const ca = readFileSync(dataDirLayout(dataDir).caCert, 'utf8');
      const authority = runFixture('slow-audit-authority.ts', [dataDir, String(AUDIT_DELAY_MS)], env);
      try {
        const ready = await authority.waitForLine((line) => line.startsWith('ready '), 30_000);
        const url = `${ready.slice('ready '.length)}/${config.tenantId}/oauth2/v2.0/token`;
        const form = {
          grant_type: 'client_credentials',
          client_id: admin.clientId,
          client_secret: admin.clientSecret,
          scope: 'https://vault.azure.net/.default',
        };
        let killed = false;
        const worker = async () => {
          for (let i = 0; i < 200 && !killed; i++) {
            try {
              const response = await postForm(url, form, ca);
              if (response.status === 200) acknowledged.push(decodeJwt(response.json<{ access_token: string }>().access_token)['uti'] as string);
            } catch {
              // The kill cuts requests off mid-flight; those were never acknowledged.
            }
            if (acknowledged.length >= KILL_AFTER && !killed) {
              killed = true;
              authority.child.kill('SIGKILL');
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        assert.ok(killed, 'the burst reached the kill point');
        const exit = await authority.waitForExit(10_000);
        assert.equal(exit.signal, 'SIGKILL');
      } finally {
        await authority.stop();
      }

      const store = await openStore(dataDirLayout(dataDir).sqlite);
      try {
        const events = await store.audit.list({ action: 'token.issued', limit: 100_000 });
        const audited = new Set(events.map((e) => e.detail['tokenId']));
        assert.ok(acknowledged.length >= KILL_AFTER);
        const missing = acknowledged.filter((uti) => !audited.has(uti));
        assert.deepEqual(missing, [], `${String(missing.length)} of ${String(acknowledged.length)} tokens handed out have no audit row`);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
