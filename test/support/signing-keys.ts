/** Shared setup of the signing-key tests (test/authority/keys/rotation*.test.ts): an in-memory key store, key pairs, a rotator. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock, FakeClock } from '../../src/shared/clock.js';
import { epochSeconds } from '../../src/shared/clock.js';
import type { SigningKeyRecord, SigningKeyState, SigningKeyStore } from '../../src/store/types.js';
import { MasterKey } from '../../src/pki/master-key.js';
import { generateRsaSigningKeyPair, type CryptoKeyPair } from '../../src/pki/ca.js';
import { KeyRing } from '../../src/authority/keys/key-ring.js';
import { KeyRotator } from '../../src/authority/keys/rotation.js';
import type { KeyEvent } from '../../src/authority/keys/rotation.js';
import { TokenVerificationError, localJwks } from '../../src/shared/token-verifier.js';
import type { JwksDocument, JwksSource } from '../../src/shared/token-verifier.js';

export const TID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const ISSUER = `https://sts.openmsi.test/${TID}/`;
export const AUDIENCE = 'https://vault.azure.net';

/** Yields to the event loop so concurrent callers genuinely interleave, as with a real database. */
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A SigningKeyStore over a Map, honouring transition's compare-and-set and purge's rules. */
export class MemorySigningKeyStore implements SigningKeyStore {
  readonly rows = new Map<string, SigningKeyRecord>();
  transitions = 0;

  async list(): Promise<SigningKeyRecord[]> {
    await yieldTurn();
    return [...this.rows.values()].map((r) => structuredClone(r));
  }

  async insert(key: SigningKeyRecord): Promise<void> {
    await yieldTurn();
    if (this.rows.has(key.kid)) throw new Error(`duplicate kid ${key.kid}`);
    this.rows.set(key.kid, structuredClone(key));
  }

  async transition(
    kid: string,
    expectedState: SigningKeyState,
    changes: Partial<Pick<SigningKeyRecord, 'state' | 'activatedAt' | 'retiredAt' | 'publishUntil' | 'revokedAt'>>,
  ): Promise<boolean> {
    await yieldTurn();
    const row = this.rows.get(kid);
    if (row === undefined || row.state !== expectedState) return false;
    Object.assign(row, changes);
    this.transitions++;
    return true;
  }

  async purge(before: number): Promise<number> {
    await yieldTurn();
    let n = 0;
    for (const [kid, r] of this.rows) {
      const gone =
        (r.state === 'revoked' && r.revokedAt !== null && r.revokedAt < before) ||
        (r.state === 'retired' && r.publishUntil !== null && r.publishUntil < before);
      if (gone) {
        this.rows.delete(kid);
        n++;
      }
    }
    return n;
  }

  byState(state: SigningKeyState): SigningKeyRecord[] {
    return [...this.rows.values()].filter((r) => r.state === state);
  }
}

/**
 * RSA generation is most of this file's time: the rotators here take their pairs from a pool of
 * {@link KEY_PAIR_POOL} generated once and handed out round-robin. Each key still has its own certificate and
 * so its own kid, and no test has that many keys alive at once, so two live keys never share a pair.
 */
const KEY_PAIR_POOL = 5;
const keyPairs: Promise<CryptoKeyPair>[] = [];
let keyPairsHandedOut = 0;
export function pooledKeyPair(): Promise<CryptoKeyPair> {
  const i = keyPairsHandedOut++ % KEY_PAIR_POOL;
  keyPairs[i] ??= generateRsaSigningKeyPair();
  return keyPairs[i];
}

export async function setup(clock: FakeClock, store = new MemorySigningKeyStore(), masterKey = MasterKey.random()) {
  const events: KeyEvent[] = [];
  const keyRing = await KeyRing.load({ store, masterKey, clock });
  const rotator = new KeyRotator({ store, masterKey, clock, keyRing, onEvent: (e) => void events.push(e), newKeyPair: pooledKeyPair });
  return { store, masterKey, keyRing, rotator, events };
}

export async function signWith(keyRing: KeyRing, clock: Clock, lifetimeMs: number): Promise<{ token: string; kid: string; expMs: number }> {
  const key = keyRing.current();
  const now = epochSeconds(clock);
  const exp = now + Math.floor(lifetimeMs / 1000);
  const oid = randomUUID();
  const token = await new SignJWT({ aud: AUDIENCE, iss: ISSUER, oid, sub: oid, tid: TID, ver: '1.0', idtyp: 'app' })
    .setProtectedHeader({ alg: key.alg, typ: 'JWT', kid: key.kid, x5t: key.x5t })
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(exp)
    .sign(key.privateKey);
  return { token, kid: key.kid, expMs: exp * 1000 };
}

/** A verifier-side JWKS cache that refetches only when its copy is `maxAgeMs` old and never on unknown kids: the worst case rotation must survive. */
export function lazilyCachedJwks(getJwks: () => JwksDocument, clock: Clock, maxAgeMs: number): JwksSource {
  let snapshot: JwksDocument | undefined;
  let fetchedAt = -Infinity;
  const inner = localJwks(() => snapshot!);
  return {
    getKey(kid) {
      if (snapshot === undefined || clock.now() - fetchedAt >= maxAgeMs) {
        snapshot = structuredClone(getJwks());
        fetchedAt = clock.now();
      }
      return inner.getKey(kid);
    },
  };
}

export function jwksKids(keyRing: KeyRing): Set<string> {
  return new Set(keyRing.jwks().keys.map((k) => k.kid as string));
}

export async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof TokenVerificationError && err.code === code);
}
