/**
 * `openmsi agent --join-token-file PATH`: a join token kept in a file (an orchestrator's projected secret).
 * Read at start like `--join-token`; while the authority refuses the host (credential revoked, host deleted),
 * {@link JoinTokenFileWatch} re-reads it and, when it holds a token other than the last one tried, enrols
 * again with it, so a re-enrolled host serves again without an agent restart. Tokens are single use: one that
 * the authority refused is not tried again until the file changes. The token itself is never logged; its
 * SHA-256 (as the saved record keeps it) is what is compared.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../shared/logger.js';
import { joinTokenDigest } from './host-credential.js';
import { UpstreamError } from './upstream-error.js';

/** The join token in `path` (surrounding whitespace trimmed), or undefined when the file is missing or empty. */
export function readJoinTokenFile(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const token = text.trim();
  return token.length === 0 ? undefined : token;
}

export interface JoinTokenFileWatchOptions {
  path: string;
  /** How often the file is read while the host is refused. */
  pollMs: number;
  /** SHA-256 of the token the saved credential came from (tried already: never again), if known. */
  usedDigest: string | undefined;
  /** Whether the authority refuses the host now; the file is read only then. */
  refused: () => boolean;
  /** Enrols with `joinToken` and serves under the new credential; throws when the authority refuses it. */
  enrol: (joinToken: string) => Promise<void>;
  logger: Logger;
}

/** Re-enrols the host from the join token file while the authority refuses it (a bounded poll). */
export class JoinTokenFileWatch {
  readonly #options: JoinTokenFileWatchOptions;
  /** Digest of the last token tried (enrolled, or refused by the authority). */
  #tried: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #stopped = true;

  constructor(options: JoinTokenFileWatchOptions) {
    this.#options = options;
    this.#tried = options.usedDigest;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One look at the file (the timer calls it): enrols when the host is refused and the file holds a new token. */
  check(): Promise<void> {
    this.#checking ??= this.#checkOnce().finally(() => {
      this.#checking = undefined;
    });
    return this.#checking;
  }

  async #checkOnce(): Promise<void> {
    const { path, logger } = this.#options;
    if (!this.#options.refused()) return;
    let token: string | undefined;
    try {
      token = readJoinTokenFile(path);
    } catch (err) {
      logger.warn({ path, err: (err as Error).message }, 'cannot read the join token file');
      return;
    }
    if (token === undefined) return;
    const digest = joinTokenDigest(token);
    if (digest === this.#tried) return;
    logger.info({ path }, 'the host is refused and the join token file holds a new join token: enrolling again');
    try {
      await this.#options.enrol(token);
      this.#tried = digest;
    } catch (err) {
      // Unavailable (connection errors, 5xx on every authority) or throttled: the same token is tried again.
      const transient = err instanceof UpstreamError && (err.kind === 'unavailable' || err.status === 429);
      if (!transient) this.#tried = digest;
      logger.error(
        { path, err: err instanceof Error ? err.message : String(err), status: err instanceof UpstreamError ? err.status : undefined },
        transient
          ? 'enrolling with the join token file failed (authority unavailable); trying again'
          : 'the authority refused the join token in the join token file; waiting for the file to change',
      );
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.check().finally(() => this.#schedule());
    }, this.#options.pollMs);
    this.#timer.unref();
  }
}
