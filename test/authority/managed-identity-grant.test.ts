import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, type webcrypto } from 'node:crypto';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose';
import { STORE_BACKENDS, backendSuiteOptions, startTestAuthority, type TestAuthority } from '../support/authority.js';
import { postForm } from '../support/https.js';
import { MANAGED_IDENTITY_GRANT_TYPE } from '../../src/authority/grants/managed-identity.js';
import { CLIENT_ASSERTION_ALGORITHMS } from '../../src/authority/token/client-auth.js';
import { TokenErrors } from '../../src/authority/errors.js';
import { deleteResource, putResource, putResourceGroup, putUserAssignedIdentity, deleteUserAssignedIdentity } from '../../src/directory/resources.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The agent's grant: a host proves itself with its registered key and gets tokens for its identities. */
for (const backend of STORE_BACKENDS)
  describe(`managed-identity grant (${backend})`, backendSuiteOptions(backend), () => {
    let t: TestAuthority;
    let hostId: string;
    let hostKey: webcrypto.CryptoKey;
    let keyId: string;
    let uami: { id: string; clientId: string; principalId: string };
    let otherUami: { id: string; clientId: string };
    let systemPrincipalId: string;
    let tokenUrl: string;

    before(async () => {
      t = await startTestAuthority({ backend });
      const clock = t.ctx.clock;
      const store = t.ctx.store;
      tokenUrl = `${t.url}/${t.tenantId}/oauth2/v2.0/token`;
      await putResourceGroup(store, { subscriptionId: t.subscriptionId, name: 'hosts', location: 'local', clock });
      const created = await putUserAssignedIdentity(store, { subscriptionId: t.subscriptionId, resourceGroup: 'hosts', name: 'app-id', clock });
      uami = { id: created.resource.id, clientId: created.principal.appId, principalId: created.principal.objectId };
      const other = await putUserAssignedIdentity(store, { subscriptionId: t.subscriptionId, resourceGroup: 'hosts', name: 'not-attached', clock });
      otherUami = { id: other.resource.id, clientId: other.principal.appId };
      const host = await putResource(store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: 'hosts',
        type: 'Microsoft.HybridCompute/machines',
        name: 'build-agent-1',
        identity: { type: 'SystemAssigned, UserAssigned', userAssignedIdentities: { [uami.id]: {} } },
        clock,
      });
      hostId = host.resource.id;
      systemPrincipalId = host.resource.systemPrincipalId!;
      const pair = await generateKeyPair('ES256');
      hostKey = pair.privateKey;
      keyId = randomUUID();
      await store.hostCredentials.add({
        keyId,
        hostResourceId: hostId,
        publicJwk: await exportJWK(pair.publicKey),
        createdAt: clock.now(),
        expiresAt: clock.now() + 24 * 3600 * 1000,
        revokedAt: null,
      });
    });
    after(async () => {
      await t.close();
    });

    async function hostAssertion(options: { kid?: string; iss?: string } = {}) {
      return new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? keyId })
        .setIssuer(options.iss ?? hostId)
        .setSubject(options.iss ?? hostId)
        .setAudience(tokenUrl)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(hostKey);
    }

    async function request(extra: Record<string, string>, assertion?: string) {
      return postForm(
        tokenUrl,
        {
          grant_type: MANAGED_IDENTITY_GRANT_TYPE,
          client_assertion_type: JWT_BEARER,
          client_assertion: assertion ?? (await hostAssertion()),
          scope: 'https://vault.azure.net/.default',
          ...extra,
        },
        t.caPem,
      );
    }

    it('issues a system-assigned identity token with xms_mirid = the host', async () => {
      const response = await request({});
      assert.equal(response.status, 200, response.body);
      const claims = decodeJwt(response.json<{ access_token: string }>().access_token);
      assert.equal(claims['oid'], systemPrincipalId);
      assert.equal(claims['xms_mirid'], hostId);
      assert.equal(claims['xms_az_rid'], hostId);
      assert.equal(claims['appidacr'], '2');
      assert.equal(claims.aud, 'https://vault.azure.net');
    });

    it('issues a user-assigned identity token by client id, object id or resource id', async () => {
      const selectors: Record<string, string>[] = [{ mi_client_id: uami.clientId }, { mi_object_id: uami.principalId }, { mi_res_id: uami.id.toUpperCase() }];
      for (const selector of selectors) {
        const response = await request(selector);
        assert.equal(response.status, 200, response.body);
        const claims = decodeJwt(response.json<{ access_token: string }>().access_token);
        assert.equal(claims['oid'], uami.principalId);
        assert.equal(claims['appid'], uami.clientId);
        assert.equal(claims['xms_mirid'], uami.id);
      }
    });

    it('refuses identities not assigned to the host, several selectors, and strangers', async () => {
      const notAssigned = await request({ mi_client_id: otherUami.clientId });
      assert.equal(notAssigned.status, 400);
      assert.match(notAssigned.json<{ error_description: string }>().error_description, /Identity not found/);
      assert.equal((await request({ mi_client_id: uami.clientId, mi_object_id: uami.principalId })).status, 400);
      assert.equal((await request({}, await hostAssertion({ kid: randomUUID() }))).status, 401);
      assert.equal((await request({}, await hostAssertion({ iss: otherUami.id }))).status, 401);
      const replayed = await hostAssertion();
      assert.equal((await request({}, replayed)).status, 200);
      assert.equal((await request({}, replayed)).status, 401);
    });

    it('names the algorithms hosts may use when refusing another', async () => {
      const hs = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256', kid: keyId })
        .setIssuer(hostId)
        .setSubject(hostId)
        .setAudience(tokenUrl)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256'));
      const refused = await request({}, hs);
      assert.equal(refused.status, 401);
      const body = refused.json<{ error: string; error_description: string; error_codes: number[] }>();
      assert.equal(body.error, 'invalid_client');
      assert.deepEqual(body.error_codes, [5002738]);
      assert.match(body.error_description, /'HS256' is not a supported client assertion signature algorithm; use ES256, RS256 or PS256\./);
      // Applications keep Entra's message, from their own list.
      assert.match(TokenErrors.unsupportedAssertionAlg('HS256', CLIENT_ASSERTION_ALGORITHMS).message, /; use RS256 or PS256\.$/);
    });

    it("selects the host's own system-assigned identity by client or object id, and never another host's", async () => {
      const own = (await t.ctx.store.servicePrincipals.getByObjectId(systemPrincipalId))!;
      for (const selector of [{ mi_client_id: own.appId }, { mi_object_id: own.objectId }] as Record<string, string>[]) {
        const response = await request(selector);
        assert.equal(response.status, 200, response.body);
        assert.equal(decodeJwt(response.json<{ access_token: string }>().access_token)['oid'], systemPrincipalId);
      }
      const other = await putResource(t.ctx.store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: 'hosts',
        type: 'Microsoft.HybridCompute/machines',
        name: 'someone-elses-machine',
        identity: { type: 'SystemAssigned' },
        clock: t.ctx.clock,
      });
      const foreign = (await t.ctx.store.servicePrincipals.getByObjectId(other.resource.systemPrincipalId!))!;
      for (const selector of [{ mi_client_id: foreign.appId }, { mi_object_id: foreign.objectId }, { mi_res_id: other.resource.id }] as Record<
        string,
        string
      >[]) {
        const response = await request(selector);
        assert.equal(response.status, 400, `${JSON.stringify(selector)}: ${response.body}`);
        assert.match(response.json<{ error_description: string }>().error_description, /Identity not found/);
      }
    });

    it('refuses a host assertion without its assertion type or with an algorithm off the list, and audits issuance with the host', async () => {
      const noType = await postForm(
        tokenUrl,
        { grant_type: MANAGED_IDENTITY_GRANT_TYPE, client_assertion: await hostAssertion(), scope: 'https://vault.azure.net/.default' },
        t.caPem,
      );
      assert.equal(noType.status, 400, noType.body);
      assert.deepEqual(noType.json<{ error_codes: number[] }>().error_codes, [50027]);
      const hs = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256', kid: keyId })
        .setIssuer(hostId)
        .setSubject(hostId)
        .setAudience(tokenUrl)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new Uint8Array(32));
      const refused = await request({}, hs);
      assert.equal(refused.status, 401, refused.body);
      assert.deepEqual(refused.json<{ error_codes: number[] }>().error_codes, [5002738]);
      const ok = await request({});
      assert.equal(ok.status, 200, ok.body);
      await t.ctx.audit.flush();
      const uti = decodeJwt(ok.json<{ access_token: string }>().access_token)['uti'];
      const row = (await t.ctx.store.audit.list({ action: 'token.issued', limit: 1000 })).find((e) => e.detail['tokenId'] === uti);
      assert.equal(row?.detail['host'], hostId);
      assert.equal(row?.detail['identityType'], 'SystemAssigned');
    });

    it('refuses a revoked or expired host credential', async () => {
      const now = t.ctx.clock.now();
      const addCredential = async (expiresAt: number) => {
        const pair = await generateKeyPair('ES256');
        const kid = randomUUID();
        await t.ctx.store.hostCredentials.add({
          keyId: kid,
          hostResourceId: hostId,
          publicJwk: await exportJWK(pair.publicKey),
          createdAt: now - 2000,
          expiresAt,
          revokedAt: null,
        });
        return { kid, key: pair.privateKey };
      };
      const signed = (credential: { kid: string; key: webcrypto.CryptoKey }) =>
        new SignJWT({ jti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256', kid: credential.kid })
          .setIssuer(hostId)
          .setSubject(hostId)
          .setAudience(tokenUrl)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(credential.key);

      const revoked = await addCredential(now + 3600_000);
      assert.equal((await request({}, await signed(revoked))).status, 200, 'the credential works before it is revoked');
      assert.ok(await t.ctx.store.hostCredentials.revoke(revoked.kid, now));
      const afterRevoke = await request({}, await signed(revoked));
      assert.equal(afterRevoke.status, 401, afterRevoke.body);
      assert.match(afterRevoke.json<{ error_description: string }>().error_description, /unknown, revoked or expired/);

      const expired = await addCredential(now - 1000);
      const afterExpiry = await request({}, await signed(expired));
      assert.equal(afterExpiry.status, 401, afterExpiry.body);
      assert.match(afterExpiry.json<{ error_description: string }>().error_description, /unknown, revoked or expired/);
    });

    it("issues nothing at another tenant's endpoint, even to an authenticated host", async () => {
      const tenantB = { id: randomUUID(), displayName: 'other tenant', defaultDomain: `mi-${randomUUID().slice(0, 8)}.local`, createdAt: Date.now() };
      await t.ctx.store.tenants.create(tenantB);
      const urlB = `${t.url}/${tenantB.id}/oauth2/v2.0/token`;
      for (const selector of [{}, { mi_client_id: uami.clientId }] as Record<string, string>[]) {
        const assertionB = await new SignJWT({ jti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256', kid: keyId })
          .setIssuer(hostId)
          .setSubject(hostId)
          .setAudience(urlB)
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(hostKey);
        const response = await postForm(
          urlB,
          {
            grant_type: MANAGED_IDENTITY_GRANT_TYPE,
            client_assertion_type: JWT_BEARER,
            client_assertion: assertionB,
            scope: 'https://vault.azure.net/.default',
            ...selector,
          },
          t.caPem,
        );
        assert.equal(response.status, 400, response.body);
        assert.match(response.json<{ error_description: string }>().error_description, /Identity not found/);
      }
    });

    it('stops issuing at once when an identity is deleted, and when the host is deleted', async () => {
      const clock = t.ctx.clock;
      await deleteUserAssignedIdentity(t.ctx.store, { subscriptionId: t.subscriptionId, resourceGroup: 'hosts', name: 'app-id', clock });
      const gone = await request({ mi_client_id: uami.clientId });
      assert.equal(gone.status, 400);
      await deleteResource(t.ctx.store, {
        subscriptionId: t.subscriptionId,
        resourceGroup: 'hosts',
        type: 'Microsoft.HybridCompute/machines',
        name: 'build-agent-1',
        clock,
      });
      assert.equal(await t.ctx.store.servicePrincipals.getByObjectId(systemPrincipalId), undefined);
      const hostGone = await request({});
      assert.equal(hostGone.status, 401);
    });
  });
