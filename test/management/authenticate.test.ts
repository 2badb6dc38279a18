/**
 * The audience rule of the management API (src/management/authenticate.ts acceptedAudiences), without a
 * server: ARM paths take ARM's resource URIs only; Graph paths take Microsoft Graph's and each origin the
 * server is published at, both spellings, never a vault's resource. test/management/management.test.ts
 * proves the same with real tokens.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { acceptedAudiences, ARM_AUDIENCES } from '../../src/management/authenticate.js';
import type { TokenAuthorityLocation } from '../../src/management/context.js';

function authority(...origins: string[]): TokenAuthorityLocation & { origins: { origin: string }[] } {
  const list = origins.map((origin) => ({ origin }));
  return { origin: origins[0] ?? '', v1Issuer: (t) => `${origins[0] ?? ''}/${t}/`, advertisedOrigins: () => list, origins: list };
}

describe('management audiences', () => {
  it("Graph: Microsoft Graph's resource and every advertised origin, with and without the trailing slash", () => {
    const ctx = { authority: authority('https://localhost:8443', 'https://127.0.0.1:8443'), vaultDomain: 'vault.localhost' };
    assert.deepEqual([...acceptedAudiences(ctx, 'graph')].sort(), [
      'https://127.0.0.1:8443',
      'https://127.0.0.1:8443/',
      'https://graph.microsoft.com',
      'https://graph.microsoft.com/',
      'https://localhost:8443',
      'https://localhost:8443/',
    ]);
  });

  it("ARM: ARM's two resource URIs only, never the server's origin", () => {
    const ctx = { authority: authority('https://localhost:8443'), vaultDomain: 'vault.localhost' };
    const arm = acceptedAudiences(ctx, 'arm');
    for (const a of ARM_AUDIENCES) assert.ok(arm.includes(a) && arm.includes(a.replace(/\/$/, '')), a);
    assert.equal(arm.length, 4);
    assert.ok(!arm.some((a) => a.startsWith('https://localhost')));
    assert.ok(!arm.some((a) => a.startsWith('https://graph.microsoft.com')));
  });

  it("never a vault's resource, even when the certificate names the vault domain (or a host under it)", () => {
    const ctx = {
      authority: authority('https://localhost:8443', 'https://vault.localhost:8443', 'https://dev.Vault.localhost:8443'),
      vaultDomain: 'Vault.Localhost',
    };
    const graph = acceptedAudiences(ctx, 'graph');
    assert.ok(graph.includes('https://localhost:8443/'));
    // Compared without case: the origin keeps the case it was configured with (`dev.Vault…`).
    assert.ok(!graph.some((a) => a.toLowerCase().includes('vault.localhost')), graph.join(' '));
    // A host that merely ends with the domain's letters is not under it.
    const lookalike = { authority: authority('https://myvault.localhost:8443'), vaultDomain: 'vault.localhost' };
    assert.ok(acceptedAudiences(lookalike, 'graph').includes('https://myvault.localhost:8443/'));
  });

  it('follows the advertised origins when they change (the port is bound after start), and reuses them until then', () => {
    const a = authority('https://localhost:8443');
    let current = a.origins;
    const ctx = { authority: { ...a, advertisedOrigins: () => current }, vaultDomain: 'vault.localhost' };
    const first = acceptedAudiences(ctx, 'graph');
    assert.equal(acceptedAudiences(ctx, 'graph'), first);
    current = [{ origin: 'https://localhost:40123' }];
    const second = acceptedAudiences(ctx, 'graph');
    assert.ok(second.includes('https://localhost:40123/'));
    assert.ok(!second.includes('https://localhost:8443/'));
  });
});
