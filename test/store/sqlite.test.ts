import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { describeStoreLocation, openStore, StoreLockedError } from '../../src/store/index.js';
import { openSqlite } from '../../src/store/sqlite.js';
import { runFixture } from '../support/child-process.js';
import { storeConformanceSuite } from './conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'openmsi-sqlite-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
/** A fresh database file in this run's temp dir. */
function freshPath(label: string): string {
  fileCounter += 1;
  return join(dir, `${label}-${fileCounter}.db`);
}

storeConformanceSuite('sqlite store', () => openStore(freshPath('conformance')));

const CHILD_TIMEOUT = 20_000;

void describe('sqlite store file', { timeout: 90_000 }, () => {
  void it('keeps data across close and reopen; migrating again is a no-op', async () => {
    const path = freshPath('reopen');
    const first = await openStore(path);
    const tenant = { id: '00000000-0000-0000-0000-00000000000a', displayName: 'T', defaultDomain: 'reopen.test', createdAt: 1 };
    await first.tenants.create(tenant);
    await first.close();
    await first.close(); // idempotent

    const second = await openStore(path);
    try {
      assert.deepEqual(await second.tenants.get('reopen.test'), tenant);
    } finally {
      await second.close();
    }
  });

  void it('migrate: false leaves a fresh file without a schema', async () => {
    const store = await openStore(freshPath('nomigrate'), { migrate: false });
    try {
      await assert.rejects(store.tenants.list(), /no such table/);
    } finally {
      await store.close();
    }
  });

  void it('opens in WAL mode with synchronous=FULL, foreign keys on and an exclusive lock', async () => {
    const opened = openSqlite(freshPath('pragmas'));
    const { db } = opened;
    try {
      const one = async (pragma: string): Promise<unknown> => {
        const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${pragma}`)}`.execute(db);
        return Object.values(rows[0] ?? {})[0];
      };
      assert.equal(await one('journal_mode'), 'wal');
      assert.equal(await one('synchronous'), 2); // FULL
      assert.equal(await one('foreign_keys'), 1);
      assert.equal(await one('locking_mode'), 'exclusive');
    } finally {
      await opened.close();
    }
  });

  void it('works in memory', async () => {
    const store = await openStore(':memory:');
    try {
      assert.equal(store.dialect, 'sqlite');
      assert.ok(await store.replay.remember('k', 1));
      assert.equal(await store.replay.remember('k', 1), false);
    } finally {
      await store.close();
    }
  });

  void it('a second open of the same file in this process fails with StoreLockedError', async () => {
    const path = freshPath('same-process');
    const store = await openStore(path);
    try {
      await assert.rejects(openStore(path), StoreLockedError);
    } finally {
      await store.close();
    }
    const again = await openStore(path);
    await again.close();
  });

  void it('another process cannot open a file this process holds, and can once it is closed', { timeout: 60_000 }, async () => {
    const path = freshPath('cross-process');
    const store = await openStore(path);
    try {
      const child = runFixture('store-lock.ts', [path, 'try']);
      try {
        assert.equal(await child.waitForLine((l) => l === 'locked' || l === 'opened' || l.startsWith('error'), CHILD_TIMEOUT), 'locked');
      } finally {
        await child.stop();
      }
    } finally {
      await store.close();
    }
    const child = runFixture('store-lock.ts', [path, 'try']);
    try {
      assert.equal(await child.waitForLine((l) => l === 'locked' || l === 'opened' || l.startsWith('error'), CHILD_TIMEOUT), 'opened');
      assert.equal((await child.waitForExit(CHILD_TIMEOUT)).code, 0);
    } finally {
      await child.stop();
    }
  });

  void it('the lock dies with its holder, even one killed with SIGKILL', { timeout: 60_000 }, async () => {
    const path = freshPath('killed-holder');
    const holder = runFixture('store-lock.ts', [path, 'hold']);
    try {
      assert.equal(await holder.waitForLine((l) => l === 'opened' || l.startsWith('error'), CHILD_TIMEOUT), 'opened');
      await assert.rejects(openStore(path), StoreLockedError);

      const contender = runFixture('store-lock.ts', [path, 'try']);
      try {
        assert.equal(await contender.waitForLine((l) => l === 'locked' || l === 'opened' || l.startsWith('error'), CHILD_TIMEOUT), 'locked');
      } finally {
        await contender.stop();
      }

      const exit = await holder.stop(); // SIGKILL: no chance to close the database
      assert.equal(exit.signal, 'SIGKILL');
    } finally {
      await holder.stop();
    }
    const store = await openStore(path);
    try {
      assert.deepEqual(await store.tenants.list(), []);
    } finally {
      await store.close();
    }
  });

  void it('describes its location as an absolute sqlite path', () => {
    assert.equal(describeStoreLocation('/var/lib/openmsi/store.db'), 'sqlite:/var/lib/openmsi/store.db');
    assert.match(describeStoreLocation('data/store.db'), /^sqlite:\/.*\/data\/store\.db$/);
    assert.equal(describeStoreLocation(':memory:'), 'sqlite::memory:');
  });
});
