/**
 * Taking a backup inside the running server, the one process that may read its store (it holds the store's
 * exclusive lock): SQLite's online backup into a private temp file next to the store, then the data dir's
 * files, all streamed as one {@link BackupHeader}-prefixed file (format.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import type { Clock } from '../shared/clock.js';
import { iso } from '../shared/clock.js';
import { dataDirLayout } from '../shared/data-dir.js';
import { openPrivateFile } from '../shared/private-files.js';
import type { MasterKey } from '../pki/master-key.js';
import type { Store } from '../store/types.js';
import { BACKED_UP_FILES, BACKUP_ADMIN_AAD, BACKUP_FORMAT, BACKUP_VERSION, encodeBackupPrefix, type BackupHeader } from './format.js';

/** How long the backup waits for the store to name its schema version. */
const HEALTH_TIMEOUT_MS = 5_000;

export interface BackupSource {
  dataDir: string;
  /** The SQLite file the store lives in (the temp copy is made in its folder, which is private). */
  storePath: string;
  store: Pick<Store, 'snapshot' | 'health'>;
  masterKey: MasterKey;
  clock: Clock;
}

export interface TakenBackup {
  header: BackupHeader;
  /** Total size of the file {@link stream} yields. */
  bytes: number;
  /** The backup file's bytes; the temp copy is removed when it ends or is destroyed. */
  stream: Readable;
}

/** Copies the store (online) and the data dir's files into one backup, ready to stream. */
export async function takeBackup(source: BackupSource): Promise<TakenBackup> {
  const snapshot = source.store.snapshot;
  if (snapshot === undefined) throw new Error('this store has no online copy (PostgreSQL: use pg_dump)');
  const temp = join(dirname(source.storePath), `.backup-${randomBytes(8).toString('hex')}.db`);
  const removeTemp = () => {
    for (const path of [temp, `${temp}-journal`, `${temp}-wal`, `${temp}-shm`]) rmSync(path, { force: true });
  };
  try {
    // Created 0600 before SQLite opens it: SQLite keeps an existing file's mode (and gives its journal the same).
    closeSync(openPrivateFile(temp, 'wx'));
    const createdAt = iso(source.clock.now());
    await snapshot(temp);
    const migration = (await source.store.health.check(HEALTH_TIMEOUT_MS)) ?? null;
    const bytes = statSync(temp).size;
    const sha256 = await digest(temp);
    const layout = dataDirLayout(source.dataDir);
    const files: Record<string, string> = {};
    for (const name of BACKED_UP_FILES) files[name] = readFileSync(join(source.dataDir, name), 'utf8');
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt,
      masterKeyId: source.masterKey.keyId(),
      migration,
      store: 'sqlite',
      files,
      adminCredential: source.masterKey.encrypt(readFileSync(layout.adminCredential), BACKUP_ADMIN_AAD),
      database: { bytes, sha256 },
    };
    const prefix = encodeBackupPrefix(header, source.masterKey);
    async function* body(): AsyncGenerator<Buffer> {
      try {
        yield prefix;
        for await (const chunk of createReadStream(temp)) yield chunk as Buffer;
      } finally {
        removeTemp();
      }
    }
    const stream = Readable.from(body(), { objectMode: false });
    // Destroyed before it was read at all (the client went away): the generator never started, so clean up here.
    stream.once('close', removeTemp);
    return { header, bytes: prefix.length + bytes, stream };
  } catch (err) {
    removeTemp();
    throw err;
  }
}

function digest(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('base64url')));
  });
}
