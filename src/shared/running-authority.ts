import { dataDirLayout } from './data-dir.js';
import { readLiveProcessRecord, removeProcessRecord, writeProcessRecord, type ProcessRecord } from './process-record.js';

/** What a running authority writes to its data dir so that the CLI can find it on whatever port it took. */
export interface RunningAuthority extends ProcessRecord {
  /** The canonical https origin it advertises. */
  url: string;
}

/** Records the running authority (atomically: a reader never sees half a file). */
export function writeRunningAuthority(dataDir: string, url: string): void {
  writeProcessRecord(dataDirLayout(dataDir).runningAuthority, { url, pid: process.pid, startedAt: new Date().toISOString() });
}

/** Removes the record on a clean shutdown, unless another authority on the same data dir has replaced it. */
export function removeRunningAuthority(dataDir: string): void {
  removeProcessRecord(dataDirLayout(dataDir).runningAuthority);
}

/**
 * The authority running from this data dir, if one is: a record whose process is gone (killed, crashed,
 * machine rebooted) is stale and ignored, as is an unreadable one.
 */
export function readRunningAuthority(dataDir: string): (RunningAuthority & { path: string }) | undefined {
  return readLiveProcessRecord(dataDirLayout(dataDir).runningAuthority, (_raw, common) => common);
}
