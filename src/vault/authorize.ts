/**
 * Authorisation per vault (spec §3): Azure RBAC data actions when `enableRbacAuthorization` is true (the shared
 * authoriser, whose decisions are cached and invalidated on every change), else the vault's access policies
 * (read from the cached vault record, which every vault change invalidates). Both in memory on the hot path.
 */
import type { Vault } from '../store/types.js';
import type { VaultContext, VaultOperation } from './contracts.js';
import { VaultErrors } from './errors.js';
import type { VaultCaller } from './state.js';

/** How Key Vault names a caller in its 403 messages. */
function callerLabel(caller: VaultCaller, withGroups: boolean): string {
  const groups = withGroups ? 'numgroups=0;' : '';
  return `appid=${caller.appId ?? ''};oid=${caller.objectId};${groups}iss=${caller.issuer}`;
}

/** True when an access-policy entry of `vault` grants one of `op`'s permissions to the caller, in `op`'s list (secrets or keys). */
export function accessPolicyGrants(vault: Vault, caller: VaultCaller, op: VaultOperation): boolean {
  return vault.properties.accessPolicies.some(
    (entry) =>
      entry.objectId.toLowerCase() === caller.objectId.toLowerCase() &&
      entry.tenantId.toLowerCase() === caller.tenantId.toLowerCase() &&
      // Compound identity: the entry holds only when the calling application is the one it names.
      (entry.applicationId === undefined || entry.applicationId.toLowerCase() === (caller.appId ?? '').toLowerCase()) &&
      entry.permissions[op.objects].some((p) => op.permissions.includes(p.toLowerCase()) || p.toLowerCase() === 'all'),
  );
}

/** Resolves when the caller may run `op` on `scope` of `vault`; 403 in Key Vault's words otherwise. */
export async function authorize(ctx: VaultContext, vault: Vault, caller: VaultCaller, op: VaultOperation, scope: string): Promise<void> {
  if (!vault.properties.enableRbacAuthorization) {
    if (accessPolicyGrants(vault, caller, op)) return;
    throw VaultErrors.accessDenied(callerLabel(caller, true), op.permissions[0] ?? op.name, op.objects, vault);
  }
  // The vault's tenant's RBAC decides, never the caller's: authentication already refuses another tenant's
  // token, and a role held at another tenant's `/` must not reach this vault even if that check were lost.
  const decision = await ctx.authorizer.check({ tenantId: vault.tenantId, principalId: caller.objectId, action: op.dataAction, isDataAction: true, scope });
  if (decision.allowed) return;
  throw VaultErrors.forbiddenByRbac({
    caller: callerLabel(caller, false),
    action: op.dataAction,
    resource: scope,
    denyAssignmentId: decision.reason === 'denied' ? decision.assignmentId : undefined,
    vault,
  });
}
