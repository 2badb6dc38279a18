/**
 * A small JSON file a running process writes into its data dir (`run/*.json`) so that other commands find
 * it on whatever port it took; a record left by a process that is gone is ignored. Used for the authority
 * (running-authority.ts) and the agent (running-agent.ts).
 */
import { readFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { makePrivateDir, writePrivateFileAtomic } from './private-files.js';

/** What every record has: the origin it serves, its pid and when it started. */
export interface ProcessRecord {
  url: string;
  pid: number;
  startedAt: string;
}

/** Writes the record atomically (a reader never sees half a file). */
export function writeProcessRecord(path: string, record: ProcessRecord): void {
  makePrivateDir(dirname(path));
  writePrivateFileAtomic(path, JSON.stringify(record, null, 2) + '\n');
}

/** Removes the record on a clean shutdown, unless another process on the same data dir has replaced it. */
export function removeProcessRecord(path: string): void {
  if (readJsonRecord(path)?.pid === process.pid) rmSync(path, { force: true });
}

/**
 * The record at `path` if its process is alive: a record whose process is gone (killed, crashed, machine
 * rebooted) is stale, as is an unreadable one. `refine` checks and picks the fields beyond the common ones.
 */
export function readLiveProcessRecord<T extends ProcessRecord>(
  path: string,
  refine: (parsed: Record<string, unknown>, common: ProcessRecord) => T | undefined,
): (T & { path: string }) | undefined {
  const parsed = readJsonRecord(path);
  if (parsed === undefined || !isAlive(parsed.pid)) return undefined;
  const record = refine(parsed.raw, { url: parsed.url, pid: parsed.pid, startedAt: parsed.startedAt });
  return record === undefined ? undefined : { ...record, path };
}

function readJsonRecord(path: string): (ProcessRecord & { raw: Record<string, unknown> }) | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const raw = (parsed ?? {}) as Record<string, unknown>;
  const { url, pid, startedAt } = raw;
  if (typeof url !== 'string' || !URL.canParse(url) || typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  return { url, pid, startedAt: typeof startedAt === 'string' ? startedAt : '', raw };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user (a process run as a service account).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
