/**
 * Host enrolment and credentials in the directory (src/directory/hosts.ts), against an in-memory SQLite store
 * (real repositories and transactions, no server): join tokens (shape, single use, expiry, secret compared,
 * stored only as a hash, a failed enrolment leaving the token unused), the public-key rule, renewal (an old key
 * stays valid, a key registered elsewhere or revoked is refused, the live-credential bound), which credential
 * authenticates which host, what a host sees of itself, and revocation. The host API end to end:
 * test/authority/hosts/host-api.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import {
  authenticatedHost,
  checkJoinTokenTtl,
  checkPublicJwk,
  createJoinToken,
  describeHost,
  enrolHost,
  findHostCredential,
  HOST_RESOURCE_TYPE,
  HostError,
  hostKeyId,
  listHostCredentials,
  MAX_LIVE_HOST_CREDENTIALS,
  renewHostCredential,
  revokeHostCredential,
  vmIdOf,
} from '../../src/directory/hosts.js';
import { DirectoryError } from '../../src/directory/errors.js';
import { putResource, putUserAssignedIdentity } from '../../src/directory/resources.js';
import { FakeClock } from '../../src/shared/clock.js';
import { HOST_CREDENTIAL_LIFETIME_SECONDS } from '../../src/shared/config.js';
import type { PublicJwk } from '../../src/shared/host-protocol.js';
import type { HostCredential, Resource, Store } from '../../src/store/types.js';
import { seededMemoryStore } from '../support/memory-store.js';

const TENANT = 'abcdef00-1111-4111-8111-111111111111';
const SUB = 'abcdef00-3333-4333-8333-333333333333';
const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
const machineId = (name: string) => `${RG}/providers/${HOST_RESOURCE_TYPE}/${name}`;
const NOW = Date.UTC(2031, 0, 2, 3, 4, 5);
const ADMIN = 'aaaaaaaa-0000-4000-8000-000000000001';

/** RSA public keys made once (generating a 2048-bit pair per run took a second of every mutant's run). */
const RSA_2048 = {
  kty: 'RSA',
  n: 'pkiNHnnCRdOvR0bkdELD71yBddUMy-OC1AlxmBow1UjvKgqV-RzgtTOM_4UJQukFuL99yZWnOBFWvR0zFZWVYb1BxRLY19SM6pjwsy5BXK6x_wySefGRkkHywkrQGppJf-tVzintHrTtFTLxUFLDM4x6cEvyoOyH_rHtLrZXs0IXO85t19-IDXU9GCviugj09Qlzh8JQtaWy4v1Hr-_hqA6_WS_pcID8pnyytDPulYhZLPN8nLdqudPvtGPgcOhoJEno-fdnos4tsCiBReT8Mh-g-IS7FU588uMAcszYJ0wtBwUb_UWq5oiD1pNAAfVFyuHigwLHFRsH-WEr7Kw-zw',
  e: 'AQAB',
};
const RSA_1024 = {
  kty: 'RSA',
  n: 'uxIytrVxsa6pj-jDews5Qq5JKV9P3_6LmeFifWdES3OJuI3QpzBNH-rSKXenog0fcD09nrE5G6-fqIu9OwQfYcyOSOh49HioizvdubWWlni4OfrxsBpZt6rSpTz7iyrmYj0zRYyl7b5X7YhveKBjkHf-vuHx7BP1X3akVHb9iJk',
  e: 'AQAB',
};

/** A fresh EC P-256 public JWK (a new key each call). */
function ecKey(): PublicJwk {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  return { kty: 'EC', crv: 'P-256', x: String(jwk.x), y: String(jwk.y) };
}

/** The code of a HostError (or of a DirectoryError) `promise` rejects with. */
async function refusedWith(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof HostError || err instanceof DirectoryError, `not a HostError: ${String(err)}`);
    return err.code;
  }
  assert.fail('accepted');
}

describe('directory hosts: join tokens and enrolment (in-memory store)', () => {
  let store: Store;
  const clock = new FakeClock(NOW);

  before(async () => {
    store = await seededMemoryStore([[TENANT, SUB]]);
  });
  after(async () => {
    await store.close();
  });

  const token = (name: string, extra: Partial<Parameters<typeof createJoinToken>[1]> = {}) =>
    createJoinToken(store, { subscriptionId: SUB, resourceGroup: 'rg', name, createdBy: ADMIN, clock, ...extra });

  it('checkJoinTokenTtl: 60 s to 24 h, whole seconds; the default 10 min', () => {
    assert.equal(checkJoinTokenTtl(undefined), 600);
    assert.equal(checkJoinTokenTtl(null), 600);
    assert.equal(checkJoinTokenTtl(60), 60);
    assert.equal(checkJoinTokenTtl(86_400), 86_400);
    for (const bad of [59, 86_401, 60.5, '600', Number.NaN, true, {}]) {
      assert.throws(
        () => checkJoinTokenTtl(bad),
        (err: unknown) =>
          err instanceof DirectoryError && /'ttlSeconds' must be a whole number of seconds from 60 .* to 86400 .*default is 600/.test(err.message),
        JSON.stringify(bad),
      );
    }
  });

  it("a new machine: created with a system identity and a vmId; the token's secret is stored only as its SHA-256; single use", async () => {
    const created = await token('new1', { ttlSeconds: 120 });
    assert.equal(created.machineCreated, true);
    assert.equal(created.tenantId, TENANT);
    assert.equal(created.machine.id, machineId('new1'));
    assert.notEqual(created.machine.systemPrincipalId, null);
    assert.match(String(vmIdOf(created.machine)), /^[0-9a-f-]{36}$/);
    assert.equal(created.expiresOn, NOW + 120_000);
    const m = /^omj_([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(created.token);
    assert.ok(m !== null, created.token);
    assert.equal(m[1], created.tokenId);
    const row = await store.joinTokens.get(created.tokenId);
    assert.deepEqual(row, {
      id: created.tokenId,
      secretHash: createHash('sha256')
        .update(m[2] ?? '', 'utf8')
        .digest('base64url'),
      tenantId: TENANT,
      hostResourceId: machineId('new1'),
      createdBy: ADMIN,
      createdAt: NOW,
      expiresAt: NOW + 120_000,
      usedAt: null,
    });
    assert.ok(!JSON.stringify(row).includes(m[2] ?? ''), 'the secret is not stored');
    const again = await token('new1');
    assert.equal(again.machineCreated, false);
    assert.equal(again.machine.systemPrincipalId, created.machine.systemPrincipalId, 'the same machine, kept');
    assert.equal(vmIdOf(again.machine), vmIdOf(created.machine));
    assert.notEqual(again.tokenId, created.tokenId);
  });

  it('an existing machine without a system identity or vmId gets both, keeping its user-assigned identities, location, tags and properties; the guard sees it first', async () => {
    const uami = await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'uami1', clock });
    await putResource(store, {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      type: HOST_RESOURCE_TYPE,
      name: 'bare',
      location: 'northeurope',
      tags: { team: 'a' },
      properties: { osName: 'linux', vmId: '' },
      identity: { type: 'UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
      clock,
    });
    const seen: (Resource | undefined)[] = [];
    const created = await token('bare', { guard: (machine) => seen.push(machine) });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.systemPrincipalId, null, 'the guard sees the machine as stored');
    assert.deepEqual(seen[0]?.userAssignedIdentityIds, [uami.resource.id]);
    assert.equal(created.machineCreated, false);
    assert.notEqual(created.machine.systemPrincipalId, null);
    assert.deepEqual(created.machine.userAssignedIdentityIds, [uami.resource.id]);
    assert.equal(created.machine.location, 'northeurope');
    assert.deepEqual(created.machine.tags, { team: 'a' });
    assert.equal(created.machine.properties['osName'], 'linux');
    assert.match(String(vmIdOf(created.machine)), /^[0-9a-f-]{36}$/);
    // A machine with a system identity and no vmId gets one, keeping its system identity.
    const { resource: noVm } = await putResource(store, {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      type: HOST_RESOURCE_TYPE,
      name: 'sysonly',
      identity: { type: 'SystemAssigned' },
      clock,
    });
    assert.notEqual(noVm.systemPrincipalId, null);
    assert.equal(vmIdOf(noVm), undefined);
    const withVm = await token('sysonly');
    assert.equal(withVm.machine.systemPrincipalId, noVm.systemPrincipalId);
    assert.match(String(vmIdOf(withVm.machine)), /^[0-9a-f-]{36}$/);
    assert.equal(vmIdOf((await store.resources.get(machineId('sysonly'))) ?? noVm), vmIdOf(withVm.machine), 'stored');
    // A machine with a vmId and no system identity keeps its vmId.
    await putResource(store, { subscriptionId: SUB, resourceGroup: 'rg', type: HOST_RESOURCE_TYPE, name: 'novm', properties: { vmId: 'vm-kept' }, clock });
    const kept = await token('novm');
    assert.equal(vmIdOf(kept.machine), 'vm-kept');
    assert.notEqual(kept.machine.systemPrincipalId, null);
    assert.equal(kept.machine.userAssignedIdentityIds.length, 0);
  });

  it('a disabled subscription gets no join token, even for a machine that exists whole', async () => {
    const disabled = 'abcdef00-4444-4444-8444-444444444444';
    await store.subscriptions.create({ id: disabled, tenantId: TENANT, displayName: 'off', state: 'Disabled', createdAt: 0 });
    await store.resourceGroups.put({
      id: `/subscriptions/${disabled}/resourceGroups/rg`,
      subscriptionId: disabled,
      name: 'rg',
      location: 'westeurope',
      tags: {},
      createdAt: 0,
      updatedAt: 0,
    });
    const enabled = await token('whole');
    const id = `/subscriptions/${disabled}/resourceGroups/rg/providers/${HOST_RESOURCE_TYPE}/whole`;
    await store.resources.put({ ...enabled.machine, id, subscriptionId: disabled });
    assert.equal(await refusedWith(token('whole', { subscriptionId: disabled })), 'ReadOnlyDisabledSubscription');
  });

  it('a guard that throws refuses: no token, no machine; a missing group or subscription is refused', async () => {
    const refused = new Error('changed');
    await assert.rejects(
      token('guarded', {
        guard: () => {
          throw refused;
        },
      }),
      (err) => err === refused,
    );
    assert.equal(await store.resources.get(machineId('guarded')), undefined);
    assert.equal(await refusedWith(token('x', { resourceGroup: 'nope' })), 'ResourceGroupNotFound');
    assert.equal(await refusedWith(token('x', { subscriptionId: 'abcdef00-9999-4999-8999-999999999999' })), 'SubscriptionNotFound');
    assert.equal(await refusedWith(token('x', { ttlSeconds: 10 })), 'InvalidRequestContent');
  });

  it('enrolment: consumes the token once, registers the key for the machine for 30 days; every bad token is refused with its code', async () => {
    const created = await token('enrol1', { ttlSeconds: 60 });
    const key = ecKey();
    const enrolled = await enrolHost(store, { joinToken: created.token, publicJwk: key, clock });
    assert.equal(enrolled.tenantId, TENANT);
    assert.equal(enrolled.joinTokenId, created.tokenId);
    assert.equal(enrolled.host.id, machineId('enrol1'));
    assert.deepEqual(enrolled.credential, {
      keyId: await hostKeyId(key),
      hostResourceId: machineId('enrol1'),
      publicJwk: key,
      createdAt: NOW,
      expiresAt: NOW + HOST_CREDENTIAL_LIFETIME_SECONDS * 1000,
      revokedAt: null,
    });
    assert.deepEqual(await store.hostCredentials.get(enrolled.credential.keyId), enrolled.credential);
    assert.equal((await store.joinTokens.get(created.tokenId))?.usedAt, NOW);
    // Used.
    const used = await enrolHost(store, { joinToken: created.token, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(used instanceof HostError);
    assert.equal(used.code, 'JoinTokenUsed');
    assert.deepEqual(used.subject, { hostResourceId: machineId('enrol1'), tenantId: TENANT }, 'names the host for the audit trail');
    // Malformed, unknown, wrong secret: invalid, and no subject.
    const [, id, secret] = /^omj_([^.]+)\.(.+)$/.exec(created.token) ?? [];
    const flipped = `${secret?.slice(0, -1) ?? ''}${secret?.endsWith('A') === true ? 'B' : 'A'}`;
    const malformed = await enrolHost(store, { joinToken: [created.token], publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(malformed instanceof HostError, 'an array of the token is not a token');
    assert.equal(malformed.name, 'HostError');
    assert.equal(malformed.code, 'JoinTokenInvalid');
    assert.equal(malformed.message, 'The join token is malformed.');
    for (const bad of [
      42,
      [created.token],
      '',
      created.token.slice(0, -1),
      `${created.token}A`,
      `omj_${id ?? ''}.${flipped}`,
      `omj_${'A'.repeat(22)}.${secret ?? ''}`,
      ` ${created.token}`,
    ]) {
      const err = await enrolHost(store, { joinToken: bad, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
      assert.ok(err instanceof HostError, String(bad));
      assert.equal(err.code, 'JoinTokenInvalid', String(bad));
      assert.equal(err.subject, undefined, String(bad));
    }
  });

  it('expiry: refused from expiresAt on, and the token stays unused; a refused enrolment leaves the token usable', async () => {
    const created = await token('exp1', { ttlSeconds: 60 });
    const later = new FakeClock(NOW + 60_000);
    const expired = await enrolHost(store, { joinToken: created.token, publicJwk: ecKey(), clock: later }).catch((e: unknown) => e);
    assert.ok(expired instanceof HostError);
    assert.equal(expired.code, 'JoinTokenExpired');
    assert.deepEqual(expired.subject, { hostResourceId: machineId('exp1'), tenantId: TENANT });
    assert.equal((await store.joinTokens.get(created.tokenId))?.usedAt, null);
    const justBefore = new FakeClock(NOW + 59_999);
    // A key already registered: refused after the token was consumed, in the same transaction: rolled back.
    const first = await token('exp2');
    const key = ecKey();
    await enrolHost(store, { joinToken: first.token, publicJwk: key, clock });
    const dup = await enrolHost(store, { joinToken: created.token, publicJwk: key, clock: justBefore }).catch((e: unknown) => e);
    assert.ok(dup instanceof HostError);
    assert.equal(dup.code, 'InvalidRequest');
    assert.match(dup.message, /already registered/);
    assert.deepEqual(dup.subject, { hostResourceId: machineId('exp1'), tenantId: TENANT });
    assert.equal((await store.joinTokens.get(created.tokenId))?.usedAt, null, 'rolled back');
    const ok = await enrolHost(store, { joinToken: created.token, publicJwk: ecKey(), clock: justBefore, credentialLifetimeSeconds: 3600 });
    assert.equal(ok.credential.expiresAt, NOW + 59_999 + 3_600_000);
  });

  it('a token whose machine was deleted is refused (the token is not consumed); a bad key is refused before the token is read', async () => {
    const created = await token('gone1');
    await store.resources.delete(machineId('gone1'));
    const err = await enrolHost(store, { joinToken: created.token, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(err instanceof HostError);
    assert.equal(err.code, 'JoinTokenInvalid');
    assert.match(err.message, /no longer exists/);
    assert.deepEqual(err.subject, { hostResourceId: machineId('gone1'), tenantId: TENANT });
    assert.equal((await store.joinTokens.get(created.tokenId))?.usedAt, null);
    const live = await token('key1');
    assert.equal(await refusedWith(enrolHost(store, { joinToken: live.token, publicJwk: { kty: 'oct', k: 'AAAA' }, clock })), 'InvalidRequest');
    assert.equal((await store.joinTokens.get(live.tokenId))?.usedAt, null);
  });

  it('a token consumed by a racing enrolment between the read and the consume is refused as used', async () => {
    const created = await token('race1');
    const racing = {
      ...store,
      transaction: <T>(fn: (tx: Parameters<Parameters<Store['transaction']>[0]>[0]) => Promise<T>) =>
        store.transaction((tx) => fn({ ...tx, joinTokens: { ...tx.joinTokens, consume: () => Promise.resolve(false) } })),
    };
    const err = await enrolHost(racing, { joinToken: created.token, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(err instanceof HostError);
    assert.equal(err.code, 'JoinTokenUsed');
    assert.deepEqual(err.subject, { hostResourceId: machineId('race1'), tenantId: TENANT });
  });
});

describe('directory hosts: public keys', () => {
  it('EC P-256 and RSA of 2048 bits or more, public members only; everything else InvalidRequest', () => {
    const ec = ecKey();
    assert.deepEqual(checkPublicJwk({ ...ec, kid: 'x', use: 'sig', alg: 'ES256' }), ec, 'reduced to the public members');
    const rsa = RSA_2048;
    assert.deepEqual(checkPublicJwk(rsa), { kty: 'RSA', n: rsa.n, e: rsa.e });
    const small = RSA_1024;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' });
    const cases: [unknown, RegExp][] = [
      [null, /must be a JSON Web Key object/],
      ['jwk', /must be a JSON Web Key object/],
      [[ec], /must be a JSON Web Key object/],
      ...['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'].map((m): [unknown, RegExp] => [{ ...ec, [m]: 'AAAA' }, /private key material/]),
      [small, /at least 2048 bits/],
      [p384, /curve P-256/],
      [{ ...ec, crv: undefined }, /curve P-256/],
      [{ kty: 'OKP', crv: 'Ed25519', x: 'AAAA' }, /'EC' \(P-256\) or 'RSA'/],
      [{ ...ec, x: '' }, /'publicJwk\.x' must be a base64url string/],
      [{ ...ec, y: 'a+b/' }, /'publicJwk\.y' must be a base64url string/],
      [{ ...ec, x: `+${ec.kty === 'EC' ? ec.x : ''}` }, /'publicJwk\.x' must be a base64url string/],
      [{ ...ec, x: 42 }, /'publicJwk\.x' must be a base64url string/],
      [{ ...ec, x: `${ec.kty === 'EC' ? ec.x : ''}A\n` }, /'publicJwk\.x' must be a base64url string/],
      [{ ...ec, x: ec.kty === 'EC' ? ec.y : '' }, /not a valid public key/],
      [{ kty: 'RSA', n: 'AQAB', e: 'AQAB' }, /at least 2048 bits|not a valid public key/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => checkPublicJwk(value),
        (err: unknown) => err instanceof HostError && err.code === 'InvalidRequest' && message.test(err.message),
        JSON.stringify(value)?.slice(0, 80),
      );
    }
  });
});

describe('directory hosts: renewal, authentication, revocation (in-memory store)', () => {
  let store: Store;
  const clock = new FakeClock(NOW);

  before(async () => {
    store = await seededMemoryStore([[TENANT, SUB]]);
  });
  after(async () => {
    await store.close();
  });

  async function enrolled(name: string): Promise<{ host: Resource; credential: HostCredential }> {
    const created = await createJoinToken(store, { subscriptionId: SUB, resourceGroup: 'rg', name, createdBy: ADMIN, clock });
    const { host, credential } = await enrolHost(store, { joinToken: created.token, publicJwk: ecKey(), clock });
    return { host, credential };
  }

  it('renewal registers a new key and keeps the old one valid; the same live key again is returned unchanged', async () => {
    const { host, credential } = await enrolled('renew1');
    const key = ecKey();
    const later = new FakeClock(NOW + 1000);
    const renewed = await renewHostCredential(store, { host, publicJwk: key, clock: later, credentialLifetimeSeconds: 100 });
    assert.equal(renewed.renewed, true);
    assert.equal(renewed.tenantId, TENANT);
    assert.deepEqual(renewed.credential, {
      keyId: await hostKeyId(key),
      hostResourceId: host.id,
      publicJwk: key,
      createdAt: NOW + 1000,
      expiresAt: NOW + 101_000,
      revokedAt: null,
    });
    assert.equal((await authenticatedHost(store, await store.hostCredentials.get(credential.keyId), NOW + 1000))?.id, host.id, 'the old key still works');
    const retry = await renewHostCredential(store, { host, publicJwk: key, clock: later });
    assert.equal(retry.renewed, false);
    assert.deepEqual(retry.credential, renewed.credential);
    // Once that key expired, or was revoked, it cannot be registered again.
    const expired = await renewHostCredential(store, { host, publicJwk: key, clock: new FakeClock(NOW + 101_000) }).catch((e: unknown) => e);
    assert.ok(expired instanceof HostError && expired.code === 'InvalidRequest' && /already registered/.test(expired.message), String(expired));
  });

  it("a key registered to another host, or revoked, is refused; a deleted host's renewal is HostNotRecognised", async () => {
    const a = await enrolled('renewA');
    const b = await enrolled('renewB');
    const other = await renewHostCredential(store, { host: b.host, publicJwk: a.credential.publicJwk, clock }).catch((e: unknown) => e);
    assert.ok(other instanceof HostError && other.code === 'InvalidRequest', String(other));
    await revokeHostCredential(store, a.credential.keyId, clock);
    const revoked = await renewHostCredential(store, { host: a.host, publicJwk: a.credential.publicJwk, clock }).catch((e: unknown) => e);
    assert.ok(revoked instanceof HostError && revoked.code === 'InvalidRequest', String(revoked));
    await store.resources.delete(b.host.id);
    const gone = await renewHostCredential(store, { host: b.host, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(gone instanceof HostError && gone.code === 'HostNotRecognised' && /no longer exists/.test(gone.message), String(gone));
  });

  it(`at most ${String(MAX_LIVE_HOST_CREDENTIALS)} live credentials: the next renewal is refused; expired and revoked ones do not count`, async () => {
    const { host, credential } = await enrolled('bound1');
    for (let i = 1; i < MAX_LIVE_HOST_CREDENTIALS; i += 1) await renewHostCredential(store, { host, publicJwk: ecKey(), clock });
    const full = await renewHostCredential(store, { host, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(full instanceof HostError && full.code === 'InvalidRequest' && /already holds 10 live credentials/.test(full.message), String(full));
    await revokeHostCredential(store, credential.keyId, clock);
    assert.equal((await renewHostCredential(store, { host, publicJwk: ecKey(), clock })).renewed, true, 'a revoked one frees a place');
    const next = await renewHostCredential(store, { host, publicJwk: ecKey(), clock }).catch((e: unknown) => e);
    assert.ok(next instanceof HostError, 'full again');
    // An expired one frees a place too: one created with a short lifetime.
    const { host: h2 } = await enrolled('bound2');
    for (let i = 1; i < MAX_LIVE_HOST_CREDENTIALS; i += 1)
      await renewHostCredential(store, { host: h2, publicJwk: ecKey(), clock, credentialLifetimeSeconds: i === 1 ? 1 : 3600 });
    assert.equal((await renewHostCredential(store, { host: h2, publicJwk: ecKey(), clock: new FakeClock(NOW + 1000) })).renewed, true);
  });

  it("a renewal racing with the same key: the loser gets the winner's credential, unless it is another host's or not live", async () => {
    const { host } = await enrolled('race2');
    const key = ecKey();
    const keyId = await hostKeyId(key);
    const duplicate = new Error('UNIQUE constraint failed: host_credentials.key_id');
    /** A store whose transaction fails as the loser's insert would, after `winner` is registered. */
    const losing = (winner: HostCredential) =>
      ({
        ...store,
        transaction: async () => {
          await store.hostCredentials.add(winner);
          throw duplicate;
        },
      }) as unknown as Store;
    const winner: HostCredential = {
      keyId,
      hostResourceId: host.id.toUpperCase(),
      publicJwk: { ...key },
      createdAt: NOW,
      expiresAt: NOW + 1000,
      revokedAt: null,
    };
    const won = await renewHostCredential(losing(winner), { host, publicJwk: key, clock });
    assert.equal(won.renewed, false);
    assert.equal(won.credential.keyId, keyId);
    assert.equal(won.tenantId, TENANT);
    const k2 = ecKey();
    const elsewhere = { ...winner, keyId: await hostKeyId(k2), publicJwk: { ...k2 }, hostResourceId: machineId('someone-else') };
    await assert.rejects(renewHostCredential(losing(elsewhere), { host, publicJwk: k2, clock }), (err) => err === duplicate);
    const k3 = ecKey();
    const dead = { ...winner, keyId: await hostKeyId(k3), publicJwk: { ...k3 }, expiresAt: NOW };
    await assert.rejects(renewHostCredential(losing(dead), { host, publicJwk: k3, clock }), (err) => err === duplicate);
    const k4 = ecKey();
    const nothing = { ...store, transaction: () => Promise.reject(duplicate) } as unknown as Store;
    await assert.rejects(renewHostCredential(nothing, { host, publicJwk: k4, clock }), (err) => err === duplicate);
    const refused = HostError.prototype.about.call(new HostError('InvalidRequest', 'no'), { hostResourceId: host.id, tenantId: TENANT });
    const hostErr = { ...store, transaction: () => Promise.reject(refused) } as unknown as Store;
    await assert.rejects(renewHostCredential(hostErr, { host, publicJwk: ecKey(), clock }), (err) => err === refused);
  });

  it('authenticatedHost: only an unrevoked credential before its expiry, of a host that exists', async () => {
    const { host, credential } = await enrolled('auth1');
    assert.equal((await authenticatedHost(store, credential, NOW))?.id, host.id);
    assert.equal((await authenticatedHost(store, credential, credential.expiresAt - 1))?.id, host.id);
    assert.equal(await authenticatedHost(store, credential, credential.expiresAt), undefined);
    assert.equal(await authenticatedHost(store, undefined, NOW), undefined);
    assert.equal(await authenticatedHost(store, { ...credential, revokedAt: NOW - 5 }, NOW), undefined);
    assert.equal(await authenticatedHost(store, { ...credential, revokedAt: 0 }, NOW), undefined, 'revoked at epoch 0 is revoked');
    await store.resources.delete(host.id);
    assert.equal(await authenticatedHost(store, credential, NOW), undefined);
  });

  it('describeHost: its tenant and every identity on it now, system-assigned first, with upstream links; a host whose subscription is gone is not recognised', async () => {
    const uami = await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'described', clock });
    const { credential } = await enrolled('desc1');
    const { resource: host } = await putResource(store, {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      type: HOST_RESOURCE_TYPE,
      name: 'desc1',
      properties: { vmId: 'vm-d' },
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
      clock,
    });
    await store.federationLinks.put({
      ownerId: uami.principal.objectId.toLowerCase(),
      tenantId: 'upstream-tenant',
      clientId: 'upstream-client',
      authorityHost: 'https://login.example',
      createdAt: NOW,
      updatedAt: NOW,
    } as Parameters<Store['federationLinks']['put']>[0]);
    const system = await store.servicePrincipals.getByObjectId(host.systemPrincipalId ?? '');
    const d = await describeHost(store, host, credential);
    assert.deepEqual(d, {
      tenantId: TENANT,
      hostResourceId: host.id,
      subscriptionId: SUB,
      resourceGroup: 'rg',
      name: 'desc1',
      location: host.location,
      vmId: 'vm-d',
      identities: [
        { type: 'SystemAssigned', objectId: system?.objectId, clientId: system?.appId, resourceId: host.id },
        {
          type: 'UserAssigned',
          objectId: uami.principal.objectId,
          clientId: uami.principal.appId,
          resourceId: uami.resource.id,
          upstream: { tenantId: 'upstream-tenant', clientId: 'upstream-client', authorityHost: 'https://login.example' },
        },
      ],
      credential: { keyId: credential.keyId, expiresOn: Math.floor(credential.expiresAt / 1000) },
    });
    assert.equal(vmIdOf({ ...host, properties: { vmId: 42 } }), undefined, 'a vmId is a string');
    const lost = await describeHost(store, { ...host, systemPrincipalId: 'abcdef00-dead-4ead-8ead-deaddeaddead', userAssignedIdentityIds: [] }, credential);
    assert.deepEqual(lost.identities, [], 'a system principal that is gone is skipped');
    const bare = await describeHost(
      store,
      {
        ...host,
        systemPrincipalId: null,
        userAssignedIdentityIds: [`${RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/missing`],
        properties: {},
      },
      credential,
    );
    assert.deepEqual(bare.identities, [], 'no system identity, an unknown user-assigned one skipped');
    assert.equal(bare.vmId, '');
    const orphan = { ...host, subscriptionId: 'abcdef00-9999-4999-8999-999999999999' };
    const err = await describeHost(store, orphan, credential).catch((e: unknown) => e);
    assert.ok(err instanceof HostError && err.code === 'HostNotRecognised' && /subscription no longer exists/.test(err.message), String(err));
  });

  it("listing, finding and revoking credentials: a credential's tenant is its host's subscription's, revoked once", async () => {
    const { host, credential } = await enrolled('list1');
    const listed = await listHostCredentials(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'list1' });
    assert.equal(listed.host.id, host.id);
    assert.deepEqual(listed.credentials, [credential]);
    await assert.rejects(
      listHostCredentials(store, { subscriptionId: SUB, resourceGroup: 'rg', name: 'nope' }),
      (err) => err instanceof DirectoryError && err.code === 'ResourceNotFound',
    );
    assert.deepEqual(await findHostCredential(store, credential.keyId), { credential, tenantId: TENANT });
    assert.equal(await findHostCredential(store, 'nope'), undefined);
    const foreign: HostCredential = {
      ...credential,
      keyId: 'k-foreign',
      hostResourceId: `/SUBSCRIPTIONS/abcdef00-9999-4999-8999-999999999999/resourceGroups/rg/providers/${HOST_RESOURCE_TYPE}/x`,
    };
    await store.hostCredentials.add(foreign);
    assert.deepEqual(await findHostCredential(store, 'k-foreign'), { credential: foreign, tenantId: undefined });
    const upper: HostCredential = { ...credential, keyId: 'k-upper', hostResourceId: host.id.replace('/subscriptions/', '/SUBSCRIPTIONS/') };
    await store.hostCredentials.add(upper);
    assert.equal((await findHostCredential(store, 'k-upper'))?.tenantId, TENANT, 'the subscription segment in any case');
    const odd: HostCredential = { ...credential, keyId: 'k-odd', hostResourceId: `/x/subscriptions/${SUB}/` };
    await store.hostCredentials.add(odd);
    assert.equal((await findHostCredential(store, 'k-odd'))?.tenantId, undefined, 'only a leading subscription counts');
    assert.equal(await revokeHostCredential(store, credential.keyId, new FakeClock(NOW + 7)), true);
    assert.equal((await store.hostCredentials.get(credential.keyId))?.revokedAt, NOW + 7);
    assert.equal(await revokeHostCredential(store, credential.keyId, clock), false);
  });
});
