import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../../support/authority.js';
import { FakeClock } from '../../../src/shared/clock.js';
import { HOST_API_PATHS, type HostCredentialGrant, type HostDescription } from '../../../src/shared/host-protocol.js';
import { ENROLMENT_FAILURE_LIMIT, HOST_CREDENTIAL_LIFETIME_SECONDS } from '../../../src/shared/config.js';
import { putResourceGroup, putUserAssignedIdentity } from '../../../src/directory/resources.js';
import { admin, call, grantToken, hostAssertion, hostKey, type HostKey, type JsonResponse } from './helpers.js';

const MACHINES = 'providers/Microsoft.HybridCompute/machines';

function expectError(response: JsonResponse, status: number, code: string): void {
  assert.equal(response.status, status, response.body);
  assert.equal(response.json<{ error: { code: string } }>().error.code, code, response.body);
}

for (const backend of STORE_BACKENDS)
  describe(`host API (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let clock: FakeClock;
    let group: string;
    /** A distinct remote address per test, so the enrolment rate limit of one test never touches another. */
    let addressCounter = 10;
    const nextAddress = () => `10.0.0.${String(addressCounter++)}`;

    before(async () => {
      clock = new FakeClock(Date.now());
      t = await startTestAuthority({ backend, clock });
      group = 'hosts-rg';
      await putResourceGroup(t.ctx.store, { subscriptionId: t.subscriptionId, name: group, location: 'local', clock });
    });
    after(async () => {
      await t.close();
    });

    const machinePath = (name: string) => `/subscriptions/${t.subscriptionId}/resourceGroups/${group}/${MACHINES}/${name}`;

    async function joinToken(name: string, ttlSeconds?: number): Promise<{ token: string; expiresOn: string; hostResourceId: string }> {
      const response = await admin(t, 'POST', `${machinePath(name)}/createJoinToken`, ttlSeconds === undefined ? undefined : { ttlSeconds });
      assert.equal(response.status, 200, response.body);
      return response.json();
    }

    async function enrol(token: string, key: HostKey, remoteAddress = nextAddress()): Promise<JsonResponse> {
      return call(t, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: token, publicJwk: key.publicJwk }, remoteAddress });
    }

    /** A machine enrolled with a fresh key. */
    async function enrolled(name: string): Promise<{ key: HostKey; grant: HostCredentialGrant }> {
      const { token } = await joinToken(name);
      const key = await hostKey();
      const response = await enrol(token, key);
      assert.equal(response.status, 201, response.body);
      return { key, grant: response.json<HostCredentialGrant>() };
    }

    async function self(key: HostKey, hostResourceId: string): Promise<JsonResponse> {
      return call(t, 'GET', HOST_API_PATHS.self, { bearer: await hostAssertion(t, key, hostResourceId) });
    }

    it('join-token create makes the machine with a system-assigned identity and a stable vmId, and bounds the TTL', async () => {
      const first = await joinToken('jt-machine');
      assert.match(first.token, /^omj_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
      assert.equal(Date.parse(first.expiresOn), clock.now() + 600_000, 'ten minutes by default');
      const machine = await admin(t, 'GET', machinePath('jt-machine'));
      assert.equal(machine.status, 200, machine.body);
      const view = machine.json<{ id: string; identity: { type: string; principalId: string }; properties: { vmId: string } }>();
      assert.equal(view.id, first.hostResourceId);
      assert.equal(view.identity.type, 'SystemAssigned');
      assert.match(view.properties.vmId, /^[0-9a-f-]{36}$/);

      // A second token keeps the machine, its identity and its vmId; an explicit TTL is honoured.
      const second = await joinToken('jt-machine', 3600);
      assert.equal(Date.parse(second.expiresOn), clock.now() + 3_600_000);
      const again = (await admin(t, 'GET', machinePath('jt-machine'))).json<typeof view>();
      assert.equal(again.properties.vmId, view.properties.vmId);
      assert.equal(again.identity.principalId, view.identity.principalId);

      // A machine that exists without an identity gets its system-assigned identity enabled, keeping its tags.
      assert.equal((await admin(t, 'PUT', machinePath('bare'), { tags: { env: 'dev' } })).status, 201);
      await joinToken('bare');
      const bare = (await admin(t, 'GET', machinePath('bare'))).json<typeof view & { tags: Record<string, string> }>();
      assert.equal(bare.identity.type, 'SystemAssigned');
      assert.deepEqual(bare.tags, { env: 'dev' });

      for (const ttlSeconds of [59, 86_401, 1.5, '600']) {
        expectError(await admin(t, 'POST', `${machinePath('jt-machine')}/createJoinToken`, { ttlSeconds }), 400, 'InvalidRequestContent');
      }
      expectError(
        await admin(t, 'POST', `/subscriptions/${t.subscriptionId}/resourceGroups/no-such-rg/${MACHINES}/x/createJoinToken`),
        404,
        'ResourceGroupNotFound',
      );
      // The audit trail records the token's creation, never the token.
      await t.ctx.audit.flush();
      const events = await t.ctx.store.audit.list({ action: 'host.join-token.created', limit: 10 });
      assert.ok(events.some((e) => e.target === first.hostResourceId));
      assert.ok(!JSON.stringify(events).includes(first.token.split('.')[1]!));
    });

    it('enrols a host: the credential holds the given public key, and the grant then issues its system identity a token', async () => {
      const { token, hostResourceId } = await joinToken('enrol-1');
      const key = await hostKey();
      const response = await enrol(token, key);
      assert.equal(response.status, 201, response.body);
      const grant = response.json<HostCredentialGrant>();
      assert.deepEqual(Object.keys(grant).sort(), ['expiresOn', 'hostResourceId', 'issuedOn', 'keyId', 'tenantId', 'tokenEndpoint']);
      assert.equal(grant.keyId, key.thumbprint, 'the key id is the RFC 7638 thumbprint');
      assert.equal(grant.hostResourceId, hostResourceId);
      assert.equal(grant.tenantId, t.tenantId);
      assert.equal(grant.issuedOn, Math.floor(clock.now() / 1000));
      assert.equal(grant.expiresOn - grant.issuedOn, HOST_CREDENTIAL_LIFETIME_SECONDS);
      assert.equal(grant.tokenEndpoint, `${t.url}/${t.tenantId}/oauth2/token`);

      const stored = await t.ctx.store.hostCredentials.get(grant.keyId);
      assert.deepEqual(stored?.publicJwk, { kty: 'EC', crv: 'P-256', x: key.publicJwk.x, y: key.publicJwk.y });

      const issued = await grantToken(t, key, hostResourceId);
      assert.equal(issued.status, 200, issued.body);
      const claims = decodeJwt(issued.json<{ access_token: string }>().access_token);
      const machine = (await t.ctx.store.resources.get(hostResourceId))!;
      assert.equal(claims['oid'], machine.systemPrincipalId);
      assert.equal(claims['xms_mirid'], hostResourceId);

      // RSA keys of 2048 bits enrol too.
      const rsa = await hostKey('RS256');
      const rsaResponse = await enrol((await joinToken('enrol-rsa')).token, rsa);
      assert.equal(rsaResponse.status, 201, rsaResponse.body);
      assert.equal((await self(rsa, rsaResponse.json<HostCredentialGrant>().hostResourceId)).status, 200);
    });

    it('a join token is single use: the second use is JoinTokenUsed, an unknown or malformed one JoinTokenInvalid', async () => {
      const { token } = await joinToken('single-use');
      assert.equal((await enrol(token, await hostKey())).status, 201);
      expectError(await enrol(token, await hostKey()), 401, 'JoinTokenUsed');
      const [id] = token.split('.');
      expectError(await enrol(`${id!}.${'A'.repeat(43)}`, await hostKey()), 401, 'JoinTokenInvalid');
      expectError(await enrol(`omj_${'B'.repeat(22)}.${'A'.repeat(43)}`, await hostKey()), 401, 'JoinTokenInvalid');
      expectError(await enrol('not-a-token', await hostKey()), 401, 'JoinTokenInvalid');
      const wrong = await enrol(`${id!}.${'A'.repeat(43)}`, await hostKey());
      assert.doesNotMatch(wrong.body, new RegExp(token.split('.')[1]!), 'the refusal does not echo the token');
    });

    it('of concurrent enrolments with one token exactly one succeeds', async () => {
      const { token } = await joinToken('race');
      const results = await Promise.all(Array.from({ length: 4 }, async () => enrol(token, await hostKey())));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 401, 401, 401]);
    });

    it('an expired join token is JoinTokenExpired (fake clock), and a refused key leaves the token usable', async () => {
      const { token } = await joinToken('expiring', 60);
      const privateJwk = await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey);
      const p384 = await exportJWK((await generateKeyPair('ES384')).publicKey);
      const rsa1024 = await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
      for (const publicJwk of [privateJwk, p384, rsa1024, { kty: 'oct', k: 'c2VjcmV0' }, { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }, 'jwk', null]) {
        const refused = await call(t, 'POST', HOST_API_PATHS.enrol, { body: { joinToken: token, publicJwk }, remoteAddress: nextAddress() });
        expectError(refused, 400, 'InvalidRequest');
      }
      expectError(await call(t, 'POST', HOST_API_PATHS.enrol, { body: [], remoteAddress: nextAddress() }), 400, 'InvalidRequest');
      const asText = await t.app.inject({
        method: 'POST',
        url: HOST_API_PATHS.enrol,
        remoteAddress: nextAddress(),
        headers: { 'content-type': 'text/plain' },
        payload: token,
      });
      assert.equal(asText.statusCode, 400, asText.body);
      assert.equal(asText.json<{ error: { code: string } }>().error.code, 'InvalidRequest');
      const huge = await call(t, 'POST', HOST_API_PATHS.enrol, {
        body: { joinToken: token, publicJwk: { kty: 'EC', pad: 'x'.repeat(70_000) } },
        remoteAddress: nextAddress(),
      });
      expectError(huge, 400, 'InvalidRequest');
      assert.match(huge.body, /larger than this endpoint accepts/);
      expectError(
        await call(t, 'POST', HOST_API_PATHS.enrol, { remoteAddress: nextAddress(), headers: { 'content-type': 'application/json' } }),
        400,
        'InvalidRequest',
      );
      clock.advance(60_000);
      expectError(await enrol(token, await hostKey()), 401, 'JoinTokenExpired');
      const fresh = await joinToken('expiring', 60);
      clock.advance(59_000);
      assert.equal((await enrol(fresh.token, await hostKey())).status, 201, 'still valid a second before expiry');
    });

    it('rate-limits failed enrolments per address: 429 with Retry-After, then recovers after the window', async () => {
      // Counted in fixed windows: start at one's beginning, so Retry-After is the whole window.
      const windowMs = ENROLMENT_FAILURE_LIMIT.windowSeconds * 1000;
      clock.advance(windowMs - (clock.now() % windowMs));
      const address = nextAddress();
      const { token } = await joinToken('rate-limited');
      for (let i = 0; i < ENROLMENT_FAILURE_LIMIT.failures; i++)
        expectError(await enrol(`omj_${'C'.repeat(22)}.${'A'.repeat(43)}`, await hostKey(), address), 401, 'JoinTokenInvalid');
      const limited = await enrol(token, await hostKey(), address);
      expectError(limited, 429, 'TooManyRequests');
      assert.equal(limited.headers['retry-after'], String(ENROLMENT_FAILURE_LIMIT.windowSeconds));
      // Another address is not affected, and the limited one's valid token was not consumed.
      clock.advance(20_000);
      const later = await enrol(token, await hostKey(), address);
      expectError(later, 429, 'TooManyRequests');
      assert.equal(later.headers['retry-after'], String(ENROLMENT_FAILURE_LIMIT.windowSeconds - 20));
      expectError(await enrol(`omj_${'C'.repeat(22)}.${'A'.repeat(43)}`, await hostKey(), nextAddress()), 401, 'JoinTokenInvalid');
      clock.advance(40_000);
      const recovered = await enrol(token, await hostKey(), address);
      assert.equal(recovered.status, 201, recovered.body);
    });

    it('renews: a new key gets a new credential, the old one stays valid, and re-sending the new key returns the same grant', async () => {
      const { key, grant } = await enrolled('renewing');
      const next = await hostKey();
      const renew = async (signer: HostKey, publicJwk: unknown) =>
        call(t, 'POST', HOST_API_PATHS.renew, { bearer: await hostAssertion(t, signer, grant.hostResourceId), body: { publicJwk } });
      clock.advance(1000);
      const renewed = await renew(key, next.publicJwk);
      assert.equal(renewed.status, 201, renewed.body);
      const newGrant = renewed.json<HostCredentialGrant>();
      assert.equal(newGrant.keyId, next.thumbprint);
      assert.equal(newGrant.hostResourceId, grant.hostResourceId);
      assert.ok(newGrant.expiresOn > grant.expiresOn);
      assert.equal((await self(key, grant.hostResourceId)).status, 200, 'the old credential still works');
      assert.equal((await self(next, grant.hostResourceId)).status, 200, 'the new one works');
      assert.equal((await grantToken(t, next, grant.hostResourceId)).status, 200);
      // A retry after a lost response: the same key gives the same credential, not a new one.
      const retried = await renew(key, next.publicJwk);
      assert.equal(retried.status, 201, retried.body);
      assert.deepEqual(retried.json(), newGrant);
      // Racing retries with one more new key all get the same credential.
      const third = await hostKey();
      const raced = await Promise.all([renew(key, third.publicJwk), renew(key, third.publicJwk), renew(next, third.publicJwk)]);
      assert.deepEqual(
        raced.map((r) => r.status),
        [201, 201, 201],
        raced.map((r) => r.body).join('\n'),
      );
      assert.deepEqual(new Set(raced.map((r) => r.json<HostCredentialGrant>().keyId)), new Set([third.thumbprint]));
      // Someone else's key, or a private key, is refused.
      const other = await enrolled('renewing-other');
      expectError(await renew(next, other.key.publicJwk), 400, 'InvalidRequest');
      expectError(await renew(next, { ...next.publicJwk, d: 'AAAA' }), 400, 'InvalidRequest');
      expectError(await call(t, 'POST', HOST_API_PATHS.renew, { body: { publicJwk: next.publicJwk } }), 401, 'HostNotRecognised');
    });

    it('revocation takes effect at once for the host API and the grant, and the credentials are listed', async () => {
      const { key, grant } = await enrolled('revoked');
      assert.equal((await grantToken(t, key, grant.hostResourceId)).status, 200);
      const listed = await admin(t, 'GET', `${machinePath('revoked')}/hostCredentials`);
      assert.equal(listed.status, 200, listed.body);
      const [view] = listed.json<{ value: Record<string, unknown>[] }>().value;
      const stored = (await t.ctx.store.hostCredentials.get(grant.keyId))!;
      assert.deepEqual(view, {
        keyId: grant.keyId,
        hostResourceId: grant.hostResourceId,
        kty: 'EC',
        crv: 'P-256',
        state: 'Active',
        createdAt: new Date(stored.createdAt).toISOString(),
        expiresAt: new Date(stored.expiresAt).toISOString(),
        revokedAt: null,
      });
      const revoked = await admin(t, 'POST', `/openmsi/hostCredentials/${grant.keyId}/revoke`);
      assert.equal(revoked.status, 200, revoked.body);
      assert.equal(revoked.json<{ state: string }>().state, 'Revoked');
      expectError(await self(key, grant.hostResourceId), 401, 'HostNotRecognised');
      assert.equal((await grantToken(t, key, grant.hostResourceId)).status, 401);
      expectError(
        await call(t, 'POST', HOST_API_PATHS.renew, {
          bearer: await hostAssertion(t, key, grant.hostResourceId),
          body: { publicJwk: (await hostKey()).publicJwk },
        }),
        401,
        'HostNotRecognised',
      );
      expectError(await admin(t, 'POST', `/openmsi/hostCredentials/no-such-key/revoke`), 404, 'HostCredentialNotFound');
      await t.ctx.audit.flush();
      const refusals = await t.ctx.store.audit.list({ action: 'host.request.refused', involving: [[grant.hostResourceId]], limit: 10 });
      assert.ok(refusals.length >= 2, 'refusals of a known host are audited with the host');
    });

    it('a deleted host is refused at once, and one created again under the same name does not accept the old credential', async () => {
      const { key, grant } = await enrolled('deleted');
      assert.equal((await self(key, grant.hostResourceId)).status, 200);
      assert.equal((await admin(t, 'DELETE', machinePath('deleted'))).status, 200);
      expectError(await self(key, grant.hostResourceId), 401, 'HostNotRecognised');
      assert.equal((await grantToken(t, key, grant.hostResourceId)).status, 401);
      await joinToken('deleted');
      expectError(await self(key, grant.hostResourceId), 401, 'HostNotRecognised');
      assert.equal((await grantToken(t, key, grant.hostResourceId)).status, 401);
      const listed = (await admin(t, 'GET', `${machinePath('deleted')}/hostCredentials`)).json<{ value: { keyId: string; state: string }[] }>().value;
      assert.deepEqual(
        listed.map((c) => [c.keyId, c.state]),
        [[grant.keyId, 'Revoked']],
        'deleting the host revoked its credential',
      );
    });

    it('self describes the host and its identities, read on every call', async () => {
      const { key, grant } = await enrolled('described');
      const uami = await putUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: group, name: 'described-uami', clock });
      const first = await self(key, grant.hostResourceId);
      assert.equal(first.status, 200, first.body);
      const description = first.json<HostDescription>();
      const machine = (await t.ctx.store.resources.get(grant.hostResourceId))!;
      const system = (await t.ctx.store.servicePrincipals.getByObjectId(machine.systemPrincipalId!))!;
      assert.deepEqual(description, {
        tenantId: t.tenantId,
        hostResourceId: grant.hostResourceId,
        subscriptionId: t.subscriptionId,
        resourceGroup: group,
        name: 'described',
        location: 'local',
        vmId: machine.properties['vmId'],
        identities: [{ type: 'SystemAssigned', objectId: system.objectId, clientId: system.appId, resourceId: grant.hostResourceId }],
        credential: { keyId: grant.keyId, expiresOn: grant.expiresOn },
        version: description.version,
      });
      assert.match(description.version ?? '', /^[A-Za-z0-9_-]{22}$/);
      assert.equal((await self(key, grant.hostResourceId)).json<HostDescription>().version, description.version, 'same state, same version');
      // Attach the user-assigned identity through the generic ARM PUT, as `vm identity assign` does.
      const put = await admin(t, 'PUT', machinePath('described'), {
        location: 'local',
        properties: machine.properties,
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
      });
      assert.equal(put.status, 200, put.body);
      const withUser = (await self(key, grant.hostResourceId)).json<HostDescription>();
      assert.deepEqual(withUser.identities[1], {
        type: 'UserAssigned',
        objectId: uami.principal.objectId,
        clientId: uami.principal.appId,
        resourceId: uami.resource.id,
      });
      assert.equal(withUser.vmId, description.vmId);
      assert.notEqual(withUser.version, description.version);
      await admin(t, 'PUT', machinePath('described'), { location: 'local', properties: machine.properties, identity: { type: 'SystemAssigned' } });
      assert.equal((await self(key, grant.hostResourceId)).json<HostDescription>().identities.length, 1);
    });

    it('self long poll: answers at once when behind, on a change (not at the deadline), at the deadline unchanged, and 401 on a revocation', async () => {
      const { key, grant } = await enrolled('long-polled');
      const host = grant.hostResourceId;
      const poll = async (query: string) => call(t, 'GET', `${HOST_API_PATHS.self}?${query}`, { bearer: await hostAssertion(t, key, host) });
      const current = (await self(key, host)).json<HostDescription>();
      const version = current.version!;

      // Behind (or an unknown version): the description at once.
      const behind = await poll('since=stale-version&wait=30');
      assert.equal(behind.status, 200, behind.body);
      assert.equal(behind.json<HostDescription>().version, version);

      // Unchanged: the same description once the wait runs out.
      let started = performance.now();
      const unchanged = await poll(`since=${version}&wait=1`);
      assert.equal(unchanged.status, 200, unchanged.body);
      assert.equal(unchanged.json<HostDescription>().version, version);
      assert.ok(performance.now() - started >= 900, 'waited for the change that did not come');

      // A change while it waits: answered with the new description, long before the 30 s deadline.
      const uami = await putUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: group, name: 'long-polled-uami', clock });
      const machine = (await t.ctx.store.resources.get(host))!;
      started = performance.now();
      const waiting = poll(`since=${version}&wait=30`);
      const put = await admin(t, 'PUT', machinePath('long-polled'), {
        location: 'local',
        properties: machine.properties,
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.resource.id]: {} } },
      });
      assert.equal(put.status, 200, put.body);
      const changed = await waiting;
      const tookMs = performance.now() - started;
      assert.equal(changed.status, 200, changed.body);
      const after = changed.json<HostDescription>();
      assert.notEqual(after.version, version);
      assert.deepEqual(
        after.identities.map((i) => i.objectId),
        [current.identities[0]!.objectId, uami.principal.objectId],
      );
      assert.ok(tookMs < 10_000, `answered on the change, not at the deadline (${tookMs.toFixed(0)} ms)`);

      // The user-assigned identity deleted (its resource and principal): answered too.
      const deleting = poll(`since=${after.version!}&wait=30`);
      await t.ctx.store.servicePrincipals.delete(uami.principal.objectId);
      const afterDelete = await deleting;
      assert.equal(afterDelete.status, 200, afterDelete.body);
      assert.equal(afterDelete.json<HostDescription>().identities.length, 1);

      // The credential revoked while it waits: refused at once.
      const refused = poll(`since=${afterDelete.json<HostDescription>().version!}&wait=30`);
      await t.ctx.store.hostCredentials.revoke(grant.keyId, clock.now());
      expectError(await refused, 401, 'HostNotRecognised');
    });

    it('self long poll: since and wait are checked (400), a wait beyond 30 s is capped', async () => {
      const { key, grant } = await enrolled('poll-args');
      const poll = async (query: string) => call(t, 'GET', `${HOST_API_PATHS.self}?${query}`, { bearer: await hostAssertion(t, key, grant.hostResourceId) });
      for (const query of [
        'since=a%20b&wait=1',
        `since=${'a'.repeat(65)}`,
        'since=abc&wait=-1',
        'since=abc&wait=1.5',
        'since=abc&wait=x',
        'since=abc&wait=1234567',
      ]) {
        expectError(await poll(query), 400, 'InvalidRequest');
      }
      // wait without since is an ordinary read.
      assert.equal((await poll('wait=30')).status, 200);
    });

    it('host assertions: audience, lifetime, replay, key and issuer are checked', async () => {
      const { key, grant } = await enrolled('asserting');
      const host = grant.hostResourceId;
      const selfWith = (bearer: string) => call(t, 'GET', HOST_API_PATHS.self, { bearer });
      assert.equal((await selfWith(await hostAssertion(t, key, host))).status, 200);
      expectError(await selfWith(await hostAssertion(t, key, host, { aud: `${t.url}/${t.tenantId}/oauth2/token` })), 401, 'HostNotRecognised');
      expectError(await selfWith(await hostAssertion(t, key, host, { lifetimeSeconds: 301 })), 401, 'HostNotRecognised');
      const replayed = await hostAssertion(t, key, host);
      assert.equal((await selfWith(replayed)).status, 200);
      expectError(await selfWith(replayed), 401, 'HostNotRecognised');
      expectError(await selfWith(await hostAssertion(t, await hostKey(), host, { kid: grant.keyId })), 401, 'HostNotRecognised');
      expectError(await selfWith(await hostAssertion(t, key, `${host}-other`)), 401, 'HostNotRecognised');
      expectError(await selfWith(await hostAssertion(t, key, host, { iat: Math.floor(clock.now() / 1000) - 3600 })), 401, 'HostNotRecognised');
      const missing = await call(t, 'GET', HOST_API_PATHS.self);
      expectError(missing, 401, 'HostNotRecognised');
      assert.match(String(missing.headers['www-authenticate']), /^Bearer /);
    });

    it('ingests agent audit records idempotently and audit list filters them by identity and host', async () => {
      const { key, grant } = await enrolled('auditing');
      const uami = await putUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: group, name: 'audited-uami', clock });
      const now = clock.now();
      const served = {
        id: randomUUID(),
        at: now - 5000,
        lastAt: now - 1000,
        count: 42,
        decision: 'served',
        source: 'cache',
        surface: 'imds',
        identity: uami.principal.objectId,
        audience: 'https://vault.azure.net',
        caller: { address: '127.0.0.1', pid: 4242, uid: 1000, exe: '/usr/bin/node' },
        status: 200,
      };
      const refused = {
        id: randomUUID(),
        at: now - 4000,
        lastAt: now - 4000,
        count: 1,
        decision: 'refused',
        surface: 'app-service',
        caller: { address: '127.0.0.1' },
        status: 400,
        reason: 'identity_not_found',
      };
      const upload = async (records: unknown[]) =>
        call(t, 'POST', HOST_API_PATHS.audit, { bearer: await hostAssertion(t, key, grant.hostResourceId), body: { records } });
      const first = await upload([served, refused]);
      assert.equal(first.status, 200, first.body);
      assert.deepEqual(first.json(), { accepted: 2, stored: 2, refused: 0 });
      assert.deepEqual((await upload([served, refused])).json(), { accepted: 2, stored: 0, refused: 0 }, 'a retried batch is stored once');

      const stored = await t.ctx.store.audit.list({ involving: [[grant.hostResourceId]], limit: 100 });
      const servedEvent = stored.find((e) => e.id === served.id);
      assert.deepEqual(servedEvent, {
        id: served.id,
        at: served.at,
        tenantId: t.tenantId,
        actor: uami.principal.objectId,
        action: 'agent.token.served',
        target: grant.hostResourceId,
        outcome: 'success',
        detail: {
          surface: 'imds',
          caller: served.caller,
          count: 42,
          lastAt: new Date(served.lastAt).toISOString(),
          status: 200,
          audience: 'https://vault.azure.net',
          source: 'cache',
          identity: uami.principal.objectId,
        },
      });
      const refusedEvent = stored.find((e) => e.id === refused.id);
      assert.equal(refusedEvent?.action, 'agent.token.refused');
      assert.equal(refusedEvent?.actor, grant.hostResourceId, 'without an identity the host is the actor');
      assert.equal(refusedEvent?.outcome, 'failure');

      // `GET /openmsi/audit` filters: by identity (object id, client id, name) and by host (name or ARM id).
      const list = async (query: string) => (await admin(t, 'GET', `/openmsi/audit?${query}`)).json<{ value: { id: string }[] }>().value.map((e) => e.id);
      for (const identity of [uami.principal.objectId, uami.principal.appId, 'audited-uami', uami.resource.id]) {
        assert.deepEqual(await list(`identity=${encodeURIComponent(identity)}&action=agent.token.served`), [served.id], identity);
      }
      for (const host of ['auditing', grant.hostResourceId.toUpperCase()]) {
        const ids = await list(`host=${encodeURIComponent(host)}&since=1h`);
        assert.ok(ids.includes(served.id) && ids.includes(refused.id), host);
      }
      assert.deepEqual(await list(`host=auditing&identity=${uami.principal.objectId}`), [served.id]);
      assert.deepEqual(await list(`host=auditing&action=agent.token.refused`), [refused.id]);
      assert.deepEqual(await list(`host=auditing&since=3s&action=agent.token.served`), [], 'since=3s excludes the record of 5 s ago');
      assert.deepEqual(await list(`host=nosuch-host`), []);
      expectError(await admin(t, 'GET', '/openmsi/audit?since=5x'), 400, 'InvalidQueryParameter');

      // A record that breaks the contract is counted, never refuses its batch: test/authority/hosts/audit.test.ts.
      // Only a body that is not an upload is refused whole.
      expectError(await upload(Array.from({ length: 1001 }, () => ({ ...served, id: randomUUID() }))), 400, 'InvalidRequest');
      const full = await upload(Array.from({ length: 1000 }, () => ({ ...served, id: randomUUID() })));
      assert.deepEqual(full.json(), { accepted: 1000, stored: 1000, refused: 0 });
      expectError(await call(t, 'POST', HOST_API_PATHS.audit, { body: { records: [] } }), 401, 'HostNotRecognised');
    });

    it('audits enrolment, renewal and refusals, never with the join token', async () => {
      const { token, hostResourceId } = await joinToken('audited-enrol');
      const key = await hostKey();
      assert.equal((await enrol(token, key)).status, 201);
      expectError(await enrol(token, await hostKey()), 401, 'JoinTokenUsed');
      await t.ctx.audit.flush();
      const events = await t.ctx.store.audit.list({ involving: [[hostResourceId]], limit: 50 });
      const enrolledEvent = events.find((e) => e.action === 'host.enrolled');
      assert.equal(enrolledEvent?.detail['keyId'], key.thumbprint);
      const refusal = events.find((e) => e.action === 'host.enrolment.refused');
      assert.equal(refusal?.detail['code'], 'JoinTokenUsed');
      const secret = token.split('.')[1]!;
      const everything = JSON.stringify(await t.ctx.store.audit.list({ limit: 1000 }));
      assert.ok(!everything.includes(secret), 'no join token secret in the audit trail');
      assert.ok(!t.logLines.join('\n').includes(secret), 'no join token secret in the log');
    });
  });
