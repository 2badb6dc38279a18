import { randomUUID } from 'node:crypto';

/** A new random GUID in Azure's lower-case form. */
export function newGuid(): string {
  return randomUUID();
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for any GUID-shaped string (Azure object and client ids are GUIDs, not always RFC 4122 v4). */
export function isGuid(value: string): boolean {
  return GUID.test(value);
}

/** The parts of an ARM resource id `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}`. */
export interface ArmResourceId {
  subscriptionId: string;
  resourceGroup: string;
  /** Resource provider namespace and type, e.g. `Microsoft.ManagedIdentity/userAssignedIdentities`. */
  type: string;
  name: string;
}

const ARM_ID = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)$/i;

/** Parses a top-level ARM resource id; returns undefined for anything else. Matching is case-insensitive, as ARM's is. */
export function parseArmResourceId(id: string): ArmResourceId | undefined {
  const m = ARM_ID.exec(id);
  if (!m) return undefined;
  const [, subscriptionId, resourceGroup, ns, type, name] = m as unknown as [string, string, string, string, string, string];
  return { subscriptionId, resourceGroup, type: `${ns}/${type}`, name };
}

/** Formats an ARM resource id in ARM's canonical casing. */
export function formatArmResourceId(id: ArmResourceId): string {
  return `/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/${id.type}/${id.name}`;
}

/** The id of a resource group. */
export function resourceGroupId(subscriptionId: string, resourceGroup: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`;
}

/** ARM ids compare case-insensitively; this is the key we store and look them up by. */
export function armKey(id: string): string {
  return id.toLowerCase();
}
