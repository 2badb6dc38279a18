/**
 * Folding: identical audit outcomes within one flush window become one {@link AgentAuditRecord} with a
 * count and the first and last time. Only the record's own fields are copied out of an event, so nothing
 * else a caller attached to it (a header, a token) can reach a record.
 */
import { randomUUID } from 'node:crypto';
import {
  AGENT_AUDIT_FIELD_LIMITS as LIMITS,
  AGENT_SURFACES,
  AUDIT_TRUNCATION_MARKER,
  type AgentAuditRecord,
  type AgentCaller,
  type AgentSurface,
} from '../../shared/host-protocol.js';
import type { AgentAuditEvent } from '../contracts.js';

/** Why events were dropped instead of recorded one by one (the `reason` of a drop record). */
export type DropKind = 'spool_full' | 'spool_error' | 'window_full' | 'queue_full' | 'refused';

/** The `reason` prefix of a record that counts dropped events: `audit_dropped:<kind>`. */
export const DROP_REASON_PREFIX = 'audit_dropped:';

/** The caller address of a drop record: the events it counts came from callers no longer known. */
export const DROPPED_CALLER_ADDRESS = 'unknown';

/**
 * A text field as it may be recorded: each control character written as `\uXXXX` (a NUL or a line break
 * in a request reaches no log or record raw), then cut to `max` characters ending in
 * {@link AUDIT_TRUNCATION_MARKER} (never splitting a surrogate pair). Anything not a string is dropped.
 */
export function boundedField(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  // eslint-disable-next-line no-control-regex
  const text = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (text.length <= max) return text;
  let cut = max - AUDIT_TRUNCATION_MARKER.length;
  const last = text.charCodeAt(cut - 1);
  if (last >= 0xd800 && last <= 0xdbff) cut--;
  return text.slice(0, cut) + AUDIT_TRUNCATION_MARKER;
}

function callerOf(caller: AgentCaller | undefined): AgentCaller {
  const out: AgentCaller = { address: boundedField(caller?.address, LIMITS.callerAddress) ?? DROPPED_CALLER_ADDRESS };
  if (typeof caller?.pid === 'number' && Number.isInteger(caller.pid) && caller.pid >= 0 && caller.pid <= 2 ** 32) out.pid = caller.pid;
  if (typeof caller?.uid === 'number' && Number.isInteger(caller.uid) && caller.uid >= 0 && caller.uid <= 2 ** 32) out.uid = caller.uid;
  const exe = boundedField(caller?.exe, LIMITS.callerExe);
  if (exe !== undefined) out.exe = exe;
  return out;
}

/**
 * A record for one event at `at`: exactly the contract's fields, nothing else, each text field bounded
 * ({@link boundedField}, `AGENT_AUDIT_FIELD_LIMITS`), so that every record the agent spools is one the
 * authority accepts.
 */
export function recordOf(event: AgentAuditEvent, at: number, id: string = randomUUID()): AgentAuditRecord {
  if (typeof event.surface !== 'string' || typeof event.status !== 'number') throw new TypeError('not an audit event');
  const record: AgentAuditRecord = {
    id,
    at,
    lastAt: at,
    count: 1,
    decision: event.decision === 'served' ? 'served' : 'refused',
    surface: event.surface,
    caller: callerOf(event.caller),
    status: event.status,
  };
  if (event.source !== undefined) record.source = event.source;
  const identity = boundedField(event.identity, LIMITS.identity);
  if (identity !== undefined) record.identity = identity;
  const audience = boundedField(event.audience, LIMITS.audience);
  if (audience !== undefined) record.audience = audience;
  const reason = boundedField(event.reason, LIMITS.reason);
  if (reason !== undefined) record.reason = reason;
  const session = boundedField(event.session, LIMITS.session);
  if (session !== undefined) record.session = session;
  return record;
}

/** The fold key: every field of the record but id, times and count. */
export function foldKey(r: AgentAuditRecord): string {
  const c = r.caller;
  return JSON.stringify([r.decision, r.source, r.surface, r.identity, r.audience, c.address, c.pid, c.uid, c.exe, r.status, r.reason, r.session]);
}

interface DropCount {
  at: number;
  lastAt: number;
  count: number;
  decision: 'served' | 'refused';
  surface: AgentSurface;
  status: number;
  kind: DropKind;
}

/** The most distinct (kind, decision, surface, status) drop counters kept; beyond, they share one counter. */
const MAX_DROP_KEYS = 64;

/**
 * Counts events that could not be recorded one by one, by (kind, decision, surface, status), so that what
 * was lost is itself on the record: `count` events between `at` and `lastAt`.
 */
export class DropCounter {
  #counts = new Map<string, DropCount>();
  #total = 0;

  add(kind: DropKind, decision: 'served' | 'refused', surface: AgentSurface, status: number, at: number, lastAt: number, count: number): void {
    this.#total += count;
    this.#put(kind, decision, surface, status, at, lastAt, count);
  }

  #put(kind: DropKind, decision: 'served' | 'refused', surface: AgentSurface, status: number, at: number, lastAt: number, count: number): void {
    // A drop record must itself be a valid record (the authority refuses a status outside 100..599 or an
    // unknown surface): whatever it counts, it says so with values of the contract.
    if (!Number.isInteger(status) || status < 100 || status > 599) status = 500;
    if (!AGENT_SURFACES.includes(surface)) surface = 'imds';
    let key = `${kind}|${decision}|${surface}|${String(status)}`;
    if (!this.#counts.has(key) && this.#counts.size >= MAX_DROP_KEYS) {
      // Past the bound, one counter per kind: it keeps the decision, surface and status of the first
      // event it counted (a valid record), and its count covers every other combination too.
      key = `${kind}|overflow`;
    }
    const existing = this.#counts.get(key);
    if (existing === undefined) {
      this.#counts.set(key, { at, lastAt, count, decision, surface, status, kind });
    } else {
      existing.count += count;
      existing.at = Math.min(existing.at, at);
      existing.lastAt = Math.max(existing.lastAt, lastAt);
    }
  }

  addRecord(kind: DropKind, r: AgentAuditRecord): void {
    this.add(kind, r.decision, r.surface, r.status, r.at, r.lastAt, r.count);
  }

  /** Events dropped since this counter was made (taken or not). */
  get total(): number {
    return this.#total;
  }

  get size(): number {
    return this.#counts.size;
  }

  /** The counts as records (reason `audit_dropped:<kind>`, caller address `unknown`), and resets. */
  take(): AgentAuditRecord[] {
    const out: AgentAuditRecord[] = [];
    for (const c of this.#counts.values()) {
      out.push({
        id: randomUUID(),
        at: c.at,
        lastAt: c.lastAt,
        count: c.count,
        decision: c.decision,
        surface: c.surface,
        caller: { address: DROPPED_CALLER_ADDRESS },
        status: c.status,
        reason: `${DROP_REASON_PREFIX}${c.kind}`,
      });
    }
    this.#counts = new Map();
    return out;
  }

  /** Puts records taken by {@link take} back (their write failed). */
  restore(records: readonly AgentAuditRecord[]): void {
    for (const r of records) {
      const kind = (r.reason ?? '').slice(DROP_REASON_PREFIX.length) as DropKind;
      this.#put(kind, r.decision, r.surface, r.status, r.at, r.lastAt, r.count);
    }
  }
}

/**
 * One window's events. `add` is O(1): it queues the event and its time; `fold` (run off the hot path)
 * reads each event's caller then, so a caller resolved after the request (src/agent/caller.ts fills in pid,
 * uid and exe in the background) is still attributed.
 */
export class AuditWindow {
  #events: AgentAuditEvent[] = [];
  #times: number[] = [];
  #records = new Map<string, AgentAuditRecord>();
  readonly #maxRecords: number;
  readonly #drops: DropCounter;

  constructor(maxRecords: number, drops: DropCounter) {
    this.#maxRecords = maxRecords;
    this.#drops = drops;
  }

  add(event: AgentAuditEvent, at: number): void {
    this.#events.push(event);
    this.#times.push(at);
  }

  /** Events queued and not folded yet. */
  get queued(): number {
    return this.#events.length;
  }

  /** Folds the queued events into records. */
  fold(): void {
    const events = this.#events;
    const times = this.#times;
    this.#events = [];
    this.#times = [];
    for (let i = 0; i < events.length; i++) {
      const at = times[i] ?? 0;
      let record: AgentAuditRecord;
      try {
        record = recordOf(events[i]!, at, '');
      } catch {
        continue; // not an event (a caller bypassed the types); nothing to record
      }
      const key = foldKey(record);
      const existing = this.#records.get(key);
      if (existing !== undefined) {
        existing.count += 1;
        if (at < existing.at) existing.at = at;
        if (at > existing.lastAt) existing.lastAt = at;
      } else if (this.#records.size >= this.#maxRecords) {
        this.#drops.addRecord('window_full', record);
      } else {
        record.id = randomUUID();
        this.#records.set(key, record);
      }
    }
  }

  /** Folds what is queued and hands out the window's records, starting a new window. */
  take(): AgentAuditRecord[] {
    this.fold();
    const records = [...this.#records.values()];
    this.#records = new Map();
    return records;
  }
}
