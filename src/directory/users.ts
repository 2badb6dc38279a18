/**
 * People: user accounts of the directory, as Microsoft Graph shows them. A user signs in with its user
 * principal name (`name@domain`, the domain one of its tenant's) and a password (only its scrypt hash is
 * kept, passwords.ts), and is a principal like any other: role assignments, group memberships and audit name
 * its object id. Deleting a user, changing its password or revoking its sessions revokes its refresh tokens.
 */
import type { Clock } from '../shared/clock.js';
import { isGuid, newGuid } from '../shared/ids.js';
import type { Repositories, Store, Tenant, User, UserChanges } from '../store/types.js';
import { DirectoryErrors } from './errors.js';
import { hashPassword, passwordPolicyViolation } from './passwords.js';
import { atomically, forgetPrincipalAccess, hasControlCharacters, validateDisplayName } from './principals.js';

/** A tenant's domain as Graph's `GET /v1.0/domains` lists it. */
export interface GraphDomain {
  id: string;
  authenticationType: 'Managed';
  availabilityStatus: null;
  isAdminManaged: true;
  isDefault: boolean;
  isInitial: boolean;
  isRoot: true;
  isVerified: true;
  supportedServices: string[];
  passwordValidityPeriodInDays: number;
  passwordNotificationWindowInDays: number;
  state: null;
}

/** The tenant's domains: today its one default domain (the one token requests may name it by). */
export function tenantDomains(tenant: Tenant): GraphDomain[] {
  return [
    {
      id: tenant.defaultDomain,
      authenticationType: 'Managed',
      availabilityStatus: null,
      isAdminManaged: true,
      isDefault: true,
      isInitial: true,
      isRoot: true,
      isVerified: true,
      supportedServices: [],
      passwordValidityPeriodInDays: 2147483647,
      passwordNotificationWindowInDays: 14,
      state: null,
    },
  ];
}

// Entra's rule for the part before '@': letters, digits and ' . - _ ! # ^ ~, no leading, trailing or double dot.
const UPN_LOCAL = /^(?!\.)(?!.*\.\.)[A-Za-z0-9'._!#^~-]{1,64}(?<!\.)$/;

/** Checks a user principal name: `local@domain` with the domain one of the tenant's. Returns it as given. */
export function validateUserPrincipalName(tenant: Tenant, upn: unknown): string {
  if (typeof upn !== 'string' || upn === '') throw DirectoryErrors.badRequest("Property 'userPrincipalName' is required.");
  const at = upn.lastIndexOf('@');
  const local = upn.slice(0, Math.max(at, 0));
  const domain = upn.slice(at + 1);
  if (at < 1 || upn.length > 113 || !UPN_LOCAL.test(local) || hasControlCharacters(upn)) {
    throw DirectoryErrors.badRequest(`Property userPrincipalName is invalid: '${upn.slice(0, 120)}'.`);
  }
  if (!tenantDomains(tenant).some((d) => d.id.toLowerCase() === domain.toLowerCase())) {
    throw DirectoryErrors.badRequest(
      'The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.',
    );
  }
  return upn;
}

function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password === '') throw DirectoryErrors.badRequest("Property 'passwordProfile.password' is required.");
  if (passwordPolicyViolation(password) !== undefined) {
    throw DirectoryErrors.badRequest('The specified password does not comply with password complexity requirements. Please provide a different password.');
  }
  return password;
}

function checkMail(mail: unknown): string | null | undefined {
  if (mail === undefined) return undefined;
  if (mail === null) return null;
  if (typeof mail !== 'string' || mail.length > 256 || !/^[^@\s]+@[^@\s]+$/.test(mail)) throw DirectoryErrors.badRequest('Property mail is invalid.');
  return mail;
}

function checkBoolean(value: unknown, name: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw DirectoryErrors.badRequest(`Property '${name}' must be true or false.`);
  return value;
}

export interface CreateUserInput {
  tenantId: string;
  displayName: unknown;
  userPrincipalName: unknown;
  password: unknown;
  forceChangePasswordNextSignIn?: unknown;
  accountEnabled?: unknown;
  mail?: unknown;
  clock: Clock;
}

/** Creates a user (Graph's 400 for an invalid or taken name, or a password the policy refuses). */
export async function createUser(store: Store | Repositories, input: CreateUserInput): Promise<User> {
  const displayName = validateDisplayName(input.displayName);
  const password = checkPassword(input.password);
  const forceChange = checkBoolean(input.forceChangePasswordNextSignIn, 'forceChangePasswordNextSignIn') ?? false;
  const accountEnabled = checkBoolean(input.accountEnabled, 'accountEnabled') ?? true;
  const mail = checkMail(input.mail) ?? null;
  const tenant = await store.tenants.get(input.tenantId);
  if (tenant === undefined) throw DirectoryErrors.badRequest(`Tenant '${input.tenantId}' does not exist.`);
  const userPrincipalName = validateUserPrincipalName(tenant, input.userPrincipalName);
  // Hash before the transaction: scrypt takes tens of milliseconds, which no transaction should hold open.
  const passwordHash = await hashPassword(password);
  const now = input.clock.now();
  const user: User = {
    objectId: newGuid(),
    tenantId: tenant.id,
    userPrincipalName,
    displayName,
    mail,
    accountEnabled,
    passwordHash,
    forceChangePasswordNextSignIn: forceChange,
    passwordChangedAt: now,
    createdAt: now,
  };
  await atomically(store, async (tx) => {
    if ((await tx.users.getByUserPrincipalName(userPrincipalName)) !== undefined) {
      throw DirectoryErrors.badRequest('Another object with the same value for property userPrincipalName already exists.');
    }
    await tx.users.create(user);
  });
  return user;
}

/** The tenant's user by object id or user principal name; Graph's 404 otherwise. */
export async function getUser(repos: Repositories, tenantId: string, idOrUpn: string): Promise<User> {
  const user = await findUser(repos, idOrUpn);
  if (user === undefined || user.tenantId.toLowerCase() !== tenantId.toLowerCase()) throw DirectoryErrors.principalNotFound(idOrUpn);
  return user;
}

/** A user by object id or user principal name, in any tenant. */
export async function findUser(repos: Repositories, idOrUpn: string): Promise<User | undefined> {
  if (idOrUpn.length > 256) return undefined;
  return isGuid(idOrUpn) ? repos.users.getByObjectId(idOrUpn) : repos.users.getByUserPrincipalName(idOrUpn);
}

export interface UpdateUserInput {
  displayName?: unknown;
  mail?: unknown;
  accountEnabled?: unknown;
  password?: unknown;
  forceChangePasswordNextSignIn?: unknown;
  clock: Clock;
}

/**
 * Changes a user. A new password, or disabling the account, revokes every refresh token the user holds (and
 * disabling drops its access tokens from every verified-token cache, UserStore.update).
 */
export async function updateUser(store: Store, tenantId: string, idOrUpn: string, input: UpdateUserInput): Promise<User> {
  const changes: UserChanges = {};
  if (input.displayName !== undefined) changes.displayName = validateDisplayName(input.displayName);
  const mail = checkMail(input.mail);
  if (mail !== undefined) changes.mail = mail;
  const enabled = checkBoolean(input.accountEnabled, 'accountEnabled');
  if (enabled !== undefined) changes.accountEnabled = enabled;
  const force = checkBoolean(input.forceChangePasswordNextSignIn, 'forceChangePasswordNextSignIn');
  if (force !== undefined) changes.forceChangePasswordNextSignIn = force;
  if (input.password !== undefined) {
    changes.passwordHash = await hashPassword(checkPassword(input.password));
    changes.passwordChangedAt = input.clock.now();
  }
  return store.transaction(async (tx) => {
    const user = await getUser(tx, tenantId, idOrUpn);
    const updated = await tx.users.update(user.objectId, changes);
    if (updated === undefined) throw DirectoryErrors.principalNotFound(idOrUpn);
    if (changes.passwordHash !== undefined || changes.accountEnabled === false) await tx.refreshTokens.revokeUser(user.objectId, input.clock.now());
    return updated;
  });
}

/** Revokes every refresh token of the user (Graph's `revokeSignInSessions`, a sign-out everywhere). */
export async function revokeSignInSessions(store: Store, tenantId: string, idOrUpn: string, clock: Clock): Promise<{ user: User; revoked: number }> {
  return store.transaction(async (tx) => {
    const user = await getUser(tx, tenantId, idOrUpn);
    return { user, revoked: await tx.refreshTokens.revokeUser(user.objectId, clock.now()) };
  });
}

/** Deletes a user with its role assignments, group memberships and refresh tokens; undefined when there was none. */
export async function deleteUser(store: Store, tenantId: string, idOrUpn: string, clock: Clock): Promise<User | undefined> {
  return store.transaction(async (tx) => {
    const user = await findUser(tx, idOrUpn);
    if (user === undefined || user.tenantId.toLowerCase() !== tenantId.toLowerCase()) return undefined;
    await tx.refreshTokens.revokeUser(user.objectId, clock.now());
    await forgetPrincipalAccess(tx, user);
    await tx.users.delete(user.objectId);
    return user;
  });
}
