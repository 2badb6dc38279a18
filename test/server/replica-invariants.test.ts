/**
 * Global invariants across two authority replicas on one PostgreSQL database: a join token is accepted once in
 * total; a deleted identity, host or revoked credential gets no token from either replica; failed enrolments
 * count across replicas; a host's long poll at one replica answers a change made at the other at once.
 * (Client assertion replay across replicas: replicas.test.ts.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startReplica, startTestAuthority, type TestAuthority } from '../support/authority.js';
import type { OpenmsiServer } from '../../src/server/server.js';
import { putResourceGroup, putUserAssignedIdentity, deleteUserAssignedIdentity } from '../../src/directory/resources.js';
import { HOST_API_PATHS, type HostCredentialGrant, type HostDescription } from '../../src/shared/host-protocol.js';
import { ENROLMENT_FAILURE_LIMIT } from '../../src/shared/config.js';
import { admin, call, grantToken, hostAssertion, hostKey, type HostKey, type JsonResponse } from '../authority/hosts/helpers.js';

const postgresUrl = process.env['OPENMSI_TEST_POSTGRES_URL'];
const MACHINES = 'providers/Microsoft.HybridCompute/machines';
const GROUP = 'invariants';

void describe('global invariants across two replicas sharing PostgreSQL', { skip: postgresUrl ? false : 'OPENMSI_TEST_POSTGRES_URL not set' }, () => {
  let a: TestAuthority;
  let b: OpenmsiServer;
  /** Replica B, as the in-process helpers address an authority (same issuer and tenant as A). */
  let atB: TestAuthority;
  let addressCounter = 10;
  const nextAddress = () => `10.9.0.${String(addressCounter++)}`;

  before(async () => {
    a = await startTestAuthority({ backend: 'postgres' });
    ({ server: b } = await startReplica(a));
    atB = { ...a, app: b.app };
    await putResourceGroup(a.ctx.store, { subscriptionId: a.subscriptionId, name: GROUP, location: 'local', clock: a.ctx.clock });
  });
  after(async () => {
    await b?.close();
    await a?.close();
  });

  const machinePath = (name: string) => `/subscriptions/${a.subscriptionId}/resourceGroups/${GROUP}/${MACHINES}/${name}`;

  async function joinToken(name: string): Promise<string> {
    const response = await admin(a, 'POST', `${machinePath(name)}/createJoinToken`);
    assert.equal(response.status, 200, response.body);
    return response.json<{ token: string }>().token;
  }

  function enrol(at: TestAuthority, token: string, key: HostKey, remoteAddress = nextAddress()): Promise<JsonResponse> {
    return call(at, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: token, publicJwk: key.publicJwk }, remoteAddress });
  }

  async function enrolled(name: string): Promise<{ key: HostKey; grant: HostCredentialGrant }> {
    const key = await hostKey();
    const response = await enrol(a, await joinToken(name), key);
    assert.equal(response.status, 201, response.body);
    return { key, grant: response.json<HostCredentialGrant>() };
  }

  function expectError(response: JsonResponse, status: number, code: string): void {
    assert.equal(response.status, status, response.body);
    assert.equal(response.json<{ error: { code: string } }>().error.code, code, response.body);
  }

  void it('a join token is accepted once in total: used at one replica, refused at the other; raced, exactly one wins', async () => {
    const token = await joinToken('join-once');
    assert.equal((await enrol(a, token, await hostKey())).status, 201);
    expectError(await enrol(atB, token, await hostKey()), 401, 'JoinTokenUsed');

    const raced = await joinToken('join-raced');
    const results = await Promise.all([a, atB, a, atB].map(async (at) => (await enrol(at, raced, await hostKey())).status));
    assert.deepEqual(
      results.filter((s) => s === 201),
      [201],
      JSON.stringify(results),
    );
  });

  void it('a deleted identity, a revoked credential and a deleted host get no token from the other replica', async () => {
    const clock = a.ctx.clock;
    const { key, grant } = await enrolled('revoked-everywhere');
    const host = grant.hostResourceId;
    const uami = await putUserAssignedIdentity(a.ctx.store, { subscriptionId: a.subscriptionId, resourceGroup: GROUP, name: 'revoked-uami', clock });
    const machine = (await a.ctx.store.resources.get(host))!;
    const put = await admin(a, 'PUT', machinePath('revoked-everywhere'), {
      location: 'local',
      properties: machine.properties,
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
    });
    assert.equal(put.status, 200, put.body);

    // Served by both replicas first (each fills whatever it caches).
    for (const at of [a, atB]) {
      assert.equal((await grantToken(at, key, host, { mi_res_id: uami.resource.id })).status, 200);
      assert.equal((await grantToken(at, key, host)).status, 200);
    }
    // The identity deleted at A: B refuses it (and still serves the system-assigned identity).
    await deleteUserAssignedIdentity(a.ctx.store, { subscriptionId: a.subscriptionId, resourceGroup: GROUP, name: 'revoked-uami', clock });
    assert.notEqual((await grantToken(atB, key, host, { mi_res_id: uami.resource.id })).status, 200);
    assert.equal((await grantToken(atB, key, host)).status, 200);

    // The credential revoked at A: B refuses the host (grant and host API).
    const second = await enrolled('revoked-credential');
    assert.equal((await grantToken(atB, second.key, second.grant.hostResourceId)).status, 200);
    const revoke = await admin(a, 'POST', `/openmsi/hostCredentials/${second.grant.keyId}/revoke`);
    assert.equal(revoke.status, 200, revoke.body);
    assert.equal((await grantToken(atB, second.key, second.grant.hostResourceId)).status, 401);
    const selfAtB = await call(atB, 'GET', HOST_API_PATHS.self, { bearer: await hostAssertion(a, second.key, second.grant.hostResourceId) });
    expectError(selfAtB, 401, 'HostNotRecognised');

    // The host deleted at A: B refuses it.
    const deleted = await admin(a, 'DELETE', machinePath('revoked-everywhere'));
    assert.ok([200, 202, 204].includes(deleted.status), deleted.body);
    assert.equal((await grantToken(atB, key, host)).status, 401);
  });

  void it('failed enrolments count across replicas: an address that failed at one is refused at the other', async () => {
    const address = nextAddress();
    const bogus = `omj_${'C'.repeat(22)}.${'A'.repeat(43)}`;
    for (let i = 0; i < ENROLMENT_FAILURE_LIMIT.failures; i++) {
      // Alternating replicas: each sees only half of the failures, together they reach the limit.
      expectError(await enrol(i % 2 === 0 ? a : atB, bogus, await hostKey(), address), 401, 'JoinTokenInvalid');
    }
    const token = await joinToken('rate-limited-everywhere');
    for (const at of [a, atB]) expectError(await enrol(at, token, await hostKey(), address), 429, 'TooManyRequests');
    // Another address is not affected, and the token was not consumed.
    assert.equal((await enrol(atB, token, await hostKey(), nextAddress())).status, 201);
  });

  void it('a long poll at one replica answers a change made at the other within a second', async () => {
    const clock = a.ctx.clock;
    const { key, grant } = await enrolled('long-poll-across');
    const host = grant.hostResourceId;
    const self = async (at: TestAuthority, query = '') => call(at, 'GET', `${HOST_API_PATHS.self}${query}`, { bearer: await hostAssertion(a, key, host) });
    const before = (await self(atB)).json<HostDescription>();
    const uami = await putUserAssignedIdentity(a.ctx.store, { subscriptionId: a.subscriptionId, resourceGroup: GROUP, name: 'long-poll-uami', clock });
    const machine = (await a.ctx.store.resources.get(host))!;

    const waiting = self(atB, `?since=${before.version!}&wait=30`);
    // Let the poll reach its wait before the change (it would answer at once anyway if it read the new state).
    await new Promise((resolve) => setTimeout(resolve, 200));
    const put = await admin(a, 'PUT', machinePath('long-poll-across'), {
      location: 'local',
      properties: machine.properties,
      identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
    });
    assert.equal(put.status, 200, put.body);
    const changedAt = performance.now();
    const answer = await waiting;
    const tookMs = performance.now() - changedAt;
    assert.equal(answer.status, 200, answer.body);
    const after = answer.json<HostDescription>();
    assert.notEqual(after.version, before.version);
    assert.ok(
      after.identities.some((i) => i.objectId === uami.principal.objectId),
      'the new identity is listed',
    );
    assert.ok(tookMs < 1000, `answered ${tookMs.toFixed(0)} ms after the change at the other replica`);
    process.stdout.write(`long poll at replica B answered ${tookMs.toFixed(1)} ms after the change committed at replica A\n`);
  });
});
