/**
 * The one way openmsi writes to disk: every file it writes is 0600 and every folder it creates 0700, whatever
 * the umask (issue 15, finding 8). A mode given at creation is only narrowed by the umask, never widened, so
 * 0600/0700 at creation hold under `umask 000`; a file that already existed keeps its old mode through
 * `open`/`writeFile`, so each writer here also sets the mode explicitly on the open descriptor.
 *
 * Every writer in src/ goes through this module (grep writeFileSync, mkdirSync, openSync, createWriteStream
 * and better-sqlite3 opens to check). The two exceptions are files for other users: a system trust anchor
 * (`openmsi dev trust`, {@link writePublicFile}) and the system hosts file (dev/hosts-file.ts, which keeps
 * the mode the file had).
 */
import { closeSync, existsSync, fchmodSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { open, mkdir, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
/** Only for files other users must read (a system trust anchor). */
const PUBLIC_FILE_MODE = 0o644;

/**
 * Creates `path` and any missing parents with 0700. Directories that already existed keep their mode: they
 * may be shared (`/var/lib`), and openmsi did not create them.
 */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** {@link makePrivateDir}, asynchronously. */
export async function makePrivateDirAsync(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/**
 * Opens `path` with `flags` (`'wx'`, `'w'`, `'a'`…), creating it 0600 and setting 0600 on a file that existed.
 * Like every writer here it does not create the folder: callers that own one make it with {@link makePrivateDir}.
 */
export function openPrivateFile(path: string, flags: string): number {
  const fd = openSync(path, flags, PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** {@link openPrivateFile}, asynchronously. */
export async function openPrivateFileAsync(path: string, flags: string): Promise<FileHandle> {
  const handle = await open(path, flags, PRIVATE_FILE_MODE);
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

/** Writes `content` to `path` (0600; `flag: 'wx'` refuses to replace a file). With `sync`, fsyncs before closing. */
export function writePrivateFile(path: string, content: string | Uint8Array, options: { flag?: 'w' | 'wx'; sync?: boolean } = {}): void {
  writeWithMode(path, content, PRIVATE_FILE_MODE, options);
}

/** Writes `content` to `path` atomically (a temp file in the same folder, fsynced, then renamed), 0600. */
export function writePrivateFileAtomic(path: string, content: string | Uint8Array): void {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeWithMode(temp, content, PRIVATE_FILE_MODE, { flag: 'wx', sync: true });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** Writes a file other users must read (0644): only a system trust anchor. Atomic, like {@link writePrivateFileAtomic}. */
export function writePublicFile(path: string, content: string): void {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeWithMode(temp, content, PUBLIC_FILE_MODE, { flag: 'wx' });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Prepares a SQLite store file before better-sqlite3 opens it: its folder 0700 when created, the file
 * created empty with 0600 when missing (SQLite would create it 0644 & ~umask), and 0600 set on the file and
 * on a `-wal`, `-shm` or `-journal` that exists. SQLite creates those companions with the main file's mode,
 * so they follow it; {@link securePrivateSqlite} checks again once the store is open. Wherever the store is:
 * inside the data dir or not.
 */
export function preparePrivateSqlite(path: string): void {
  makePrivateDir(dirname(path));
  closeSync(openPrivateFile(path, 'a'));
  securePrivateSqlite(path);
}

/** Sets 0600 on the SQLite companions of `path` that exist now. */
export function securePrivateSqlite(path: string): void {
  for (const companion of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    if (existsSync(companion)) chmodSync(companion, PRIVATE_FILE_MODE);
  }
}

function writeWithMode(path: string, content: string | Uint8Array, mode: number, options: { flag?: 'w' | 'wx'; sync?: boolean }): void {
  const fd = openSync(path, options.flag ?? 'w', mode);
  try {
    fchmodSync(fd, mode);
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    if (options.sync === true) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
