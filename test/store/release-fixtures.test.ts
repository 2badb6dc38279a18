/**
 * A data dir on the embedded store and a PostgreSQL database written by the previous release (fixtures/README.md)
 * open with this release's code, migrate to its newest schema, and keep their data: the admin's token verifies,
 * the secret reads back, the Reader assignment decides. PostgreSQL needs OPENMSI_TEST_POSTGRES_URL (skipped,
 * visibly, without it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { LATEST_MIGRATION } from '../../src/store/migrate.js';
import { backendSuiteOptions, STORE_BACKENDS } from '../support/authority.js';
import { createTestDatabase, type TestDatabase } from '../support/pg-database.js';
import { ARM, assertReaderHolds, assertTokenVerifies, copyDataDir, readSecret, startOnDataDir, type ExistingAuthority } from '../support/restored-world.js';
import { REPO_ROOT } from '../support/paths.js';
import type { FixtureManifest } from './fixtures/make-release-fixtures.js';

const FIXTURES = join(REPO_ROOT, 'test', 'store', 'fixtures', 'release-0.1.0');

/** Runs a plain `pg_dump` file through the pg client: psql's `\restrict` guard lines are its own; nothing else may be psql's. */
async function loadDump(url: string, dumpPath: string): Promise<void> {
  const lines = readFileSync(dumpPath, 'utf8').split('\n');
  const meta = lines.filter((line) => line.startsWith('\\'));
  assert.ok(
    meta.every((line) => /^\\(un)?restrict \w+$/.test(line)),
    `the dump holds only SQL and \\restrict lines: ${meta.join(', ')}`,
  );
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(lines.filter((line) => !line.startsWith('\\')).join('\n'));
  } finally {
    await client.end();
  }
}

for (const backend of STORE_BACKENDS) {
  void describe(`the previous release's ${backend} store`, { ...backendSuiteOptions(backend), timeout: 120_000 }, () => {
    const fixture = join(FIXTURES, backend);
    const manifest = JSON.parse(readFileSync(join(fixture, 'manifest.json'), 'utf8')) as FixtureManifest;
    let dataDir: string;
    let database: TestDatabase | undefined;
    let a: ExistingAuthority;

    before(async () => {
      dataDir = join(mkdtempSync(join(tmpdir(), 'openmsi-fixture-')), 'data');
      copyDataDir(join(fixture, 'data-dir'), dataDir);
      if (backend === 'postgres') {
        database = await createTestDatabase(process.env['OPENMSI_TEST_POSTGRES_URL']!);
        await loadDump(database.url, join(fixture, 'openmsi.sql'));
      }
      a = await startOnDataDir(dataDir, database === undefined ? {} : { store: database.url });
    });
    after(async () => {
      await a?.close();
      await database?.drop();
      rmSync(join(dataDir, '..'), { recursive: true, force: true });
    });

    it('opens and migrates to this release’s newest schema', async () => {
      assert.equal(manifest.release, '0.1.0');
      assert.equal(await a.server.ctx.store.health.check(10_000), LATEST_MIGRATION);
    });

    it('keeps its signing keys: a token the admin credential gets verifies with a key the previous release made', async () => {
      const kid = await assertTokenVerifies(a, await a.adminToken(ARM), ARM);
      assert.ok(manifest.signingKids.includes(kid), `token signed by ${kid}, one of ${manifest.signingKids.join(', ')}`);
    });

    it('reads its secret back and keeps the Reader assignment', async () => {
      assert.equal(await readSecret(a, manifest.vault, manifest.secret.name), manifest.secret.value);
      await assertReaderHolds(a, manifest.identity.principalId, manifest.assignment.scope);
    });
  });
}
