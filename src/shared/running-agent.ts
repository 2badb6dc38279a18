/**
 * What a running `openmsi agent` writes to its data dir (`run/agent.json`) so that `openmsi run` and
 * `openmsi agent env` find it on whatever port it took.
 */
import { join } from 'node:path';
import { hostForUrl } from './public-url.js';
import { readLiveProcessRecord, removeProcessRecord, writeProcessRecord, type ProcessRecord } from './process-record.js';

export interface RunningAgent extends ProcessRecord {
  /** `http://<loopback address>:<port>`: the origin every surface is served on. */
  url: string;
  port: number;
}

/** `<agent data dir>/run/agent.json`. */
export function runningAgentPath(dataDir: string): string {
  return join(dataDir, 'run', 'agent.json');
}

/** Records the running agent (atomically: a reader never sees half a file). */
export function writeRunningAgent(dataDir: string, port: number, host = '127.0.0.1'): void {
  const record: RunningAgent = { url: `http://${hostForUrl(host)}:${String(port)}`, port, pid: process.pid, startedAt: new Date().toISOString() };
  writeProcessRecord(runningAgentPath(dataDir), record);
}

/** Removes the record on a clean shutdown, unless another agent on the same data dir has replaced it. */
export function removeRunningAgent(dataDir: string): void {
  removeProcessRecord(runningAgentPath(dataDir));
}

/** The agent running from this data dir, if one is; a record whose process is gone, or unreadable, is ignored. */
export function readRunningAgent(dataDir: string): (RunningAgent & { path: string }) | undefined {
  return readLiveProcessRecord(runningAgentPath(dataDir), (raw, common) => {
    const port = raw['port'];
    if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) return undefined;
    return { ...common, port };
  });
}
