import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

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
  level?: LevelWithSilent;
  /** Where records go; defaults to stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
}

/** Creates the one logger configuration every openmsi process uses. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? (process.env['OPENMSI_LOG_LEVEL'] as LevelWithSilent | undefined) ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: requestSerializers,
      base: { pid: process.pid },
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
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
