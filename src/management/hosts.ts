/**
 * Hosts (`Microsoft.HybridCompute/machines` an agent enrols as), for operators:
 * - `POST …/providers/Microsoft.HybridCompute/machines/{name}/createJoinToken` `{ ttlSeconds? }` → 200
 *   `{ token, expiresOn, hostResourceId, tenantId, machineCreated }`: a single-use join token (shown once;
 *   the audit event records its public id, never the token), creating the machine with a system-assigned
 *   identity when missing. The agent it enrols gets tokens for every identity on the machine, so it needs
 *   `Microsoft.HybridCompute/machines/write` on the machine and, for an existing machine, the right to
 *   attach each user-assigned identity already on it (`userAssignedIdentities/assign/action` on the
 *   identity, what attaching it needs): a join token never hands over an identity its creator could not
 *   have attached itself.
 * - `GET …/machines/{name}/hostCredentials` → `{ value: [HostCredentialView] }`.
 * - `POST /openmsi/hostCredentials/{keyId}/revoke` → 200 `HostCredentialView`: refused at once from then on.
 * The machine itself is an ordinary generic resource (GET/PUT/DELETE in resources.ts).
 */
import type { FastifyInstance } from 'fastify';
import { createJoinToken, findHostCredential, HOST_RESOURCE_TYPE, listHostCredentials, revokeHostCredential } from '../directory/hosts.js';
import { DirectoryErrors } from '../directory/errors.js';
import { armKey } from '../shared/ids.js';
import { iso } from '../shared/clock.js';
import { formatArmResourceId } from '../shared/ids.js';
import type { HostCredential } from '../store/types.js';
import { apiVersionHook } from './api-version.js';
import { authenticate, callerOf } from './authenticate.js';
import { armScope, audited, jsonObject, params, route } from './common.js';
import { authorize, requireAccess, resourceScope } from './authorize.js';
import type { ManagementContext } from './context.js';
import { ManagementErrors } from './errors.js';
import { ASSIGN_IDENTITY_ACTION } from './resources.js';

const MACHINE = `/subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/${HOST_RESOURCE_TYPE}/:resourceName`;

export interface HostCredentialView {
  keyId: string;
  hostResourceId: string;
  kty: unknown;
  crv?: unknown;
  state: 'Active' | 'Expired' | 'Revoked';
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

function credentialView(credential: HostCredential, now: number): HostCredentialView {
  const state = credential.revokedAt !== null ? 'Revoked' : now >= credential.expiresAt ? 'Expired' : 'Active';
  return {
    keyId: credential.keyId,
    hostResourceId: credential.hostResourceId,
    kty: credential.publicJwk['kty'],
    ...(credential.publicJwk['crv'] === undefined ? {} : { crv: credential.publicJwk['crv'] }),
    state,
    createdAt: iso(credential.createdAt),
    expiresAt: iso(credential.expiresAt),
    revokedAt: credential.revokedAt === null ? null : iso(credential.revokedAt),
  };
}

export function hostRoutes(app: FastifyInstance, ctx: ManagementContext): void {
  const armRequest = [authenticate(ctx, 'arm'), apiVersionHook];

  route(app, {
    method: 'POST',
    url: `${MACHINE}/createJoinToken`,
    onRequest: [...armRequest, authorize(ctx, (request) => ({ action: `${HOST_RESOURCE_TYPE}/write`, scope: resourceScope(request, HOST_RESOURCE_TYPE) }))],
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      const target = formatArmResourceId({
        subscriptionId: scope.subscription.id,
        resourceGroup: scope.resourceGroup,
        type: HOST_RESOURCE_TYPE,
        name: scope.name,
      });
      return audited(
        ctx,
        { tenantId: scope.subscription.tenantId, actor: scope.caller.principal.objectId, action: 'host.join-token.created', target },
        async () => {
          const body = jsonObject(request.body, { optional: true });
          // An existing machine's user-assigned identities go to the agent the token enrols: the caller must
          // be allowed to attach each (see the module comment); rechecked in the token's transaction.
          const existing = await ctx.store.resources.get(target);
          const checked = new Set<string>();
          for (const identityId of existing?.userAssignedIdentityIds ?? []) {
            await requireAccess(ctx, request, { action: ASSIGN_IDENTITY_ACTION, scope: identityId });
            checked.add(armKey(identityId));
          }
          const created = await createJoinToken(ctx.store, {
            subscriptionId: scope.subscription.id,
            resourceGroup: scope.resourceGroup,
            name: scope.name,
            ttlSeconds: body['ttlSeconds'],
            createdBy: scope.caller.principal.objectId,
            clock: ctx.clock,
            guard: (machine) => {
              if (machine?.userAssignedIdentityIds.some((id) => !checked.has(armKey(id))) === true) {
                throw DirectoryErrors.changedWhileAuthorising("The machine's user-assigned identities");
              }
            },
          });
          return {
            result: {
              token: created.token,
              expiresOn: iso(created.expiresOn),
              hostResourceId: created.machine.id,
              tenantId: created.tenantId,
              machineCreated: created.machineCreated,
            },
            target: created.machine.id,
            detail: {
              joinTokenId: created.tokenId,
              expiresOn: iso(created.expiresOn),
              machineCreated: created.machineCreated,
              systemAssignedPrincipalId: created.machine.systemPrincipalId,
            },
          };
        },
      );
    },
  });

  route(app, {
    method: 'GET',
    url: `${MACHINE}/hostCredentials`,
    onRequest: [...armRequest, authorize(ctx, (request) => ({ action: `${HOST_RESOURCE_TYPE}/read`, scope: resourceScope(request, HOST_RESOURCE_TYPE) }))],
    handler: async (request) => {
      const scope = await armScope(ctx, request);
      const { credentials } = await listHostCredentials(ctx.store, {
        subscriptionId: scope.subscription.id,
        resourceGroup: scope.resourceGroup,
        name: scope.name,
      });
      const now = ctx.clock.now();
      return { value: credentials.map((c) => credentialView(c, now)) };
    },
  });

  route(app, {
    method: 'POST',
    url: '/openmsi/hostCredentials/:keyId/revoke',
    onRequest: [authenticate(ctx, 'arm')],
    handler: async (request) => {
      const caller = callerOf(request);
      const keyId = params(request)['keyId'] ?? '';
      return audited(ctx, { tenantId: caller.tenantId, actor: caller.principal.objectId, action: 'host.credential.revoked', target: keyId }, async () => {
        const found = await findHostCredential(ctx.store, keyId);
        // Another tenant's credential is as unknown as a missing one.
        if (found === undefined || found.tenantId?.toLowerCase() !== caller.tenantId.toLowerCase()) throw ManagementErrors.hostCredentialNotFound(keyId);
        // Revoking a machine's credential is a write on the machine.
        await requireAccess(ctx, request, { action: `${HOST_RESOURCE_TYPE}/write`, scope: found.credential.hostResourceId });
        const revokedNow = await revokeHostCredential(ctx.store, keyId, ctx.clock);
        const credential = (await ctx.store.hostCredentials.get(keyId)) ?? found.credential;
        return {
          result: credentialView(credential, ctx.clock.now()),
          target: credential.hostResourceId,
          detail: { keyId, alreadyRevoked: !revokedNow },
        };
      });
    },
  });
}
