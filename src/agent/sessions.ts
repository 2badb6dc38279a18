/**
 * `openmsi run` sessions: a per-process grant whose secret names only the identities it was created for.
 * The registry keeps a SHA-256 of each secret, never the secret; a session lives as long as the control
 * connection that created it (src/agent/control.ts revokes it when that connection closes).
 */
import { digestOf } from './secret-digest.js';
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { AGENT_SESSIONS } from '../shared/config.js';
import type { AgentSession, SessionLookup } from './contracts.js';

/** What {@link SessionRegistry.create} hands out once; the secret is not kept anywhere. */
export interface CreatedSession {
  id: string;
  /** 256 random bits, base64url (43 characters). */
  secret: string;
}

/** More sessions than {@link AGENT_SESSIONS.maxSessions} are live. */
export class TooManySessionsError extends Error {
  override readonly name = 'TooManySessionsError';
}

interface Entry {
  session: AgentSession;
  digest: Buffer;
}

export class SessionRegistry implements SessionLookup {
  readonly #byDigest = new Map<string, Entry>();
  readonly #byId = new Map<string, Entry>();
  readonly #maxSessions: number;

  constructor(options: { maxSessions?: number } = {}) {
    this.#maxSessions = options.maxSessions ?? AGENT_SESSIONS.maxSessions;
  }

  /** Starts a session for `identities` (selectors as the user gave them). */
  create(identities: readonly string[]): CreatedSession {
    if (this.#byId.size >= this.#maxSessions) throw new TooManySessionsError(`${String(this.#maxSessions)} sessions are live; end one first`);
    const id = randomUUID();
    const secret = randomBytes(32).toString('base64url');
    const digest = digestOf(secret);
    const entry: Entry = { session: Object.freeze({ id, identities: Object.freeze([...identities]) as string[] }), digest };
    this.#byDigest.set(digest.toString('hex'), entry);
    this.#byId.set(id, entry);
    return { id, secret };
  }

  /** The live session whose secret this is. The lookup is by the secret's hash; the hash is compared in constant time. */
  bySecret(secret: string): AgentSession | undefined {
    if (typeof secret !== 'string' || secret === '') return undefined;
    const digest = digestOf(secret);
    const entry = this.#byDigest.get(digest.toString('hex'));
    if (entry === undefined || !timingSafeEqual(entry.digest, digest)) return undefined;
    return entry.session;
  }

  /** Ends a session at once; returns whether it was live. */
  revoke(id: string): boolean {
    const entry = this.#byId.get(id);
    if (entry === undefined) return false;
    this.#byId.delete(id);
    this.#byDigest.delete(entry.digest.toString('hex'));
    return true;
  }

  /** The live session with this id. */
  byId(id: string): AgentSession | undefined {
    return this.#byId.get(id)?.session;
  }

  /** How many sessions are live. */
  get size(): number {
    return this.#byId.size;
  }
}
