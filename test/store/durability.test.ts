/**
 * Durability: a write is acknowledged only once it is committed, so it survives the writer being killed
 * with SIGKILL. A child process appends audit events one transaction at a time, printing `ack <id>` after
 * each commit resolves; we SIGKILL it mid-burst, reopen the store, and require every acknowledged id.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openStore } from '../../src/store/index.js';
import { runFixture } from '../support/child-process.js';
import { createTestDatabase, type TestDatabase } from '../support/pg-database.js';

/** Kill once this many writes have been acknowledged. */
const KILL_AFTER_ACKS = 200;
/** The child stops by itself after this many, so a missed kill cannot run away. */
const MAX_WRITES = 5000;

async function burstKillAndVerify(location: string): Promise<void> {
  const tag = `durability.${randomBytes(4).toString('hex')}`;
  const child = runFixture('write-burst.ts', [location, tag, String(MAX_WRITES)]);
  let acked: string[];
  try {
    await child.waitForLine((l) => l === 'ready', 30_000);
    await child.waitForLine((l) => l.startsWith('ack ') && child.lines.filter((x) => x.startsWith('ack ')).length >= KILL_AFTER_ACKS, 60_000);
    const exit = await child.stop();
    assert.equal(exit.signal, 'SIGKILL', `the writer should still have been running (exit code ${exit.code})`);
    // Everything it printed before dying counts, including acks we had not looked at yet.
    acked = child.lines.filter((l) => l.startsWith('ack ')).map((l) => l.slice(4));
  } finally {
    await child.stop();
  }
  assert.ok(acked.length >= KILL_AFTER_ACKS);
  assert.ok(!child.lines.includes('done'), 'killed before finishing');

  const store = await openStore(location);
  try {
    const stored = new Set((await store.audit.list({ action: tag, limit: MAX_WRITES + 1 })).map((e) => e.id));
    const lost = acked.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.length} acknowledged writes were lost`);
    // Writes are sequential: at most the one in flight at the kill committed without being acknowledged.
    assert.ok(stored.size <= acked.length + 1, `stored ${stored.size}, acknowledged ${acked.length}`);
  } finally {
    await store.close();
  }
}

void describe('durability: acknowledged writes survive SIGKILL', { timeout: 240_000 }, () => {
  void it('sqlite', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-durability-'));
    try {
      await burstKillAndVerify(join(dir, 'store.db'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const adminUrl = process.env.OPENMSI_TEST_POSTGRES_URL;
  const hasPostgres = adminUrl !== undefined && adminUrl !== '';
  let database: TestDatabase | undefined;
  after(async () => {
    await database?.drop();
  });

  void it('postgres', { timeout: 120_000, skip: hasPostgres ? false : 'OPENMSI_TEST_POSTGRES_URL not set' }, async () => {
    database = await createTestDatabase(adminUrl!);
    await burstKillAndVerify(database.url);
  });
});
