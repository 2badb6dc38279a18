/**
 * The person at the keyboard as a user of the dev tenant: `<os-user>@<default domain>`, Owner on the dev
 * subscription and Key Vault Administrator on the dev vault, so `az login -u UPN -p ...` (or `az login` in the
 * browser) signs them in as themselves. The password is random and kept only in `dev/user.json` (0600) in the
 * data dir; `openmsi dev user --password` prints it on request, nothing else ever does.
 *
 * Idempotent like the rest of the dev bootstrap: the file is written before the user is made, so a start cut
 * short between the two is finished by the next with the same password; a data dir from before this existed
 * gets its user on its next start.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { userInfo } from 'node:os';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/types.js';
import { BUILTIN_ROLE_IDS, BUILTIN_ROLES } from '../rbac/builtin-roles.js';
import { putRoleAssignment } from '../directory/rbac.js';
import { createUser, findUser, updateUser } from '../directory/users.js';
import { passwordPolicyViolation } from '../directory/passwords.js';
import { readDataDirFile } from '../shared/data-dir.js';
import { makePrivateDir, writePrivateFileAtomic } from '../shared/private-files.js';
import { devLayout } from './layout.js';
import { passwdEntry } from './passwd.js';

/** What `dev/user.json` holds. */
export interface DevUserFile {
  userPrincipalName: string;
  password: string;
}

/** The dev user as `openmsi dev` reports it (never with its password). */
export interface DevUser {
  userPrincipalName: string;
  displayName: string;
  objectId: string;
  /** True when this start made the user (or gave it a new password because the file was gone). */
  created: boolean;
}

/** The OS account the user is named after. */
export interface OsAccount {
  username: string;
  /** The passwd full name (GECOS), when there is one. */
  fullName: string | undefined;
}

/** This process's OS account: the user name, and the full name from the passwd database when it has one. */
export function currentOsAccount(): OsAccount {
  const { username } = userInfo();
  const gecos = passwdEntry(username)?.[4]?.split(',')[0]?.trim();
  return { username, fullName: gecos === undefined || gecos === '' ? undefined : gecos };
}

/** An OS user name as the part of a UPN before `@` (Entra's characters, no leading, trailing or double dot). */
export function devUserLocalPart(username: string): string {
  const cleaned = username
    .replace(/[^A-Za-z0-9'._!#^~-]/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^\.+|\.+$/g, '')
    .slice(0, 64)
    .replace(/\.+$/, '');
  return cleaned === '' ? 'developer' : cleaned;
}

/** A display name Graph accepts: the full name, else the user name, printable and at most 256 characters. */
function displayNameOf(account: OsAccount): string {
  const printable = (s: string | undefined) =>
    [...(s ?? '')]
      .filter((c) => c >= ' ' && c !== '\u007f')
      .join('')
      .trim()
      .slice(0, 256);
  return printable(account.fullName) || printable(account.username) || 'Developer';
}

/** 24 random characters from all four classes: far past any guessing, and within Entra's policy by construction. */
export function generateDevPassword(): string {
  for (;;) {
    const candidate = `${randomBytes(18).toString('base64url')}`;
    // base64url has letters, digits, '-' and '_'; insist on all of lower, upper, digit and a symbol.
    if (
      /[a-z]/.test(candidate) &&
      /[A-Z]/.test(candidate) &&
      /[0-9]/.test(candidate) &&
      /[-_]/.test(candidate) &&
      passwordPolicyViolation(candidate) === undefined
    ) {
      return candidate;
    }
  }
}

/** The dev user's file, or undefined when there is none (an unreadable or malformed one is an error naming it). */
export function readDevUserFile(dataDir: string): DevUserFile | undefined {
  const path = devLayout(dataDir).devUser;
  if (!existsSync(path)) return undefined;
  const text = readDataDirFile(path, { what: 'the dev user', missing: `${path} is missing` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const p = parsed as Partial<DevUserFile> | undefined;
  if (typeof p?.userPrincipalName !== 'string' || typeof p.password !== 'string') {
    throw new Error(`${path} is not a dev user file (userPrincipalName, password): delete it and start \`openmsi dev\` again for a new password`);
  }
  return { userPrincipalName: p.userPrincipalName, password: p.password };
}

export interface EnsureDevUserOptions {
  store: Store;
  clock: Clock;
  dataDir: string;
  tenantId: string;
  subscriptionId: string;
  vaultResourceId: string;
  /** Who grants the roles (audit): the admin. */
  grantedBy: string;
  account?: OsAccount;
}

/** Makes (or finds) the dev user and its two role assignments; see the module comment. */
export async function ensureDevUser(options: EnsureDevUserOptions): Promise<DevUser> {
  const { store, clock, dataDir, tenantId } = options;
  const path = devLayout(dataDir).devUser;
  let file = readDevUserFile(dataDir);
  let created = false;
  let user = file === undefined ? undefined : await findUser(store, file.userPrincipalName);
  if (file === undefined || user === undefined) {
    const account = options.account ?? currentOsAccount();
    const tenant = await store.tenants.get(tenantId);
    if (tenant === undefined) throw new Error(`the dev tenant ${tenantId} is not in the store`);
    const fresh: DevUserFile = file ?? { userPrincipalName: `${devUserLocalPart(account.username)}@${tenant.defaultDomain}`, password: generateDevPassword() };
    // The password is on disk before any user has it, so no start can leave a user whose password is lost.
    makePrivateDir(dirname(path));
    if (file === undefined) writePrivateFileAtomic(path, `${JSON.stringify(fresh, null, 2)}\n`);
    file = fresh;
    const existing = await findUser(store, file.userPrincipalName);
    // A user of that name without a file (the file was deleted): it takes the new password, which the file now holds.
    user =
      existing === undefined
        ? await createUser(store, { tenantId, displayName: displayNameOf(account), userPrincipalName: file.userPrincipalName, password: file.password, clock })
        : await updateUser(store, tenantId, existing.objectId, { password: file.password, clock });
    created = true;
  }
  const grants = [
    { scope: `/subscriptions/${options.subscriptionId}`, roleDefinitionId: BUILTIN_ROLE_IDS.Owner },
    { scope: options.vaultResourceId, roleDefinitionId: BUILTIN_ROLE_IDS.KeyVaultAdministrator },
  ];
  for (const { scope, roleDefinitionId } of grants) {
    if ((await store.roleAssignments.find(tenantId, scope, roleDefinitionId, user.objectId)) !== undefined) continue;
    await putRoleAssignment(
      store,
      { builtInRoles: BUILTIN_ROLES, clock },
      { tenantId, scope, roleDefinitionId, principalId: user.objectId, description: 'openmsi dev: you', by: options.grantedBy },
    );
  }
  return { userPrincipalName: user.userPrincipalName, displayName: user.displayName, objectId: user.objectId, created };
}
