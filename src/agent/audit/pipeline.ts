/**
 * The agent's audit pipeline: {@link AgentAuditSink} on the hot path, folding per window, the on-disk
 * spool (src/agent/audit/spool.ts) and the uploader.
 *
 *   record(event)  O(1): queue the event and its time (never throws, never blocks, no disk)
 *   every window   fold the queue into records, append them to the spool and fsync, then upload
 *   uploader       oldest sealed segment first, ≤ batchRecords per call; delete the segment once accepted;
 *                  on failure retry with exponential backoff and jitter, keep spooling meanwhile
 *
 * The authority stores records idempotently by id, so a batch whose upload failed ambiguously (sent, but
 * the answer was lost) is simply sent again. Batches are bounded in records and in bytes (the host API's
 * bounds). A batch the authority refuses for its content ({@link AuditBatchRefusedError}: 400 or 413; the
 * authority takes a batch's valid records and counts the others itself, so this means an older authority
 * or a bug) is split in halves until the refused records are alone; each of those is dropped and counted
 * (`audit_dropped:refused`), so the spool always advances: one bad record never stops a host's audit trail. What cannot be kept (the spool is at its bound, a window has
 * too many distinct outcomes, the disk refuses a write) is counted and the count itself becomes a record
 * with reason `audit_dropped:<kind>`: losses are on the record, never silent.
 */
import { join } from 'node:path';
import { AGENT_AUDIT } from '../../shared/config.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { AUDIT_UPLOAD_MAX_BYTES, type AgentAuditRecord } from '../../shared/host-protocol.js';
import type { Logger } from '../../shared/logger.js';
import type { AgentAuditEvent, AgentAuditSink } from '../contracts.js';
import { AuditWindow, DROP_REASON_PREFIX, DropCounter } from './fold.js';
import { AuditSpool } from './spool.js';

/**
 * Sends one batch to the authority (`POST HOST_API_PATHS.audit` with a host assertion); rejects on any
 * failure, with {@link AuditBatchRefusedError} when the authority refused the batch for what it holds.
 */
export type AuditUploader = (records: AgentAuditRecord[], signal: AbortSignal) => Promise<void>;

/** The authority refused a batch for its content (400, 413): the same batch would be refused again. */
export class AuditBatchRefusedError extends Error {
  override readonly name = 'AuditBatchRefusedError';
}

/** Room left in an upload body for `{"records":[…]}` around the records. */
const BODY_OVERHEAD_BYTES = 1024;

export interface AgentAuditOptions {
  /** The agent's data dir; the spool is its `audit-spool/` directory. */
  dataDir: string;
  upload: AuditUploader;
  clock?: Clock;
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** Start the window timer (default true). Tests that drive {@link AgentAuditPipeline.flush} themselves pass false. */
  autoFlush?: boolean;
  flushWindowMs?: number;
  batchRecords?: number;
  /** The most bytes of records one upload carries (default: the host API's body bound). */
  batchMaxBytes?: number;
  spoolMaxBytes?: number;
  windowMaxRecords?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** An upload that has not settled after this long is aborted and counts as failed. */
  uploadTimeoutMs?: number;
  /** While the spool is full, drop counts are written to its reserve at most this often. */
  dropWriteMs?: number;
  /** Jitter source in [0, 1) (default Math.random). */
  random?: () => number;
}

export interface AgentAuditStats {
  /** Events recorded and not folded yet. */
  queuedEvents: number;
  spoolBytes: number;
  spoolSegments: number;
  /** Records accepted by the authority since start. */
  uploadedRecords: number;
  /** Events dropped since start (each drop is also counted in a spooled `audit_dropped:*` record). */
  droppedEvents: number;
  /** Upload failures in a row (0 when the last upload succeeded). */
  consecutiveFailures: number;
}

/** Events queued before the next fold is run (off the hot path, on setImmediate). */
const FOLD_EVERY = 4096;

export class AgentAuditPipeline implements AgentAuditSink {
  readonly #spool: AuditSpool;
  readonly #upload: AuditUploader;
  readonly #clock: Clock;
  readonly #log: AgentAuditOptions['logger'];
  readonly #batch: number;
  readonly #batchBytes: number;
  readonly #retryMin: number;
  readonly #retryMax: number;
  readonly #random: () => number;
  readonly #maxQueued: number;
  readonly #drops = new DropCounter();
  readonly #window: AuditWindow;
  #chain: Promise<unknown> = Promise.resolve();
  #foldScheduled = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #pumping: Promise<void> | undefined;
  #abort = new AbortController();
  #closed = false;
  #uploaded = 0;
  #failures = 0;
  #lastDropWrite = Number.NEGATIVE_INFINITY;
  /** Ids of the current segment's records already dropped as refused (a retried segment counts them once). */
  #refusedIds = new Set<string>();
  readonly #dropWriteMs: number;
  readonly #uploadTimeout: number;

  private constructor(spool: AuditSpool, options: AgentAuditOptions) {
    this.#spool = spool;
    this.#upload = options.upload;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger;
    this.#batch = options.batchRecords ?? AGENT_AUDIT.batchRecords;
    this.#batchBytes = options.batchMaxBytes ?? AUDIT_UPLOAD_MAX_BYTES - BODY_OVERHEAD_BYTES;
    this.#retryMin = options.retryMinMs ?? AGENT_AUDIT.retryMinMs;
    this.#retryMax = options.retryMaxMs ?? AGENT_AUDIT.retryMaxMs;
    this.#random = options.random ?? Math.random;
    this.#dropWriteMs = options.dropWriteMs ?? AGENT_AUDIT.dropWriteMs;
    this.#uploadTimeout = options.uploadTimeoutMs ?? AGENT_AUDIT.uploadTimeoutMs;
    const windowMax = options.windowMaxRecords ?? AGENT_AUDIT.windowMaxRecords;
    this.#maxQueued = Math.max(FOLD_EVERY * 4, windowMax * 20);
    this.#window = new AuditWindow(windowMax, this.#drops);
  }

  /**
   * Opens the spool in `<dataDir>/audit-spool`, starts the window timer and starts uploading what an earlier
   * run left in the spool.
   */
  static async open(options: AgentAuditOptions): Promise<AgentAuditPipeline> {
    const spool = await AuditSpool.open(join(options.dataDir, 'audit-spool'), {
      maxBytes: options.spoolMaxBytes ?? AGENT_AUDIT.spoolMaxBytes,
      segmentRecords: options.batchRecords ?? AGENT_AUDIT.batchRecords,
    });
    const pipeline = new AgentAuditPipeline(spool, options);
    if (spool.segments > 0) pipeline.#log?.info({ segments: spool.segments, bytes: spool.bytes }, 'audit spool from an earlier run: uploading it');
    if (options.autoFlush ?? true) {
      pipeline.#flushTimer = setInterval(() => void pipeline.flush(), options.flushWindowMs ?? AGENT_AUDIT.flushWindowMs);
      pipeline.#flushTimer.unref();
    }
    pipeline.#kick();
    return pipeline;
  }

  /** The hot path: O(1), never throws, never blocks, no disk. */
  record(event: AgentAuditEvent): void {
    try {
      const at = this.#clock.now();
      if (this.#window.queued >= this.#maxQueued) {
        // The fold has fallen this far behind: count instead of queueing without bound.
        this.#drops.add('queue_full', event.decision === 'served' ? 'served' : 'refused', event.surface, event.status, at, at, 1);
        return;
      }
      this.#window.add(event, at);
      if (this.#window.queued >= FOLD_EVERY && !this.#foldScheduled) {
        this.#foldScheduled = true;
        setImmediate(() => {
          this.#foldScheduled = false;
          this.#window.fold();
        });
      }
    } catch {
      // Auditing never takes a request down.
    }
  }

  /** Ends the current window: its records are on disk (fsync'd) when this resolves. Then uploads. */
  flush(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const done = this.#serial(() => this.#writeWindow());
    return done.then(() => {
      this.#kick();
    });
  }

  /**
   * Flushes, then uploads everything spooled now, without waiting for a backoff to expire. Resolves true
   * when the spool is empty afterwards, false when an upload failed (the retry timer is then running).
   */
  async uploadNow(): Promise<boolean> {
    await this.#serial(() => this.#writeWindow());
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    if (this.#pumping !== undefined) await this.#pumping;
    this.#kick();
    if (this.#pumping !== undefined) await this.#pumping;
    return this.#retryTimer === undefined && this.#spool.segments === 0;
  }

  /**
   * Clean shutdown: the current window and any drop counts go to the spool; then, if `uploadTimeoutMs`
   * is given, one last upload is tried for at most that long. What is not uploaded stays spooled for the
   * next start.
   */
  async close(options: { uploadTimeoutMs?: number } = {}): Promise<void> {
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    if ((options.uploadTimeoutMs ?? 0) > 0 && !this.#closed) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.uploadTimeoutMs);
      });
      await Promise.race([this.uploadNow().then(() => undefined), timeout]);
      clearTimeout(timer);
    }
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#abort.abort();
    await this.#pumping?.catch(() => undefined);
    await this.#serial(async () => {
      await this.#writeWindow();
      const drops = this.#drops.take();
      // Drop counts are few (bounded by kind × decision × surface × status): past the bound rather than lost.
      if (drops.length > 0) await this.#spool.append(drops, 'none');
      await this.#spool.close();
    });
  }

  stats(): AgentAuditStats {
    return {
      queuedEvents: this.#window.queued,
      spoolBytes: this.#spool.bytes,
      spoolSegments: this.#spool.segments,
      uploadedRecords: this.#uploaded,
      droppedEvents: this.#drops.total,
      consecutiveFailures: this.#failures,
    };
  }

  /** Runs `task` after every earlier spool task (spool mutations never interleave). */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(task, task);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #writeWindow(): Promise<void> {
    const records = this.#window.take();
    // Drop counts first: they say what is missing before what follows. While the spool is full they go to
    // its reserve, at most once per dropWriteMs, so that a crash loses at most that long of drop counts.
    if (this.#drops.size > 0) {
      const now = this.#clock.now();
      const full = !this.#spool.fits(1);
      if (!full || now - this.#lastDropWrite >= this.#dropWriteMs) {
        const drops = this.#drops.take();
        try {
          const unwritten = await this.#spool.append(drops, 'reserve');
          this.#drops.restore(unwritten);
          if (unwritten.length < drops.length) this.#lastDropWrite = now;
        } catch (err) {
          this.#drops.restore(drops);
          this.#log?.error({ err }, 'audit spool: write failed');
        }
      }
    }
    if (records.length === 0) return;
    try {
      const unwritten = await this.#spool.append(records);
      if (unwritten.length > 0) {
        for (const r of unwritten) this.#drops.addRecord('spool_full', r);
        this.#log?.warn({ records: unwritten.length, spoolBytes: this.#spool.bytes }, 'audit spool full: counting events as dropped until uploads make room');
      }
    } catch (err) {
      // Some of these may have reached the disk before the failure; counting them as dropped too errs on the side of saying so.
      for (const r of records) this.#drops.addRecord('spool_error', r);
      this.#log?.error({ err }, 'audit spool: write failed; counting the window as dropped');
    }
  }

  /** Starts the uploader unless it is running, waiting out a backoff, or closed. */
  #kick(): void {
    if (this.#closed || this.#pumping !== undefined || this.#retryTimer !== undefined) return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = undefined;
    });
  }

  /** One upload, given up (and aborted) after uploadTimeoutMs or when the pipeline closes. */
  async #send(records: AgentAuditRecord[]): Promise<void> {
    const controller = new AbortController();
    const onClose = (): void => controller.abort();
    this.#abort.signal.addEventListener('abort', onClose, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`audit upload timed out after ${String(this.#uploadTimeout)} ms`));
      }, this.#uploadTimeout);
    });
    try {
      await Promise.race([this.#upload(records, controller.signal), timeout]);
    } finally {
      clearTimeout(timer);
      this.#abort.signal.removeEventListener('abort', onClose);
    }
  }

  /**
   * Sends `records`; when the authority refuses them for their content, sends each half on its own, and
   * drops (and counts) a record refused alone. Any other failure propagates: the segment is retried whole.
   */
  async #sendSplitting(all: AgentAuditRecord[]): Promise<void> {
    const records = all.filter((r) => !this.#refusedIds.has(r.id));
    if (records.length === 0) return;
    try {
      await this.#send(records);
      this.#uploaded += records.length;
    } catch (err) {
      if (!(err instanceof AuditBatchRefusedError) || this.#closed) throw err;
      if (records.length > 1) {
        const half = Math.ceil(records.length / 2);
        await this.#sendSplitting(records.slice(0, half));
        await this.#sendSplitting(records.slice(half));
        return;
      }
      const record = records[0]!;
      if ((record.reason ?? '').startsWith(DROP_REASON_PREFIX)) {
        // Counting a refused count would refuse again: say it in the log, once.
        this.#log?.error({ err: err.message, count: record.count }, 'the authority refused an audit drop count; it is lost');
        return;
      }
      this.#refusedIds.add(record.id);
      this.#drops.addRecord('refused', record);
      this.#log?.warn(
        { err: err.message, surface: record.surface, status: record.status, count: record.count },
        'the authority refused an audit record; it is counted as dropped',
      );
    }
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        if (this.#closed) return;
        const segment = this.#spool.oldest();
        if (segment === undefined) {
          if (!this.#spool.hasOpenRecords) return;
          await this.#serial(() => this.#spool.seal());
          continue;
        }
        const { records, skipped } = await this.#spool.read(segment);
        if (skipped > 0) this.#log?.warn({ segment: segment.path, skipped }, 'audit spool: skipped lines that are not records (a write torn by a crash)');
        for (const batch of batchesOf(records, this.#batch, this.#batchBytes)) await this.#sendSplitting(batch);
        await this.#spool.remove(segment);
        this.#refusedIds.clear();
        if (this.#failures > 0) this.#log?.info({ failures: this.#failures }, 'audit upload recovered');
        this.#failures = 0;
      }
    } catch (err) {
      if (this.#closed) return;
      this.#failures++;
      const ceiling = Math.min(this.#retryMax, this.#retryMin * 2 ** Math.min(this.#failures - 1, 30));
      const delay = Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
      this.#log?.warn({ err, failures: this.#failures, retryInMs: delay, spoolBytes: this.#spool.bytes }, 'audit upload failed; records stay spooled');
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.#kick();
      }, delay);
      this.#retryTimer.unref();
    }
  }
}

/** `records` in order, in batches of at most `maxRecords` records and `maxBytes` bytes of JSON (at least one record each). */
export function batchesOf(records: readonly AgentAuditRecord[], maxRecords: number, maxBytes: number): AgentAuditRecord[][] {
  const out: AgentAuditRecord[][] = [];
  let batch: AgentAuditRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = Buffer.byteLength(JSON.stringify(record)) + 1;
    if (batch.length > 0 && (batch.length >= maxRecords || bytes + size > maxBytes)) {
      out.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(record);
    bytes += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}
