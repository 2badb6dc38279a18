/**
 * Signing-key rotation (peers-security-rbac §6.2): keys move next → current → retired → purged.
 *
 * - A `next` key is published in the JWKS at least `prepublishMs` before it signs anything, so verifiers
 *   with a cached JWKS already know it when the first token arrives.
 * - A `retired` key stays published for `maxTokenLifetime + verifierCache + clockSkew`, so every token it
 *   signed can be verified until it expires, even by a verifier whose JWKS copy is as old as it may be.
 * - Emergency rotation can instead `revoke` the old key: it leaves the JWKS at once.
 *
 * Exactly one replica rotates at a time: with the store's {@link StoreLocks} (an advisory lock on PostgreSQL)
 * a tick runs only on the replica that holds {@link ROTATION_LOCK}, and the others skip it. Every state change
 * is still a compare-and-set on the store, so even without the lock replicas cannot both promote.
 */
import type { Clock } from '../../shared/clock.js';
import { DAY, HOUR, MINUTE } from '../../shared/clock.js';
import { BackgroundInterval } from '../../shared/interval.js';
import type { SigningKeyRecord, SigningKeyStore, StoreLocks } from '../../store/types.js';
import type { MasterKey } from '../../pki/master-key.js';
import type { CryptoKeyPair } from '../../pki/ca.js';
import type { KeyRing } from './key-ring.js';
import { activatedAt, currentsNewestFirst, generateSigningKey } from './signing-key.js';

/** Timing rules for rotation. All values are milliseconds. */
export interface RotationPolicy {
  /** How long a key signs before the next one takes over. Default 30 days. */
  rotationPeriodMs: number;
  /** How long the next key is in the JWKS before it signs. Must be ≥ `verifierCacheMs`. Default 48 h. */
  prepublishMs: number;
  /** The longest access-token lifetime the authority issues. Default 24 h. */
  maxTokenLifetimeMs: number;
  /** The longest time a verifier may cache the JWKS. Default 24 h. */
  verifierCacheMs: number;
  /** Clock skew tolerated between authority and verifiers. Default 5 min. */
  clockSkewMs: number;
}

/** The default {@link RotationPolicy}. */
export const DEFAULT_ROTATION_POLICY: Readonly<RotationPolicy> = Object.freeze({
  rotationPeriodMs: 30 * DAY,
  prepublishMs: 48 * HOUR,
  maxTokenLifetimeMs: 24 * HOUR,
  verifierCacheMs: 24 * HOUR,
  clockSkewMs: 5 * MINUTE,
});

/**
 * Fills defaults and validates.
 *
 * @throws TypeError for non-numeric or non-positive values, `prepublishMs < verifierCacheMs` (a verifier
 *   could meet a token signed by a key its cached JWKS lacks) or `rotationPeriodMs < prepublishMs` (the next
 *   key could never be pre-published long enough, so the real period would silently stretch).
 */
export function resolveRotationPolicy(policy: Partial<RotationPolicy> = {}): Readonly<RotationPolicy> {
  const resolved: RotationPolicy = { ...DEFAULT_ROTATION_POLICY };
  for (const name of Object.keys(DEFAULT_ROTATION_POLICY) as (keyof RotationPolicy)[]) {
    const value = policy[name];
    if (value === undefined) continue;
    const min = name === 'clockSkewMs' ? 0 : 1;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new TypeError(`Rotation policy: ${name} must be an integer number of milliseconds ≥ ${min}`);
    }
    resolved[name] = value;
  }
  if (resolved.prepublishMs < resolved.verifierCacheMs) {
    throw new TypeError('Rotation policy: prepublishMs must be ≥ verifierCacheMs so verifiers see the next key before it signs');
  }
  if (resolved.rotationPeriodMs < resolved.prepublishMs) {
    throw new TypeError('Rotation policy: rotationPeriodMs must be ≥ prepublishMs');
  }
  return Object.freeze(resolved);
}

/** How long a retired key stays in the JWKS: max token lifetime + verifier JWKS cache + clock skew (§6.2 rule 3). */
export function retiredKeyRetentionMs(policy: Readonly<RotationPolicy>): number {
  return policy.maxTokenLifetimeMs + policy.verifierCacheMs + policy.clockSkewMs;
}

/** An auditable key-lifecycle event. */
export interface KeyEvent {
  action: 'keys.rotated' | 'keys.created' | 'keys.revoked' | 'keys.purged';
  kid: string;
  detail: Record<string, unknown>;
}

/** The name of the lock a replica holds while it rotates ({@link StoreLocks}). */
export const ROTATION_LOCK = 'openmsi.signing-key-rotation';

/** How long {@link KeyRotator.ensureKeys} and {@link KeyRotator.rotateNow} wait for another replica's rotation. */
const LOCK_WAIT_MS = 30_000;

/** Options for {@link KeyRotator}. */
export interface KeyRotatorOptions {
  store: SigningKeyStore;
  /**
   * The store's locks: a tick runs only on the replica holding {@link ROTATION_LOCK} (the others skip it), and
   * `ensureKeys` / `rotateNow` wait for it. Absent, replicas rely on compare-and-set alone.
   */
  locks?: StoreLocks;
  masterKey: MasterKey;
  clock: Clock;
  keyRing: KeyRing;
  policy?: Partial<RotationPolicy>;
  /** Receives lifecycle events (for the audit log). Failures go to `onError` and never undo a rotation. */
  onEvent?: (event: KeyEvent) => void | Promise<void>;
  /** Receives failures of background ticks and of `onEvent`. Defaults to a process warning. */
  onError?: (err: unknown) => void;
  /**
   * Where each new key's RSA pair comes from; default a fresh RSA-2048 pair per key. Only tests pass one: RSA
   * generation is most of a rotation test's time, and they reuse a small pool of pairs (each key still gets
   * its own certificate, hence its own `kid`).
   */
  newKeyPair?: () => Promise<CryptoKeyPair>;
}

/** What one {@link KeyRotator.tick} did. */
export interface TickResult {
  /** The new current kid when this tick promoted a key. */
  promoted: string | undefined;
  /** Kids of keys this tick generated. */
  created: string[];
  /** Keys removed from the store. */
  purged: number;
  /** True when another replica held the rotation lock, so this tick did nothing. */
  skipped: boolean;
}

/** The outcome of {@link KeyRotator.rotateNow}. */
export interface ManualRotationResult {
  current: string;
  /** The key that signed before, or null when there was none. */
  previous: string | null;
  /** Whether `previous` was revoked (removed from the JWKS at once) rather than retired. */
  revoked: boolean;
}

function byCreatedAsc(a: SigningKeyRecord, b: SigningKeyRecord): number {
  return a.createdAt - b.createdAt;
}

/** The oldest `next` key: the one that has been pre-published longest. */
function oldestNext(records: readonly SigningKeyRecord[]): SigningKeyRecord | undefined {
  return records.filter((r) => r.state === 'next').sort(byCreatedAsc)[0];
}

const MAX_PROMOTE_ATTEMPTS = 3;

/** Drives the signing-key lifecycle against the store and keeps a {@link KeyRing} in step. */
export class KeyRotator {
  /** The validated policy in force. */
  readonly policy: Readonly<RotationPolicy>;
  /** Retired-key retention derived from the policy. */
  readonly retentionMs: number;
  readonly #store: SigningKeyStore;
  readonly #locks: StoreLocks | undefined;
  readonly #masterKey: MasterKey;
  readonly #clock: Clock;
  readonly #keyRing: KeyRing;
  readonly #onEvent: ((event: KeyEvent) => void | Promise<void>) | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #newKeyPair: (() => Promise<CryptoKeyPair>) | undefined;
  // Serialises this instance's own operations; other replicas are handled by compare-and-set.
  #tail: Promise<unknown> = Promise.resolve();
  readonly #ticker = new BackgroundInterval();

  constructor(options: KeyRotatorOptions) {
    const { store, locks, masterKey, clock, keyRing, policy, onEvent, onError, newKeyPair } = options ?? ({} as KeyRotatorOptions);
    if (typeof store?.transition !== 'function') throw new TypeError('KeyRotator needs a SigningKeyStore');
    if (typeof masterKey?.encrypt !== 'function') throw new TypeError('KeyRotator needs a MasterKey');
    if (typeof clock?.now !== 'function') throw new TypeError('KeyRotator needs a clock');
    if (typeof keyRing?.refresh !== 'function') throw new TypeError('KeyRotator needs a KeyRing');
    if (onEvent !== undefined && typeof onEvent !== 'function') throw new TypeError('KeyRotator: onEvent must be a function');
    this.policy = resolveRotationPolicy(policy);
    this.retentionMs = retiredKeyRetentionMs(this.policy);
    this.#store = store;
    this.#locks = locks;
    this.#masterKey = masterKey;
    this.#clock = clock;
    this.#keyRing = keyRing;
    this.#onEvent = onEvent;
    this.#newKeyPair = newKeyPair;
    this.#onError = onError ?? ((err: unknown) => process.emitWarning(`openmsi key rotation: ${String(err)}`));
  }

  /**
   * Makes sure a current and a next key exist (initialisation). An existing next key is promoted if the
   * current one is missing; otherwise a fresh current key is created.
   */
  ensureKeys(): Promise<void> {
    return this.#exclusive(LOCK_WAIT_MS, async () => {
      let records = await this.#store.list();
      if (currentsNewestFirst(records).length === 0) {
        await this.#establishCurrent(records);
        records = await this.#store.list();
      }
      if (oldestNext(records) === undefined) await this.#createKey('next');
      await this.#keyRing.refresh();
    });
  }

  /**
   * One housekeeping pass: repair, pre-publish, promote when due, purge. Safe to run concurrently on several
   * replicas sharing a store.
   */
  tick(): Promise<TickResult> {
    return this.#exclusive(
      0,
      async () => {
        const result: TickResult = { promoted: undefined, created: [], purged: 0, skipped: false };
        const now = this.#clock.now();
        let records = await this.#store.list();

        // A promotion that stopped halfway (crash between the two transitions) leaves two currents: retire the older.
        const currents = currentsNewestFirst(records);
        for (const stale of currents.slice(1)) {
          const publishUntil = await this.#retire(stale.kid, now);
          if (publishUntil !== undefined) {
            await this.#emit({ action: 'keys.rotated', kid: stale.kid, detail: { retired: true, reason: 'superseded', publishUntil } });
          }
        }
        if (currents.length === 0) {
          const established = await this.#establishCurrent(records);
          if (established.created) result.created.push(established.kid);
          else result.promoted = established.kid;
          records = await this.#store.list();
        }

        const next = oldestNext(records);
        if (next === undefined) {
          result.created.push(await this.#createKey('next'));
        } else {
          const current = currentsNewestFirst(records)[0];
          if (current !== undefined && now - activatedAt(current) >= this.policy.rotationPeriodMs && now - next.createdAt >= this.policy.prepublishMs) {
            // Only the replica whose compare-and-set wins retires the old key and makes the new next one.
            if (await this.#store.transition(next.kid, 'next', { state: 'current', activatedAt: now })) {
              const publishUntil = await this.#retire(current.kid, now);
              await this.#emit({
                action: 'keys.rotated',
                kid: next.kid,
                detail: { previous: current.kid, manual: false, previousPublishUntil: publishUntil ?? null },
              });
              result.promoted = next.kid;
              result.created.push(await this.#createKey('next'));
            }
          }
        }

        result.purged = await this.#purge(now, records);
        await this.#keyRing.refresh();
        return result;
      },
      { promoted: undefined, created: [], purged: 0, skipped: true },
    );
  }

  /**
   * Rotates immediately: the oldest next key (or, failing that, a fresh key) becomes current. The old current
   * key is retired with normal retention, or — with `revokePrevious` — revoked: removed from the JWKS at once,
   * so tokens it signed stop verifying (remote verifiers notice when their JWKS cache refreshes).
   */
  rotateNow(options: { revokePrevious?: boolean } = {}): Promise<ManualRotationResult> {
    const revokePrevious = options.revokePrevious ?? false;
    if (typeof revokePrevious !== 'boolean') throw new TypeError('rotateNow(): revokePrevious must be a boolean');
    return this.#exclusive(LOCK_WAIT_MS, async () => {
      const now = this.#clock.now();
      const records = await this.#store.list();
      const previous = currentsNewestFirst(records)[0];
      const { kid: current } = await this.#establishCurrent(records, 'manual');
      let previousPublishUntil: number | null = null;
      let revoked = false;
      if (previous !== undefined) {
        if (revokePrevious) {
          // If another replica retired it meanwhile, revoke it from there: a suspect key must leave the JWKS.
          revoked =
            (await this.#store.transition(previous.kid, 'current', { state: 'revoked', revokedAt: now })) ||
            (await this.#store.transition(previous.kid, 'retired', { state: 'revoked', revokedAt: now }));
          if (revoked) {
            await this.#emit({ action: 'keys.revoked', kid: previous.kid, detail: { replacedBy: current } });
          }
        } else {
          previousPublishUntil = (await this.#retire(previous.kid, now)) ?? null;
        }
      }
      await this.#emit({
        action: 'keys.rotated',
        kid: current,
        detail: {
          previous: previous?.kid ?? null,
          manual: true,
          revokedPrevious: revoked,
          previousPublishUntil,
        },
      });
      if (oldestNext(await this.#store.list()) === undefined) await this.#createKey('next');
      await this.#keyRing.refresh();
      return { current, previous: previous?.kid ?? null, revoked };
    });
  }

  /** Runs {@link tick} every `intervalMs` (unref'd timer). Calling it again replaces the previous timer. */
  start(intervalMs = 60_000): void {
    if (!Number.isFinite(intervalMs) || intervalMs < 1) throw new TypeError('KeyRotator.start() needs a positive interval');
    this.#ticker.start(intervalMs, () => this.tick(), this.#onError);
  }

  /** Stops the timer started by {@link start}. */
  stop(): void {
    this.#ticker.stop();
  }

  /**
   * Makes some key current: promotes the oldest next key (compare-and-set, retried against a fresh list if
   * another replica took it) or, if there is none, creates a current key.
   */
  async #establishCurrent(records: SigningKeyRecord[], reason = 'initial'): Promise<{ kid: string; created: boolean }> {
    let candidates = records;
    for (let attempt = 0; attempt < MAX_PROMOTE_ATTEMPTS; attempt++) {
      const next = oldestNext(candidates);
      if (next === undefined) break;
      if (await this.#store.transition(next.kid, 'next', { state: 'current', activatedAt: this.#clock.now() })) {
        if (reason !== 'manual') await this.#emit({ action: 'keys.rotated', kid: next.kid, detail: { previous: null, reason } });
        return { kid: next.kid, created: false };
      }
      candidates = await this.#store.list();
    }
    return { kid: await this.#createKey('current'), created: true };
  }

  async #createKey(state: 'next' | 'current'): Promise<string> {
    const keyPair = await this.#newKeyPair?.();
    const record = await generateSigningKey({ masterKey: this.#masterKey, clock: this.#clock, state, keyPair });
    await this.#store.insert(record);
    await this.#emit({ action: 'keys.created', kid: record.kid, detail: { state } });
    return record.kid;
  }

  /** current → retired, published for the retention period. Returns `publishUntil`, or undefined if another replica moved it first. */
  async #retire(kid: string, now: number): Promise<number | undefined> {
    const publishUntil = now + this.retentionMs;
    const ok = await this.#store.transition(kid, 'current', { state: 'retired', retiredAt: now, publishUntil });
    return ok ? publishUntil : undefined;
  }

  async #purge(now: number, records: readonly SigningKeyRecord[]): Promise<number> {
    const expired = records.filter(
      (r) => (r.state === 'retired' && r.publishUntil !== null && r.publishUntil < now) || (r.state === 'revoked' && r.revokedAt !== null && r.revokedAt < now),
    );
    // Skip the write entirely on the common tick where nothing has expired.
    if (expired.length === 0) return 0;
    const purged = await this.#store.purge(now);
    if (purged > 0) {
      for (const r of expired) await this.#emit({ action: 'keys.purged', kid: r.kid, detail: { state: r.state } });
    }
    return purged;
  }

  async #emit(event: KeyEvent): Promise<void> {
    if (this.#onEvent === undefined) return;
    try {
      await this.#onEvent(event);
    } catch (err) {
      this.#onError(err);
    }
  }

  /**
   * Runs `fn` after this instance's earlier operations, holding the rotation lock when there are locks. When
   * another replica holds it for longer than `waitMs`, answers `busy` (a tick: that replica is rotating, and its
   * change notices reload this key ring), or fails when there is none.
   */
  #exclusive<T>(waitMs: number, fn: () => Promise<T>, busy?: T): Promise<T> {
    const locks = this.#locks;
    const locked =
      locks === undefined
        ? fn
        : async (): Promise<T> => {
            const outcome = await locks.exclusive(ROTATION_LOCK, fn, { waitMs });
            if (outcome.acquired) return outcome.value;
            if (busy !== undefined) return busy;
            throw new Error(`another replica held the signing-key rotation lock for ${String(waitMs)} ms; try again`);
          };
    const run = this.#tail.then(locked);
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
