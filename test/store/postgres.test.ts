/**
 * The conformance suite on PostgreSQL, in a fresh database `openmsi_test_<random>` on the server named by
 * OPENMSI_TEST_POSTGRES_URL (see scripts/pg-cluster.sh). Skipped, visibly, when that is not set.
 */
import assert from 'node:assert/strict';
import { after, describe, it, test } from 'node:test';
import { describeStoreLocation, isPostgresLocation, openStore } from '../../src/store/index.js';
import { createTestDatabase, type TestDatabase } from '../support/pg-database.js';
import { storeConformanceSuite } from './conformance.js';

const adminUrl = process.env.OPENMSI_TEST_POSTGRES_URL;

void describe('postgres store location', () => {
  void it('recognises postgres URLs and hides their password in logs', () => {
    assert.ok(isPostgresLocation('postgres://u@h/db'));
    assert.ok(isPostgresLocation('POSTGRESQL://u@h/db'));
    assert.ok(!isPostgresLocation('/var/lib/openmsi/postgres.db'));
    assert.equal(describeStoreLocation('postgres://app:s3cret@db.example:5432/openmsi'), 'postgres://app@db.example:5432/openmsi');
    assert.equal(describeStoreLocation('postgresql://db.example/openmsi?sslmode=require'), 'postgresql://db.example/openmsi?sslmode=require');
    const withParam = describeStoreLocation('postgres://app@db.example/openmsi?password=s3cret&sslmode=require');
    assert.ok(!withParam.includes('s3cret'), withParam);
    assert.ok(!describeStoreLocation('postgres://app:s3cret@[bad').includes('s3cret'));
  });
});

if (adminUrl === undefined || adminUrl === '') {
  void test('postgres store conformance', { skip: 'OPENMSI_TEST_POSTGRES_URL not set' }, () => {});
} else {
  const databases: TestDatabase[] = [];
  let shared: Promise<TestDatabase> | undefined;
  const sharedDatabase = (): Promise<TestDatabase> => {
    shared ??= createTestDatabase(adminUrl).then((d) => {
      databases.push(d);
      return d;
    });
    return shared;
  };

  after(async () => {
    for (const d of databases) await d.drop();
  });

  storeConformanceSuite('postgres store', async () => openStore((await sharedDatabase()).url), {
    // A second pool on the same database, as another replica would have.
    openReplica: async () => openStore((await sharedDatabase()).url, { maxConnections: 4 }),
  });

  void describe('postgres store', { timeout: 60_000 }, () => {
    void it('several replicas migrating a fresh database at once all succeed', async () => {
      const database = await createTestDatabase(adminUrl);
      databases.push(database);
      const stores = await Promise.all(Array.from({ length: 4 }, () => openStore(database.url, { maxConnections: 2 })));
      try {
        for (const s of stores) {
          assert.equal(s.dialect, 'postgres');
          assert.deepEqual(await s.tenants.list(), []);
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    void it('returns timestamps as numbers, like SQLite', async () => {
      const store = await openStore((await sharedDatabase()).url);
      try {
        const big = Date.UTC(2099, 11, 31, 23, 59, 59, 999);
        const tenant = { id: '00000000-0000-0000-0000-0000000000b1', displayName: 'T', defaultDomain: 'numbers.test', createdAt: big };
        await store.tenants.create(tenant);
        const got = await store.tenants.get(tenant.id);
        assert.equal(typeof got?.createdAt, 'number');
        assert.deepEqual(got, tenant);
      } finally {
        await store.close();
      }
    });

    void it('reports an unreachable server as an error, not a hang', { timeout: 20_000 }, async () => {
      // Port 1 on loopback: nothing listens there.
      await assert.rejects(openStore('postgres://nobody@127.0.0.1:1/none'));
    });
  });
}
