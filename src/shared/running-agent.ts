/**
 * What a running `openmsi agent` writes to its data dir (`run/agent.json`) so that `openmsi run` and
 * `openmsi agent env` find it on whatever port it took. Modelled on running-authority.ts.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hostForUrl } from './public-url.js';

export interface RunningAgent {
  /** `http://<loopback address>:<port>`: the origin every surface is served on. */
  url: string;
  port: number;
  pid: number;
  startedAt: string;
}

/** `<agent data dir>/run/agent.json`. */
export function runningAgentPath(dataDir: string): string {
  return join(dataDir, 'run', 'agent.json');
}

/** Records the running agent (atomically: a reader never sees half a file). */
export function writeRunningAgent(dataDir: string, port: number, host = '127.0.0.1'): void {
  const path = runningAgentPath(dataDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const record: RunningAgent = { url: `http://${hostForUrl(host)}:${String(port)}`, port, pid: process.pid, startedAt: new Date().toISOString() };
  const temp = `${path}.${String(process.pid)}.tmp`;
  writeFileSync(temp, JSON.stringify(record, null, 2) + '\n', { mode: 0o644 });
  renameSync(temp, path);
}

/** Removes the record on a clean shutdown, unless another agent on the same data dir has replaced it. */
export function removeRunningAgent(dataDir: string): void {
  const path = runningAgentPath(dataDir);
  if (readRecord(path)?.pid === process.pid) rmSync(path, { force: true });
}

/** The agent running from this data dir, if one is; a record whose process is gone, or unreadable, is ignored. */
export function readRunningAgent(dataDir: string): (RunningAgent & { path: string }) | undefined {
  const path = runningAgentPath(dataDir);
  const record = readRecord(path);
  if (record === undefined || !isAlive(record.pid)) return undefined;
  return { ...record, path };
}

function readRecord(path: string): RunningAgent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  const { url, port, pid, startedAt } = (parsed ?? {}) as Partial<RunningAgent>;
  if (typeof url !== 'string' || !URL.canParse(url) || typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined;
  if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
  return { url, port, pid, startedAt: typeof startedAt === 'string' ? startedAt : '' };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user (an agent run as a service account).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
