/**
 * Directory groups (security groups) and their members, as Microsoft Graph shows them. Members are service
 * principals or groups of the same tenant; nesting is allowed (cycles are refused); role assignments to a
 * group apply to its members transitively. Every membership change and group deletion bumps the tenant's
 * RBAC version in its own transaction.
 */
import type { Clock } from '../shared/clock.js';
import { isGuid, newGuid } from '../shared/ids.js';
import type { Group, Repositories, Store } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { atomically, hasControlCharacters, validateDisplayName } from './principals.js';
import { findDirectoryObject, transitiveGroupsOf, type DirectoryObject } from './rbac.js';

const MAIL_NICKNAME = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]{1,64}$/;

export interface CreateGroupInput {
  tenantId: string;
  displayName: unknown;
  mailNickname: unknown;
  description?: unknown;
  clock: Clock;
}

export async function createGroup(store: Store | Repositories, input: CreateGroupInput): Promise<Group> {
  const displayName = validateDisplayName(input.displayName);
  if (typeof input.mailNickname !== 'string' || !MAIL_NICKNAME.test(input.mailNickname)) {
    throw DirectoryErrors.badRequest(
      "Property 'mailNickname' is required: 1 to 64 characters, without spaces, '@', '(', ')', '<', '>', ',', ';', ':', '\\\\', '\"', '[' or ']'.",
    );
  }
  const description = input.description;
  if (
    description !== undefined &&
    description !== null &&
    (typeof description !== 'string' || description.length > 1024 || hasControlCharacters(description))
  ) {
    throw DirectoryErrors.badRequest("Property 'description' must be a string of at most 1024 characters.");
  }
  const group: Group = {
    objectId: newGuid(),
    tenantId: input.tenantId.toLowerCase(),
    displayName,
    mailNickname: input.mailNickname,
    description: typeof description === 'string' ? description : null,
    createdAt: input.clock.now(),
  };
  await atomically(store, async (tx) => {
    if ((await tx.tenants.get(input.tenantId)) === undefined) throw DirectoryErrors.badRequest(`Tenant '${input.tenantId}' does not exist.`);
    await tx.groups.create(group);
  });
  return group;
}

/** The tenant's group, by object id; Graph's 404 `Request_ResourceNotFound` otherwise. */
export async function getGroup(repos: Repositories, tenantId: string, groupId: string): Promise<Group> {
  const group = isGuid(groupId) ? await repos.groups.get(groupId) : undefined;
  if (group === undefined || group.tenantId !== tenantId.toLowerCase()) throw DirectoryErrors.principalNotFound(groupId);
  return group;
}

export function listGroups(repos: Repositories, filter: { tenantId: string; displayName?: string }): Promise<Group[]> {
  return repos.groups.list(filter);
}

/** Deletes a group with its memberships and its role assignments. Undefined when there was none. */
export async function deleteGroup(store: Store | Repositories, tenantId: string, groupId: string): Promise<Group | undefined> {
  if (!isGuid(groupId)) return undefined;
  return atomically(store, async (tx) => {
    const group = await tx.groups.get(groupId);
    if (group === undefined || group.tenantId !== tenantId.toLowerCase()) return undefined;
    await tx.roleAssignments.deleteByPrincipal(group.objectId);
    await tx.groups.delete(group.objectId);
    await tx.rbacVersions.bump(tenantId);
    return group;
  });
}

/**
 * Adds `memberId` (a service principal or group of the tenant) to the group. Graph's 400 when it already is a
 * direct member, when it is the group itself, or when it would make a cycle; 404 for an unknown group or member.
 */
export async function addGroupMember(
  store: Store | Repositories,
  input: { tenantId: string; groupId: string; memberId: string; clock: Clock },
): Promise<DirectoryObject> {
  return atomically(store, async (tx) => {
    const group = await getGroup(tx, input.tenantId, input.groupId);
    const member = await findDirectoryObject(tx, input.tenantId, input.memberId);
    if (member === undefined) throw DirectoryErrors.principalNotFound(input.memberId);
    const memberId = input.memberId.toLowerCase();
    if (memberId === group.objectId) throw DirectoryErrors.badRequest('A group cannot be a member of itself.');
    if (member.kind === 'group' && (await transitiveGroupsOf(tx, group.objectId)).includes(memberId)) {
      throw DirectoryErrors.badRequest(`Adding group '${memberId}' to group '${group.objectId}' would make a membership cycle.`);
    }
    const added = await tx.groups.addMember({ groupId: group.objectId, memberId, tenantId: input.tenantId, createdAt: input.clock.now() });
    if (!added) throw DirectoryErrors.badRequest("One or more added object references already exist for the following modified properties: 'members'.");
    await tx.rbacVersions.bump(input.tenantId);
    return member;
  });
}

/** Removes a direct member; Graph's 404 when the group or the membership does not exist. */
export async function removeGroupMember(store: Store | Repositories, input: { tenantId: string; groupId: string; memberId: string }): Promise<void> {
  await atomically(store, async (tx) => {
    const group = await getGroup(tx, input.tenantId, input.groupId);
    if (!isGuid(input.memberId) || !(await tx.groups.removeMember(group.objectId, input.memberId))) throw DirectoryErrors.principalNotFound(input.memberId);
    await tx.rbacVersions.bump(input.tenantId);
  });
}

/** Direct members, resolved (members deleted meanwhile are left out). */
export async function listGroupMembers(repos: Repositories, tenantId: string, groupId: string): Promise<DirectoryObject[]> {
  const group = await getGroup(repos, tenantId, groupId);
  const out: DirectoryObject[] = [];
  for (const id of await repos.groups.listMembers(group.objectId)) {
    const object = await findDirectoryObject(repos, tenantId, id);
    if (object !== undefined) out.push(object);
  }
  return out;
}

/** Of `groupIds`, those `memberId` belongs to directly or transitively (Graph's `checkMemberGroups`). */
export async function checkMemberGroups(repos: Repositories, tenantId: string, memberId: string, groupIds: readonly string[]): Promise<string[]> {
  if ((await findDirectoryObject(repos, tenantId, memberId)) === undefined) throw DirectoryErrors.principalNotFound(memberId);
  const groups = new Set(await transitiveGroupsOf(repos, memberId));
  return groupIds.filter((g) => groups.has(g.toLowerCase()));
}
