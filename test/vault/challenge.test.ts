/**
 * The vault's 401 challenge and the audiences a token may carry (src/vault/challenge.ts), store-less: the
 * request is its Host header, the context its vault domain and authority origin.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { acceptedAudiences, challengeHeaders, challengeResource, requestPort } from '../../src/vault/challenge.js';
import type { VaultContext } from '../../src/vault/contracts.js';
import type { Vault } from '../../src/store/types.js';

const ctx = { vaultDomain: 'vault.localhost', authorityOrigin: () => 'https://login.localhost:8443' } as unknown as VaultContext;
const request = (host: string | undefined) => ({ headers: host === undefined ? {} : { host } }) as unknown as FastifyRequest;
const vault = { tenantId: '72f988bf-86f1-41af-91ab-2d7cd011db47' } as unknown as Vault;

void describe('vault challenge', () => {
  void it('requestPort: the digits after the last colon of Host, only when the Host ends with them', () => {
    const cases: [string | undefined, number | undefined][] = [
      ['myvault.vault.localhost:8443', 8443],
      ['myvault.vault.localhost:443', 443],
      ['myvault.vault.localhost:1', 1],
      ['[::1]:8443', 8443],
      ['myvault.vault.localhost', undefined],
      ['[::1]', undefined],
      ['myvault.vault.localhost:', undefined],
      ['myvault.vault.localhost:84x', undefined],
      ['myvault.vault.localhost:8443.evil', undefined],
      ['', undefined],
      [undefined, undefined],
    ];
    for (const [host, port] of cases) assert.equal(requestPort(request(host)), port, String(host));
  });

  void it('challengeResource: the vault domain, with the port unless there is none or it is 443', () => {
    assert.equal(challengeResource(ctx, request('a.vault.localhost:8443')), 'https://vault.localhost:8443');
    assert.equal(challengeResource(ctx, request('a.vault.localhost:443')), 'https://vault.localhost');
    assert.equal(challengeResource(ctx, request('a.vault.localhost')), 'https://vault.localhost');
    assert.equal(challengeResource(ctx, request(undefined)), 'https://vault.localhost');
  });

  void it("acceptedAudiences: the vault domain with the request's port and without it, and Key Vault's; nothing else", () => {
    assert.deepEqual(acceptedAudiences(ctx, request('a.vault.localhost:8443')), [
      'https://vault.localhost:8443',
      'https://vault.localhost',
      'https://vault.azure.net',
    ]);
    assert.deepEqual(acceptedAudiences(ctx, request('a.vault.localhost:443')), ['https://vault.localhost', 'https://vault.azure.net']);
    assert.deepEqual(acceptedAudiences(ctx, request('a.vault.localhost')), ['https://vault.localhost', 'https://vault.azure.net']);
  });

  void it('challengeHeaders: Bearer authorization="{authority}/{vault\'s tenant}", resource="{challenge resource}", no spaces in values', () => {
    assert.deepEqual(challengeHeaders(ctx, request('a.vault.localhost:8443'), vault), {
      'www-authenticate': 'Bearer authorization="https://login.localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.localhost:8443"',
    });
    assert.deepEqual(challengeHeaders(ctx, request('a.vault.localhost'), vault), {
      'www-authenticate': 'Bearer authorization="https://login.localhost:8443/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.localhost"',
    });
  });
});
