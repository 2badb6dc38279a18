import { request } from 'node:https';
import { readResponse, type HttpsResponse } from './https.js';
import type { Vault, VaultProperties } from '../../src/store/types.js';

/**
 * An HTTPS request to a vault host (`https://{name}.{vaultDomain}:{port}/...`) on loopback without DNS: it
 * connects to 127.0.0.1 and sends the vault's name as SNI and Host, as a resolver mapping the name would.
 * Trusts `ca` only.
 */
export function vaultRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; ca: string },
): Promise<HttpsResponse> {
  const target = new URL(url);
  if (!target.hostname.endsWith('.localhost')) throw new Error('tests talk to loopback vault hosts only');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: target.port === '' ? 443 : Number(target.port),
        path: `${target.pathname}${target.search}`,
        servername: target.hostname,
        method: options.method ?? 'GET',
        headers: { host: target.host, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers },
        ca: options.ca,
        timeout: 10_000,
      },
      (res) => readResponse(res).then(resolve, reject),
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** A vault as the store holds it, for unit tests that need no store: RBAC, 90-day soft delete, active. */
export function vaultRecord(name: string, tenantId: string, overrides: Partial<Vault> = {}, properties: Partial<VaultProperties> = {}): Vault {
  return {
    id: `id-${name}`,
    resourceId: `/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${name}`,
    name,
    tenantId,
    subscriptionId: 's',
    resourceGroup: 'rg',
    location: 'local',
    tags: {},
    properties: {
      tenantId,
      sku: { family: 'A', name: 'standard' },
      enableRbacAuthorization: true,
      accessPolicies: [],
      enableSoftDelete: true,
      softDeleteRetentionInDays: 90,
      enablePurgeProtection: null,
      publicNetworkAccess: 'Enabled',
      ...properties,
    },
    deletedAt: null,
    scheduledPurgeAt: null,
    createdAt: 0,
    updatedAt: 0,
    ...overrides,
  };
}
