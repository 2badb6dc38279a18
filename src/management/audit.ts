import type { FastifyInstance } from 'fastify';
import { ManagementErrors } from './errors.js';
import type { ManagementContext } from './context.js';
import { iso } from '../shared/clock.js';
import { isGuid, parseArmResourceId } from '../shared/ids.js';
import type { Repositories } from '../store/types.js';
import { HOST_RESOURCE_TYPE } from '../directory/hosts.js';
import { authenticate, callerOf } from './authenticate.js';
import { route, singleQuery } from './common.js';
import { atRoot, authorize, OPENMSI_ACTIONS } from './authorize.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
const MAX_FILTER_LENGTH = 512;
const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `since`: epoch milliseconds, an ISO-8601 time, or a duration back from `now` (`90s`, `15m`, `1h`, `2d`). */
export function parseSince(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  const duration = /^(\d{1,9})([smhd])$/.exec(value);
  if (duration?.[1] !== undefined && duration[2] !== undefined) return now - Number(duration[1]) * (DURATION_UNITS[duration[2]] ?? 0);
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw ManagementErrors.invalidAuditSince();
  return ms;
}

function parseLimit(value: string | undefined): number {
  if (value === undefined || value === '') return DEFAULT_LIMIT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw ManagementErrors.invalidAuditLimit(MAX_LIMIT);
  return n;
}

function filterValue(value: string | undefined, name: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value.length > MAX_FILTER_LENGTH) throw ManagementErrors.invalidAuditFilter(name);
  return value;
}

/**
 * What `identity=` names, as the values an event's actor or target would hold: the principal's object id,
 * found by object id, client id, a user-assigned identity's ARM id, or a managed identity's name (in the
 * caller's tenant). The value itself is kept too, so events of an identity deleted since still match its id.
 */
async function identityValues(repos: Repositories, tenantId: string, value: string): Promise<string[]> {
  const out = new Set<string>([value]);
  if (isGuid(value)) {
    const principal = (await repos.servicePrincipals.getByObjectId(value)) ?? (await repos.servicePrincipals.getByAppId(value));
    if (principal?.tenantId === tenantId) out.add(principal.objectId);
  } else if (value.startsWith('/')) {
    const principal =
      (await repos.servicePrincipals.getByManagedIdentityResource(value, 'UserAssigned')) ??
      (await repos.servicePrincipals.getByManagedIdentityResource(value, 'SystemAssigned'));
    if (principal?.tenantId === tenantId) out.add(principal.objectId);
  } else {
    for (const principal of await repos.servicePrincipals.list({ tenantId, kind: 'ManagedIdentity', displayName: value })) out.add(principal.objectId);
  }
  return [...out];
}

/** What `host=` names: an ARM id as given, or the ids of the machines (and VMs) of that name in the caller's subscriptions. */
async function hostValues(repos: Repositories, tenantId: string, value: string): Promise<string[]> {
  if (parseArmResourceId(value) !== undefined) return [value];
  const out = [value];
  for (const subscription of await repos.subscriptions.listByTenant(tenantId)) {
    for (const type of [HOST_RESOURCE_TYPE, 'Microsoft.Compute/virtualMachines']) {
      for (const resource of await repos.resources.list({ subscriptionId: subscription.id, type })) {
        if (resource.name.toLowerCase() === value.toLowerCase()) out.push(resource.id);
      }
    }
  }
  return out;
}

/**
 * `GET /openmsi/audit?since=&action=&identity=&host=&limit=`: the newest events first, of the caller's tenant
 * and the installation-wide (system) ones. `identity` and `host` each keep the events whose actor or target
 * is that identity (object id, client id, ARM id or name) or that host (ARM id or name).
 */
export function auditRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  route(app, {
    method: 'GET',
    url: '/openmsi/audit',
    onRequest: [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.auditRead))],
    handler: async (request) => {
      const caller = callerOf(request);
      const since = parseSince(singleQuery(request, 'since'), ctx.clock.now());
      const action = singleQuery(request, 'action');
      const limit = parseLimit(singleQuery(request, 'limit'));
      if (action !== undefined && (action.length > 128 || !/^[A-Za-z0-9_.-]+$/.test(action))) {
        throw ManagementErrors.invalidAuditAction();
      }
      const identity = filterValue(singleQuery(request, 'identity'), 'identity');
      const host = filterValue(singleQuery(request, 'host'), 'host');
      const involving: string[][] = [];
      if (identity !== undefined) involving.push(await identityValues(ctx.store, caller.tenantId, identity));
      if (host !== undefined) involving.push(await hostValues(ctx.store, caller.tenantId, host));
      const events = await ctx.store.audit.list({
        ...(since === undefined ? {} : { since }),
        ...(action === undefined ? {} : { action }),
        ...(involving.length === 0 ? {} : { involving }),
        tenantId: caller.tenantId,
        limit,
      });
      return {
        value: events.map((e) => ({
          id: e.id,
          at: iso(e.at),
          tenantId: e.tenantId,
          actor: e.actor,
          action: e.action,
          target: e.target,
          outcome: e.outcome,
          detail: e.detail,
        })),
      };
    },
  });
}
