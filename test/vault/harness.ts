/** A vault data plane over an in-process test authority: its context, app, vaults, principals and tokens. */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildVaultApp } from '../../src/vault/app.js';
import type { VaultContext } from '../../src/vault/contracts.js';
import type { AccessPolicyEntry, Vault } from '../../src/store/types.js';
import { captureLogs, registerTestApplication, startTestAuthority, type Backend, type TestApplication, type TestAuthority } from '../helpers/authority.js';
import { MemoryVaultStores } from './memory-store.js';

export const DOMAIN = 'vault.localhost';
export const V = 'api-version=7.4';

export interface VaultHarness {
  t: TestAuthority;
  ctx: VaultContext;
  app: FastifyInstance;
  mem: MemoryVaultStores;
  logLines: string[];
  createVault(name: string, options?: { rbac?: boolean; policies?: AccessPolicyEntry[]; purgeProtection?: boolean; retentionDays?: number }): Promise<Vault>;
  app_(name: string): Promise<TestApplication>;
  token(app: TestApplication, audience?: string): Promise<string>;
  call(vault: string, method: string, path: string, token?: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startVaultHarness(options: { backend?: Backend } = {}): Promise<VaultHarness> {
  const t = await startTestAuthority(options.backend === undefined ? {} : { backend: options.backend });
  const mem = new MemoryVaultStores();
  const { logger, lines } = captureLogs();
  const a = t.ctx;
  const ctx: VaultContext = {
    store: mem.wrap(a.store),
    masterKey: a.masterKey,
    clock: a.clock,
    logger,
    audit: a.audit,
    authorizer: a.authorizer,
    verifyAccessToken: (token, audiences) => a.verifyAccessToken(token, audiences),
    authorityOrigin: () => a.urls.origin,
    vaultDomain: DOMAIN,
  };
  const app = await buildVaultApp(ctx);
  return {
    t,
    ctx,
    app,
    mem,
    logLines: lines,
    async createVault(name, o = {}) {
      const now = Date.now();
      const vault: Vault = {
        id: randomUUID(),
        resourceId: `/subscriptions/${t.subscriptionId}/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/${name}`,
        name,
        tenantId: t.tenantId,
        subscriptionId: t.subscriptionId,
        resourceGroup: 'rg1',
        location: 'westeurope',
        tags: {},
        properties: {
          tenantId: t.tenantId,
          sku: { family: 'A', name: 'standard' },
          enableRbacAuthorization: o.rbac ?? true,
          accessPolicies: o.policies ?? [],
          enableSoftDelete: true,
          softDeleteRetentionInDays: o.retentionDays ?? 90,
          enablePurgeProtection: o.purgeProtection ?? null,
          publicNetworkAccess: 'Enabled',
        },
        deletedAt: null,
        scheduledPurgeAt: null,
        createdAt: now,
        updatedAt: now,
      };
      await ctx.store.vaults.put(vault);
      return vault;
    },
    app_: (name) => registerTestApplication(t, name, { certificate: false }),
    async token(client, audience = `https://${DOMAIN}`) {
      const response = await t.app.inject({
        method: 'POST',
        url: `/${t.tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.appId, client_secret: client.secret, scope: `${audience}/.default` }).toString(),
      });
      if (response.statusCode !== 200) throw new Error(`token: ${String(response.statusCode)} ${response.body}`);
      return response.json<{ access_token: string }>().access_token;
    },
    call(vault, method, path, token, body) {
      return app.inject({
        method: method as 'GET',
        url: path,
        headers: {
          host: `${vault}.${DOMAIN}:8443`,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { payload: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
    },
    async close() {
      await app.close();
      await t.close();
    },
  };
}
