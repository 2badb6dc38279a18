import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir } from '../../src/authority/init.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';

const env = { ...process.env, OPENMSI_MASTER_KEY: '', OPENMSI_STORE: '' };

describe('openmsi init', () => {
  it('creates a data dir whose secrets are 0600 or encrypted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-init-'));
    try {
      const result = await initDataDir({ dataDir: dir, env });
      const layout = dataDirLayout(dir);
      assert.equal(statSync(layout.adminCredential).mode & 0o777, 0o600);
      assert.equal(statSync(layout.masterKey).mode & 0o777, 0o600);
      assert.equal(statSync(dir).mode & 0o077, 0);
      const admin = JSON.parse(readFileSync(layout.adminCredential, 'utf8')) as { clientSecret: string; clientId: string };
      assert.equal(admin.clientId, result.admin.clientId);
      assert.ok(admin.clientSecret.length >= 40);
      for (const encrypted of [layout.serverKey, layout.caKey]) {
        const text = readFileSync(encrypted, 'utf8');
        assert.doesNotMatch(text, /PRIVATE KEY/);
        assert.match(text, /^v1\./);
      }
      assert.match(readFileSync(layout.caCert, 'utf8'), /^-----BEGIN CERTIFICATE-----/);
      // The secret is only in admin.json: the store holds a keyed hash.
      const db = readFileSync(layout.sqlite);
      assert.equal(db.includes(Buffer.from(admin.clientSecret)), false);
      const config = JSON.parse(readFileSync(layout.config, 'utf8')) as { publicUrl?: string; port: number; tokenLifetimeSeconds: number };
      // No public URL was given, so none is recorded: the advertised URL follows the port the authority listens on.
      assert.equal(config.publicUrl, undefined);
      assert.equal(config.port, 8443);
      assert.equal(config.tokenLifetimeSeconds, 3600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an initialised data dir, a store that already holds a directory, and a lifetime over 24 h', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'openmsi-init-'));
    const other = mkdtempSync(join(tmpdir(), 'openmsi-init-'));
    try {
      await initDataDir({ dataDir: dir, env });
      await assert.rejects(initDataDir({ dataDir: dir, env }), /already initialised/);
      await assert.rejects(initDataDir({ dataDir: other, env, store: dataDirLayout(dir).sqlite }), /already holds an openmsi directory/);
      // Nothing half-made is left behind: a corrected retry succeeds.
      assert.equal(existsSync(dataDirLayout(other).masterKey), false);
      await initDataDir({ dataDir: other, env });
      await assert.rejects(initDataDir({ dataDir: join(other, 'x'), env, tokenLifetimeSeconds: 86_401 }), /token-lifetime/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('creates the data dir completely or not at all, and a retry just works', async () => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-init-'));
    try {
      // The store cannot be created (its parent is a file): init fails after the key, CA and TLS files were made.
      const blocker = join(root, 'not-a-dir');
      writeFileSync(blocker, '');
      const fresh = join(root, 'fresh');
      await assert.rejects(initDataDir({ dataDir: fresh, env, store: join(blocker, 'x.db') }));
      assert.equal(existsSync(fresh), false, 'a data dir this init created is removed again');

      const empty = join(root, 'empty');
      mkdirSync(empty);
      await assert.rejects(initDataDir({ dataDir: empty, env, store: join(blocker, 'x.db') }));
      assert.deepEqual(readdirSync(empty), [], 'an existing empty data dir is left empty');

      await initDataDir({ dataDir: fresh, env });
      await initDataDir({ dataDir: empty, env });
      for (const dir of [fresh, empty]) {
        assert.deepEqual(readdirSync(dir).sort(), ['admin.json', 'ca', 'config.json', 'master.key', 'store', 'tls']);
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a non-empty directory that is not a data dir, naming it, but clears what a killed init left', async () => {
    const root = mkdtempSync(join(tmpdir(), 'openmsi-init-'));
    try {
      const foreign = join(root, 'foreign');
      mkdirSync(foreign);
      writeFileSync(join(foreign, 'master.key'), 'x');
      await assert.rejects(initDataDir({ dataDir: foreign, env }), (err: Error) => {
        assert.match(err.message, new RegExp(`^${foreign} is not empty \\(master\\.key\\) but has no config\\.json`));
        assert.match(err.message, /Choose another --data-dir, or move that directory aside/);
        return true;
      });
      assert.deepEqual(readdirSync(foreign), ['master.key']);

      const killed = join(root, 'killed');
      mkdirSync(join(killed, '.init-abc123', 'ca'), { recursive: true });
      writeFileSync(join(killed, '.init-abc123', 'master.key'), 'x');
      await initDataDir({ dataDir: killed, env });
      assert.equal(
        readdirSync(killed).some((name) => name.startsWith('.init-')),
        false,
      );
      assert.ok(existsSync(dataDirLayout(killed).config));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
