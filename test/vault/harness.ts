/** A vault data plane over an in-process test authority: its context, app, vaults, principals and tokens. */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildVaultApp } from '../../src/vault/app.js';
import type { VaultContext } from '../../src/vault/contracts.js';
import type { AccessPolicyEntry, Vault } from '../../src/store/types.js';
import { captureLogs, registerTestApplication, startTestAuthority, type Backend, type TestApplication, type TestAuthority } from '../support/authority.js';

export const DOMAIN = 'vault.localhost';
export const V = 'api-version=7.4';

export interface VaultHarness {
  t: TestAuthority;
  ctx: VaultContext;
  app: FastifyInstance;
  /** Calls the data plane made to the store's `vaults.getByName` (the hot path must make none). */
  vaultLookups(): number;
  /** Calls the data plane made to the store's `secrets.get`. */
  secretReads(): number;
  /** Calls the data plane made to the store's `keys.get`. */
  keyReads(): number;
  /** Secret versions held by the harness's vaults (soft-deleted secrets count one each): to show nothing was written. */
  versionCount(): Promise<number>;
  logLines: string[];
  /** The internal id of a vault made with {@link createVault}. */
  vaultId(name: string): string;
  createVault(
    name: string,
    options?: { rbac?: boolean; policies?: AccessPolicyEntry[]; purgeProtection?: boolean; retentionDays?: number; in?: TenantPlace },
  ): Promise<Vault>;
  /** Another subscription: of a new tenant, or (`tenantId`) of an existing one. */
  createPlace(options?: { tenantId?: string }): Promise<TenantPlace>;
  /** An application of the harness's tenant, or of `tenantId`. */
  app_(name: string, tenantId?: string): Promise<TestApplication>;
  /** A role assignment written to the store (with the tenant's RBAC version bumped), in `tenantId`. */
  assignRole(tenantId: string, scope: string, roleGuid: string, principalId: string): Promise<void>;
  /** A client-credentials token from the token endpoint of the harness's tenant, or of `tenantId`. */
  token(app: TestApplication, audience?: string, tenantId?: string): Promise<string>;
  call(vault: string, method: string, path: string, token?: string, body?: unknown): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Where a vault lives: a tenant and one of its subscriptions. */
export interface TenantPlace {
  tenantId: string;
  subscriptionId: string;
}

export async function startVaultHarness(options: { backend?: Backend } = {}): Promise<VaultHarness> {
  const t = await startTestAuthority(options.backend === undefined ? {} : { backend: options.backend });
  const { logger, lines } = captureLogs();
  const a = t.ctx;
  // The real store, with the vault lookups the data plane makes counted.
  let lookups = 0;
  let secretReads = 0;
  let keyReads = 0;
  const vaults = { ...a.store.vaults, getByName: (name: string) => ((lookups += 1), a.store.vaults.getByName(name)) };
  const secrets = { ...a.store.secrets, get: (...args: Parameters<typeof a.store.secrets.get>) => ((secretReads += 1), a.store.secrets.get(...args)) };
  const keys = { ...a.store.keys, get: (...args: Parameters<typeof a.store.keys.get>) => ((keyReads += 1), a.store.keys.get(...args)) };
  const counted: Record<string, unknown> = { vaults, secrets, keys };
  const store = new Proxy(a.store, {
    get: (target, key, receiver) => (typeof key === 'string' && key in counted ? counted[key] : (Reflect.get(target, key, receiver) as unknown)),
  });
  const vaultIds: string[] = [];
  const idsByName = new Map<string, string>();
  const ctx: VaultContext = {
    store,
    masterKey: a.masterKey,
    clock: a.clock,
    logger,
    audit: a.audit,
    authorizer: a.authorizer,
    verifyAccessToken: (token, audiences) => a.verifyAccessToken(token, audiences),
    signingKeyPublished: (kid) => a.keyRing.isPublished(kid),
    authorityOrigin: () => a.urls.origin,
    vaultDomain: DOMAIN,
  };
  const app = await buildVaultApp(ctx);
  return {
    t,
    ctx,
    app,
    vaultId: (name) => idsByName.get(name) ?? '',
    vaultLookups: () => lookups,
    secretReads: () => secretReads,
    keyReads: () => keyReads,
    async versionCount() {
      let total = 0;
      for (const vaultId of vaultIds) {
        for (const deleted of [false, true]) {
          let afterName: string | undefined;
          for (;;) {
            const page = await a.store.secrets.list(vaultId, { deleted, limit: 25, ...(afterName === undefined ? {} : { afterName }) });
            for (const entry of page) total += deleted ? 1 : (await a.store.secrets.allVersions(vaultId, entry.name)).length;
            if (page.length < 25) break;
            afterName = page.at(-1)!.name.toLowerCase();
          }
        }
      }
      return total;
    },
    logLines: lines,
    async createPlace(o = {}) {
      const tenantId = o.tenantId ?? randomUUID();
      if (o.tenantId === undefined) {
        await a.store.tenants.create({ id: tenantId, displayName: 'another tenant', defaultDomain: `t-${tenantId.slice(0, 8)}.local`, createdAt: Date.now() });
      }
      const subscriptionId = randomUUID();
      await a.store.subscriptions.create({ id: subscriptionId, tenantId, displayName: 'another subscription', state: 'Enabled', createdAt: Date.now() });
      return { tenantId, subscriptionId };
    },
    async assignRole(tenantId, scope, roleGuid, principalId) {
      const now = Date.now();
      await a.store.transaction(async (tx) => {
        const id = randomUUID();
        const created = await tx.roleAssignments.create({
          id,
          tenantId,
          scope,
          roleDefinitionId: roleGuid,
          principalId,
          principalType: 'ServicePrincipal',
          description: null,
          createdAt: now,
          createdBy: 'test',
          updatedAt: now,
          updatedBy: 'test',
        });
        if (!created) throw new Error('role assignment not created');
        await tx.rbacVersions.bump(tenantId);
      });
    },
    async createVault(name, o = {}) {
      const now = Date.now();
      const place = o.in ?? { tenantId: t.tenantId, subscriptionId: t.subscriptionId };
      const vault: Vault = {
        id: randomUUID(),
        resourceId: `/subscriptions/${place.subscriptionId}/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/${name}`,
        name,
        tenantId: place.tenantId,
        subscriptionId: place.subscriptionId,
        resourceGroup: 'rg1',
        location: 'westeurope',
        tags: {},
        properties: {
          tenantId: place.tenantId,
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
      await a.store.vaults.put(vault);
      vaultIds.push(vault.id);
      idsByName.set(name, vault.id);
      return vault;
    },
    app_: (name, tenantId = t.tenantId) => registerTestApplication({ ctx: t.ctx, dataDir: t.dataDir, tenantId }, name, { certificate: false }),
    async token(client, audience = `https://${DOMAIN}`, tenantId = t.tenantId) {
      const response = await t.app.inject({
        method: 'POST',
        url: `/${tenantId}/oauth2/v2.0/token`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: client.appId,
          client_secret: client.secret,
          scope: `${audience}/.default`,
        }).toString(),
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
