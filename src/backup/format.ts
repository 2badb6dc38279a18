/**
 * The backup file of an embedded store (`openmsi backup`): three lines, then the database.
 *
 *   openmsi-backup 1\n            the format and its version
 *   {header JSON}\n               {@link BackupHeader}: when, under which master key, the data dir's files
 *   <mac>\n                       HMAC-SHA256 of the header line under the master key (base64url)
 *   <SQLite database bytes>       a consistent copy of the store; its length and SHA-256 are in the header
 *
 * Nothing in it is readable without the master key, which it never holds: the store's secrets and the CA and
 * TLS keys are encrypted under that key already, and the admin credential is encrypted here. The MAC binds the
 * header (and through its digest, the database) to the key, so a restore detects a changed or foreign file.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { MasterKey } from '../pki/master-key.js';

export const BACKUP_FORMAT = 'openmsi-backup';
export const BACKUP_VERSION = 1;
const MAGIC_LINE = `${BACKUP_FORMAT} ${String(BACKUP_VERSION)}`;
/** What the MAC and the admin credential's encryption are bound to. */
export const BACKUP_MAC_PURPOSE = 'backup-header';
export const BACKUP_ADMIN_AAD = 'backup:admin.json';
/** The header is a few KB (certificates, encrypted keys); anything near this bound is not a backup. */
const MAX_HEADER_BYTES = 1024 * 1024;

/** The data-dir files a backup carries, by their path in the data dir (the master key is never one of them). */
export const BACKED_UP_FILES = ['config.json', 'ca/ca.pem', 'ca/ca.key.enc', 'tls/server.pem', 'tls/server.key.enc'] as const;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  /** When the copy of the store was taken (ISO 8601). */
  createdAt: string;
  /** {@link MasterKey.keyId} of the key everything in the backup is encrypted under. */
  masterKeyId: string;
  /** The newest schema migration applied to the store when it was copied. */
  migration: string | null;
  store: 'sqlite';
  /** {@link BACKED_UP_FILES} by path: public, or encrypted under the master key already. */
  files: Record<string, string>;
  /** `admin.json`, encrypted under the master key (aad {@link BACKUP_ADMIN_AAD}). */
  adminCredential: string;
  database: { bytes: number; sha256: string };
}

/** A file that is not a backup, or a damaged one; the message says which file and what is wrong. */
export class BackupFormatError extends Error {
  override readonly name = 'BackupFormatError';
}

/** The three lines before the database, MAC'd under `masterKey`. */
export function encodeBackupPrefix(header: BackupHeader, masterKey: MasterKey): Buffer {
  const line = JSON.stringify(header);
  return Buffer.from(`${MAGIC_LINE}\n${line}\n${masterKey.mac(BACKUP_MAC_PURPOSE, line)}\n`, 'utf8');
}

/** A backup file's header as read, before any key checked it. */
export interface ReadBackup {
  header: BackupHeader;
  /** The exact header line the MAC covers. */
  headerLine: string;
  mac: string;
  /** Where the database starts in the file. */
  databaseOffset: number;
}

/** Reads and checks the shape of `path`'s header (not its MAC: that needs the key, see {@link verifyBackupMac}). */
export function readBackupHeader(path: string): ReadBackup {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackupFormatError(code === 'ENOENT' ? `no backup file at ${path}` : `cannot read the backup ${path}: ${(err as Error).message}`, { cause: err });
  }
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(MAX_HEADER_BYTES);
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
  const first = head.indexOf(0x0a);
  const magic = first < 0 ? '' : head.subarray(0, first).toString('utf8');
  if (!magic.startsWith(`${BACKUP_FORMAT} `)) throw new BackupFormatError(`${path} is not an openmsi backup (it does not start with "${MAGIC_LINE}")`);
  if (magic !== MAGIC_LINE) {
    throw new BackupFormatError(
      `${path} is an openmsi backup of format version ${magic.slice(BACKUP_FORMAT.length + 1)}; this release reads version ${String(BACKUP_VERSION)}`,
    );
  }
  const second = head.indexOf(0x0a, first + 1);
  const third = second < 0 ? -1 : head.indexOf(0x0a, second + 1);
  if (third < 0) throw new BackupFormatError(`${path} is a truncated or damaged openmsi backup (its header is incomplete)`);
  const headerLine = head.subarray(first + 1, second).toString('utf8');
  const mac = head.subarray(second + 1, third).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerLine);
  } catch (err) {
    throw new BackupFormatError(`${path} is a damaged openmsi backup (its header is not JSON)`, { cause: err });
  }
  const header = checkHeader(parsed);
  if (header === undefined) throw new BackupFormatError(`${path} is a damaged openmsi backup (its header lacks required fields)`);
  return { header, headerLine, mac, databaseOffset: third + 1 };
}

/** True when the header line was MAC'd under `masterKey` (so: unchanged, and made under this key). */
export function verifyBackupMac(backup: ReadBackup, masterKey: MasterKey): boolean {
  return masterKey.verifyMac(BACKUP_MAC_PURPOSE, backup.headerLine, backup.mac);
}

function checkHeader(value: unknown): BackupHeader | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const h = value as Record<string, unknown>;
  const database = h['database'] as Record<string, unknown> | null | undefined;
  const files = h['files'] as Record<string, unknown> | null | undefined;
  const ok =
    h['format'] === BACKUP_FORMAT &&
    h['version'] === BACKUP_VERSION &&
    typeof h['createdAt'] === 'string' &&
    typeof h['masterKeyId'] === 'string' &&
    (h['migration'] === null || typeof h['migration'] === 'string') &&
    h['store'] === 'sqlite' &&
    typeof h['adminCredential'] === 'string' &&
    typeof database === 'object' &&
    database !== null &&
    Number.isSafeInteger(database['bytes']) &&
    typeof database['sha256'] === 'string' &&
    typeof files === 'object' &&
    files !== null &&
    BACKED_UP_FILES.every((name) => typeof files[name] === 'string') &&
    Object.keys(files).every((name) => (BACKED_UP_FILES as readonly string[]).includes(name));
  return ok ? (value as BackupHeader) : undefined;
}
