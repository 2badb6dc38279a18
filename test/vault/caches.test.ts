/**
 * The vault's in-memory caches and bearer authentication, over test doubles (no authority, no HTTP): what the
 * token cache, the secret read cache and the vault cache may serve from memory, and what a revocation, a
 * principal's deletion, a change notice, an expiry or a TTL takes out of them (docs/security.md, "Revocation
 * bounds per cache"). The end-to-end bounds are in revocation.test.ts; these pin every edge of each cache.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { authenticate, TokenCache } from '../../src/vault/authenticate.js';
import { SecretCache } from '../../src/vault/secret-cache.js';
import { VaultCache } from '../../src/vault/vault-cache.js';
import type { VaultContext } from '../../src/vault/contracts.js';
import { VaultError } from '../../src/vault/errors.js';
import { FakeClock } from '../../src/shared/clock.js';
import { vaultRecord as sharedVaultRecord } from '../support/vault.js';
import { TokenVerificationError, type VerifiedToken } from '../../src/shared/token-verifier.js';
import {
  PRINCIPAL_CHANNEL,
  SECRET_CHANNEL,
  VAULT_CHANNEL,
  secretChangeKey,
  type SecretEntry,
  type SecretVersion,
  type Store,
  type Vault,
} from '../../src/store/types.js';

// Ids with hex letters, so that a lost case fold shows.
const TENANT = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const OTHER_TENANT = 'f0e1d2c3-b4a5-4968-8776-5a4b3c2d1e0f';
const ALICE = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const BOB = 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff';
const KID = 'kid-1';
const ORIGIN = 'https://localhost:8443';
const START = Date.UTC(2026, 0, 1);

/** Change notices as a store delivers them in one process: `publish` calls every listener of the channel. */
class Bus {
  readonly listeners = new Map<string, Set<(payload: string) => void>>();
  subscribe(channel: string, listener: (payload: string) => void): () => void {
    const set = this.listeners.get(channel) ?? new Set();
    this.listeners.set(channel, set);
    set.add(listener);
    return () => set.delete(listener);
  }
  publish(channel: string, payload: string): void {
    for (const listener of this.listeners.get(channel) ?? []) listener(payload);
  }
  count(channel: string): number {
    return this.listeners.get(channel)?.size ?? 0;
  }
}

/** A deferred answer: the store read that a test lets finish only after it made a change. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A store double with what the caches read: principals, vaults by name, secrets; every read counted. */
class FakeStore {
  readonly bus = new Bus();
  readonly principals = new Set<string>();
  readonly vaults = new Map<string, Vault>();
  readonly secrets = new Map<string, { entry: SecretEntry; version: SecretVersion }>();
  principalReads = 0;
  vaultReads = 0;
  secretReads = 0;
  /** When set, the next principal or secret read waits for it. */
  gate: Promise<void> | undefined;

  asStore(): Store {
    return {
      notifications: { subscribe: (c: string, l: (p: string) => void) => this.bus.subscribe(c, l), ready: () => Promise.resolve() },
      servicePrincipals: {
        getByObjectId: async (objectId: string) => {
          this.principalReads += 1;
          const exists = this.principals.has(objectId.toLowerCase());
          await this.#wait();
          return exists ? { objectId } : undefined;
        },
      },
      // No users in this double: a principal is known only as a service principal here.
      users: { getByObjectId: () => Promise.resolve(undefined) },
      vaults: {
        getByName: (name: string) => {
          this.vaultReads += 1;
          return Promise.resolve(this.vaults.get(name.toLowerCase()));
        },
      },
      secrets: {
        get: async (vaultId: string, name: string, version?: string) => {
          this.secretReads += 1;
          const found = this.secrets.get(`${vaultId}/${name.toLowerCase()}/${version?.toLowerCase() ?? ''}`);
          await this.#wait();
          return found;
        },
      },
    } as unknown as Store;
  }

  async #wait(): Promise<void> {
    const gate = this.gate;
    this.gate = undefined;
    if (gate !== undefined) await gate;
  }
}

const vaultRecord = (name: string, overrides: Partial<Vault> = {}): Vault => sharedVaultRecord(name, TENANT, overrides);

function verified(oid: string, options: { exp?: number; tid?: string; kid?: string; aud?: string } = {}): VerifiedToken {
  const tid = options.tid ?? TENANT;
  return {
    header: { alg: 'RS256', kid: options.kid ?? KID },
    claims: {
      aud: options.aud ?? 'https://vault.localhost',
      iss: `${ORIGIN}/${tid}/`,
      iat: START / 1000,
      nbf: START / 1000,
      exp: options.exp ?? START / 1000 + 3600,
      appid: `app-${oid}`,
      oid,
      sub: oid,
      tid,
      ver: '1.0',
    },
  };
}

/** A vault context over the fake store, with a verifier of a fixed set of tokens that counts its calls. */
function harness() {
  const store = new FakeStore();
  const clock = new FakeClock(START);
  const published = new Set([KID]);
  const issued = new Map<string, VerifiedToken>();
  let verifications = 0;
  let failure: Error | undefined;
  const ctx = {
    store: store.asStore(),
    clock,
    vaultDomain: 'vault.localhost',
    authorityOrigin: () => ORIGIN,
    signingKeyPublished: (kid: string) => published.has(kid),
    verifyAccessToken: (token: string, audiences: readonly string[]) => {
      verifications += 1;
      if (failure !== undefined) return Promise.reject(failure);
      const found = issued.get(token);
      if (found === undefined) return Promise.reject(new TokenVerificationError('malformed', 'not a token'));
      if (!published.has(found.header.kid)) return Promise.reject(new TokenVerificationError('unknown_key', 'key'));
      if (found.claims.exp * 1000 + 60_000 <= clock.now()) return Promise.reject(new TokenVerificationError('expired', 'expired'));
      if (!audiences.includes(found.claims.aud)) return Promise.reject(new TokenVerificationError('bad_audience', 'audience'));
      return Promise.resolve(found);
    },
  } as unknown as VaultContext;
  const cache = new TokenCache(ctx);
  const vault = vaultRecord('kv');
  return {
    store,
    clock,
    published,
    ctx,
    cache,
    vault,
    verifications: () => verifications,
    failWith: (err: Error | undefined) => (failure = err),
    /** Registers `token` as a valid token of `oid`, whose principal exists unless told otherwise. */
    issue(token: string, oid: string, options: Parameters<typeof verified>[1] & { principal?: boolean } = {}): VerifiedToken {
      const v = verified(oid, options);
      issued.set(token, v);
      if (options.principal !== false) store.principals.add(oid.toLowerCase());
      return v;
    },
    /** authenticate() of a request with this Authorization header (none when undefined) to `vault` on `port`. */
    call(authorization: string | undefined, port = 8443, to: Vault = vault) {
      const request = {
        headers: { host: `${to.name}.vault.localhost:${String(port)}`, ...(authorization === undefined ? {} : { authorization }) },
      } as unknown as FastifyRequest;
      return authenticate(ctx, cache, request, to);
    },
  };
}

/** The 401 a call ended with (with the challenge header), or a failure of the test. */
async function refusal(call: Promise<unknown>): Promise<VaultError> {
  const err = await call.then(
    () => assert.fail('accepted'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof VaultError, String(err));
  assert.equal(err.status, 401, err.message);
  return err;
}

describe('vault authentication: bearer header', () => {
  it('accepts the Bearer scheme case-insensitively, with any run of spaces or tabs, and nothing else', async () => {
    const h = harness();
    h.issue('tok.en', ALICE);
    for (const header of ['Bearer tok.en', 'bearer tok.en', 'BEARER tok.en', 'Bearer  tok.en', 'Bearer\ttok.en', 'Bearer tok.en ']) {
      assert.equal((await h.call(header)).objectId, ALICE, JSON.stringify(header));
    }
    for (const header of [
      '',
      'Bearer',
      'Bearer ',
      'Bearer  ',
      'tok.en',
      'Basic tok.en',
      'XBearer tok.en',
      'Xearer tok.en',
      ' Bearer tok.en',
      'Bearertok.en',
      'Bearer tok.en extra',
      'Bearer tok en',
    ]) {
      const err = await refusal(h.call(header));
      assert.match(err.message, /^AKV10000: Request is missing a Bearer or PoP token\.$/, JSON.stringify(header));
      assert.match(
        err.headers?.['www-authenticate'] ?? '',
        /^Bearer authorization="https:\/\/localhost:8443\/a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", resource="https:\/\/vault\.localhost:8443"$/,
      );
    }
    assert.match((await refusal(h.call(undefined))).message, /^AKV10000/, 'no header');
    assert.equal(h.verifications(), 1, 'a malformed header never reaches the verifier');
  });

  it('a token the verifier refuses is a 401 with its reason; any other verifier failure is not turned into a 401', async () => {
    const h = harness();
    assert.match((await refusal(h.call('Bearer unknown'))).message, /^AKV10001: Invalid token\. The token is malformed\.$/);
    h.issue('other-aud', ALICE, { aud: 'https://management.azure.com/' });
    assert.match(
      (await refusal(h.call('Bearer other-aud'))).message,
      /^AKV10022: Invalid audience\. Expected https:\/\/vault\.localhost:8443 or https:\/\/vault\.localhost or https:\/\/vault\.azure\.net\.$/,
    );
    const down = new Error('JWKS unreachable');
    h.failWith(down);
    await assert.rejects(h.call('Bearer other-aud'), (err) => err === down);
  });
});

describe('vault authentication: the token cache', () => {
  it('invariant: each cached token authenticates its own principal only', async () => {
    const h = harness();
    h.issue('alice-token', ALICE);
    h.issue('bob-token', BOB);
    for (let i = 0; i < 2; i++) {
      assert.equal((await h.call('Bearer alice-token')).objectId, ALICE);
      assert.equal((await h.call('Bearer bob-token')).objectId, BOB);
    }
    await refusal(h.call('Bearer mallory-token'));
    assert.equal(h.verifications(), 3, 'verified once each, then served from memory');
    assert.equal(h.store.principalReads, 2, "each principal's existence read once");
  });

  it('invariant: a token verified for one set of audiences is not served from the cache to a request that accepts others', async () => {
    const h = harness();
    h.issue('port-bound', ALICE, { aud: 'https://vault.localhost:8443' });
    assert.equal((await h.call('Bearer port-bound', 8443)).objectId, ALICE);
    assert.match((await refusal(h.call('Bearer port-bound', 9443))).message, /^AKV10022/);
  });

  it('invariant: a cached token is refused once its signing key is no longer published, and at its exp', async () => {
    const h = harness();
    h.issue('rotated', ALICE);
    assert.equal((await h.call('Bearer rotated')).objectId, ALICE);
    h.published.delete(KID);
    assert.match((await refusal(h.call('Bearer rotated'))).message, /^AKV10046/);
    h.published.add(KID);

    // The cache's own bound: a hit at exp or later is not served (the verifier decides again).
    const v = h.issue('expiring', BOB, { exp: START / 1000 + 10 });
    h.cache.set('k', v, h.cache.generation);
    assert.equal(h.cache.get('k', START), v, 'served from memory while valid');
    assert.equal(h.cache.get('k', START + 9_999), v);
    assert.equal(h.cache.get('k', START + 10_000), undefined, 'not at exp');
    assert.equal(h.cache.get('k', START), undefined, 'and dropped');
    h.cache.set('k', v, h.cache.generation);
    h.published.delete(KID);
    assert.equal(h.cache.get('k', START), undefined, 'not once its key is gone');
    h.published.add(KID);
    assert.equal(h.cache.get('k', START), undefined, 'dropped, not kept for later');
  });

  it("invariant: a principal's deletion notice drops its cached tokens (any case of its id) and no other's", async () => {
    const h = harness();
    h.issue('alice-token', ALICE.toUpperCase());
    h.issue('bob-token', BOB);
    await h.call('Bearer alice-token');
    await h.call('Bearer bob-token');
    h.store.principals.delete(ALICE);
    h.store.bus.publish(PRINCIPAL_CHANNEL, ALICE);
    assert.match((await refusal(h.call('Bearer alice-token'))).message, /^AKV10001: Invalid token\. The principal '.*' named by the token no longer exists\.$/);
    const reads = h.store.principalReads;
    assert.equal((await h.call('Bearer bob-token')).objectId, BOB, "another principal's token stays cached");
    assert.equal(h.store.principalReads, reads);
    assert.equal(h.verifications(), 3);
  });

  it('invariant: a principal known to exist is forgotten by its deletion notice, whatever the case of either id', async () => {
    const h = harness();
    h.store.principals.add(ALICE);
    assert.equal(await h.cache.principalExists(ALICE.toUpperCase(), h.cache.generation), true);
    assert.equal(await h.cache.principalExists(ALICE, h.cache.generation), true);
    assert.equal(h.store.principalReads, 1, 'remembered once seen');
    h.store.principals.delete(ALICE);
    h.cache.forgetPrincipal(ALICE.toUpperCase());
    assert.equal(await h.cache.principalExists(ALICE, h.cache.generation), false);
    assert.equal(await h.cache.principalExists(BOB, h.cache.generation), false, 'an unknown principal');
    assert.equal(await h.cache.principalExists(BOB, h.cache.generation), false, 'a miss is not remembered as a hit');
    assert.equal(h.store.principalReads, 4, 'misses are read again');
  });

  it('invariant: what was read or verified before a deletion notice is not cached after it', async () => {
    const h = harness();
    // A token verified before the notice: set() with the older generation caches nothing.
    const v = h.issue('raced', ALICE);
    const before = h.cache.generation;
    h.cache.forgetPrincipal(BOB);
    h.cache.set('k', v, before);
    assert.equal(h.cache.get('k', START), undefined);

    // A principal read that started before its deletion notice and answered "exists".
    const gate = deferred<void>();
    h.store.gate = gate.promise;
    const started = h.cache.generation;
    const read = h.cache.principalExists(ALICE, started);
    h.store.principals.delete(ALICE);
    h.cache.forgetPrincipal(ALICE);
    gate.resolve();
    assert.equal(await read, true, 'the stale answer of that one read');
    assert.equal(await h.cache.principalExists(ALICE, h.cache.generation), false, 'is not remembered');

    // Through authenticate: the notice arrives while the principal is being looked up.
    h.store.principals.add(BOB.toLowerCase());
    h.issue('bob-token', BOB);
    const gate2 = deferred<void>();
    h.store.gate = gate2.promise;
    const first = h.call('Bearer bob-token');
    await new Promise((resolve) => setImmediate(resolve));
    h.store.principals.delete(BOB);
    h.store.bus.publish(PRINCIPAL_CHANNEL, BOB);
    gate2.resolve();
    assert.equal((await first).objectId, BOB);
    await refusal(h.call('Bearer bob-token'));
  });

  it('keeps at most 10,000 tokens, dropping the oldest first', () => {
    const h = harness();
    const v = h.issue('t', ALICE);
    for (let i = 0; i <= 10_000; i++) h.cache.set(`k${String(i)}`, v, h.cache.generation);
    assert.equal(h.cache.get('k0', START), undefined, 'the oldest went');
    assert.equal(h.cache.get('k1', START), v);
    assert.equal(h.cache.get('k10000', START), v);
  });

  it('close unsubscribes from deletion notices and empties the cache', async () => {
    const h = harness();
    h.issue('alice-token', ALICE);
    await h.call('Bearer alice-token');
    assert.equal(h.store.bus.count(PRINCIPAL_CHANNEL), 1);
    h.cache.close();
    assert.equal(h.store.bus.count(PRINCIPAL_CHANNEL), 0);
    await h.call('Bearer alice-token');
    assert.equal(h.verifications(), 2, 'verified again');
    assert.equal(h.store.principalReads, 2, 'read again');
  });
});

describe('vault authentication: tenant', () => {
  it("invariant: a valid token of another tenant is refused by this tenant's vault, from the cache too; the tenant id compares case-insensitively", async () => {
    const h = harness();
    h.issue('other', ALICE, { tid: OTHER_TENANT });
    for (let i = 0; i < 2; i++) {
      const err = await refusal(h.call('Bearer other'));
      assert.equal(err.message, `AKV10032: Invalid issuer. Expected one of ${ORIGIN}/${TENANT}/, found ${ORIGIN}/${OTHER_TENANT}/.`);
    }
    h.issue('upper', BOB, { tid: TENANT.toUpperCase() });
    const caller = await h.call('Bearer upper');
    assert.deepEqual(caller, { objectId: BOB, tenantId: TENANT.toUpperCase(), appId: `app-${BOB}`, issuer: `${ORIGIN}/${TENANT.toUpperCase()}/` });
    assert.equal((await h.call('Bearer upper', 8443, vaultRecord('kv2', { tenantId: TENANT.toUpperCase() }))).objectId, BOB);
  });
});

describe('vault secret read cache', () => {
  const VAULT_ID = 'vault-1';
  const V1 = 'a'.repeat(32);
  const V2 = 'b'.repeat(32);
  function read(value: string, version: string) {
    return {
      entry: { vaultId: VAULT_ID, name: 'S', value } as unknown as SecretEntry,
      version: { vaultId: VAULT_ID, name: 'S', version } as unknown as SecretVersion,
    };
  }
  function setup() {
    const store = new FakeStore();
    const clock = new FakeClock(START);
    const cache = new SecretCache(store.asStore(), clock);
    const put = (value: string, version: string, latest = true) => {
      store.secrets.set(`${VAULT_ID}/s/${version}`, read(value, version));
      if (latest) store.secrets.set(`${VAULT_ID}/s/`, read(value, version));
    };
    return { store, clock, cache, put };
  }

  it('serves a read from memory for 30 s, per version, with names and versions compared case-insensitively', async () => {
    const { store, clock, cache, put } = setup();
    put('one', V1);
    put('two', V2);
    assert.equal((await cache.get(VAULT_ID, 'S'))?.version.version, V2);
    assert.equal((await cache.get(VAULT_ID, 's', V1))?.version.version, V1, 'a named version is not the latest');
    assert.equal((await cache.get(VAULT_ID, 's'))?.version.version, V2, 'nor the latest a named version');
    assert.equal((await cache.get(VAULT_ID, 'S', V1.toUpperCase()))?.version.version, V1);
    assert.equal(store.secretReads, 2);
    clock.advance(29_999);
    await cache.get(VAULT_ID, 'S');
    assert.equal(store.secretReads, 2, 'within the TTL');
    clock.advance(1);
    await cache.get(VAULT_ID, 'S');
    assert.equal(store.secretReads, 3, 'read again at the TTL');
  });

  it('invariant: a change notice for a secret drops its cached reads at once, and only its own', async () => {
    const { store, cache, put } = setup();
    put('old', V1);
    store.secrets.set(`${VAULT_ID}/other/`, read('x', V2));
    await cache.get(VAULT_ID, 'S');
    await cache.get(VAULT_ID, 'other');
    put('new', V2);
    store.bus.publish(SECRET_CHANNEL, secretChangeKey(VAULT_ID, 'S'));
    assert.equal((await cache.get(VAULT_ID, 'S'))?.version.version, V2);
    const reads = store.secretReads;
    await cache.get(VAULT_ID, 'other');
    assert.equal(store.secretReads, reads, 'another secret stays cached');
    cache.invalidate();
    await cache.get(VAULT_ID, 'other');
    assert.equal(store.secretReads, reads + 1, 'invalidate() drops everything');
  });

  it('invariant: a read that raced a change notice is not cached; a miss is not cached', async () => {
    const { store, cache, put } = setup();
    put('old', V1);
    const gate = deferred<void>();
    store.gate = gate.promise;
    const raced = cache.get(VAULT_ID, 'S');
    put('new', V2);
    store.bus.publish(SECRET_CHANNEL, secretChangeKey(VAULT_ID, 'S'));
    gate.resolve();
    assert.equal((await raced)?.version.version, V1);
    assert.equal((await cache.get(VAULT_ID, 'S'))?.version.version, V2, 'read again');
    assert.equal(await cache.get(VAULT_ID, 'missing'), undefined);
    store.secrets.set(`${VAULT_ID}/missing/`, read('now', V1));
    assert.equal((await cache.get(VAULT_ID, 'missing'))?.version.version, V1);
  });

  it('close unsubscribes', () => {
    const { store, cache } = setup();
    assert.equal(store.bus.count(SECRET_CHANNEL), 1);
    cache.close();
    assert.equal(store.bus.count(SECRET_CHANNEL), 0);
  });
});

describe('vault record cache', () => {
  function setup() {
    const store = new FakeStore();
    const clock = new FakeClock(START);
    return { store, clock, cache: new VaultCache(store.asStore(), clock) };
  }

  it('invariant: a soft-deleted vault is not served', async () => {
    const { store, cache } = setup();
    store.vaults.set('gone', vaultRecord('gone', { deletedAt: START }));
    assert.equal(await cache.get('gone'), undefined);
  });

  it('serves a vault for 60 s and a miss for 1 s, by name case-insensitively', async () => {
    const { store, clock, cache } = setup();
    const kv = vaultRecord('kv');
    store.vaults.set('kv', kv);
    assert.equal(await cache.get('KV'), kv);
    assert.equal(await cache.get('kv'), kv);
    assert.equal(await cache.get('later'), undefined);
    assert.equal(store.vaultReads, 2);
    store.vaults.set('later', vaultRecord('later'));
    clock.advance(999);
    assert.equal(await cache.get('later'), undefined, 'a miss for up to 1 s');
    clock.advance(1);
    assert.equal((await cache.get('later'))?.name, 'later', 'found 1 s later without a notice');
    clock.advance(59_000 - 1);
    await cache.get('kv');
    assert.equal(store.vaultReads, 3, 'a vault within its 60 s');
    clock.advance(1);
    await cache.get('kv');
    assert.equal(store.vaultReads, 4, 'read again at 60 s');
  });

  it('invariant: any vault change notice drops every cached vault (its access policies, its permission model)', async () => {
    const { store, cache } = setup();
    store.vaults.set('kv', vaultRecord('kv'));
    await cache.get('kv');
    const changed = vaultRecord('kv', { properties: { ...vaultRecord('kv').properties, enableRbacAuthorization: false } });
    store.vaults.set('kv', changed);
    store.bus.publish(VAULT_CHANNEL, 'id-kv');
    assert.equal(await cache.get('kv'), changed);
    cache.close();
    assert.equal(store.bus.count(VAULT_CHANNEL), 0, 'close unsubscribes');
  });
});
