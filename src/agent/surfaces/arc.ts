/**
 * Azure Arc's challenge protocol (opt-in, `--arc`), on the IMDS token path for the Arc api-versions
 * (2019-08-15, 2019-11-01, 2020-06-01):
 * 1. a request with `Metadata: true` and no `Authorization` gets 401 with
 *    `WWW-Authenticate: Basic realm=/var/opt/azcmagent/tokens/<random>.key` (unquoted: every client parses
 *    it that way), having written a random secret (64 hex characters, ≤ 4096 bytes) to that file, mode 0600;
 * 2. the client repeats the request with `Authorization: Basic <file contents>`; a secret is accepted once,
 *    within `challengeMs`, and its file is deleted.
 * Every client insists on that exact directory, which only root can create: that is why Arc is opt-in.
 * For user-assigned identities the body echoes `client_id`, `object_id` and `msi_res_id` (newest MSALs
 * refuse a token that does not).
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../shared/clock.js';
import { AgentErrors, header, refuse, selectorOf, sendJson, serveToken, type SurfaceContext, requireResource } from './common.js';
import { requireMetadataHeader } from './imds.js';
import { makePrivateDir, writePrivateFile } from '../../shared/private-files.js';

export const ARC_API_VERSIONS: ReadonlySet<string> = new Set(['2019-08-15', '2019-11-01', '2020-06-01']);

export class ArcChallenges {
  readonly dir: string;
  readonly #clock: Clock;
  readonly #windowMs: number;
  /** secret → { file, expiresAt } */
  readonly #pending = new Map<string, { file: string; expiresAt: number }>();

  constructor(options: { dir: string; clock: Clock; windowMs: number }) {
    this.dir = options.dir;
    this.#clock = options.clock;
    this.#windowMs = options.windowMs;
  }

  /** Creates the directory (0700) if missing. Needs root for the default path; fails loudly otherwise. */
  prepare(): void {
    makePrivateDir(this.dir);
  }

  /** Writes a new challenge file; answers its path. */
  issue(): string {
    this.#expire();
    if (this.#pending.size > 1000) throw AgentErrors.rateLimited(1);
    const secret = randomBytes(32).toString('hex');
    const file = join(this.dir, `${randomBytes(16).toString('hex')}.key`);
    writePrivateFile(file, secret, { flag: 'wx' });
    this.#pending.set(secret, { file, expiresAt: this.#clock.now() + this.#windowMs });
    return file;
  }

  /** Accepts `Basic <secret>` once, within the window. */
  accept(authorization: string): boolean {
    this.#expire();
    const match = /^Basic (.+)$/.exec(authorization);
    if (match?.[1] === undefined) return false;
    const pending = this.#pending.get(match[1]);
    if (pending === undefined) return false;
    this.#pending.delete(match[1]);
    rmSync(pending.file, { force: true });
    return true;
  }

  close(): void {
    for (const { file } of this.#pending.values()) rmSync(file, { force: true });
    this.#pending.clear();
  }

  #expire(): void {
    const now = this.#clock.now();
    for (const [secret, pending] of this.#pending) {
      if (pending.expiresAt > now) continue;
      this.#pending.delete(secret);
      rmSync(pending.file, { force: true });
    }
  }
}

export function arcToken(
  ctx: SurfaceContext,
  challenges: ArcChallenges,
  req: IncomingMessage,
  res: ServerResponse,
  params: ReadonlyMap<string, string>,
): void | Promise<void> {
  try {
    if (!ctx.imds) throw AgentErrors.surfaceDisabled();
    requireMetadataHeader(req);
    const resource = requireResource(params);
    const selector = selectorOf(params);
    const authorization = header(req, 'authorization');
    if (authorization === undefined) {
      const file = challenges.issue();
      sendJson(res, 401, JSON.stringify({ error: 'unauthorized_client', error_description: 'Use the challenge in WWW-Authenticate' }), {
        'www-authenticate': `Basic realm=${file}`,
      });
      return;
    }
    if (!challenges.accept(authorization)) throw AgentErrors.arcChallengeFailed();
    return serveToken(ctx, req, res, { surface: 'arc', selector, resource, echo: true });
  } catch (err) {
    return refuse(ctx, req, res, 'arc', err, params.has('resource') ? { audience: params.get('resource') ?? '' } : {});
  }
}
