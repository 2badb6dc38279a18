/**
 * ARM's generic resource lists, `GET /subscriptions/{s}/resources` and `…/resourceGroups/{g}/resources`
 * (`az resource list`; azure-mgmt-keyvault's `vaults.list()`, which `az keyvault list` and `az keyvault show -n`
 * without `-g` call, is this list with `$filter=resourceType eq 'Microsoft.KeyVault/vaults'`). Every resource
 * the subscription holds is listed, Key Vault vaults included, and the list's `$filter` and `$top` are honoured:
 * https://learn.microsoft.com/rest/api/resources/resources/list (clauses `resourceType eq`, `name eq`,
 * `resourceGroup eq`, joined with `and`; values compared case-insensitively, as ARM compares names and types).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Resource, Vault } from '../store/types.js';
import { listResources } from '../directory/resources.js';
import { listVaults, VAULT_TYPE } from '../directory/vaults.js';
import type { ManagementContext } from './context.js';
import { apiVersionHook } from './api-version.js';
import { authenticate } from './authenticate.js';
import { armListHandler, route, singleQuery, type ArmScope } from './common.js';
import { resourceGroupScope, subscriptionScope } from './authorize.js';
import { ManagementErrors } from './errors.js';
import { armResourceView } from './resources.js';

/** One listed item: a directory resource (machines, identities, …) or a vault, with what the filter reads. */
interface Listed {
  id: string;
  type: string;
  name: string;
  resourceGroup: string;
  item: { resource: Resource } | { vault: Vault };
}

type Field = 'type' | 'name' | 'resourceGroup';
const FILTER_FIELDS: Record<string, Field> = { resourcetype: 'type', name: 'name', resourcegroup: 'resourceGroup' };
const CLAUSE = /^\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*$/i;

/** The `$filter` as `field = value` conditions (all must hold); a clause outside the grammar is refused, never ignored. */
export function parseResourceListFilter(text: string | undefined): { field: Field; value: string }[] {
  // az resource list sends `$filter=` (empty) when no filter flag is given: ARM reads that as no filter.
  if (text === undefined || text.trim() === '') return [];
  const clauses = text.split(/\s+and\s+/i);
  return clauses.map((clause) => {
    const m = CLAUSE.exec(clause);
    const field = m === null ? undefined : FILTER_FIELDS[m[1]!.toLowerCase()];
    if (m === null || field === undefined) throw ManagementErrors.invalidResourceListFilter(text);
    return { field, value: m[2]!.replace(/''/g, "'").toLowerCase() };
  });
}

function parseTop(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1) throw ManagementErrors.invalidResourceListTop(text);
  return Number(text);
}

/** The generic lists of a subscription's and of a group's resources. */
export function resourceListRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), apiVersionHook];
  route(app, { method: 'GET', url: '/subscriptions/:subscriptionId/resources', onRequest, handler: resourceListHandler(ctx, 'subscription') });
  route(app, {
    method: 'GET',
    url: '/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/resources',
    onRequest,
    handler: resourceListHandler(ctx, 'group'),
  });
}

/** The handler of one of the two generic lists (`scope`: the subscription's, or one group's). */
function resourceListHandler(ctx: ManagementContext, scope: 'subscription' | 'group') {
  const list = async (s: ArmScope, request: FastifyRequest): Promise<Listed[]> => {
    // Parsed before any read, so a bad filter is a 400 whatever the subscription holds.
    const conditions = parseResourceListFilter(singleQuery(request, '$filter'));
    const top = parseTop(singleQuery(request, '$top'));
    const where = { subscriptionId: s.subscription.id, ...(scope === 'group' ? { resourceGroup: s.resourceGroup } : {}) };
    const [resources, vaults] = await Promise.all([listResources(ctx.store, where), listVaults(ctx.store, where)]);
    const items: Listed[] = [
      ...resources.map((r) => ({ id: r.id, type: r.type, name: r.name, resourceGroup: r.resourceGroup, item: { resource: r } })),
      ...vaults.map((v) => ({ id: v.resourceId, type: VAULT_TYPE, name: v.name, resourceGroup: v.resourceGroup, item: { vault: v } })),
    ];
    const matching = items.filter((listed) => conditions.every((c) => listed[c.field].toLowerCase() === c.value));
    return top === undefined ? matching : matching.slice(0, top);
  };
  const view = (listed: Listed, s: ArmScope): unknown => {
    if ('resource' in listed.item) return armResourceView(ctx.store, listed.item.resource, s.subscription.tenantId);
    // A generic list shows a vault's envelope, as ARM's does (its properties come from `az keyvault show`).
    const vault = listed.item.vault;
    return { id: vault.resourceId, name: vault.name, type: listed.type, location: vault.location, tags: vault.tags };
  };
  return armListHandler(ctx, list, view, {
    read: (listed) => ({ action: `${listed.type}/read`, scope: listed.id }),
    listScope: (request) => ({
      action: 'Microsoft.Resources/subscriptions/resources/read',
      scope: scope === 'group' ? resourceGroupScope(request) : subscriptionScope(request),
    }),
  });
}
