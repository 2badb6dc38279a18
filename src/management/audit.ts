import type { FastifyInstance } from 'fastify';
import { ManagementErrors } from './errors.js';
import type { ManagementContext } from './context.js';
import { iso } from '../shared/clock.js';
import { authenticate, callerOf } from './authenticate.js';
import { route, singleQuery } from './common.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

function parseSince(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
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

/**
 * `GET /openmsi/audit?since=&action=&limit=`: the newest events first, of the caller's tenant and the
 * installation-wide (system) ones.
 */
export function auditRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  route(app, {
    method: 'GET',
    url: '/openmsi/audit',
    onRequest: [authenticate(ctx, 'arm')],
    handler: async (request) => {
      const caller = callerOf(request);
      const since = parseSince(singleQuery(request, 'since'));
      const action = singleQuery(request, 'action');
      const limit = parseLimit(singleQuery(request, 'limit'));
      if (action !== undefined && (action.length > 128 || !/^[A-Za-z0-9_.-]+$/.test(action))) {
        throw ManagementErrors.invalidAuditAction();
      }
      const events = await ctx.store.audit.list({
        ...(since === undefined ? {} : { since }),
        ...(action === undefined ? {} : { action }),
        tenantId: caller.tenantId,
        limit,
      });
      return {
        value: events.map((e) => ({ id: e.id, at: iso(e.at), tenantId: e.tenantId, actor: e.actor, action: e.action, target: e.target, outcome: e.outcome, detail: e.detail })),
      };
    },
  });
}
