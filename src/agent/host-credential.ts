/**
 * The host credential in the agent's data dir:
 * - `host-key-<keyId>.jwk`: the host's ES256 private key (JWK), made on this host, mode 0600, never sent;
 * - `host-credential.json`: the record (keyId, hostResourceId, tenantId, tokenEndpoint, issuedOn, expiresOn,
 *   authority URL, CA file), mode 0600;
 * - `identity-header.secret`: the machine-wide App Service secret (`IDENTITY_HEADER`/`MSI_SECRET`), mode 0600;
 * - `run/agent.json`: where the agent last listened (`{url, port, pid, startedAt}`, 0644), for `openmsi agent env`.
 * Every file is written atomically (temp file, fsync, rename). A renewal writes the new key file first, then
 * switches the record, then deletes the old key, so a crash at any point leaves a usable pair.
 *
 * {@link HostCredentialKeeper} renews at half-life (jittered ±10 %) with exponential backoff on failure; when
 * the authority says the host is not recognised it calls `onNotRecognised` (the agent stops serving at once).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { HostCredentialGrant, PublicJwk } from '../shared/host-protocol.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { runningAgentPath } from '../shared/running-agent.js';
import { UpstreamError, type AuthorityClient, type HostSigningKey } from './upstream.js';
import { makePrivateDir, writePrivateFileAtomic } from '../shared/private-files.js';

export interface HostCredentialRecord {
  version: 1;
  keyId: string;
  hostResourceId: string;
  tenantId: string;
  tokenEndpoint: string;
  /** Epoch seconds. */
  issuedOn: number;
  expiresOn: number;
  /** The preferred authority (the first `--authority` given at enrolment). */
  authorityUrl: string;
  /**
   * Every authority given at enrolment (`--authority`, repeatable: replicas of one installation), in order of
   * preference, the first being {@link authorityUrl}; absent when there was one.
   */
  authorityUrls?: string[];
  /** The CA file given with `--ca-file` at enrolment (absolute), if any. */
  caFile?: string;
  /**
   * SHA-256 (hex) of the join token this data dir enrolled with (single-use, so its hash gives nothing away): a
   * later start with the same token is the same command run again; with another, it is meant for another host.
   */
  joinTokenDigest?: string;
}

export interface HostCredential {
  record: HostCredentialRecord;
  key: HostSigningKey;
}

export function agentFiles(dataDir: string): { credential: string; identityHeader: string; runtime: string; key: (keyId: string) => string } {
  return {
    credential: join(dataDir, 'host-credential.json'),
    runtime: runningAgentPath(dataDir),
    identityHeader: join(dataDir, 'identity-header.secret'),
    key: (keyId: string) => join(dataDir, `host-key-${keyId.replace(/[^A-Za-z0-9-]/g, '_')}.jwk`),
  };
}

/** Writes `content` to `path` atomically, 0600; the directory is created 0700. */
export function writeFileAtomic(path: string, content: string): void {
  makePrivateDir(dirname(path));
  writePrivateFileAtomic(path, content);
}

/** A new ES256 key pair; the private JWK is what goes to disk. */
export async function generateHostKey(): Promise<{ privateJwk: JWK; publicJwk: PublicJwk }> {
  const pair = await generateKeyPair('ES256', { extractable: true });
  const privateJwk = await exportJWK(pair.privateKey);
  const { kty, crv, x, y } = await exportJWK(pair.publicKey);
  return {
    privateJwk,
    publicJwk: { kty: kty ?? 'EC', ...(crv === undefined ? {} : { crv }), ...(x === undefined ? {} : { x }), ...(y === undefined ? {} : { y }) },
  };
}

async function signingKey(record: HostCredentialRecord, privateJwk: JWK): Promise<HostSigningKey> {
  const privateKey = await importJWK({ ...privateJwk, alg: 'ES256' }, 'ES256');
  if (privateKey instanceof Uint8Array) throw new Error('the host key is not an EC private key');
  return { keyId: record.keyId, hostResourceId: record.hostResourceId, privateKey };
}

/** Saves a credential: the key file first, then the record that points to it. */
export async function saveHostCredential(dataDir: string, record: HostCredentialRecord, privateJwk: JWK): Promise<HostCredential> {
  const files = agentFiles(dataDir);
  writeFileAtomic(files.key(record.keyId), JSON.stringify(privateJwk));
  writeFileAtomic(files.credential, `${JSON.stringify(record, null, 2)}\n`);
  return { record, key: await signingKey(record, privateJwk) };
}

/** The credential in `dataDir`, or undefined when the host never enrolled here. */
export async function loadHostCredential(dataDir: string): Promise<HostCredential | undefined> {
  const files = agentFiles(dataDir);
  if (!existsSync(files.credential)) return undefined;
  const record = JSON.parse(readFileSync(files.credential, 'utf8')) as HostCredentialRecord;
  if (record.version !== 1 || typeof record.keyId !== 'string' || typeof record.tokenEndpoint !== 'string') {
    throw new Error(`${files.credential} is not a host credential this agent reads; enrol again with --join-token`);
  }
  const privateJwk = JSON.parse(readFileSync(files.key(record.keyId), 'utf8')) as JWK;
  return { record, key: await signingKey(record, privateJwk) };
}

/** The machine-wide header secret, created (0600) on first use. */
export function machineSecret(dataDir: string): string {
  const path = agentFiles(dataDir).identityHeader;
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length >= 16) return secret;
  }
  const secret = randomBytes(32).toString('base64url');
  writeFileAtomic(path, `${secret}\n`);
  return secret;
}

/** What {@link HostCredentialRecord.joinTokenDigest} holds for `joinToken`. */
export function joinTokenDigest(joinToken: string): string {
  return createHash('sha256').update(joinToken, 'utf8').digest('hex');
}

/**
 * Refuses a `--join-token` for a data dir that already holds a host credential, unless it is the token this
 * data dir enrolled with (the same command run again): the token is for another host (or for enrolling this
 * one again), and the saved credential would otherwise be used in its place, silently.
 */
export function refuseJoinTokenForEnrolledDir(dataDir: string, record: HostCredentialRecord, joinToken: string): void {
  if (record.joinTokenDigest !== undefined && record.joinTokenDigest === joinTokenDigest(joinToken)) return;
  const name = record.hostResourceId.split('/').pop() ?? record.hostResourceId;
  throw new Error(
    `--join-token: ${dataDir} is already enrolled as host ${name} (${record.hostResourceId}), and this join token is not the one it enrolled with. ` +
      `For another host's agent on this machine, give it a data dir and port of its own (--data-dir DIR --port N). ` +
      `To enrol this data dir again, stop its agent and delete ${agentFiles(dataDir).credential} first. ` +
      `To start it as ${name}, leave out --join-token.`,
  );
}

/** Where a record says the authorities are, in order of preference. */
export function authorityUrlsOf(record: Pick<HostCredentialRecord, 'authorityUrl' | 'authorityUrls'>): string[] {
  return record.authorityUrls !== undefined && record.authorityUrls.length > 0 ? record.authorityUrls : [record.authorityUrl];
}

function recordOf(
  grant: HostCredentialGrant,
  authorityUrls: readonly string[],
  caFile: string | undefined,
  tokenDigest: string | undefined,
): HostCredentialRecord {
  const [authorityUrl = ''] = authorityUrls;
  return {
    version: 1,
    keyId: grant.keyId,
    hostResourceId: grant.hostResourceId,
    tenantId: grant.tenantId,
    tokenEndpoint: grant.tokenEndpoint,
    issuedOn: grant.issuedOn,
    expiresOn: grant.expiresOn,
    authorityUrl,
    ...(authorityUrls.length > 1 ? { authorityUrls: [...authorityUrls] } : {}),
    ...(caFile === undefined ? {} : { caFile }),
    ...(tokenDigest === undefined ? {} : { joinTokenDigest: tokenDigest }),
  };
}

/**
 * Enrols with a join token: a key pair made here, the public key registered (at the first authority that
 * answers), the record saved with every authority of the client, the first preferred.
 */
export async function enrolHost(options: { dataDir: string; upstream: AuthorityClient; joinToken: string; caFile?: string }): Promise<HostCredential> {
  const { privateJwk, publicJwk } = await generateHostKey();
  const grant = await options.upstream.enrol({ joinToken: options.joinToken, publicJwk });
  return saveHostCredential(options.dataDir, recordOf(grant, options.upstream.origins, options.caFile, joinTokenDigest(options.joinToken)), privateJwk);
}

export interface HostCredentialKeeperOptions {
  dataDir: string;
  upstream: AuthorityClient;
  credential: HostCredential;
  logger: Logger;
  clock?: Clock;
  random?: () => number;
  retryBaseMs: number;
  retryMaxMs: number;
  onNotRecognised: (err: UpstreamError) => void;
}

export class HostCredentialKeeper {
  #current: HostCredential;
  readonly #options: HostCredentialKeeperOptions;
  readonly #clock: Clock;
  readonly #random: () => number;
  #renewAt: number;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #renewing: Promise<void> | undefined;
  #stopped = false;

  constructor(options: HostCredentialKeeperOptions) {
    this.#options = options;
    this.#current = options.credential;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#renewAt = this.#halfLife();
  }

  get current(): HostCredential {
    return this.#current;
  }

  /** Epoch ms of the next renewal attempt. */
  get renewAt(): number {
    return this.#renewAt;
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

  /**
   * Serves under `next` from now on (a new enrolment after the authority refused the host: `--join-token-file`):
   * renewal restarts from its half-life and the refused credential's key file is removed.
   */
  adopt(next: HostCredential): void {
    const previous = this.#current;
    this.#current = next;
    this.#failures = 0;
    this.#renewAt = this.#halfLife();
    if (next.record.keyId !== previous.record.keyId) rmSync(agentFiles(this.#options.dataDir).key(previous.record.keyId), { force: true });
    this.#schedule();
  }

  /** Renews now if due (the timer calls it; tests with a fake clock too). */
  async renewIfDue(): Promise<void> {
    if (this.#clock.now() < this.#renewAt) return;
    await this.renew();
  }

  /** Renews now: a new key pair, registered with the current credential, saved, then the old key removed. */
  renew(): Promise<void> {
    this.#renewing ??= this.#renewOnce().finally(() => {
      this.#renewing = undefined;
    });
    return this.#renewing;
  }

  async #renewOnce(): Promise<void> {
    const { dataDir, upstream, logger } = this.#options;
    const previous = this.#current;
    try {
      const { privateJwk, publicJwk } = await generateHostKey();
      const grant = await upstream.renew(previous.key, publicJwk);
      this.#current = await saveHostCredential(
        dataDir,
        recordOf(grant, authorityUrlsOf(previous.record), previous.record.caFile, previous.record.joinTokenDigest),
        privateJwk,
      );
      if (grant.keyId !== previous.record.keyId) rmSync(agentFiles(dataDir).key(previous.record.keyId), { force: true });
      this.#failures = 0;
      this.#renewAt = this.#halfLife();
      logger.info({ keyId: grant.keyId, expiresOn: new Date(grant.expiresOn * 1000).toISOString() }, 'host credential renewed');
    } catch (err) {
      const failure = err instanceof UpstreamError ? err : new UpstreamError('unavailable', String(err), { cause: err });
      if (failure.kind === 'host-not-recognised') {
        logger.error({ err: failure.message }, 'the authority no longer recognises this host (credential revoked or host deleted): serving no tokens');
        // No renewal until a new enrolment (adopt) or the cap: a refused credential is not retried at once.
        this.#renewAt = this.#clock.now() + this.#options.retryMaxMs;
        this.#options.onNotRecognised(failure);
        return;
      }
      this.#failures++;
      const delay = Math.min(this.#options.retryMaxMs, this.#options.retryBaseMs * 2 ** Math.min(this.#failures - 1, 30)) * (0.5 + this.#random() * 0.5);
      this.#renewAt = this.#clock.now() + Math.round(delay);
      logger.warn({ err: failure.message, failures: this.#failures, retryInMs: Math.round(delay) }, 'host credential renewal failed; retrying with backoff');
    } finally {
      this.#schedule();
    }
  }

  #halfLife(): number {
    const { issuedOn, expiresOn } = this.#current.record;
    const lifetimeMs = Math.max(0, expiresOn - issuedOn) * 1000;
    return issuedOn * 1000 + lifetimeMs * (0.4 + this.#random() * 0.2);
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    // setTimeout takes at most 2^31-1 ms; a longer wait just re-checks.
    const delay = Math.min(Math.max(0, this.#renewAt - this.#clock.now()), 2 ** 31 - 1);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.renewIfDue()
        .catch(() => undefined)
        .finally(() => {
          if (this.#timer === undefined) this.#schedule();
        });
    }, delay);
    this.#timer.unref();
  }
}
