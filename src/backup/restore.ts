/**
 * `openmsi restore FILE`: replaces the store and the files of a data dir with a backup's (format.ts), for a
 * data dir that holds the master key the backup was made under and on which no server runs.
 */
import SqliteDatabase from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ENV, storeLocation, type InstallationConfig } from '../shared/config.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { makePrivateDir, openPrivateFile, writePrivateFileAtomic } from '../shared/private-files.js';
import { readRunningAuthority } from '../shared/running-authority.js';
import { MasterKey } from '../pki/master-key.js';
import { isPostgresLocation } from '../store/location.js';
import { openSqlite, StoreLockedError } from '../store/sqlite.js';
import { openStore } from '../store/open.js';
import { BACKED_UP_FILES, BACKUP_ADMIN_AAD, BackupFormatError, readBackupHeader, verifyBackupMac, type BackupHeader, type ReadBackup } from './format.js';

/** A restore that must not go ahead; the message says why and what to do. */
export class RestoreRefusedError extends Error {
  override readonly name = 'RestoreRefusedError';
}

export interface RestoreOptions {
  file: string;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** Asked once every check passed, before anything is written; false stops the restore. */
  confirm(plan: RestorePlan): Promise<boolean>;
}

/** What a restore is about to do (for the confirmation question). */
export interface RestorePlan {
  dataDir: string;
  store: string;
  backup: BackupHeader;
}

export interface RestoreResult extends RestorePlan {
  /** The newest migration applied after the restored store was brought up to this release's schema. */
  migration: string | null;
}

/**
 * Checks the backup against the data dir (same master key, MAC, database digest, SQLite integrity), asks
 * `confirm`, then replaces the data dir's files and store and migrates the store. Refuses while a server holds
 * the store. Nothing in the data dir changes unless every check passed and `confirm` said yes.
 */
export async function restoreBackup(options: RestoreOptions): Promise<RestoreResult | undefined> {
  const env = options.env ?? process.env;
  const { dataDir, file } = options;
  const backup = readBackupHeader(file);
  const masterKey = loadMasterKey(dataDir, env, backup.header);
  if (masterKey.keyId() !== backup.header.masterKeyId) {
    throw new RestoreRefusedError(
      `the backup ${file} was made under another master key (key id ${backup.header.masterKeyId}) than the one of ${dataDir} (key id ${masterKey.keyId()}); ` +
        `nothing in it can be decrypted with this one. Restore into a data dir holding the master.key of the installation the backup came from ` +
        `(copy it there with mode 0600, or set ${ENV.masterKey} to it)`,
    );
  }
  if (!verifyBackupMac(backup, masterKey)) {
    throw new BackupFormatError(`the backup ${file} was changed or damaged after it was made (its header does not match its MAC); use another backup`);
  }
  const config = JSON.parse(backup.header.files['config.json']!) as InstallationConfig;
  const store = storeLocation(dataDir, config, env);
  if (isPostgresLocation(store)) {
    throw new RestoreRefusedError(
      `${ENV.store} names a PostgreSQL store; openmsi restore replaces an embedded store only (PostgreSQL: pg_restore, docs/operations.md)`,
    );
  }
  const admin = masterKey.decrypt(backup.header.adminCredential, BACKUP_ADMIN_AAD);

  const running = readRunningAuthority(dataDir);
  if (running !== undefined) throw serverRunning(dataDir, `pid ${String(running.pid)}, ${running.url}`);
  // The store's lock says for certain whether a server holds it (the record above may be missing); held until the swap.
  let lock: { close(): Promise<void> } | undefined;
  try {
    // No store yet (a fresh data dir): nothing to hold, and nothing is created before the checks below pass.
    if (existsSync(store)) lock = openSqlite(store);
  } catch (err) {
    if (err instanceof StoreLockedError) throw serverRunning(dataDir, `it holds ${store}`);
    // A store that cannot be opened (damaged: a reason to restore) is replaced all the same.
  }
  const temp = join(dirname(store), `.restore-${randomBytes(8).toString('hex')}.db`);
  try {
    copyDatabase(file, backup, temp);
    checkIntegrity(temp, file);
    const plan: RestorePlan = { dataDir, store, backup: backup.header };
    if (!(await options.confirm(plan))) return undefined;
    const layout = dataDirLayout(dataDir);
    for (const name of BACKED_UP_FILES) {
      const path = join(dataDir, name);
      makePrivateDir(dirname(path));
      writePrivateFileAtomic(path, backup.header.files[name]!);
    }
    writePrivateFileAtomic(layout.adminCredential, admin);
    await lock?.close();
    lock = undefined;
    for (const companion of [`${store}-wal`, `${store}-shm`, `${store}-journal`]) rmSync(companion, { force: true });
    renameSync(temp, store);
    fsyncDir(dirname(store));
  } finally {
    await lock?.close();
    for (const path of [temp, `${temp}-wal`, `${temp}-shm`, `${temp}-journal`]) rmSync(path, { force: true });
  }
  // A backup of an older release is brought up to this release's schema now, not at the next start.
  const opened = await openStore(store);
  try {
    const migration = (await opened.health.check(10_000)) ?? null;
    return { dataDir, store, backup: backup.header, migration };
  } finally {
    await opened.close();
  }
}

function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv, header: BackupHeader): MasterKey {
  try {
    return MasterKey.fromEnvOrFile({ env, dataDir });
  } catch (err) {
    throw new RestoreRefusedError(
      `${(err as Error).message}. A backup never holds the master key: put the master.key of the installation the backup came from ` +
        `(key id ${header.masterKeyId}) into ${dataDir} with mode 0600, or set ${ENV.masterKey} to it, then restore`,
      { cause: err },
    );
  }
}

function serverRunning(dataDir: string, how: string): RestoreRefusedError {
  return new RestoreRefusedError(
    `an openmsi server is running on ${dataDir} (${how}): stop it, then restore (an online copy is what \`openmsi backup\` takes)`,
  );
}

/** Copies the database out of the backup into a new 0600 file, checking its length and digest. */
function copyDatabase(file: string, backup: ReadBackup, temp: string): void {
  const source = openSync(file, 'r');
  let target: number | undefined;
  try {
    makePrivateDir(dirname(temp));
    target = openPrivateFile(temp, 'wx');
    const hash = createHash('sha256');
    const buffer = Buffer.alloc(1024 * 1024);
    let position = backup.databaseOffset;
    let copied = 0;
    for (;;) {
      const read = readSync(source, buffer, 0, buffer.length, position);
      if (read === 0) break;
      const chunk = buffer.subarray(0, read);
      hash.update(chunk);
      let written = 0;
      while (written < read) written += writeSync(target, chunk, written, read - written);
      position += read;
      copied += read;
    }
    fsyncSync(target);
    if (copied !== backup.header.database.bytes || hash.digest('base64url') !== backup.header.database.sha256) {
      throw new BackupFormatError(`the backup ${file} is truncated or damaged (its database is not the one its header describes); use another backup`);
    }
  } finally {
    closeSync(source);
    if (target !== undefined) closeSync(target);
  }
}

function checkIntegrity(path: string, file: string): void {
  let db: SqliteDatabase.Database | undefined;
  try {
    db = new SqliteDatabase(path, { timeout: 0 });
    const result = db.pragma('integrity_check', { simple: true });
    if (result !== 'ok') throw new Error(String(result));
  } catch (err) {
    throw new BackupFormatError(`the database in the backup ${file} is damaged (${(err as Error).message}); use another backup`, { cause: err });
  } finally {
    db?.close();
  }
}

function fsyncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
