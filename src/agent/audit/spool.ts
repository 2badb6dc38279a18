/**
 * The audit spool: `<agent data dir>/audit-spool/<16-digit sequence>.jsonl`, one {@link AgentAuditRecord}
 * per line, mode 0600 in a 0700 directory. Records are appended to the open segment and fsync'd before an
 * append resolves (only then are they durable); a segment is sealed when it holds a batch (1000 records) or
 * when the uploader asks, and sealed segments are uploaded oldest first and deleted once the authority has
 * them. Segments found at start-up (a previous run, even one killed with -9) are all sealed; a torn last
 * line (written but never fsync'd) is skipped when read. The total size is bounded: an append that would
 * pass the bound writes nothing of what does not fit and returns it.
 *
 * Not safe for concurrent callers: the pipeline runs every mutation on one promise chain.
 */
import { open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentAuditRecord } from '../../shared/host-protocol.js';
import { makePrivateDirAsync, openPrivateFileAsync } from '../../shared/private-files.js';

const SEGMENT_NAME = /^(\d{16})\.jsonl$/;

export interface SealedSegment {
  seq: number;
  path: string;
  bytes: number;
}

interface OpenSegment extends SealedSegment {
  handle: FileHandle;
  records: number;
}

/** Whether a parsed line has the shape of a record (the spool is ours, but a torn or edited line is not). */
function isRecord(value: unknown): value is AgentAuditRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<AgentAuditRecord>;
  return (
    typeof r.id === 'string' &&
    typeof r.at === 'number' &&
    typeof r.lastAt === 'number' &&
    typeof r.count === 'number' &&
    (r.decision === 'served' || r.decision === 'refused') &&
    typeof r.surface === 'string' &&
    typeof r.status === 'number' &&
    typeof r.caller === 'object' &&
    r.caller !== null &&
    typeof r.caller.address === 'string'
  );
}

export class AuditSpool {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #segmentRecords: number;
  #sealed: SealedSegment[] = [];
  #open: OpenSegment | undefined;
  #nextSeq = 1;
  #bytes = 0;

  private constructor(dir: string, maxBytes: number, segmentRecords: number) {
    this.dir = dir;
    this.#maxBytes = maxBytes;
    this.#segmentRecords = segmentRecords;
  }

  /** Opens (creating) the spool directory and takes stock of the segments already in it. */
  static async open(dir: string, options: { maxBytes: number; segmentRecords: number }): Promise<AuditSpool> {
    const spool = new AuditSpool(dir, options.maxBytes, options.segmentRecords);
    await makePrivateDirAsync(dir);
    const names = (await readdir(dir)).filter((n) => SEGMENT_NAME.test(n)).sort();
    for (const name of names) {
      const path = join(dir, name);
      const seq = Number(SEGMENT_NAME.exec(name)![1]);
      const { size } = await stat(path);
      spool.#sealed.push({ seq, path, bytes: size });
      spool.#bytes += size;
      spool.#nextSeq = Math.max(spool.#nextSeq, seq + 1);
    }
    return spool;
  }

  /** Bytes on disk, all segments. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Segments on disk, the open one included. */
  get segments(): number {
    return this.#sealed.length + (this.#open === undefined ? 0 : 1);
  }

  /** Whether the open segment holds records not sealed yet. */
  get hasOpenRecords(): boolean {
    return this.#open !== undefined && this.#open.records > 0;
  }

  /**
   * Room kept for drop-count records: ordinary records stop at `maxBytes - reserve`, drop counts may use the
   * rest, so that a spool full of records can still say what it dropped.
   */
  get reserve(): number {
    return Math.min(Math.max(Math.floor(this.#maxBytes / 100), 64 * 1024), Math.floor(this.#maxBytes / 4));
  }

  /** Whether `bytes` more would fit under the bound (`reserve`: the drop-count reserve may be used). */
  fits(bytes: number, reserve = false): boolean {
    return this.#bytes + bytes <= this.#maxBytes - (reserve ? 0 : this.reserve);
  }

  /**
   * Appends records in order and fsyncs; when it resolves, they are durable. Stops at the first record that
   * would take the spool past its bound and returns that one and the rest, unwritten. `bound`: `records`
   * (the default) stops short of the reserve, `reserve` may use it, `none` ignores the bound (the few drop
   * counts written at shutdown).
   */
  async append(records: readonly AgentAuditRecord[], bound: 'records' | 'reserve' | 'none' = 'records'): Promise<AgentAuditRecord[]> {
    let i = 0;
    while (i < records.length) {
      if (this.#open === undefined || this.#open.records >= this.#segmentRecords) {
        await this.seal();
        await this.#startSegment();
      }
      const segment = this.#open!;
      const lines: string[] = [];
      let bytes = 0;
      while (i < records.length && segment.records + lines.length < this.#segmentRecords) {
        const line = JSON.stringify(records[i]) + '\n';
        const size = Buffer.byteLength(line);
        if (bound !== 'none' && !this.fits(bytes + size, bound === 'reserve')) break;
        lines.push(line);
        bytes += size;
        i++;
      }
      if (lines.length === 0) break; // the bound: nothing more fits
      try {
        await segment.handle.write(lines.join(''));
        await segment.handle.sync();
      } catch (err) {
        // The segment may end in a torn line now: never append after it. What it holds is read as usual.
        await this.#abandon(segment);
        throw err;
      }
      segment.records += lines.length;
      segment.bytes += bytes;
      this.#bytes += bytes;
    }
    return records.slice(i);
  }

  /** Closes the open segment (if it has records) so that the uploader may take it. */
  async seal(): Promise<void> {
    const segment = this.#open;
    if (segment === undefined) return;
    this.#open = undefined;
    await segment.handle.close();
    if (segment.records === 0) {
      await rm(segment.path, { force: true });
      this.#bytes -= segment.bytes;
      return;
    }
    this.#sealed.push({ seq: segment.seq, path: segment.path, bytes: segment.bytes });
  }

  /** The oldest sealed segment, if any. */
  oldest(): SealedSegment | undefined {
    return this.#sealed[0];
  }

  /** A sealed segment's records in order; lines that are not records (a torn last line) are skipped and counted. */
  async read(segment: SealedSegment): Promise<{ records: AgentAuditRecord[]; skipped: number }> {
    const text = await readFile(segment.path, 'utf8');
    const records: AgentAuditRecord[] = [];
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const parsed: unknown = JSON.parse(line);
        if (isRecord(parsed)) records.push(parsed);
        else skipped++;
      } catch {
        skipped++;
      }
    }
    return { records, skipped };
  }

  /** Deletes a sealed segment (its records reached the authority). */
  async remove(segment: SealedSegment): Promise<void> {
    await rm(segment.path, { force: true });
    const index = this.#sealed.indexOf(segment);
    if (index >= 0) this.#sealed.splice(index, 1);
    this.#bytes -= segment.bytes;
  }

  /** Seals and closes (the spool stays on disk for the next start). */
  async close(): Promise<void> {
    await this.seal();
  }

  async #abandon(segment: OpenSegment): Promise<void> {
    this.#open = undefined;
    await segment.handle.close().catch(() => undefined);
    const size = await stat(segment.path).then(
      (s) => s.size,
      () => 0,
    );
    this.#bytes += size - segment.bytes;
    this.#sealed.push({ seq: segment.seq, path: segment.path, bytes: size });
  }

  async #startSegment(): Promise<void> {
    const seq = this.#nextSeq++;
    const path = join(this.dir, `${String(seq).padStart(16, '0')}.jsonl`);
    const handle = await openPrivateFileAsync(path, 'wx');
    this.#open = { seq, path, bytes: 0, handle, records: 0 };
    // The new name must survive a crash as well as its contents.
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}
