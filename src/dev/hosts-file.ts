/**
 * `openmsi dev hosts --apply`: vault host names in `/etc/hosts`, for users who prefer name resolution to the
 * dev proxy. openmsi owns one marked block and touches nothing outside it:
 *
 *     # openmsi dev begin
 *     127.0.0.1 dev.vault.localhost
 *     # openmsi dev end
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';

export const HOSTS_BEGIN = '# openmsi dev begin';
export const HOSTS_END = '# openmsi dev end';

/** The default hosts file of this platform. */
export const DEFAULT_HOSTS_PATH = process.platform === 'win32' ? 'C:\\Windows\\System32\\drivers\\etc\\hosts' : '/etc/hosts';

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** The new content of a hosts file, and whether it differs from the old. */
export interface HostsPlan {
  content: string;
  changed: boolean;
}

/** Splits `content` around openmsi's block; throws when a block is opened and never closed (we would not know where it ends). */
function withoutBlock(content: string, file: string): { before: string[]; after: string[]; hadBlock: boolean } {
  const lines = content.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  const kept: string[] = [];
  let insertAt = -1;
  let open = -1;
  lines.forEach((line, i) => {
    const t = line.trim();
    if (t === HOSTS_BEGIN) {
      if (open >= 0) throw new Error(`${file}: line ${String(i + 1)}: "${HOSTS_BEGIN}" inside another openmsi block; fix the file by hand`);
      open = i;
      if (insertAt < 0) insertAt = kept.length;
    } else if (t === HOSTS_END) {
      if (open < 0) throw new Error(`${file}: line ${String(i + 1)}: "${HOSTS_END}" without "${HOSTS_BEGIN}"; fix the file by hand`);
      open = -1;
    } else if (open < 0) kept.push(line);
  });
  if (open >= 0) throw new Error(`${file}: line ${String(open + 1)}: "${HOSTS_BEGIN}" has no "${HOSTS_END}"; fix the file by hand`);
  return insertAt < 0 ? { before: kept, after: [], hadBlock: false } : { before: kept.slice(0, insertAt), after: kept.slice(insertAt), hadBlock: true };
}

/**
 * The hosts file `content` with openmsi's block naming `names` (deduplicated, lowercased) at `address`: an
 * older block is replaced where it stood, else the block is appended. No names removes the block. Line
 * endings follow the file (CRLF stays CRLF).
 *
 * @throws Error for an invalid host name or address, or a damaged block (the message names `file` and the line).
 */
export function planHostsEntries(names: readonly string[], content: string, options: { address?: string; file?: string } = {}): HostsPlan {
  const address = options.address ?? '127.0.0.1';
  const file = options.file ?? 'hosts file';
  if (isIP(address) === 0) throw new Error(`planHostsEntries(): ${JSON.stringify(address)} is not an IP address`);
  const unique = [...new Set(names.map((n) => n.toLowerCase().replace(/\.$/, '')))];
  for (const n of unique) {
    if (!HOSTNAME.test(n)) throw new Error(`planHostsEntries(): ${JSON.stringify(n)} is not a host name`);
  }
  const eol = content.includes('\r\n') ? '\r\n' : '\n';
  const { before, after, hadBlock } = withoutBlock(content, file);
  if (!hadBlock && unique.length === 0) return { content, changed: false };
  const block = unique.length === 0 ? [] : [HOSTS_BEGIN, ...unique.map((n) => `${address} ${n}`), HOSTS_END];
  const lines = [...before, ...block, ...after];
  const next = lines.length === 0 ? '' : `${lines.join(eol)}${eol}`;
  return { content: next, changed: next !== content };
}

/** Whether an error is the kind sudo fixes. */
function isPermission(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM' || code === 'EROFS';
}

function permissionError(path: string, err: unknown, command: string): Error {
  return new Error(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? 'permission denied'}; rerun with sudo (sudo ${command})`, { cause: err });
}

/**
 * Writes `content` to `path` keeping its mode and owner: a temp file renamed over it, or, where the file is a
 * mount point (Docker bind-mounts /etc/hosts, so rename fails with EBUSY/EXDEV), rewritten in place.
 */
// The one writer outside shared/private-files.ts: the system hosts file keeps the owner and mode it had.
function replaceFile(path: string, content: string, command: string): void {
  const st = statSync(path);
  const tmp = `${path}.openmsi-${randomBytes(6).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, content, { mode: st.mode & 0o7777 });
    chmodSync(tmp, st.mode & 0o7777);
    if (process.getuid?.() === 0) chownSync(tmp, st.uid, st.gid);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EBUSY' || code === 'EXDEV') {
      try {
        writeFileSync(path, content);
        return;
      } catch (inPlace) {
        if (isPermission(inPlace)) throw permissionError(path, inPlace, command);
        throw new Error(`cannot write ${path}: ${(inPlace as Error).message}`, { cause: inPlace });
      }
    }
    if (isPermission(err)) throw permissionError(path, err, command);
    throw new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
}

function readHosts(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Puts openmsi's block for `names` into the hosts file at `path`; writes nothing when it is already there.
 *
 * @throws Error naming `path` (and, for permission errors, the sudo command to rerun).
 */
export function applyHostsEntries(path: string, names: readonly string[], options: { address?: string } = {}): HostsPlan {
  const plan = planHostsEntries(names, readHosts(path), { ...options, file: path });
  if (plan.changed) replaceFile(path, plan.content, 'openmsi dev hosts --apply');
  return plan;
}

/** Takes openmsi's block out of the hosts file at `path`; writes nothing when there is none. */
export function removeHostsEntries(path: string): HostsPlan {
  const plan = planHostsEntries([], readHosts(path), { file: path });
  if (plan.changed) replaceFile(path, plan.content, 'openmsi dev hosts --remove');
  return plan;
}
