import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';
import { PinoPretty } from 'pino-pretty';

export type { Logger } from 'pino';

/** `json`: one JSON object per line (for machines); `pretty`: one coloured line per event (for people). */
export type LogFormat = 'json' | 'pretty';

/**
 * Paths that may carry a credential. They are censored wherever they appear in a log record; on top of
 * that, request logging never includes bodies or query strings (see {@link requestSerializers}).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-identity-header"]',
  'req.headers.secret',
  'headers.authorization',
  '*.client_secret',
  '*.client_assertion',
  '*.access_token',
  '*.password',
  '*.secret',
  '*.secretText',
  '*.value',
  '*.token',
  'client_secret',
  'client_assertion',
  'access_token',
  'password',
  'secretText',
  'token',
];

/** What a censored value is replaced with: a marker, so a reader sees that something was there. */
const CENSOR = '[redacted]';

/**
 * Field names that carry a credential wherever they sit below the top level of a logged object. pino's
 * redact paths reach a fixed depth (`*.password` is one level down), so a secret nested deeper (a form
 * inside a request inside an event) would pass them; {@link censorNested} walks the whole object. At the top
 * level only {@link REDACT_PATHS} apply: `value` or `secret` there name things, not credentials.
 */
const NESTED_CREDENTIAL_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'client_secret',
  'client_assertion',
  'access_token',
  'refresh_token',
  'id_token',
  'password',
  'secret',
  'secrettext',
  'value',
  'token',
  'x-identity-header',
]);

/** How deep {@link censorNested} looks; anything deeper is replaced whole, so depth never leaks. */
const MAX_LOG_DEPTH = 8;

/**
 * A copy of a log record's object with every credential-named field below the top level censored, at any
 * depth; plain objects and arrays only (class instances such as requests have their own serializers). The
 * caller's object is never changed: a branch is copied only where something in it is censored.
 */
export function censorNested(record: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(record)) {
    const censored = censorValue(value, 1);
    if (censored !== value) {
      copy ??= { ...record };
      copy[key] = censored;
    }
  }
  return copy ?? record;
}

function censorValue(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    if (depth >= MAX_LOG_DEPTH) return CENSOR;
    const items: readonly unknown[] = value;
    let copy: unknown[] | undefined;
    items.forEach((item, index) => {
      const censored = censorValue(item, depth + 1);
      if (censored !== item) {
        copy ??= [...items];
        copy[index] = censored;
      }
    });
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  if (depth >= MAX_LOG_DEPTH) return CENSOR;
  let copy: Record<string, unknown> | undefined;
  for (const [key, item] of Object.entries(value)) {
    const censored = NESTED_CREDENTIAL_KEYS.has(key.toLowerCase()) && item !== undefined && item !== null ? CENSOR : censorValue(item, depth + 1);
    if (censored !== item) {
      copy ??= { ...value };
      copy[key] = censored;
    }
  }
  return copy ?? value;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export interface LoggerOptions {
  /** Default `info`; the CLI passes `OPENMSI_LOG_LEVEL` (read by shared/config.ts). */
  level?: LevelWithSilent;
  /** Default `json`. */
  format?: LogFormat;
  /** Where records go; defaults to stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
  /** Pretty format only: colours (default: whether the destination is a colour terminal). */
  colorize?: boolean;
}

/**
 * Creates the one logger configuration every openmsi process uses. Redaction runs inside pino before a
 * record is serialised, so the pretty format prints the same censored record the JSON format would.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      formatters: { log: censorNested },
      serializers: requestSerializers,
      base: { pid: process.pid },
    },
    options.format === 'pretty' ? prettyStream(options) : (options.destination ?? pino.destination({ dest: 1, sync: false })),
  );
}

/**
 * pino-pretty in this thread (not as a worker transport), so a line written just before `process.exit` is
 * not lost and no worker outlives the process.
 */
function prettyStream(options: LoggerOptions): DestinationStream {
  return PinoPretty({
    colorize: options.colorize ?? (options.destination === undefined && process.stdout.isTTY && process.stdout.hasColors()),
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,reqId',
    singleLine: true,
    destination: options.destination ?? 1,
    sync: options.destination === undefined,
  });
}

/** The default format: pretty for a person at a terminal, JSON for everything else. */
export function defaultLogFormat(stream: { isTTY?: boolean } = process.stdout): LogFormat {
  return stream.isTTY === true ? 'pretty' : 'json';
}

interface LoggableRequest {
  method?: string;
  url?: string;
  id?: string;
  ip?: string;
}

interface LoggableReply {
  statusCode?: number;
}

/**
 * Request and reply serializers: method, path without the query string (it can carry identifiers a caller
 * did not mean to publish), request id and peer. Headers and bodies are never logged.
 */
export const requestSerializers = {
  req(req: LoggableRequest) {
    const url = typeof req.url === 'string' ? req.url.split('?')[0] : undefined;
    return { method: req.method, url, id: req.id, remoteAddress: req.ip };
  },
  res(res: LoggableReply) {
    return { statusCode: res.statusCode };
  },
};

/**
 * fastify's request-lifecycle logging with the per-request lines ("incoming request", "request completed")
 * moved from info to debug: at the default level a busy authority logs events, not traffic. Errors keep
 * their levels. Passed as fastify's `logController` (its replacement for `disableRequestLogging`).
 */
export class RequestLogController extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if (error) {
      super.requestCompleted(error, request, reply);
      return;
    }
    reply.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}
