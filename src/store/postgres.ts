import pg from 'pg';
import { Kysely, PostgresDialect, type Logger as KyselyLogger } from 'kysely';
import type { Database } from './schema.js';

const INT8_OID = 20;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/** A dedicated connection that LISTENs on channels and hands every notification to `onNotice`. */
export interface PostgresListener {
  /** Starts listening on `channel` (idempotent); survives reconnections. */
  listen(channel: string): void;
  /** Resolves once every channel asked for so far is listened on (or the attempt failed and a retry is scheduled). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens a PostgreSQL store from a `postgres://` URL. Epoch-millisecond `bigint` columns come back as
 * numbers (they fit well inside 2^53), so rows look the same as on SQLite.
 */
export function openPostgres(
  url: string,
  options: { maxConnections?: number; log?: KyselyLogger } = {},
): {
  db: Kysely<Database>;
  listen(onNotice: (channel: string, payload: string) => void): PostgresListener;
  /** The pool's connection counts now: open, idle, and queries waiting for one. */
  pool(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
} {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle pooled connection that dies (server restart, network blip) emits 'error' on the pool; unhandled,
  // that would crash the process. The pool already drops the broken client, and the next query reports any
  // real outage, so there is nothing more to do here.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(options.log === undefined ? {} : { log: options.log }) });
  return {
    db,
    listen: (onNotice) => createListener(url, onNotice),
    pool: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      await db.destroy();
    },
  };
}

/**
 * LISTEN on a client of its own (a pooled one would be handed to queries): connected on the first
 * `listen()`, reconnected with backoff after any error, re-issuing every LISTEN. Notices sent while it was
 * disconnected are lost; readers reconcile by version (RbacStateSource.version).
 */
function createListener(url: string, onNotice: (channel: string, payload: string) => void): PostgresListener {
  const channels = new Set<string>();
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let closed = false;
  let delay = RECONNECT_MIN_MS;
  let timer: NodeJS.Timeout | undefined;
  let lastListen: Promise<unknown> = Promise.resolve();

  const quote = (channel: string) => `"${channel.replace(/"/g, '""')}"`;

  const scheduleReconnect = () => {
    if (closed || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  };

  const connect = (): Promise<void> => {
    if (closed) return Promise.resolve();
    connecting ??= (async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('notification', (msg) => onNotice(msg.channel, msg.payload ?? ''));
      c.on('error', () => {
        if (client === c) client = undefined;
        void c.end().catch(() => undefined);
        scheduleReconnect();
      });
      try {
        await c.connect();
        for (const channel of channels) await c.query(`LISTEN ${quote(channel)}`);
        if (closed) {
          await c.end();
          return;
        }
        client = c;
        delay = RECONNECT_MIN_MS;
      } catch {
        await c.end().catch(() => undefined);
        scheduleReconnect();
      }
    })().finally(() => {
      connecting = undefined;
    });
    return connecting;
  };

  return {
    listen(channel) {
      if (channels.has(channel)) return;
      channels.add(channel);
      const c = client;
      if (c !== undefined) {
        // One query at a time on the client (pg deprecates overlapping ones): after the previous LISTEN.
        lastListen = lastListen.then(() => c.query(`LISTEN ${quote(channel)}`)).catch(() => undefined);
      } else {
        void connect();
      }
    },
    async ready() {
      await connecting;
      await lastListen;
    },
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await connecting;
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
