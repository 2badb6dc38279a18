/**
 * The embedded store's online copy (`store.snapshot`, what `openmsi backup` streams): taken while the same
 * process keeps writing, it is a consistent database holding every write acknowledged before it began, and the
 * writes made while it ran do not wait for it.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import { LATEST_MIGRATION } from '../../src/store/migrate.js';
import { backendSkipReason } from '../support/authority.js';
import { createTestDatabase } from '../support/pg-database.js';

const event = (id: string, n: number, pad = '') => ({
  id,
  at: n,
  tenantId: null,
  actor: 'system',
  action: 'snapshot-test',
  target: 'store',
  outcome: 'success' as const,
  detail: { n, pad },
});

void describe('store.snapshot (SQLite online copy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'openmsi-snapshot-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('copies a consistent store while writes go on between its steps', async (t) => {
    const store = await openStore(join(dir, 'openmsi.db'));
    try {
      // About 6 MB: SQLite copies 100 pages per step, so the copy takes many steps.
      for (let batch = 0; batch < 30; batch++) {
        await store.audit.append(Array.from({ length: 50 }, (_, i) => event(`bulk-${String(batch * 50 + i)}`, batch * 50 + i, 'p'.repeat(4_000))));
      }
      const snapshot = store.snapshot;
      assert.ok(snapshot !== undefined, 'the embedded store has an online copy');
      const destination = join(dir, 'copy.db');
      closeSync(openSync(destination, 'wx', 0o600));
      let copied = false;
      const copy = snapshot(destination).then(() => {
        copied = true;
      });
      let during = 0;
      for (let n = 0; !copied && n < 10_000; n++) {
        // Requests reach a server as I/O events: yield to the event loop between writes as they do.
        await new Promise((resolve) => setImmediate(resolve));
        await store.audit.append([event(`during-${String(n)}`, n)]);
        if (!copied) during++;
      }
      await copy;
      assert.ok(during > 0, 'writes were acknowledged while the copy ran');
      assert.equal(statSync(destination).mode & 0o777, 0o600);

      const raw = new SqliteDatabase(destination, { readonly: true });
      try {
        assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
        const ids = new Set((raw.prepare('SELECT id FROM audit_events').all() as { id: string }[]).map((row) => row.id));
        for (let n = 0; n < 1500; n++) assert.ok(ids.has(`bulk-${String(n)}`), `bulk-${String(n)} was written before the copy began`);
        // Writes by the copying connection reach the copy: it is the store as of the copy's last step.
        const durings = [...ids].filter((id) => id.startsWith('during-')).length;
        t.diagnostic(`${String(during)} writes acknowledged during the copy, ${String(durings)} in it`);
        assert.ok(durings >= during, `${String(durings)} of the ${String(during)} writes made during the copy are in it`);
      } finally {
        raw.close();
      }
      const restored = await openStore(destination);
      try {
        assert.equal(await restored.health.check(5_000), LATEST_MIGRATION, 'the copy opens as a store');
      } finally {
        await restored.close();
      }
    } finally {
      await store.close();
    }
  });

  it('a PostgreSQL store has none (pg_dump is its backup)', { skip: backendSkipReason('postgres') }, async () => {
    const database = await createTestDatabase(process.env['OPENMSI_TEST_POSTGRES_URL']!);
    try {
      const store = await openStore(database.url);
      try {
        assert.equal(store.snapshot, undefined);
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });
});
