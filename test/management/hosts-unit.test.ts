/**
 * Who may enrol a host and manage its credentials (src/management/hosts.ts), without a server: the real routes
 * and hooks over the management harness (a recording authoriser) and an in-memory SQLite store. A join token
 * hands every identity on the machine to the agent it enrols, so creating one needs `machines/write` on the
 * machine and, for an existing machine, `userAssignedIdentities/assign/action` on each identity already on it,
 * rechecked in the token's transaction; listing credentials needs `machines/read`; revoking one, `machines/write`
 * on its machine, and another tenant's credential is as unknown as a missing one. The same end to end:
 * test/management/hosts.test.ts.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AuthorizationRequest } from '../../src/rbac/contracts.js';
import type { Resource, Store } from '../../src/store/types.js';
import { hostRoutes } from '../../src/management/hosts.js';
import { acceptedAudiences } from '../../src/management/authenticate.js';
import { putResource, putUserAssignedIdentity } from '../../src/directory/resources.js';
import { HOST_RESOURCE_TYPE } from '../../src/directory/hosts.js';
import {
  managementHarness,
  NOW,
  OTHER_SUB,
  PRINCIPALS,
  send,
  SUB,
  TENANT,
  withMemoryStore,
  type ManagementHarness,
  type RecordedAudit,
} from '../support/management.js';

const V = 'api-version=2022-12-27';
const RG = `/subscriptions/${SUB}/resourceGroups/rg`;
const MACHINE = `${RG}/providers/${HOST_RESOURCE_TYPE}/m1`;
const WRITE = `${HOST_RESOURCE_TYPE}/write`;
const READ = `${HOST_RESOURCE_TYPE}/read`;
const ASSIGN = 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action';
const UAMI = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const UAMI_1 = `${RG}/providers/${UAMI}/id1`;
const UAMI_2 = `${RG}/providers/${UAMI}/id2`;
const GRANTED = { allowed: true, reason: 'granted' } as const;
const NOT_GRANTED = { allowed: false, reason: 'not-granted' } as const;

const joinTokenUrl = (machine = MACHINE) => `${machine}/createJoinToken?${V}`;
const checked = (h: ManagementHarness) => h.checks.map((c) => [c.action, c.scope]);

describe('hosts: join tokens and credentials (in-memory store)', () => {
  let h: ManagementHarness;
  let store: Store;
  let audit: RecordedAudit[];
  let clock: { now: () => number; at: number };
  /** The audiences each request's token was verified for. */
  let audiences: (readonly string[])[];

  beforeEach(async () => {
    h = managementHarness();
    ({ store, audit, clock } = await withMemoryStore(h));
    const verify = h.ctx.verifyAccessToken.bind(h.ctx);
    audiences = [];
    Object.assign(h.ctx as unknown as Record<string, unknown>, {
      verifyAccessToken: (token: string, accepted: readonly string[]) => {
        audiences.push(accepted);
        return verify(token, accepted);
      },
    });
    hostRoutes(h.app, h.ctx);
    await h.app.ready();
  });
  afterEach(async () => {
    await h.app.close();
    await store.close();
  });

  /** Two user-assigned identities, and the machine m1 with both attached (and a system identity and vmId). */
  async function machineWithIdentities(): Promise<Resource> {
    for (const name of ['id1', 'id2']) await putUserAssignedIdentity(store, { subscriptionId: SUB, resourceGroup: 'rg', name, clock });
    const { resource } = await putResource(store, {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      type: HOST_RESOURCE_TYPE,
      name: 'm1',
      properties: { vmId: 'vm-1' },
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [UAMI_1]: {}, [UAMI_2]: {} } },
      clock,
    });
    return resource;
  }

  it('a new machine: machines/write on it is the only check; the token is shown once and the audit records only its id', async () => {
    const r = await send(h, 'user', 'POST', joinTokenUrl(`/SUBSCRIPTIONS/${SUB}/RESOURCEGROUPS/rg/providers/${HOST_RESOURCE_TYPE}/m1`), { ttlSeconds: 600 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(checked(h), [[WRITE, MACHINE]]);
    assert.ok(h.checks.every((c) => c.principalId === PRINCIPALS.user.objectId && c.tenantId === TENANT && !c.isDataAction));
    assert.match(String(r.body['token']), /^omj_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(r.body['expiresOn'], new Date(NOW + 600_000).toISOString());
    assert.equal(r.body['hostResourceId'], MACHINE);
    assert.equal(r.body['tenantId'], TENANT);
    assert.equal(r.body['machineCreated'], true);
    const event = audit.at(-1);
    assert.ok(event !== undefined);
    assert.equal(event.action, 'host.join-token.created');
    assert.equal(event.outcome, 'success');
    assert.equal(event.actor, PRINCIPALS.user.objectId);
    assert.equal(event.tenantId, TENANT);
    assert.equal(event.target, MACHINE);
    const tokenId = String(r.body['token']).slice(4, 26);
    assert.equal(event.detail['joinTokenId'], tokenId);
    assert.equal(event.detail['machineCreated'], true);
    assert.equal(event.detail['expiresOn'], new Date(NOW + 600_000).toISOString());
    const machine = await store.resources.get(MACHINE);
    assert.equal(event.detail['systemAssignedPrincipalId'], machine?.systemPrincipalId);
    assert.ok(!JSON.stringify(event).includes(String(r.body['token']).slice(27)), 'never the secret');
    const row = await store.joinTokens.get(tokenId);
    assert.equal(row?.createdBy, PRINCIPALS.user.objectId);
    assert.equal(row.hostResourceId, MACHINE);
  });

  it("an existing machine: also assign/action on each user-assigned identity on it, before the token's transaction", async () => {
    await machineWithIdentities();
    const r = await send(h, 'user', 'POST', joinTokenUrl());
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body['machineCreated'], false);
    assert.deepEqual(checked(h), [
      [WRITE, MACHINE],
      [ASSIGN, UAMI_1],
      [ASSIGN, UAMI_2],
    ]);
  });

  it('refused on any identity already on the machine: 403, audited as a failure, no join token (a token would hand the identity over)', async () => {
    await machineWithIdentities();
    for (const refusedAt of [UAMI_1, UAMI_2, MACHINE]) {
      h.decide = (c: AuthorizationRequest) => (c.scope === refusedAt ? NOT_GRANTED : GRANTED);
      const r = await send(h, 'user', 'POST', joinTokenUrl());
      assert.equal(r.status, 403, refusedAt);
      assert.equal(r.body.error?.code, 'AuthorizationFailed');
      assert.ok(r.body.error.message.includes(refusedAt === MACHINE ? WRITE : ASSIGN), r.body.error.message);
      assert.equal(h.denied.get(joinTokenUrl()), PRINCIPALS.user.objectId);
    }
    const failures = audit.filter((e) => e.action === 'host.join-token.created');
    assert.deepEqual(
      failures.map((e) => [e.outcome, e.detail]),
      [
        ['failure', { code: 'AuthorizationFailed' }],
        ['failure', { code: 'AuthorizationFailed' }],
      ],
      'the hook refuses before the handler: no event for the machine check',
    );
    assert.equal(failures[0]?.target, MACHINE);
    assert.ok(
      audit.every((e) => e.outcome === 'failure'),
      'no token created',
    );
  });

  it("an identity attached after the checks is refused in the token's transaction (409), no token", async () => {
    const machine = await machineWithIdentities();
    // The handler's first read sees the machine without id2 (as before a concurrent attach); the transaction sees both.
    const outer = h.ctx.store as unknown as { resources: Record<string, unknown> };
    outer.resources = {
      ...outer.resources,
      get: (id: string) => Promise.resolve(id === MACHINE ? { ...machine, userAssignedIdentityIds: [UAMI_1] } : undefined),
    };
    const r = await send(h, 'user', 'POST', joinTokenUrl());
    assert.equal(r.status, 409, JSON.stringify(r.body));
    assert.equal(r.body.error?.code, 'ConflictError');
    assert.match(r.body.error.message, /^The machine's user-assigned identities changed while this request was being authorised/);
    assert.deepEqual(checked(h), [
      [WRITE, MACHINE],
      [ASSIGN, UAMI_1],
    ]);
    assert.equal(audit.at(-1)?.outcome, 'failure');
  });

  it('the identities checked match the stored ones in any spelling', async () => {
    const machine = await machineWithIdentities();
    const outer = h.ctx.store as unknown as { resources: Record<string, unknown> };
    outer.resources = {
      ...outer.resources,
      get: (id: string) =>
        Promise.resolve(id === MACHINE ? { ...machine, userAssignedIdentityIds: machine.userAssignedIdentityIds.map((u) => u.toUpperCase()) } : undefined),
    };
    const r = await send(h, 'user', 'POST', joinTokenUrl());
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });

  it("another tenant's subscription is 401 before any check; a missing group, 404; a bad ttl, 400 and no token", async () => {
    const other = await send(h, 'user', 'POST', joinTokenUrl(`/subscriptions/${OTHER_SUB}/resourceGroups/rg/providers/${HOST_RESOURCE_TYPE}/m1`));
    assert.equal(other.status, 401);
    assert.equal(other.body.error?.code, 'InvalidAuthenticationTokenTenant');
    assert.deepEqual(h.checks, []);
    const missing = await send(h, 'user', 'POST', joinTokenUrl(`/subscriptions/${SUB}/resourceGroups/nope/providers/${HOST_RESOURCE_TYPE}/m1`));
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    const ttl = await send(h, 'user', 'POST', joinTokenUrl(), { ttlSeconds: 1 });
    assert.equal(ttl.status, 400, JSON.stringify(ttl.body));
    assert.equal(await store.resources.get(MACHINE), undefined, 'no machine created');
    const noBody = await send(h, 'user', 'POST', joinTokenUrl());
    assert.equal(noBody.status, 200, 'the body is optional');
  });

  it('credentials: listing needs machines/read on the machine; revoking, machines/write on its machine; another tenant sees none', async () => {
    await machineWithIdentities();
    const credential = (keyId: string, hostResourceId: string, extra: Partial<{ expiresAt: number; revokedAt: number | null }> = {}) => ({
      keyId,
      hostResourceId,
      publicJwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' },
      createdAt: NOW,
      expiresAt: NOW + 3_600_000,
      revokedAt: null,
      ...extra,
    });
    await store.hostCredentials.add(credential('k-live', MACHINE));
    await store.hostCredentials.add(credential('k-old', MACHINE, { expiresAt: NOW }));
    await store.hostCredentials.add(credential('k-revoked', MACHINE, { revokedAt: NOW - 1 }));
    const list = await send(h, 'user', 'GET', `${MACHINE}/hostCredentials?${V}`);
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(checked(h), [[READ, MACHINE]]);
    h.checks.length = 0;
    const views = Object.fromEntries((list.body['value'] as { keyId: string }[]).map((c) => [c.keyId, c]));
    const view = (keyId: string, state: string, expiresAt: number, revokedAt: string | null) => ({
      keyId,
      hostResourceId: MACHINE,
      kty: 'EC',
      crv: 'P-256',
      state,
      createdAt: new Date(NOW).toISOString(),
      expiresAt: new Date(expiresAt).toISOString(),
      revokedAt,
    });
    assert.deepEqual(views, {
      'k-live': view('k-live', 'Active', NOW + 3_600_000, null),
      'k-old': view('k-old', 'Expired', NOW, null),
      'k-revoked': view('k-revoked', 'Revoked', NOW + 3_600_000, new Date(NOW - 1).toISOString()),
    });
    await store.hostCredentials.add({ ...credential('k-rsa', MACHINE), publicJwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } });
    const rsa = (await send(h, 'user', 'GET', `${MACHINE}/hostCredentials?${V}`)).body['value'] as Record<string, unknown>[];
    const rsaView = rsa.find((c) => c['keyId'] === 'k-rsa');
    assert.equal(rsaView?.['kty'], 'RSA');
    assert.ok(!('crv' in rsaView), 'no crv for an RSA key');
    h.decide = () => NOT_GRANTED;
    assert.equal((await send(h, 'user', 'GET', `${MACHINE}/hostCredentials?${V}`)).status, 403);

    // Revocation.
    h.checks.length = 0;
    const refused = await send(h, 'user', 'POST', '/openmsi/hostCredentials/k-live/revoke');
    assert.equal(refused.status, 403);
    assert.deepEqual(checked(h), [[WRITE, MACHINE]]);
    assert.equal((await store.hostCredentials.get('k-live'))?.revokedAt, null, 'not revoked');
    assert.equal(audit.at(-1)?.outcome, 'failure');
    h.decide = () => GRANTED;
    clock.at = NOW + 5;
    const revoked = await send(h, 'user', 'POST', '/openmsi/hostCredentials/k-live/revoke');
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body['state'], 'Revoked');
    assert.equal((await store.hostCredentials.get('k-live'))?.revokedAt, NOW + 5);
    assert.deepEqual(audit.at(-1), {
      tenantId: TENANT,
      actor: PRINCIPALS.user.objectId,
      action: 'host.credential.revoked',
      target: MACHINE,
      outcome: 'success',
      detail: { keyId: 'k-live', alreadyRevoked: false },
    });
    const again = await send(h, 'user', 'POST', '/openmsi/hostCredentials/k-live/revoke');
    assert.equal(again.status, 200);
    assert.deepEqual(audit.at(-1)?.detail, { keyId: 'k-live', alreadyRevoked: true });

    // Unknown, or another tenant's: the same 404, and nothing checked or revoked.
    h.checks.length = 0;
    const unknown = await send(h, 'user', 'POST', '/openmsi/hostCredentials/nope/revoke');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error?.code, 'HostCredentialNotFound');
    const foreign = await send(h, 'stranger', 'POST', '/openmsi/hostCredentials/k-old/revoke');
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.error?.code, 'HostCredentialNotFound');
    assert.deepEqual(h.checks, []);
    assert.equal((await store.hostCredentials.get('k-old'))?.revokedAt, null);
    const strangersOwn = await send(h, 'user', 'POST', '/openmsi/hostCredentials/k-orphan/revoke');
    assert.equal(strangersOwn.status, 404);
  });

  it("every route takes ARM's audiences only (never Graph's)", async () => {
    await send(h, 'user', 'POST', joinTokenUrl());
    await send(h, 'user', 'GET', `${MACHINE}/hostCredentials?${V}`);
    await send(h, 'user', 'POST', '/openmsi/hostCredentials/nope/revoke');
    assert.equal(audiences.length, 3);
    for (const accepted of audiences) assert.deepEqual(accepted, acceptedAudiences(h.ctx, 'arm'));
  });

  it("a credential whose machine's subscription is unknown is another tenant's: 404", async () => {
    await store.hostCredentials.add({
      keyId: 'k-orphan',
      hostResourceId: `/subscriptions/55555555-5555-4555-8555-555555555555/resourceGroups/rg/providers/${HOST_RESOURCE_TYPE}/gone`,
      publicJwk: { kty: 'EC' },
      createdAt: NOW,
      expiresAt: NOW + 1000,
      revokedAt: null,
    });
    const r = await send(h, 'user', 'POST', '/openmsi/hostCredentials/k-orphan/revoke');
    assert.equal(r.status, 404);
    assert.deepEqual(h.checks, []);
  });
});
