/**
 * The in-memory view of the signing keys. Token issuance and local verification read only this snapshot,
 * never the store: {@link KeyRing.refresh} is the only thing that touches the database. It runs after each
 * change this process's rotator makes, on every change notice on {@link SIGNING_KEY_CHANNEL} (any replica's
 * rotation or revocation: at once in this process, through PostgreSQL's LISTEN from the others), and
 * periodically as a backstop for a lost notice. So a revoked key stops verifying on every replica within the
 * notice's latency plus one `list()` query.
 */
import { createPublicKey } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import type { Clock } from '../../shared/clock.js';
import { BackgroundInterval } from '../../shared/interval.js';
import { SIGNING_KEY_CHANNEL, type SigningKeyState, type SigningKeyStore, type StoreNotifications } from '../../store/types.js';
import type { MasterKey } from '../../pki/master-key.js';
import type { CryptoKey } from '../../pki/ca.js';
import { currentsNewestFirst, decryptSigningKey } from './signing-key.js';

/** The key tokens are signed with right now. */
export interface CurrentSigningKey {
  readonly kid: string;
  /** Equal to `kid` (Entra convention); v1 tokens carry it in the header too. */
  readonly x5t: string;
  readonly alg: 'RS256';
  readonly privateKey: KeyObject;
}

/** A JWK Set as served at `jwks_uri`. */
export interface JwksDocument {
  keys: Record<string, unknown>[];
}

interface PublishedKey {
  kid: string;
  state: SigningKeyState;
  publishUntil: number | null;
  jwk: Readonly<Record<string, unknown>>;
}

const PUBLISHED_STATES: ReadonlySet<SigningKeyState> = new Set(['next', 'current', 'retired']);
// Private JWK members; a public JWKS must never carry them, whatever a store row contains.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];
// JWKS order: the signing key first, then the pre-published one, then retired keys (newest first).
const STATE_ORDER: Record<SigningKeyState, number> = { current: 0, next: 1, retired: 2, revoked: 3 };

function publicOnly(jwk: Record<string, unknown>): Readonly<Record<string, unknown>> {
  const copy: Record<string, unknown> = { ...jwk };
  for (const member of PRIVATE_JWK_MEMBERS) delete copy[member];
  if (Array.isArray(copy.x5c)) copy.x5c = Object.freeze([...(copy.x5c as unknown[])]);
  return Object.freeze(copy);
}

/** Options for {@link KeyRing.startAutoRefresh}. */
export interface AutoRefreshOptions {
  /** Called when a background refresh fails; defaults to a process warning. The old snapshot stays in use. */
  onError?: (err: unknown) => void;
}

/** In-memory signing-key snapshot: the current private key and the published public keys. */
export class KeyRing {
  readonly #store: SigningKeyStore;
  readonly #masterKey: MasterKey;
  readonly #clock: Clock;
  #published: readonly PublishedKey[] = [];
  #current: CurrentSigningKey | undefined;
  // Decrypting and parsing keys is the expensive part of a refresh; reuse them across snapshots.
  #privateKeys = new Map<string, KeyObject>();
  #publicKeys = new Map<string, KeyObject>();
  // Refreshes can overlap; only a snapshot newer than the last applied one may replace it.
  #startedGen = 0;
  #appliedGen = 0;
  readonly #autoRefresh = new BackgroundInterval();
  #unsubscribe: (() => void) | undefined;
  // A notice during a refresh asks for one more: the running one may have read the store before the change.
  #noticed: Promise<void> | undefined;
  #noticedAgain = false;

  private constructor(store: SigningKeyStore, masterKey: MasterKey, clock: Clock) {
    this.#store = store;
    this.#masterKey = masterKey;
    this.#clock = clock;
  }

  /**
   * Creates a key ring and loads it from the store. An empty store is fine; {@link current} throws until keys
   * exist. With `notifications` (the store's), every key change of any replica reloads it at once; refresh
   * failures then go to `onError` (default: a process warning) and the old snapshot stays in use.
   */
  static async load(options: {
    store: SigningKeyStore;
    masterKey: MasterKey;
    clock: Clock;
    notifications?: StoreNotifications;
    onError?: (err: unknown) => void;
  }): Promise<KeyRing> {
    const { store, masterKey, clock, notifications } = options ?? {};
    if (typeof store?.list !== 'function') throw new TypeError('KeyRing.load() needs a SigningKeyStore');
    if (typeof masterKey?.decrypt !== 'function') throw new TypeError('KeyRing.load() needs a MasterKey');
    if (typeof clock?.now !== 'function') throw new TypeError('KeyRing.load() needs a clock');
    const ring = new KeyRing(store, masterKey, clock);
    if (notifications !== undefined) {
      const onError = options.onError ?? ((err: unknown) => process.emitWarning(`openmsi key ring refresh failed: ${String(err)}`));
      // Subscribed before the first load, so that no change between the load and the subscription is missed.
      ring.#unsubscribe = notifications.subscribe(SIGNING_KEY_CHANNEL, () => ring.#onNotice(onError));
    }
    await ring.refresh();
    return ring;
  }

  /** Reloads after a change notice; notices arriving meanwhile are folded into one more reload. */
  #onNotice(onError: (err: unknown) => void): void {
    if (this.#noticed !== undefined) {
      this.#noticedAgain = true;
      return;
    }
    this.#noticed = (async () => {
      do {
        this.#noticedAgain = false;
        await this.refresh().catch(onError);
      } while (this.#noticedAgain);
    })().finally(() => {
      this.#noticed = undefined;
    });
  }

  /** Resolves once the reloads that change notices started so far are done (tests wait on it). */
  async settled(): Promise<void> {
    await this.#noticed;
  }

  /**
   * Reloads the snapshot from the store. Only the current key's private half is decrypted. If decryption
   * fails (wrong master key), this rejects and the previous snapshot stays in place.
   */
  async refresh(): Promise<void> {
    const gen = ++this.#startedGen;
    const records = await this.#store.list();
    // Two currents can coexist briefly while a promotion is half done: the newest signs.
    const currentRecord = currentsNewestFirst(records)[0];
    let current: CurrentSigningKey | undefined;
    if (currentRecord !== undefined) {
      const privateKey = this.#privateKeys.get(currentRecord.kid) ?? decryptSigningKey(currentRecord, this.#masterKey);
      const x5t = typeof currentRecord.publicJwk.x5t === 'string' ? currentRecord.publicJwk.x5t : currentRecord.kid;
      current = { kid: currentRecord.kid, x5t, alg: 'RS256', privateKey };
    }
    if (gen < this.#appliedGen) return; // a later refresh already applied a newer snapshot
    this.#appliedGen = gen;

    const published = records
      .filter((r) => PUBLISHED_STATES.has(r.state))
      .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.createdAt - a.createdAt)
      .map((r) => ({ kid: r.kid, state: r.state, publishUntil: r.publishUntil, jwk: publicOnly({ ...r.publicJwk, kid: r.kid }) }));
    const kids = new Set(published.map((k) => k.kid));
    for (const kid of this.#publicKeys.keys()) if (!kids.has(kid)) this.#publicKeys.delete(kid);
    this.#privateKeys.clear();
    if (current !== undefined) this.#privateKeys.set(current.kid, current.privateKey);
    this.#published = published;
    this.#current = current;
  }

  /**
   * The signing key.
   *
   * @throws Error when there is none (keys were never initialised, or the current key was revoked with no successor).
   */
  current(): CurrentSigningKey {
    if (this.#current === undefined) throw new Error('No current signing key: initialise keys first (KeyRotator.ensureKeys)');
    return this.#current;
  }

  /** Whether there is a key to sign with (readiness: {@link current} would not throw). */
  hasCurrent(): boolean {
    return this.#current !== undefined;
  }

  /** The JWK Set to publish: `next`, `current` and `retired` keys whose `publishUntil` (if any) is still ahead. */
  jwks(): JwksDocument {
    const now = this.#clock.now();
    const keys: Record<string, unknown>[] = [];
    for (const k of this.#visible(now)) keys.push(k.jwk);
    return { keys };
  }

  /** A published public key by `kid`, for verifying locally; undefined when not (or no longer) published. */
  publicKey(kid: string): KeyObject | CryptoKey | undefined {
    if (typeof kid !== 'string') throw new TypeError('publicKey() takes a kid string');
    const entry = this.#visible(this.#clock.now()).find((k) => k.kid === kid);
    if (entry === undefined) return undefined;
    let key = this.#publicKeys.get(kid);
    if (key === undefined) {
      key = createPublicKey({ key: entry.jwk as JsonWebKey, format: 'jwk' });
      this.#publicKeys.set(kid, key);
    }
    return key;
  }

  /**
   * Whether `kid` is published now (a key that may verify tokens). In memory: caches of verified tokens call it
   * on every hit, so a token whose key was revoked is refused as soon as this key ring hears of it.
   */
  isPublished(kid: string): boolean {
    const now = this.#clock.now();
    for (const k of this.#published) if (k.kid === kid && (k.publishUntil === null || k.publishUntil > now)) return true;
    return false;
  }

  /**
   * Refreshes every `intervalMs` in the background (timer is unref'd), for replicas that do not rotate
   * themselves. Calling it again replaces the previous timer.
   */
  startAutoRefresh(intervalMs: number, options: AutoRefreshOptions = {}): void {
    if (!Number.isFinite(intervalMs) || intervalMs < 1) throw new TypeError('startAutoRefresh() needs a positive interval');
    const onError = options.onError ?? ((err: unknown) => process.emitWarning(`openmsi key ring refresh failed: ${String(err)}`));
    this.#autoRefresh.start(intervalMs, () => this.refresh(), onError);
  }

  /** Stops background refresh and change notices. */
  stop(): void {
    this.#autoRefresh.stop();
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  #visible(now: number): PublishedKey[] {
    return this.#published.filter((k) => k.publishUntil === null || k.publishUntil > now);
  }
}
