/**
 * The RBAC state of a tenant over HTTPS, for services outside the authority process (the remote source of the
 * `openmsi/rbac` library):
 * - `GET /openmsi/rbac/state?tenant={t}` → the {@link RbacState} (role definitions, assignments, deny
 *   assignments, group memberships, version);
 * - `GET /openmsi/rbac/version?tenant={t}[&after={v}&wait={seconds}]` → `{ tenantId, version }`; with `after`
 *   and `wait` (at most 30 s) it answers as soon as the version differs from `after` (a long poll), so a
 *   remote cache hears of a change at once, and at worst after its poll interval.
 * Both need `Microsoft.Authorization/roleAssignments/read` at `/` (Reader and above at the tenant root). The
 * tenant defaults to the caller's; another tenant's is refused (401 as ARM refuses another tenant's subscription).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../shared/api-error.js';
import { authenticate, callerOf } from './authenticate.js';
import { atRoot, authorize, OPENMSI_ACTIONS } from './authorize.js';
import { route, singleQuery } from './common.js';
import type { ManagementContext } from './context.js';

const MAX_WAIT_SECONDS = 30;

function tenantOf(request: FastifyRequest): string {
  const caller = callerOf(request);
  const tenant = singleQuery(request, 'tenant');
  if (tenant !== undefined && tenant !== '' && tenant.toLowerCase() !== caller.tenantId.toLowerCase()) {
    throw new ApiError(
      403,
      'AuthorizationFailed',
      `The access token's tenant '${caller.tenantId}' may read only its own RBAC state, not tenant '${tenant.slice(0, 64)}'.`,
    );
  }
  return caller.tenantId;
}

export function rbacStateRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const onRequest = [authenticate(ctx, 'arm'), authorize(ctx, atRoot(OPENMSI_ACTIONS.rbacStateRead))];

  route(app, {
    method: 'GET',
    url: '/openmsi/rbac/state',
    onRequest,
    handler: async (request) => ctx.rbacSource.load(tenantOf(request)),
  });

  route(app, {
    method: 'GET',
    url: '/openmsi/rbac/version',
    onRequest,
    handler: async (request) => {
      const tenantId = tenantOf(request);
      const afterText = singleQuery(request, 'after');
      const waitText = singleQuery(request, 'wait');
      const after = afterText === undefined ? undefined : Number(afterText);
      const wait = waitText === undefined ? 0 : Math.min(MAX_WAIT_SECONDS, Math.max(0, Number(waitText) || 0));
      let version = await ctx.rbacSource.version(tenantId);
      if (after === undefined || !Number.isFinite(after) || version !== after || wait === 0) return { tenantId, version };
      // Long poll: answer at the first change notice for the tenant (or when `wait` runs out).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, wait * 1000);
        const unsubscribe = ctx.rbacSource.onChange((changed) => {
          if (changed.toLowerCase() === tenantId.toLowerCase()) done();
        });
        request.raw.once('close', done);
        function done(): void {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
      version = await ctx.rbacSource.version(tenantId);
      return { tenantId, version };
    },
  });
}
