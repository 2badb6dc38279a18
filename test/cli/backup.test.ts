/**
 * `openmsi backup --out FILE` against a running server while secrets are being written, and `openmsi restore FILE`
 * into a fresh data dir holding the same master key: the restored server verifies tokens the original issued,
 * reads every acknowledged secret back and keeps the role assignment. Restore refuses while a server runs, with
 * another (or no) master key, without --yes when there is no terminal, and a changed backup.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendSuiteOptions, registerTestApplication, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { openmsi, openmsiJson } from '../support/agent-process.js';
import { untilTrue } from '../support/poll.js';
import { vaultRequest } from '../support/vault.js';
import {
  ARM,
  VAULT,
  assertReaderHolds,
  assertSignedByServerKeys,
  clientCredentialsToken,
  assertTokenVerifies,
  readSecret,
  startOnDataDir,
  type ExistingAuthority,
} from '../support/restored-world.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { dataDirLayout } from '../../src/shared/data-dir.js';

const VAULT_NAME = 'backup-vault';
const mode = (path: string) => statSync(path).mode & 0o777;

/** A fresh data dir holding only `masterKeyFrom`'s master.key (0600), or a new key. */
function freshDataDir(root: string, name: string, masterKeyFrom?: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { mode: 0o700 });
  if (masterKeyFrom === undefined) MasterKey.createFile(dir);
  else copyFileSync(dataDirLayout(masterKeyFrom).masterKey, dataDirLayout(dir).masterKey);
  return dir;
}

void describe('openmsi backup and restore (embedded store)', { timeout: 300_000 }, () => {
  let t: TestAuthority;
  let root: string;
  let principalId: string;
  let scope: string;
  let vaultToken: string;

  const putSecret = async (name: string, value: string) => {
    const response = await vaultRequest(`https://${VAULT_NAME}.vault.localhost:${new URL(t.url).port}/secrets/${name}?api-version=7.4`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${vaultToken}` },
      body: JSON.stringify({ value }),
      ca: t.caPem,
    });
    assert.equal(response.status, 200, response.body);
  };

  before(async () => {
    t = await startTestAuthority();
    root = mkdtempSync(join(tmpdir(), 'openmsi-backup-'));
    await openmsiJson(t, ['group', 'create', '-n', 'backup-rg', '-l', 'westeurope']);
    principalId = (await openmsiJson<{ principalId: string }>(t, ['identity', 'create', '-n', 'backup-id', '-g', 'backup-rg'])).principalId;
    scope = `/subscriptions/${t.subscriptionId}/resourceGroups/backup-rg`;
    await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', principalId, '--role', 'Reader', '--scope', scope]);
    await openmsiJson(t, ['keyvault', 'create', '-g', 'backup-rg', '-n', VAULT_NAME, '--enable-rbac-authorization', 'false']);
    vaultToken = await t.adminToken(VAULT);
    await putSecret('kept', 'the value kept');
    // Enough data that SQLite's online copy takes several steps, between which the server serves the writes below.
    for (let n = 0; n < 120; n++) await putSecret(`bulk-${String(n)}`, `${String(n)}:${'b'.repeat(20_000)}`);
  });
  after(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  let backupFile: string;
  let oldToken: string;

  it('takes a backup while secrets are written, and a restore of it serves tokens, secrets and assignments', async () => {
    oldToken = await t.adminToken(ARM);
    const acked = new Map<string, string>();
    let stop = false;
    const writer = (async () => {
      for (let n = 0; !stop; n++) {
        const name = `w-${String(n)}`;
        const value = `written ${String(n)} ${'w'.repeat(2_000)}`;
        await putSecret(name, value);
        acked.set(name, value);
      }
    })();
    await untilTrue('the writer is writing', () => acked.size >= 3);
    const ackedBefore = [...acked.keys()];
    backupFile = join(root, 'openmsi.backup');
    const run = await openmsi(t, ['backup', '--out', backupFile]);
    const ackedDuring = acked.size - ackedBefore.length;
    stop = true;
    await writer;
    assert.equal(run.code, 0, run.stderr);
    assert.notEqual(run.stdout, '', `no summary; stderr: ${run.stderr}`);
    assert.ok(ackedDuring > 0, 'writes were acknowledged while the backup ran');
    const summary = JSON.parse(run.stdout) as { file: string; bytes: number; masterKeyId: string; migration: string };
    assert.equal(summary.file, backupFile);
    assert.equal(summary.bytes, statSync(backupFile).size);
    assert.equal(summary.masterKeyId, t.ctx.masterKey.keyId());
    assert.equal(mode(backupFile), 0o600);
    // The server's temp copy is gone, and the file holds nothing in the clear: no secret value, no admin secret.
    assert.deepEqual(
      readdirSync(join(dataDirLayout(t.dataDir).sqlite, '..')).filter((name) => name.startsWith('.backup-')),
      [],
    );
    const bytes = readFileSync(backupFile);
    assert.ok(!bytes.includes('the value kept'), 'secret values stay encrypted');
    assert.ok(!bytes.includes(t.admin.clientSecret), 'the admin credential is encrypted');

    const target = freshDataDir(root, 'restored', t.dataDir);
    const restored = await openmsi(t, ['--data-dir', target, 'restore', backupFile, '--yes']);
    assert.equal(restored.code, 0, restored.stderr);
    assert.equal((JSON.parse(restored.stdout) as { dataDir: string }).dataDir, target);
    const layout = dataDirLayout(target);
    for (const file of [layout.config, layout.adminCredential, layout.caKey, layout.serverKey, layout.sqlite]) assert.equal(mode(file), 0o600, file);
    for (const dir of [join(target, 'ca'), join(target, 'tls'), join(target, 'store')]) assert.equal(mode(dir), 0o700, dir);

    const r = await startOnDataDir(target);
    try {
      // A token the original server issued before the backup verifies with the restored server's published keys (its
      // issuer names the original's port, which this test's restored server does not listen on: a restored
      // installation keeps its config.json, so in production the issuer is the same too).
      const oldKid = await assertSignedByServerKeys(r, oldToken, ARM);
      assert.equal(await assertTokenVerifies(r, await r.adminToken(ARM), ARM), oldKid, 'the restored server signs with the same key');
      assert.equal(await readSecret(r, VAULT_NAME, 'kept'), 'the value kept');
      assert.equal(await readSecret(r, VAULT_NAME, 'bulk-119'), `119:${'b'.repeat(20_000)}`);
      // Every write acknowledged before the backup began is in it; whatever else is, is whole.
      const token = await r.adminToken(VAULT);
      let present = 0;
      for (const [name, value] of acked) {
        const response = await vaultRequest(`https://${VAULT_NAME}.vault.localhost:${String(r.port)}/secrets/${name}?api-version=7.4`, {
          headers: { authorization: `Bearer ${token}` },
          ca: r.caPem,
        });
        if (ackedBefore.includes(name)) assert.equal(response.status, 200, `${name} was acknowledged before the backup`);
        if (response.status === 404) continue;
        assert.equal(response.status, 200, response.body);
        assert.equal((JSON.parse(response.body) as { value: string }).value, value);
        present++;
      }
      assert.ok(present >= ackedBefore.length);
      await assertReaderHolds(r, principalId, scope);
      await vaultRequest(`https://${VAULT_NAME}.vault.localhost:${String(r.port)}/secrets/after-backup?api-version=7.4`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ value: 'written after the backup' }),
        ca: r.caPem,
      });
    } finally {
      await r.close();
    }

    // Restoring over a data dir that has a store replaces it: what was written since is gone, the backup's data is back.
    const again = await openmsi(t, ['--data-dir', target, 'restore', backupFile, '--yes']);
    assert.equal(again.code, 0, again.stderr);
    const back = await startOnDataDir(target);
    try {
      assert.equal(await readSecret(back, VAULT_NAME, 'kept'), 'the value kept');
      const gone = await vaultRequest(`https://${VAULT_NAME}.vault.localhost:${String(back.port)}/secrets/after-backup?api-version=7.4`, {
        headers: { authorization: `Bearer ${await back.adminToken(VAULT)}` },
        ca: back.caPem,
      });
      assert.equal(gone.status, 404);
    } finally {
      await back.close();
    }
  });

  it('refuses to restore while a server runs on the data dir, even without its running record', async () => {
    const refused = await openmsi(t, ['restore', backupFile, '--yes']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: an openmsi server is running on .* stop it, then restore/);
    rmSync(dataDirLayout(t.dataDir).runningAuthority, { force: true });
    const byLock = await openmsi(t, ['restore', backupFile, '--yes']);
    assert.equal(byLock.code, 1);
    assert.match(byLock.stderr, /^error: an openmsi server is running on .*it holds .*openmsi\.db/);
    assert.equal(await readSecret(asExisting(t), VAULT_NAME, 'kept'), 'the value kept', 'the running store is untouched');
  });

  it('refuses a data dir with another master key, or none, and writes nothing there', async () => {
    const other = freshDataDir(root, 'other-key');
    const refused = await openmsi(t, ['--data-dir', other, 'restore', backupFile, '--yes']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: the backup .* was made under another master key \(key id [\w-]+\) than the one of .* \(key id [\w-]+\)/);
    assert.ok(!existsSync(dataDirLayout(other).config) && !existsSync(dataDirLayout(other).sqlite), 'nothing written');

    const none = join(root, 'no-key');
    mkdirSync(none, { mode: 0o700 });
    const noKey = await openmsi(t, ['--data-dir', none, 'restore', backupFile, '--yes']);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /A backup never holds the master key: put the master\.key of the installation the backup came from/);
  });

  it('asks before replacing: without --yes and no terminal, refuses and changes nothing', async () => {
    const target = freshDataDir(root, 'unconfirmed', t.dataDir);
    const refused = await openmsi(t, ['--data-dir', target, 'restore', backupFile]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: restore would replace the store and files of .* there is no terminal to confirm on: pass --yes/);
    assert.ok(!existsSync(dataDirLayout(target).config), 'nothing written');
  });

  it('refuses a changed or truncated backup', async () => {
    const target = freshDataDir(root, 'tampered', t.dataDir);
    const bytes = readFileSync(backupFile);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 100] = (flipped[flipped.length - 100]! + 1) % 256;
    writeFileSync(join(root, 'flipped.backup'), flipped);
    const damaged = await openmsi(t, ['--data-dir', target, 'restore', join(root, 'flipped.backup'), '--yes']);
    assert.match(damaged.stderr, /truncated or damaged \(its database is not the one its header describes\)/);
    const text = bytes.toString('latin1');
    writeFileSync(
      join(root, 'header.backup'),
      Buffer.from(text.replace('"store":"sqlite"', '"store":"sqlite" ').replace('"migration"', '"migration" '), 'latin1'),
    );
    const header = await openmsi(t, ['--data-dir', target, 'restore', join(root, 'header.backup'), '--yes']);
    assert.match(header.stderr, /changed or damaged after it was made \(its header does not match its MAC\)/);
    writeFileSync(join(root, 'short.backup'), bytes.subarray(0, bytes.length - 10));
    const short = await openmsi(t, ['--data-dir', target, 'restore', join(root, 'short.backup'), '--yes']);
    assert.match(short.stderr, /truncated or damaged/);
    writeFileSync(join(root, 'not.backup'), 'hello\n');
    const not = await openmsi(t, ['--data-dir', target, 'restore', join(root, 'not.backup'), '--yes']);
    assert.match(not.stderr, /is not an openmsi backup/);
    assert.ok(!existsSync(dataDirLayout(target).config) && !existsSync(dataDirLayout(target).sqlite), 'nothing written');
  });

  it('a Reader and a Contributor at / get 403 from POST /openmsi/backup; the Owner gets the file', async () => {
    for (const role of ['Reader', 'Contributor']) {
      const app = await registerTestApplication(t, `backup-${role}`, { certificate: false });
      await openmsiJson(t, ['role', 'assignment', 'create', '--assignee', app.appId, '--role', role, '--scope', '/']);
      const token = await clientCredentialsToken(t.app, t.tenantId, { clientId: app.appId, clientSecret: app.secret }, ARM);
      const response = await t.app.inject({ method: 'POST', url: '/openmsi/backup', headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.statusCode, 403, role);
      assert.equal(response.json<{ error: { code: string } }>().error.code, 'AuthorizationFailed');
    }
    const owner = await t.app.inject({ method: 'POST', url: '/openmsi/backup', headers: { authorization: `Bearer ${await t.adminToken(ARM)}` } });
    assert.equal(owner.statusCode, 200);
    assert.equal(owner.headers['content-type'], 'application/octet-stream');
    assert.ok(owner.rawPayload.subarray(0, 17).equals(Buffer.from('openmsi-backup 1\n')));
    const unauthenticated = await t.app.inject({ method: 'POST', url: '/openmsi/backup' });
    assert.equal(unauthenticated.statusCode, 401);
  });
});

void describe('openmsi backup on PostgreSQL', { ...backendSuiteOptions('postgres'), timeout: 120_000 }, () => {
  let t: TestAuthority;
  before(async () => {
    t = await startTestAuthority({ backend: 'postgres' });
  });
  after(async () => {
    await t?.close();
  });

  it('says to use pg_dump, and writes no file', async () => {
    const out = join(t.dataDir, 'pg.backup');
    const run = await openmsi(t, ['backup', '--out', out]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /^error: \(BackupNotSupported\) This server keeps its store in PostgreSQL: back it up with pg_dump/);
    assert.ok(!existsSync(out));
  });
});

function asExisting(t: TestAuthority): ExistingAuthority {
  return {
    server: t.authority,
    url: t.url,
    port: Number(new URL(t.url).port),
    dataDir: t.dataDir,
    admin: t.admin,
    caPem: t.caPem,
    adminToken: (audience) => t.adminToken(audience),
    close: () => Promise.resolve(),
  };
}
