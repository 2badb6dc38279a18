/**
 * The data plane's audit trail: one record per operation (who, what, vault, secret or key name, decision,
 * status), never a value, key material or a token. Writes are awaited before the response; reads are folded: identical outcomes in
 * one window (1 s) become one record with a count, written by a timer, so a read adds no write of its own.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { AuditInput, AuditWriter } from '../store/audit-writer.js';

/** One audited outcome. */
export interface VaultAuditOutcome {
  tenantId: string;
  objectId: string;
  appId: string | undefined;
  /** `vault.secrets.<op>` or `vault.keys.<op>` */
  action: string;
  vault: string;
  /** The vault's ARM id (or, for one secret or key, `{vault id}/secrets/{name}`, `{vault id}/keys/{name}`). */
  target: string;
  /** The secret or key the operation named (recorded as `secret` or `key` in the detail). */
  object: { kind: 'secret' | 'key'; name: string } | undefined;
  decision: 'allowed' | 'denied';
  status: number;
}

const WINDOW_MS = 1_000;
/** Distinct outcomes held per window; beyond, the window is written early. */
const MAX_RECORDS = 5_000;

function inputOf(o: VaultAuditOutcome, at: number, fold?: { count: number; lastAt: number }): AuditInput {
  return {
    at,
    tenantId: o.tenantId,
    actor: o.objectId,
    action: o.action,
    target: o.target,
    outcome: o.decision === 'allowed' && o.status < 400 ? 'success' : 'failure',
    detail: {
      vault: o.vault,
      ...(o.object === undefined ? {} : { [o.object.kind]: o.object.name }),
      ...(o.appId === undefined ? {} : { appid: o.appId }),
      decision: o.decision,
      status: o.status,
      ...(fold === undefined ? {} : { count: fold.count, lastAt: fold.lastAt }),
    },
  };
}

/** Audit of the data plane: {@link write} for writes, {@link read} for folded reads. */
export class VaultAudit {
  readonly #writer: AuditWriter;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #window = new Map<string, { outcome: VaultAuditOutcome; at: number; lastAt: number; count: number }>();
  readonly #timer: NodeJS.Timeout;

  constructor(writer: AuditWriter, clock: Clock, logger: Logger) {
    this.#writer = writer;
    this.#clock = clock;
    this.#logger = logger;
    this.#timer = setInterval(() => void this.flush(), WINDOW_MS);
    this.#timer.unref();
  }

  /** Records a write's outcome; resolves once it is durable. */
  write(outcome: VaultAuditOutcome): Promise<void> {
    return this.#writer.record(inputOf(outcome, this.#clock.now()));
  }

  /** Counts a read's outcome into the current window (no I/O). */
  read(outcome: VaultAuditOutcome): void {
    const o = outcome;
    const key = JSON.stringify([o.tenantId, o.objectId, o.appId, o.action, o.vault, o.target, o.decision, o.status]);
    const now = this.#clock.now();
    const existing = this.#window.get(key);
    if (existing !== undefined) {
      existing.count += 1;
      existing.lastAt = now;
      return;
    }
    this.#window.set(key, { outcome, at: now, lastAt: now, count: 1 });
    if (this.#window.size >= MAX_RECORDS) void this.flush();
  }

  /** Writes the current window. */
  async flush(): Promise<void> {
    if (this.#window.size === 0) return;
    const records = [...this.#window.values()];
    this.#window = new Map();
    await Promise.all(records.map((r) => this.#writer.record(inputOf(r.outcome, r.at, { count: r.count, lastAt: r.lastAt })))).catch((err: unknown) => {
      this.#logger.error({ err: { message: (err as Error).message }, records: records.length }, 'vault audit write failed');
    });
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
