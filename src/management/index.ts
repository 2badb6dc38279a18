/**
 * The management API: ARM-shaped (`/subscriptions/...`), Graph-shaped (`/v1.0/servicePrincipals...`) and
 * openmsi's own (`/openmsi/keys`, `/openmsi/audit`, `/openmsi/hostCredentials`), authenticated by bearer tokens from this authority and
 * authorised by RBAC (authorize.ts): each route checks its ARM action at its scope. Every error is rendered as `{ error: { code, message } }`.
 *
 * Register it as an encapsulated plugin (it sets its own error handler):
 * `await app.register(managementRoutes, { ctx })`. The server should route case-insensitively
 * (`routerOptions.caseSensitive: false`) and allow long path parameters, as ARM ids and names need.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiErrorHandler, type ApiError } from '../shared/api-error.js';
import type { ManagementContext } from './context.js';
import { auditRoutes } from './audit.js';
import { deniedPrincipalOf } from './authenticate.js';
import { MANAGEMENT_BODY_LIMIT } from './common.js';
import { translateDirectoryError } from './errors.js';
import { hostRoutes } from './hosts.js';
import { keyRoutes } from './keys.js';
import { backupRoutes } from './backup.js';
import { permissionRoutes } from './permissions.js';
import { principalRoutes } from './principals.js';
import { rbacStateRoutes } from './rbac-state.js';
import { resourceGroupRoutes } from './resource-groups.js';
import { resourceRoutes } from './resources.js';
import { resourceListRoutes } from './resource-list.js';
import { subscriptionRoutes } from './subscriptions.js';
import { userAssignedIdentityRoutes } from './user-assigned-identities.js';
import { vaultRoutes } from './vaults.js';
import { resourceScopeWildcard } from './authorization-common.js';
import { denyAssignmentHandlers, denyAssignmentRoutes } from './deny-assignments.js';
import { groupRoutes } from './groups.js';
import { userRoutes } from './users.js';
import { federatedCredentialRoutes } from './federated-credentials.js';
import { federationLinkRoutes } from './federation-links.js';
import { roleAssignmentHandlers, roleAssignmentRoutes } from './role-assignments.js';
import { roleDefinitionHandlers, roleDefinitionRoutes } from './role-definitions.js';

export interface ManagementOptions {
  ctx: ManagementContext;
}

const MUTATING = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);

async function auditDenied(ctx: ManagementContext, request: FastifyRequest, err: ApiError): Promise<void> {
  const principal = deniedPrincipalOf(request);
  if (err.status !== 403 || principal === undefined || !MUTATING.has(request.method)) return;
  await ctx.audit
    .record({
      tenantId: principal.tenantId,
      actor: principal.objectId,
      action: 'management.denied',
      target: request.url.split('?')[0] ?? '/',
      outcome: 'failure',
      detail: { method: request.method, code: err.code },
    })
    .catch(() => undefined);
}

/** The management API as a fastify plugin: `app.register(managementRoutes, { ctx })`. */
export async function managementRoutes(app: FastifyInstance, opts: ManagementOptions): Promise<void> {
  const { ctx } = opts;

  app.setErrorHandler(
    apiErrorHandler({
      bodyLimit: MANAGEMENT_BODY_LIMIT,
      translate: translateDirectoryError,
      logMessage: 'management request failed',
      onError: (request, error) => auditDenied(ctx, request, error),
    }),
  );

  // JSON only: a text/plain body is a 415, not a string a handler has to reject.
  app.removeContentTypeParser('text/plain');

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-ms-request-id', request.id);
    reply.header('cache-control', 'no-cache');
  });

  subscriptionRoutes(app, ctx);
  resourceGroupRoutes(app, ctx);
  userAssignedIdentityRoutes(app, ctx);
  federatedCredentialRoutes(app, ctx);
  federationLinkRoutes(app, ctx);
  vaultRoutes(app, ctx);
  resourceRoutes(app, ctx);
  resourceListRoutes(app, ctx);
  hostRoutes(app, ctx);
  principalRoutes(app, ctx);
  keyRoutes(app, ctx);
  backupRoutes(app, ctx);
  auditRoutes(app, ctx);
  permissionRoutes(app, ctx);
  rbacStateRoutes(app, ctx);
  roleAssignmentRoutes(app, ctx);
  roleDefinitionRoutes(app, ctx);
  denyAssignmentRoutes(app, ctx);
  // Microsoft.Authorization below resource ids: one wildcard; the action is authorizationArmAction(method, path).
  resourceScopeWildcard(app, ctx, {
    roleAssignments: roleAssignmentHandlers(ctx),
    roleDefinitions: roleDefinitionHandlers(ctx),
    denyAssignments: denyAssignmentHandlers(ctx),
  });
  groupRoutes(app, ctx);
  userRoutes(app, ctx);
  return Promise.resolve();
}

/** Alias of {@link managementRoutes}. */
export const managementPlugin = managementRoutes;
