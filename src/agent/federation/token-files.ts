/**
 * Token-file mode of outbound federation: the agent writes a linked identity's outbound assertion to a file
 * the workload's own SDK exchanges upstream (`AZURE_FEDERATED_TOKEN_FILE`, as a Kubernetes projected token):
 * 0600, no trailing newline, written atomically (a reader never sees half a token), rewritten at 80 % of its
 * life (an hour: ≥ 12 minutes stay valid, and SDKs re-read every 5-10 minutes). Next to it, `<file>.env` holds
 * the variables that go with it (`AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`,
 * `AZURE_FEDERATED_TOKEN_FILE`), also 0600. A failed write is retried with backoff; the file is never removed
 * on failure (the last assertion stays until it expires).
 */
import { resolve } from 'node:path';
import type { FederationAssertionGrant, HostIdentity } from '../../shared/host-protocol.js';
import { epochSeconds, systemClock, type Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import { writePrivateFileAtomic } from '../../shared/private-files.js';
import type { IdentitySelector } from '../identities.js';
import { refreshDue } from './assertions.js';

/** One file to keep: the identity (any selector) and the path. */
export interface TokenFileSpec {
  selector: IdentitySelector;
  path: string;
}

/** `<client id | object id | resource id>=<path>` as `--federated-token-file` takes it. */
export function parseTokenFileSpec(value: string): TokenFileSpec {
  const eq = value.indexOf('=');
  if (eq <= 0 || eq === value.length - 1)
    throw new Error(`--federated-token-file takes IDENTITY=PATH (a client id, object id or resource id), got ${JSON.stringify(value)}`);
  const id = value.slice(0, eq);
  const path = resolve(value.slice(eq + 1));
  // A client id and an object id are both GUIDs: the client id is tried first, the object id second (resolve).
  const selector: IdentitySelector = id.startsWith('/') ? { kind: 'resource', value: id } : { kind: 'client', value: id };
  return { selector, path };
}

/** The dotenv text for a file: what the workload runs with. */
export function tokenFileEnvironment(identity: HostIdentity, path: string): string {
  const upstream = identity.upstream;
  if (upstream === undefined) return '';
  return [
    `AZURE_CLIENT_ID=${upstream.clientId}`,
    `AZURE_TENANT_ID=${upstream.tenantId}`,
    `AZURE_AUTHORITY_HOST=${upstream.authorityHost}`,
    `AZURE_FEDERATED_TOKEN_FILE=${path}`,
    '',
  ].join('\n');
}

export interface TokenFilesOptions {
  specs: readonly TokenFileSpec[];
  /** The identity a selector names on this host now (the agent's HostIdentities). */
  resolve: (selector: IdentitySelector) => Promise<HostIdentity | undefined>;
  /** A new assertion (normally straight from the authority: each file gets its own). */
  assertion: (objectId: string) => Promise<FederationAssertionGrant>;
  logger: Logger;
  clock?: Clock;
  /** First retry after a failure; doubles up to a minute. Default 1 s. */
  retryBaseMs?: number;
}

export class FederatedTokenFiles {
  readonly #options: TokenFilesOptions;
  readonly #clock: Clock;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  /** Writes made (tests count them). */
  writes = 0;

  constructor(options: TokenFilesOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
  }

  start(): void {
    for (const spec of this.#options.specs) void this.#write(spec, 0);
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  async #write(spec: TokenFileSpec, failures: number): Promise<void> {
    if (this.#stopped) return;
    let nextMs: number;
    try {
      const identity = await this.#options.resolve(spec.selector);
      if (identity === undefined) throw new Error(`identity ${spec.selector.kind === 'system' ? 'system' : spec.selector.value} is not assigned to this host`);
      if (identity.upstream === undefined) throw new Error(`identity ${identity.objectId} has no upstream link (openmsi identity federation link)`);
      const grant = await this.#options.assertion(identity.objectId);
      if (this.#stopped) return;
      writePrivateFileAtomic(spec.path, grant.assertion);
      writePrivateFileAtomic(`${spec.path}.env`, tokenFileEnvironment(identity, spec.path));
      this.writes++;
      this.#options.logger.info({ path: spec.path, identity: identity.objectId, expiresOn: grant.expiresOn }, 'federated token file written');
      nextMs = Math.max(1000, (refreshDue(grant) - epochSeconds(this.#clock)) * 1000);
      failures = 0;
    } catch (err) {
      failures++;
      nextMs = Math.min(60_000, (this.#options.retryBaseMs ?? 1000) * 2 ** Math.min(failures - 1, 10));
      this.#options.logger.warn({ path: spec.path, err: (err as Error).message, retryInMs: nextMs }, 'cannot write the federated token file; retrying');
    }
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#write(spec, failures);
    }, nextMs);
    timer.unref();
    this.#timers.add(timer);
  }
}
