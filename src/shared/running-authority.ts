import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { dataDirLayout } from './data-dir.js';

/** What a running authority writes to its data dir so that the CLI can find it on whatever port it took. */
export interface RunningAuthority {
  /** The canonical https origin it advertises. */
  url: string;
  pid: number;
  startedAt: string;
}

/** Records the running authority (atomically: a reader never sees half a file). */
export function writeRunningAuthority(dataDir: string, url: string): void {
  const path = dataDirLayout(dataDir).runningAuthority;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const record: RunningAuthority = { url, pid: process.pid, startedAt: new Date().toISOString() };
  const temp = `${path}.${String(process.pid)}.tmp`;
  writeFileSync(temp, JSON.stringify(record, null, 2) + '\n', { mode: 0o644 });
  renameSync(temp, path);
}

/** Removes the record on a clean shutdown, unless another authority on the same data dir has replaced it. */
export function removeRunningAuthority(dataDir: string): void {
  const path = dataDirLayout(dataDir).runningAuthority;
  if (readRecord(path)?.pid === process.pid) rmSync(path, { force: true });
}

/**
 * The authority running from this data dir, if one is: a record whose process is gone (killed, crashed,
 * machine rebooted) is stale and ignored, as is an unreadable one.
 */
export function readRunningAuthority(dataDir: string): (RunningAuthority & { path: string }) | undefined {
  const path = dataDirLayout(dataDir).runningAuthority;
  const record = readRecord(path);
  if (record === undefined || !isAlive(record.pid)) return undefined;
  return { ...record, path };
}

function readRecord(path: string): RunningAuthority | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const { url, pid, startedAt } = (parsed ?? {}) as Partial<RunningAuthority>;
  if (typeof url !== 'string' || !URL.canParse(url) || typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  return { url, pid, startedAt: typeof startedAt === 'string' ? startedAt : '' };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user (an authority run as a service account).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
