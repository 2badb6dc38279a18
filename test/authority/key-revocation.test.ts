import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeProtectedHeader } from 'jose';
import { startTestAuthority, type TestAuthority } from '../support/authority.js';
import { httpsRequest } from '../support/https.js';
import { createTokenVerifier, remoteJwks, TokenVerificationError } from '../../src/shared/token-verifier.js';

/** Emergency rotation through the running authority: the revoked key's tokens stop verifying at once. */
describe('keys rotate --revoke-previous, end to end', () => {
  let t: TestAuthority;
  before(async () => {
    t = await startTestAuthority();
  });
  after(async () => {
    await t.close();
  });

  it('removes the old key from the JWKS, and its tokens stop working while new ones verify', async () => {
    const oldToken = await t.adminToken('https://management.azure.com/');
    const oldKid = decodeProtectedHeader(oldToken).kid!;
    const jwksUrl = `${t.url}/${t.tenantId}/discovery/v2.0/keys`;
    const verifierOptions = { issuers: [`${t.url}/${t.tenantId}/`], audiences: ['https://management.azure.com/'] };
    const before = createTokenVerifier({ ...verifierOptions, jwks: remoteJwks(jwksUrl, { ca: t.caPem }) });
    assert.equal((await before.verify(oldToken)).header.kid, oldKid);

    const rotated = await httpsRequest(`${t.url}/openmsi/keys/rotate`, {
      method: 'POST',
      ca: t.caPem,
      headers: { authorization: `Bearer ${oldToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ revokePrevious: true }),
    });
    assert.equal(rotated.status, 200, rotated.body);
    const result = rotated.json<{ current: string; previous: string; revoked: boolean }>();
    assert.equal(result.previous, oldKid);
    assert.equal(result.revoked, true);
    assert.notEqual(result.current, oldKid);

    const { keys } = (await httpsRequest(jwksUrl, { ca: t.caPem })).json<{ keys: { kid: string }[] }>();
    assert.equal(
      keys.some((k) => k.kid === oldKid),
      false,
    );

    // A verifier that fetches the key set now refuses the old token; the authority's own API does too.
    const after = createTokenVerifier({ ...verifierOptions, jwks: remoteJwks(jwksUrl, { ca: t.caPem }) });
    await assert.rejects(after.verify(oldToken), (err: unknown) => err instanceof TokenVerificationError && err.code === 'unknown_key');
    const refused = await httpsRequest(`${t.url}/subscriptions?api-version=2022-12-01`, { ca: t.caPem, headers: { authorization: `Bearer ${oldToken}` } });
    assert.equal(refused.status, 401);

    const newToken = await t.adminToken('https://management.azure.com/');
    assert.notEqual(decodeProtectedHeader(newToken).kid, oldKid);
    await after.verify(newToken);
    const allowed = await httpsRequest(`${t.url}/subscriptions?api-version=2022-12-01`, { ca: t.caPem, headers: { authorization: `Bearer ${newToken}` } });
    assert.equal(allowed.status, 200, allowed.body);

    await t.ctx.audit.flush();
    const events = await t.ctx.store.audit.list({ limit: 100 });
    assert.ok(events.some((e) => e.action.startsWith('keys.') && JSON.stringify(e).includes(oldKid)));
  });
});
