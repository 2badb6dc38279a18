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
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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
