/**
 * The agent's control API, for `openmsi run`: `POST /openmsi/agent/sessions`.
 *
 *   Authorization: Bearer <control secret>        the 0600 file `<agent data dir>/control.secret`
 *   {"identities": ["NAME-OR-ID", ...]}            1..16 non-empty selectors of at most 512 characters
 *   → 400 identity_not_found, naming the host's identities, when a selector names none of them; else
 *   → 201, a streaming application/x-ndjson body:
 *     {"id":"…","secret":"…","expiresWith":"connection"}\n   then a "\n" heartbeat now and then
 *
 * The session lives exactly as long as that response: when the connection closes (the `openmsi run`
 * process exits, or is killed with -9, and the kernel closes its socket), the session is revoked at once.
 * Only loopback peers are served, even an address the agent's `allowedPeers` admits to the token surfaces;
 * only users who can read the agent's data dir can start sessions.
 * Creation, refusal and end are audited (surface `session`); a secret never is.
 */
import { randomBytes } from 'node:crypto';
import { digestOf, secretMatches } from './secret-digest.js';
import { closeSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AGENT_SESSIONS } from '../shared/config.js';
import type { AgentCaller, HostDescription } from '../shared/host-protocol.js';
import type { Logger } from '../shared/logger.js';
import { canonicalAddress, isLoopbackAddress } from './caller.js';
import { hasProxyHeader } from './guard.js';
import type { AgentAuditSink, CallerResolver } from './contracts.js';
import { TooManySessionsError, type SessionRegistry } from './sessions.js';
import { makePrivateDir, openPrivateFile } from '../shared/private-files.js';
import { describeSessionIdentities, unknownSessionSelectors } from './surfaces/common.js';

export const CONTROL_SESSIONS_PATH = '/openmsi/agent/sessions';

/** The first line of a session stream. */
export interface SessionGrant {
  id: string;
  secret: string;
  expiresWith: 'connection';
}

/** `<agent data dir>/control.secret`. */
export function controlSecretPath(dataDir: string): string {
  return join(dataDir, 'control.secret');
}

/**
 * The control secret, created (256 random bits, base64url, mode 0600) on the agent's first start, and
 * replaced by a new one if the file was found readable by group or others. Two agents starting at once
 * agree: the file is created exclusively and the loser reads the winner's.
 */
export function loadOrCreateControlSecret(dataDir: string): string {
  const path = controlSecretPath(dataDir);
  makePrivateDir(dataDir);
  try {
    // Readable by group or others, it may have been read: replace it rather than keep using it.
    if ((statSync(path).mode & 0o077) !== 0) rmSync(path, { force: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    const fd = openPrivateFile(path, 'wx');
    try {
      writeSync(fd, randomBytes(32).toString('base64url') + '\n');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readControlSecret(dataDir);
}

/** Reads the control secret; the error says what to do when it is missing or unreadable. */
export function readControlSecret(dataDir: string): string {
  const path = controlSecretPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new Error(
        `no agent control secret at ${path}: start \`openmsi agent\` with this data dir first (or pass --data-dir / set OPENMSI_AGENT_DATA_DIR)`,
        { cause: err },
      );
    if (code === 'EACCES')
      throw new Error(`cannot read ${path}: permission denied; only users who can read the agent's data dir may start sessions`, { cause: err });
    throw new Error(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  const secret = text.trim();
  if (secret.length < 32) throw new Error(`${path} does not hold a control secret; delete it and restart the agent to create a new one`);
  return secret;
}

export interface ControlApiOptions {
  controlSecret: string;
  sessions: SessionRegistry;
  audit: AgentAuditSink;
  /** Attribution for audit records (default: the peer address only). */
  callers?: CallerResolver;
  /** A "\n" on each open session stream this often (default 15 s); 0 turns it off. */
  heartbeatMs?: number;
  logger?: Pick<Logger, 'debug' | 'info'>;
  /**
   * Checks the selectors against the host's identities before a session starts: a description of why they do
   * not all name one of them (refused with 400 `identity_not_found`), or undefined to start the session.
   */
  checkIdentities?: (selectors: readonly string[]) => Promise<string | undefined>;
}

/**
 * The agent's {@link ControlApiOptions.checkIdentities}: every selector must name an identity of the host as
 * last described, re-read once when one does not (it may just have been assigned). When the host cannot be
 * described at all (the authority is unreachable and nothing is known yet) the session starts unchecked, and
 * its token requests say what is wrong.
 */
export function hostIdentityCheck(identities: {
  readonly host: HostDescription | undefined;
  refresh(): Promise<HostDescription>;
}): (selectors: readonly string[]) => Promise<string | undefined> {
  return async (selectors) => {
    let host = identities.host;
    if (host === undefined || unknownSessionSelectors(selectors, host.identities).length > 0) {
      try {
        host = await identities.refresh();
      } catch {
        // Keep the last known list, if any.
        host = identities.host;
      }
    }
    if (host === undefined) return undefined;
    const unknown = unknownSessionSelectors(selectors, host.identities);
    if (unknown.length === 0) return undefined;
    const named = unknown.map((s) => `'${s}'`).join(', ');
    return `${named} ${unknown.length === 1 ? 'names' : 'name'} no identity of host ${host.name}; it has: ${describeSessionIdentities(host.identities)}`;
  };
}

export interface ControlApi {
  /** Handles the request if its path is the control API's (and returns true); returns false otherwise. */
  handleControlRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Ends every open session stream (revoking its session): for agent shutdown. */
  close(): void;
}

/** Request bodies above this are refused (a selector list is far smaller). */
const MAX_BODY_BYTES = 16 * 1024;

function refuse(res: ServerResponse, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error, error_description: description });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** The identity selectors of a request body, or a description of what is wrong with it. */
export function parseSessionRequest(body: string): string[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'the body must be JSON: {"identities": ["NAME-OR-ID", ...]}';
  }
  const identities = (parsed as { identities?: unknown } | null)?.identities;
  const { maxIdentities, maxSelectorLength } = AGENT_SESSIONS;
  if (!Array.isArray(identities) || identities.length < 1 || identities.length > maxIdentities) {
    return `identities must be an array of 1 to ${String(maxIdentities)} identity names or ids`;
  }
  for (const id of identities) {
    if (typeof id !== 'string' || id.trim() === '' || id.length > maxSelectorLength) {
      return `each identity must be a non-empty string of at most ${String(maxSelectorLength)} characters`;
    }
  }
  return identities as string[];
}

export function createControlApi(options: ControlApiOptions): ControlApi {
  const expected = digestOf(options.controlSecret);
  const heartbeatMs = options.heartbeatMs ?? AGENT_SESSIONS.heartbeatMs;
  const open = new Set<ServerResponse>();

  const callerOf = (req: IncomingMessage): AgentCaller =>
    options.callers?.callerOf(req.socket) ?? { address: canonicalAddress(req.socket.remoteAddress) ?? req.socket.remoteAddress ?? 'unknown' };

  const audit = (req: IncomingMessage, decision: 'served' | 'refused', status: number, extra: { reason?: string; session?: string } = {}): void => {
    options.audit.record({ decision, surface: 'session', caller: callerOf(req), status, ...extra });
  };

  const authorised = (req: IncomingMessage): boolean => {
    const match = /^Bearer ([^\s]+)$/.exec(req.headers.authorization ?? '');
    return match !== null && secretMatches(match[1]!, expected);
  };

  const start = (req: IncomingMessage, res: ServerResponse, identities: string[]): void => {
    if (req.socket.destroyed) return;
    let created;
    try {
      created = options.sessions.create(identities);
    } catch (err) {
      if (!(err instanceof TooManySessionsError)) throw err;
      audit(req, 'refused', 503, { reason: 'too_many_sessions' });
      refuse(res, 503, 'temporarily_unavailable', err.message, { 'Retry-After': '5' });
      return;
    }
    const { id, secret } = created;
    let heartbeat: NodeJS.Timeout | undefined;
    const end = (): void => {
      if (heartbeat !== undefined) clearInterval(heartbeat);
      open.delete(res);
      if (options.sessions.revoke(id)) {
        audit(req, 'served', 201, { reason: 'session_ended', session: id });
        options.logger?.debug({ session: id }, 'session ended');
      }
    };
    res.on('close', end);
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, 10_000);
    open.add(res);
    res.writeHead(201, { 'Content-Type': 'application/x-ndjson', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    const grant: SessionGrant = { id, secret, expiresWith: 'connection' };
    res.write(JSON.stringify(grant) + '\n');
    audit(req, 'served', 201, { session: id });
    options.logger?.debug({ session: id, identities: identities.length }, 'session started');
    if (heartbeatMs > 0) {
      heartbeat = setInterval(() => res.write('\n'), heartbeatMs);
      heartbeat.unref();
    }
    // The connection may have gone while we were writing: make sure the session does not outlive it.
    if (req.socket.destroyed) end();
  };

  const handleControlRequest = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== CONTROL_SESSIONS_PATH) return false;
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      audit(req, 'refused', 403, { reason: 'not_loopback' });
      refuse(res, 403, 'forbidden', 'the control API is served to loopback peers only');
      return true;
    }
    if (req.headers.origin !== undefined || hasProxyHeader(req)) {
      audit(req, 'refused', 403, { reason: 'forwarded_or_browser' });
      refuse(res, 403, 'forbidden', 'requests from a browser or through a proxy are refused');
      return true;
    }
    if (req.method !== 'POST') {
      audit(req, 'refused', 405, { reason: 'method_not_allowed' });
      refuse(res, 405, 'invalid_request', 'use POST', { Allow: 'POST' });
      return true;
    }
    if (!authorised(req)) {
      audit(req, 'refused', 401, { reason: 'unauthorized' });
      refuse(res, 401, 'unauthorized', 'a valid control secret is required: Authorization: Bearer <contents of control.secret in the agent data dir>', {
        'WWW-Authenticate': 'Bearer realm="openmsi-agent"',
      });
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (tooLarge) {
        audit(req, 'refused', 413, { reason: 'invalid_request' });
        refuse(res, 413, 'invalid_request', `the body must be at most ${String(MAX_BODY_BYTES)} bytes`);
        return;
      }
      const identities = parseSessionRequest(Buffer.concat(chunks).toString('utf8'));
      if (typeof identities === 'string') {
        audit(req, 'refused', 400, { reason: 'invalid_request' });
        refuse(res, 400, 'invalid_request', identities);
        return;
      }
      if (options.checkIdentities === undefined) {
        start(req, res, identities);
        return;
      }
      options.checkIdentities(identities).then(
        (problem) => {
          if (problem === undefined) {
            start(req, res, identities);
            return;
          }
          audit(req, 'refused', 400, { reason: 'identity_not_found' });
          refuse(res, 400, 'identity_not_found', problem);
        },
        (err: unknown) => {
          audit(req, 'refused', 500, { reason: 'internal' });
          refuse(res, 500, 'internal_error', `cannot check the identities: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    });
    return true;
  };

  return {
    handleControlRequest,
    close() {
      for (const res of [...open]) res.destroy();
    },
  };
}
