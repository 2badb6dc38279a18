/**
 * Narrow store interfaces, one per aggregate. Each is small on purpose: a service depends only on the
 * aggregates it uses, and both backends implement every interface with the same kysely queries.
 * Timestamps are epoch milliseconds.
 */
import type { Dialect } from './dialect.js';
import type { DenyAssignment, GroupMembership, RoleAssignment, RoleDefinition } from '../rbac/contracts.js';

export interface Tenant {
  id: string;
  displayName: string;
  /** Lower-case primary domain; token requests may name a tenant by it instead of its id. */
  defaultDomain: string;
  createdAt: number;
}

export interface TenantStore {
  create(tenant: Tenant): Promise<void>;
  /** By id or (case-insensitively) by default domain. */
  get(idOrDomain: string): Promise<Tenant | undefined>;
  list(): Promise<Tenant[]>;
}

export interface Subscription {
  id: string;
  tenantId: string;
  displayName: string;
  state: 'Enabled' | 'Disabled';
  createdAt: number;
}

export interface SubscriptionStore {
  create(subscription: Subscription): Promise<void>;
  get(id: string): Promise<Subscription | undefined>;
  listByTenant(tenantId: string): Promise<Subscription[]>;
}

export type Tags = Record<string, string>;

export interface ResourceGroup {
  /** ARM id, in the casing it was created with. */
  id: string;
  subscriptionId: string;
  name: string;
  location: string;
  tags: Tags;
  createdAt: number;
  updatedAt: number;
}

export interface ResourceGroupStore {
  /** Creates or replaces (ARM PUT semantics). `createdAt` is kept on update. */
  put(group: ResourceGroup): Promise<'created' | 'updated'>;
  get(subscriptionId: string, name: string): Promise<ResourceGroup | undefined>;
  list(subscriptionId: string): Promise<ResourceGroup[]>;
  /** Deletes the group row only; callers delete its resources first. */
  delete(subscriptionId: string, name: string): Promise<boolean>;
}

export interface Resource {
  /** ARM id in canonical casing. */
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  /** `Namespace/type`, e.g. `Microsoft.ManagedIdentity/userAssignedIdentities`. */
  type: string;
  name: string;
  location: string;
  tags: Tags;
  properties: Record<string, unknown>;
  /** Object id of the system-assigned identity, or null. */
  systemPrincipalId: string | null;
  /** ARM ids of the user-assigned identities attached to this resource. */
  userAssignedIdentityIds: string[];
  createdAt: number;
  updatedAt: number;
}

export interface ResourceStore {
  /** Creates or replaces the resource, including its set of attached user-assigned identities. */
  put(resource: Resource): Promise<'created' | 'updated'>;
  /** By ARM id, case-insensitively. */
  get(id: string): Promise<Resource | undefined>;
  list(filter: { subscriptionId: string; resourceGroup?: string; type?: string }): Promise<Resource[]>;
  /** Ids of resources that have `identityId` attached as a user-assigned identity. */
  listAttachedTo(identityId: string): Promise<string[]>;
  delete(id: string): Promise<boolean>;
}

export type ManagedIdentityType = 'SystemAssigned' | 'UserAssigned';

export interface ServicePrincipal {
  objectId: string;
  tenantId: string;
  /** Client id. */
  appId: string;
  displayName: string;
  kind: 'Application' | 'ManagedIdentity';
  /** For managed identities: what kind, and the ARM id it belongs to (the UAMI itself, or the owning resource). */
  managedIdentity: { type: ManagedIdentityType; resourceId: string } | null;
  isDirectoryAdmin: boolean;
  createdAt: number;
}

export interface ServicePrincipalStore {
  create(principal: ServicePrincipal): Promise<void>;
  getByObjectId(objectId: string): Promise<ServicePrincipal | undefined>;
  getByAppId(appId: string): Promise<ServicePrincipal | undefined>;
  /** Managed-identity principals whose `resourceId` is this ARM id (case-insensitive). */
  getByManagedIdentityResource(resourceId: string, type: ManagedIdentityType): Promise<ServicePrincipal | undefined>;
  list(filter: { tenantId: string; kind?: ServicePrincipal['kind']; displayName?: string }): Promise<ServicePrincipal[]>;
  /** Deletes the principal; when it existed, publishes its object id on {@link PRINCIPAL_CHANNEL} (after commit). */
  delete(objectId: string): Promise<boolean>;
}

export interface ClientCredential {
  keyId: string;
  appId: string;
  type: 'Password' | 'AsymmetricX509Cert';
  displayName: string;
  /** Password: the first three characters, as Entra shows them. */
  hint: string | null;
  /** Password: keyed hash (never the secret itself). */
  secretHash: string | null;
  /** Certificate: lower-case hex thumbprints. */
  thumbprintSha1: string | null;
  thumbprintSha256: string | null;
  /** Certificate: DER, base64. */
  certificate: string | null;
  startAt: number;
  endAt: number;
  createdAt: number;
}

/** Every write publishes the application's app id on {@link CREDENTIAL_CHANNEL} (after commit). */
export interface CredentialStore {
  add(credential: ClientCredential): Promise<void>;
  listByApp(appId: string): Promise<ClientCredential[]>;
  delete(keyId: string): Promise<boolean>;
  deleteByApp(appId: string): Promise<number>;
}

export type SigningKeyState = 'next' | 'current' | 'retired' | 'revoked';

export interface SigningKeyRecord {
  kid: string;
  state: SigningKeyState;
  alg: 'RS256';
  /** Encrypted PKCS#8 (see shared/master-key). */
  privateKeyEnc: string;
  /** Public JWK with `kid`, `x5t`, `x5c`, `use`, `alg`. */
  publicJwk: Record<string, unknown>;
  createdAt: number;
  activatedAt: number | null;
  retiredAt: number | null;
  publishUntil: number | null;
  revokedAt: number | null;
}

/**
 * The signing-key change channel (PostgreSQL `LISTEN openmsi_signing_keys`): every insert, state change
 * (promotion, retirement, revocation) and purge publishes the kid after it commits, so every replica's
 * in-memory key ring reloads at once and a revoked key stops verifying everywhere (KeyRing).
 */
export const SIGNING_KEY_CHANNEL = 'openmsi_signing_keys';

/**
 * The principal change channel (PostgreSQL `LISTEN openmsi_principals`): every deletion of a service principal
 * (application, managed identity: with its identity, its resource or its host) publishes the lower-cased
 * object id after it commits, so caches of verified tokens drop the principal's tokens at once.
 */
export const PRINCIPAL_CHANNEL = 'openmsi_principals';

/**
 * The host-state change channel (PostgreSQL `LISTEN openmsi_hosts`): writes that can change what a host's
 * `self` answers publish, after they commit, what they touched: `resource:{lower-case ARM id}` (a resource put
 * or deleted: a host, its identity attachments, a user-assigned identity), `identity:{object id}` (an
 * identity's upstream link set or removed) or `credential:{key id}` (a host credential revoked). Identity
 * deletions arrive on {@link PRINCIPAL_CHANNEL}. The host API's long poll wakes on them (hosts/changes.ts).
 */
export const HOST_CHANNEL = 'openmsi_hosts';

/** The {@link HOST_CHANNEL} payloads, built in one place for writers and readers. */
export const hostChangeKey = {
  resource: (armKeyOfResource: string): string => `resource:${armKeyOfResource}`,
  identity: (objectId: string): string => `identity:${objectId.toLowerCase()}`,
  credential: (keyId: string): string => `credential:${keyId}`,
} as const;

/**
 * The application credential change channel (PostgreSQL `LISTEN openmsi_credentials`): every credential added
 * or deleted publishes the application's lower-cased app id after it commits, so the token endpoint's client
 * cache re-reads that application at once on every replica.
 */
export const CREDENTIAL_CHANNEL = 'openmsi_credentials';

/** Every write that changes a row publishes its kid on {@link SIGNING_KEY_CHANNEL} (after commit). */
export interface SigningKeyStore {
  list(): Promise<SigningKeyRecord[]>;
  insert(key: SigningKeyRecord): Promise<void>;
  /**
   * Compare-and-set: applies `changes` only while the key is still in `expectedState`. Returns false when
   * another replica got there first.
   */
  transition(
    kid: string,
    expectedState: SigningKeyState,
    changes: Partial<Pick<SigningKeyRecord, 'state' | 'activatedAt' | 'retiredAt' | 'publishUntil' | 'revokedAt'>>,
  ): Promise<boolean>;
  /** Removes keys that are no longer published (revoked, or retired past `publishUntil`) before `before`. */
  purge(before: number): Promise<number>;
}

export interface ReplayStore {
  /** Records `key` until `expiresAt`. Returns false if it was already recorded (a replay). */
  remember(key: string, expiresAt: number): Promise<boolean>;
  /** Forgets entries that expired before `now`. */
  purgeExpired(now: number): Promise<number>;
}

/**
 * Failures counted per key in fixed windows and shared by every replica. Only failures write here; a success
 * at most reads it (cached).
 */
export interface FailureCounterStore {
  /**
   * Adds one failure for `key` to the window starting at `windowStart` (kept until `expiresAt`) and returns
   * the window's count including it. Atomic: of concurrent callers on any replica, each sees a distinct count.
   */
  increment(key: string, windowStart: number, expiresAt: number): Promise<number>;
  /** The failures counted for `key` in the window starting at `windowStart` (0 when none). A read only. */
  count(key: string, windowStart: number): Promise<number>;
  /** Forgets windows that expired before `now`. */
  purgeExpired(now: number): Promise<number>;
}

/** Failed client authentications at the token endpoint (per client and per source): its throttle's counts. */
export type AuthFailureStore = FailureCounterStore;

/** Failed host enrolments per source address: the enrolment rate limit's counts. */
export type EnrolmentFailureStore = FailureCounterStore;

export interface AuditEvent {
  id: string;
  at: number;
  tenantId: string | null;
  /** Object id of the caller, or `system`. */
  actor: string;
  /** Dotted verb, e.g. `token.issued`, `identity.created`, `keys.rotated`. */
  action: string;
  /** What it acted on: an ARM id, an app id, a kid. */
  target: string;
  outcome: 'success' | 'failure';
  detail: Record<string, unknown>;
}

export interface AuditQuery {
  since?: number;
  action?: string;
  /** Only that tenant's events (case-insensitively) and the installation-wide ones (`tenantId` null). */
  tenantId?: string;
  /**
   * Each entry is a set of values (object ids, ARM ids); an event matches an entry when its actor or its
   * target is one of them (case-insensitively). An event must match every entry.
   */
  involving?: ReadonlyArray<readonly string[]>;
  limit?: number;
}

export interface AuditStore {
  append(events: readonly AuditEvent[]): Promise<void>;
  /**
   * Appends the events whose id is not stored yet and skips the others (`INSERT ... ON CONFLICT (id) DO
   * NOTHING`), so a retried upload is stored once. Returns how many were new.
   */
  appendIgnoringDuplicates(events: readonly AuditEvent[]): Promise<number>;
  /** Newest first. */
  list(query: AuditQuery): Promise<AuditEvent[]>;
}

export interface HostCredential {
  keyId: string;
  /** ARM id of the host resource (a machine) the agent authenticates as. */
  hostResourceId: string;
  publicJwk: Record<string, unknown>;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface HostCredentialStore {
  add(credential: HostCredential): Promise<void>;
  get(keyId: string): Promise<HostCredential | undefined>;
  listByHost(hostResourceId: string): Promise<HostCredential[]>;
  revoke(keyId: string, at: number): Promise<boolean>;
  /** Revokes every unrevoked credential of the host (case-insensitive id); returns how many. */
  revokeByHost(hostResourceId: string, at: number): Promise<number>;
}

/** A single-use host join token. Only the SHA-256 of its secret is kept. */
export interface JoinToken {
  id: string;
  /** SHA-256 of the secret, base64url. */
  secretHash: string;
  tenantId: string;
  /** ARM id of the host (a `Microsoft.HybridCompute/machines`) the token enrols. */
  hostResourceId: string;
  /** Object id of the principal that created it. */
  createdBy: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface JoinTokenStore {
  create(token: JoinToken): Promise<void>;
  get(id: string): Promise<JoinToken | undefined>;
  /**
   * Marks the token used at `at`, compare-and-set: only while it is unused and `at` is before its expiry.
   * True for exactly one of any number of concurrent callers (on any replica); false otherwise.
   */
  consume(id: string, at: number): Promise<boolean>;
  /** Deletes tokens that expired before `before` (used or not). */
  purgeExpired(before: number): Promise<number>;
}

/** A custom role definition as stored (built-ins are not stored: they come from code). */
export interface CustomRoleDefinition extends RoleDefinition {
  roleType: 'CustomRole';
  tenantId: string;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  updatedBy: string;
}

export interface RoleDefinitionStore {
  /** False when the id or (case-insensitively) the name is already taken in the tenant; nothing is written then. */
  create(definition: CustomRoleDefinition): Promise<boolean>;
  /** Replaces name, description, permissions, assignable scopes and updatedAt/By. False when absent or the new name is taken. */
  update(definition: CustomRoleDefinition): Promise<boolean>;
  get(tenantId: string, id: string): Promise<CustomRoleDefinition | undefined>;
  /** By role name, case-insensitively. */
  getByName(tenantId: string, roleName: string): Promise<CustomRoleDefinition | undefined>;
  list(tenantId: string): Promise<CustomRoleDefinition[]>;
  count(tenantId: string): Promise<number>;
  delete(tenantId: string, id: string): Promise<boolean>;
}

/** A role assignment as stored: the contract's shape plus ARM's `updatedOn`/`updatedBy`. */
export interface StoredRoleAssignment extends RoleAssignment {
  updatedAt: number;
  updatedBy: string;
}

export interface RoleAssignmentFilter {
  tenantId: string;
  /** Only assignments to one of these principals. */
  principalIds?: readonly string[];
  /** Only assignments exactly at this scope (case-insensitively). */
  scope?: string;
  roleDefinitionId?: string;
}

export interface RoleAssignmentStore {
  /**
   * False when the id is taken or the same (scope, role, principal) is already assigned in the tenant
   * (scope compared case-insensitively); nothing is written then.
   */
  create(assignment: StoredRoleAssignment): Promise<boolean>;
  get(tenantId: string, id: string): Promise<StoredRoleAssignment | undefined>;
  /** The assignment of `roleDefinitionId` to `principalId` at exactly `scope` (case-insensitively). */
  find(tenantId: string, scope: string, roleDefinitionId: string, principalId: string): Promise<StoredRoleAssignment | undefined>;
  list(filter: RoleAssignmentFilter): Promise<StoredRoleAssignment[]>;
  /** Assignments at the subscription or below it (Azure's 4,000 limit counts them together). */
  countInSubscription(tenantId: string, subscriptionId: string): Promise<number>;
  countByRoleDefinition(tenantId: string, roleDefinitionId: string): Promise<number>;
  updateDescription(tenantId: string, id: string, description: string | null, at: number, by: string): Promise<boolean>;
  delete(tenantId: string, id: string): Promise<boolean>;
  /** Deletes every assignment to the principal (it is being deleted); returns how many. */
  deleteByPrincipal(principalId: string): Promise<number>;
}

export interface StoredDenyAssignment extends DenyAssignment {
  createdAt: number;
  createdBy: string;
}

export interface DenyAssignmentStore {
  /** False when the id, or the name at the same scope, is taken; nothing is written then. */
  create(deny: StoredDenyAssignment): Promise<boolean>;
  get(tenantId: string, id: string): Promise<StoredDenyAssignment | undefined>;
  list(tenantId: string): Promise<StoredDenyAssignment[]>;
  delete(tenantId: string, id: string): Promise<boolean>;
}

/** A directory group (security group). */
export interface Group {
  objectId: string;
  tenantId: string;
  displayName: string;
  mailNickname: string;
  description: string | null;
  createdAt: number;
}

export interface GroupStore {
  create(group: Group): Promise<void>;
  get(objectId: string): Promise<Group | undefined>;
  /** `displayName` matches case-insensitively. */
  list(filter: { tenantId: string; displayName?: string }): Promise<Group[]>;
  /** Deletes the group, its memberships, and its own membership in other groups. */
  delete(objectId: string): Promise<boolean>;
  /** False when `memberId` already is a direct member. */
  addMember(membership: GroupMembership & { tenantId: string; createdAt: number }): Promise<boolean>;
  removeMember(groupId: string, memberId: string): Promise<boolean>;
  /** Direct members' ids. */
  listMembers(groupId: string): Promise<string[]>;
  /** Ids of the groups `memberId` is a direct member of. */
  listGroupsOf(memberId: string): Promise<string[]>;
  /** Every direct membership in the tenant. */
  listMemberships(tenantId: string): Promise<GroupMembership[]>;
  /** Removes `memberId` from every group (it is being deleted); returns how many memberships went. */
  removeMemberEverywhere(memberId: string): Promise<number>;
}

/** The RBAC notification channel (PostgreSQL `LISTEN openmsi_rbac`); its payload is the tenant id. */
export const RBAC_CHANNEL = 'openmsi_rbac';

export interface RbacVersionStore {
  /** The tenant's RBAC version: 0 before its first RBAC write. */
  get(tenantId: string): Promise<number>;
  /**
   * Increments the tenant's version and publishes a change on {@link RBAC_CHANNEL}: inside a transaction the
   * notice is sent when it commits (PostgreSQL `pg_notify` in the transaction; this process's listeners
   * after commit), and never if it rolls back.
   */
  bump(tenantId: string): Promise<number>;
}

/** Change notices between the writers and readers of a store (this process, and other replicas on PostgreSQL). */
export interface StoreNotifications {
  /**
   * Calls `listener(payload)` for every notice on `channel`: at once for those committed in this process, and
   * (PostgreSQL) through `LISTEN` for every replica's, this one's included, so a notice may arrive twice.
   * Returns an unsubscribe function.
   */
  subscribe(channel: string, listener: (payload: string) => void): () => void;
  /** Resolves once the subscriptions made so far also hear other replicas (PostgreSQL's LISTEN is up); at once elsewhere. */
  ready(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Key Vault: vaults (the ARM resource, with its access model) and the secrets data plane.

/** A vault access-policy entry (ARM `properties.accessPolicies[]`). Permission names are lower-case. */
export interface AccessPolicyEntry {
  tenantId: string;
  objectId: string;
  /** Compound identity (application + user); absent for application-only or user-only entries. */
  applicationId?: string;
  permissions: { keys: string[]; secrets: string[]; certificates: string[]; storage: string[] };
}

/** `Microsoft.KeyVault/vaults` properties as stored (the view adds `vaultUri` and `provisioningState`). */
export interface VaultProperties {
  tenantId: string;
  sku: { family: 'A'; name: 'standard' | 'premium' };
  /** true: Azure RBAC data actions decide; false: {@link accessPolicies} decide. */
  enableRbacAuthorization: boolean;
  accessPolicies: AccessPolicyEntry[];
  /** Soft delete is always on (as in Azure since 2020). */
  enableSoftDelete: true;
  /** 7..90, default 90; fixed once the vault exists. */
  softDeleteRetentionInDays: number;
  /** Once true it cannot be turned off; Azure shows null when it was never set. */
  enablePurgeProtection: boolean | null;
  publicNetworkAccess: 'Enabled' | 'Disabled';
}

/** A vault. Names are unique in the installation (they are DNS labels) and compare case-insensitively. */
export interface Vault {
  /** Immutable internal id (a GUID): secrets belong to it, so a purged-and-recreated name is a new vault. */
  id: string;
  /** ARM id, in the casing it was created with. */
  resourceId: string;
  name: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  tags: Tags;
  properties: VaultProperties;
  /** Epoch ms when soft-deleted; null while active. */
  deletedAt: number | null;
  /** Epoch ms when a soft-deleted vault is purged automatically; null while active. */
  scheduledPurgeAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** The Key Vault change channel (PostgreSQL `LISTEN openmsi_vaults`); its payload is the vault id. */
export const VAULT_CHANNEL = 'openmsi_vaults';

export interface VaultStore {
  /**
   * Creates or replaces the vault with this name (ARM PUT). 'conflict' when the name is held by another vault
   * (active or soft-deleted) of a different id. Publishes on {@link VAULT_CHANNEL} (after commit).
   */
  put(vault: Vault): Promise<'created' | 'updated' | 'conflict'>;
  /** By name (case-insensitive), active or soft-deleted. */
  getByName(name: string): Promise<Vault | undefined>;
  get(id: string): Promise<Vault | undefined>;
  /** Active vaults (or, with `deleted: true`, soft-deleted ones) of a subscription, optionally one group; by name. */
  list(filter: { subscriptionId: string; resourceGroup?: string; deleted?: boolean }): Promise<Vault[]>;
  /** Marks the vault soft-deleted; false when it is not active. Publishes. */
  softDelete(id: string, deletedAt: number, scheduledPurgeAt: number): Promise<boolean>;
  /** Makes a soft-deleted vault active again; false when it is not soft-deleted. Publishes. */
  recover(id: string, updatedAt: number): Promise<boolean>;
  /** Deletes the vault row and every secret (all versions, deleted or not) of it. Publishes. */
  purge(id: string): Promise<boolean>;
  /** Soft-deleted vaults whose scheduled purge time is at or before `now`. */
  listPurgeDue(now: number): Promise<Vault[]>;
}

/** One version of a secret. Times: `createdAt`/`updatedAt` epoch ms; `notBefore`/`expires` epoch seconds. */
export interface SecretVersion {
  vaultId: string;
  /** The secret's name as first set (case preserved). */
  name: string;
  /** 32 lower-case hex characters. */
  version: string;
  /** The encrypted value (vault/secret-cipher.ts), opaque to the store. */
  sealedValue: string;
  contentType: string | null;
  tags: Tags | null;
  enabled: boolean;
  notBefore: number | null;
  expires: number | null;
  createdAt: number;
  updatedAt: number;
}

/** A secret (a name in a vault) with its current version. */
export interface SecretEntry {
  vaultId: string;
  name: string;
  /** Epoch ms when soft-deleted; null while active. */
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
  latest: SecretVersion;
}

/** The attributes `PATCH /secrets/{name}/{version}` may change; absent fields are left unchanged. */
export interface SecretVersionPatch {
  /** A key's re-sealed content (its `key_ops` changed); never given for a secret, whose value is immutable. */
  sealedValue?: string;
  contentType?: string | null;
  tags?: Tags | null;
  enabled?: boolean;
  notBefore?: number | null;
  expires?: number | null;
  updatedAt: number;
}

/**
 * The secret change channel (PostgreSQL `LISTEN openmsi_vault_secrets`): every write to a secret publishes
 * `{vaultId}/{lower-cased name}` after it commits, so read caches of other replicas drop it at once.
 */
export const SECRET_CHANNEL = 'openmsi_vault_secrets';

/** The payload {@link SECRET_CHANNEL} carries for one secret. */
export function secretChangeKey(vaultId: string, name: string): string {
  return `${vaultId}/${name.toLowerCase()}`;
}

/**
 * Versioned objects of vaults (secrets, keys): the same lifecycle for both kinds. Names compare
 * case-insensitively; every method addresses one vault by its internal id. Reads by name and version are
 * single indexed lookups (the data plane's hot path). Said of secrets below; the same holds for keys.
 */
export interface VaultObjectStore {
  /**
   * Adds a version and makes it the latest, creating the secret when the name is new. 'deleted' (nothing
   * written) when the name is soft-deleted. Durable when it resolves. With `ifLatest`, only while that is
   * still the latest version of an active object, else 'conflict' (nothing written): two replicas rotating
   * one key at once add one version.
   */
  addVersion(version: SecretVersion, options?: { ifLatest?: string }): Promise<'added' | 'deleted' | 'conflict'>;
  /** The active secret's latest version, or the named version; undefined when absent or soft-deleted. */
  get(vaultId: string, name: string, version?: string): Promise<{ entry: SecretEntry; version: SecretVersion } | undefined>;
  /** Updates one version's attributes of an active secret; undefined when absent. */
  update(vaultId: string, name: string, version: string, patch: SecretVersionPatch): Promise<SecretVersion | undefined>;
  /** Active (or soft-deleted) secrets ordered by lower-cased name, after `afterName` (exclusive, lower-cased). */
  list(vaultId: string, options: { deleted: boolean; afterName?: string; limit: number }): Promise<SecretEntry[]>;
  /** Versions of an active secret ordered by version id, after `afterVersion` (exclusive). */
  listVersions(vaultId: string, name: string, options: { afterVersion?: string; limit: number }): Promise<SecretVersion[]>;
  /** Every version of an active secret (for backup), ordered by creation. */
  allVersions(vaultId: string, name: string): Promise<SecretVersion[]>;
  /** Soft-deletes an active secret (all versions); undefined when there is none. */
  softDelete(vaultId: string, name: string, deletedAt: number, scheduledPurgeAt: number): Promise<SecretEntry | undefined>;
  /** The soft-deleted secret; undefined when the name is not soft-deleted. */
  getDeleted(vaultId: string, name: string): Promise<SecretEntry | undefined>;
  /** Makes a soft-deleted secret active again; undefined when it is not soft-deleted. */
  recover(vaultId: string, name: string): Promise<SecretEntry | undefined>;
  /** Removes a soft-deleted secret and its versions for good; false when it is not soft-deleted. */
  purge(vaultId: string, name: string): Promise<boolean>;
  /** Restores a backup's versions as a new secret; 'exists' (nothing written) when the name is taken (active or deleted). */
  restore(versions: SecretVersion[]): Promise<'restored' | 'exists'>;
  /** Purges soft-deleted secrets (of any vault) whose scheduled purge time is at or before `now`; how many. */
  purgeDue(now: number): Promise<number>;
}

/** Secrets of vaults. */
export type SecretStore = VaultObjectStore;

/**
 * The key change channel (PostgreSQL `LISTEN openmsi_vault_keys`), as {@link SECRET_CHANNEL} is for secrets;
 * the payload is {@link secretChangeKey} of the key.
 */
export const KEY_CHANNEL = 'openmsi_vault_keys';

/** An active key's rotation policy as stored (JSON the vault's keys/rotation-policy.ts defines). */
export interface StoredRotationPolicy {
  vaultId: string;
  name: string;
  latestVersion: string;
  policy: string;
}

/**
 * Keys of vaults: versions hold the sealed key (`sealedValue`; `contentType` is always null), with the
 * lifecycle of secrets, plus one rotation policy per key.
 */
export interface KeyStore extends VaultObjectStore {
  /**
   * Restores a backup's versions as a new key with its rotation policy (null or absent: none), in one
   * transaction; 'exists' (nothing written) when the name is taken (active or deleted).
   */
  restore(versions: SecretVersion[], rotationPolicy?: string | null): Promise<'restored' | 'exists'>;
  /** The policy of an active key (null when none was ever set); undefined when there is no such active key. */
  getRotationPolicy(vaultId: string, name: string): Promise<{ policy: string | null } | undefined>;
  /** Sets the policy of an active key; false (nothing written) when there is none. Publishes. */
  setRotationPolicy(vaultId: string, name: string, policy: string): Promise<boolean>;
  /** Every active key that has a policy, of every vault (the rotation scheduler's scan). */
  listRotationPolicies(): Promise<StoredRotationPolicy[]>;
}

// ---------------------------------------------------------------------------------------------------------
// Workload identity federation (inbound): federated identity credentials and per-issuer key settings.

/** A flexible federated credential's expression (Entra's `claimsMatchingExpression`). */
export interface ClaimsMatchingExpression {
  value: string;
  languageVersion: number;
}

/**
 * A federated identity credential of a user-assigned identity or an application: a token from `issuer`
 * whose `sub` is `subject` (or whose claims satisfy `claimsMatchingExpression`) and whose `aud` holds the
 * audience is accepted as that principal's client assertion.
 */
export interface FederatedCredential {
  /** A GUID (Graph's `id`). */
  id: string;
  /** Object id of the owning principal, lower-case. */
  ownerId: string;
  /** 3-120 characters, `[A-Za-z0-9_-]`, starting alphanumeric; unique per owner case-insensitively; immutable. */
  name: string;
  issuer: string;
  /** Null only for a flexible credential. */
  subject: string | null;
  claimsMatchingExpression: ClaimsMatchingExpression | null;
  /** Exactly one. */
  audiences: string[];
  description: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * Federated credentials per owner. Reads are by owner (the token endpoint reads them on every federated grant,
 * so a change applies at once on every replica: nothing caches them).
 */
export interface FederatedCredentialStore {
  /**
   * Serializes writers of one owner's credentials until the end of the current transaction (call it first in a
   * `store.transaction()`, before reading what the write depends on, such as the per-owner limit): PostgreSQL
   * takes a transaction-scoped advisory lock keyed by the owner; SQLite has one writer at a time already. Outside a
   * transaction it locks nothing. The reads after it see what the previous holder committed only under READ
   * COMMITTED (the default), where each statement takes a new snapshot.
   */
  lockOwner(ownerId: string): Promise<void>;
  /** Creates, or replaces the owner's credential of that name (keeping `id` and `createdAt`). */
  put(credential: FederatedCredential): Promise<'created' | 'updated'>;
  /** By owner and name (case-insensitive). */
  get(ownerId: string, name: string): Promise<FederatedCredential | undefined>;
  /** By owner and id (Graph addresses credentials by id). */
  getById(ownerId: string, id: string): Promise<FederatedCredential | undefined>;
  /** The owner's credentials, by name. */
  list(ownerId: string): Promise<FederatedCredential[]>;
  /** The owner's credentials for exactly this issuer (case-sensitive). */
  listByIssuer(ownerId: string, issuer: string): Promise<FederatedCredential[]>;
  delete(ownerId: string, name: string): Promise<boolean>;
  /** Deletes every credential of the owner (it is being deleted); returns how many. */
  deleteByOwner(ownerId: string): Promise<number>;
}

/** Where an external issuer's signing keys come from, and which algorithms it may use. */
export interface FederationIssuer {
  /** Exactly as tokens carry it in `iss`. */
  issuer: string;
  /** A static JWK Set: no fetch at all. */
  jwks: { keys: Record<string, unknown>[] } | null;
  /** Fetch the JWK Set here instead of through `{issuer}/.well-known/openid-configuration`. */
  jwksUri: string | null;
  /** PEM trust anchors for this issuer's HTTPS endpoints instead of Node's trust (which NODE_EXTRA_CA_CERTS extends). */
  ca: string | null;
  /** Accepted JWS algorithms: RS256 by default; ES256 and PS256 by choice. */
  algorithms: string[];
  createdAt: number;
  updatedAt: number;
}

export interface FederationIssuerStore {
  /** Creates or replaces (keeping `createdAt`). */
  put(issuer: FederationIssuer): Promise<'created' | 'updated'>;
  get(issuer: string): Promise<FederationIssuer | undefined>;
  list(): Promise<FederationIssuer[]>;
  delete(issuer: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------------------
// Workload identity federation (outbound): an identity's link to an upstream Entra.

/**
 * An openmsi identity linked to an upstream Entra app or managed identity: the agent exchanges openmsi's
 * assertion (`sub` = the identity's object id) for the upstream's token of `clientId` in `tenantId`.
 */
export interface FederationLink {
  /** Object id of the linked identity, lower-case. */
  ownerId: string;
  /** The upstream tenant (GUID, domain, or `adfs`). */
  tenantId: string;
  /** The upstream app's or managed identity's client id. */
  clientId: string;
  /** The upstream authority's https origin (no path). */
  authorityHost: string;
  /** The outbound issuer URL this identity's assertions carry, or null for the installation's. */
  issuer: string | null;
  createdAt: number;
  updatedAt: number;
}

/** Upstream links, one per identity. */
export interface FederationLinkStore {
  /** Creates, or replaces the identity's link (keeping `createdAt`). */
  put(link: FederationLink): Promise<'created' | 'updated'>;
  get(ownerId: string): Promise<FederationLink | undefined>;
  /** The links of these identities (those that have one). */
  getMany(ownerIds: readonly string[]): Promise<FederationLink[]>;
  delete(ownerId: string): Promise<boolean>;
}

/** Every aggregate, bound to one connection or transaction. */
export interface Repositories {
  tenants: TenantStore;
  subscriptions: SubscriptionStore;
  resourceGroups: ResourceGroupStore;
  resources: ResourceStore;
  servicePrincipals: ServicePrincipalStore;
  credentials: CredentialStore;
  signingKeys: SigningKeyStore;
  replay: ReplayStore;
  authFailures: AuthFailureStore;
  enrolmentFailures: EnrolmentFailureStore;
  audit: AuditStore;
  hostCredentials: HostCredentialStore;
  joinTokens: JoinTokenStore;
  roleDefinitions: RoleDefinitionStore;
  roleAssignments: RoleAssignmentStore;
  denyAssignments: DenyAssignmentStore;
  groups: GroupStore;
  rbacVersions: RbacVersionStore;
  vaults: VaultStore;
  secrets: SecretStore;
  keys: KeyStore;
  federatedCredentials: FederatedCredentialStore;
  federationIssuers: FederationIssuerStore;
  federationLinks: FederationLinkStore;
  users: UserStore;
  refreshTokens: RefreshTokenStore;
  authorizationCodes: AuthorizationCodeStore;
  deviceCodes: DeviceCodeStore;
}

export interface TransactionOptions {
  /** `repeatable read`: one snapshot for every read in the transaction (PostgreSQL; SQLite transactions always are). */
  isolation?: 'repeatable read' | 'serializable';
}

/** An open store. Services take the narrow interfaces they need from it. */
/** What a readiness probe asks of the database itself (src/server/readiness.ts). */
export interface StoreHealth {
  /**
   * One cheap read (the newest applied schema migration's name): resolves with it, or `undefined` on a database
   * without migrations; rejects when the database does not answer within `timeoutMs`. While one probe query is
   * still outstanding (a hung database), later calls wait on it rather than start another.
   */
  check(timeoutMs: number): Promise<string | undefined>;
  /** PostgreSQL only: the connection pool's counts now (no query). */
  readonly pool?: () => { total: number; idle: number; waiting: number };
  /**
   * PostgreSQL only: seconds from sending a `NOTIFY` on a probe channel until this replica's `LISTEN`
   * connection hears it, the path every change notice to another replica takes (cache invalidation on
   * revocation included). Rejects with a timeout when it is not heard within `timeoutMs` (LISTEN down).
   */
  readonly notificationRoundTrip?: (timeoutMs: number) => Promise<number>;
}

/** What {@link StoreLocks.exclusive} did: ran `fn` (with its value), or found the lock held elsewhere. */
export type LockOutcome<T> = { acquired: true; value: T } | { acquired: false };

/**
 * Cluster-wide mutual exclusion for work exactly one replica should do at a time (signing-key rotation).
 * PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) held on one pooled connection while `fn` runs,
 * so it is released even if the process dies (the connection closes). SQLite: one process holds the store
 * file exclusively, so only this process's own holders are excluded.
 */
export interface StoreLocks {
  /**
   * Runs `fn` while holding the lock `name`. When another holder (any replica) has it, tries again every
   * 50 ms for up to `waitMs` (default 0: at once) and then answers `{ acquired: false }` without running `fn`.
   */
  exclusive<T>(name: string, fn: () => Promise<T>, options?: { waitMs?: number }): Promise<LockOutcome<T>>;
}

export interface Store extends Repositories {
  readonly dialect: Dialect;
  /** Reachability and schema version, for readiness probes. */
  readonly health: StoreHealth;
  /** Runs `fn` in one transaction; everything commits together or not at all. */
  transaction<T>(fn: (tx: Repositories) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /** Change notices (RBAC versions today). */
  readonly notifications: StoreNotifications;
  /** Cluster-wide locks (advisory locks on PostgreSQL). */
  readonly locks: StoreLocks;
  /**
   * The embedded store only: writes a consistent copy of the whole database to `destination` (an existing
   * empty file or none) while the store keeps serving. PostgreSQL has none: its backups are `pg_dump`'s.
   */
  readonly snapshot?: (destination: string) => Promise<void>;
  close(): Promise<void>;
}

/** A person's account in the directory (Microsoft Graph's `user`). */
export interface User {
  objectId: string;
  tenantId: string;
  /** As created (case kept); sign-in matches it case-insensitively. */
  userPrincipalName: string;
  displayName: string;
  mail: string | null;
  accountEnabled: boolean;
  /** The password's scrypt hash in its self-describing form (src/directory/passwords.ts), never the password. */
  passwordHash: string;
  forceChangePasswordNextSignIn: boolean;
  passwordChangedAt: number;
  createdAt: number;
}

/** What {@link UserStore.update} may change; absent fields stay. */
export interface UserChanges {
  displayName?: string;
  mail?: string | null;
  accountEnabled?: boolean;
  passwordHash?: string;
  forceChangePasswordNextSignIn?: boolean;
  passwordChangedAt?: number;
}

export interface UserStore {
  /** Throws on a UPN already taken (case-insensitively). */
  create(user: User): Promise<void>;
  getByObjectId(objectId: string): Promise<User | undefined>;
  /** Case-insensitive. */
  getByUserPrincipalName(upn: string): Promise<User | undefined>;
  list(tenantId: string): Promise<User[]>;
  /** The updated user, or undefined when there is none. Disabling an account publishes it on {@link PRINCIPAL_CHANNEL}. */
  update(objectId: string, changes: UserChanges): Promise<User | undefined>;
  /** Deletes the user; when it existed, publishes its object id on {@link PRINCIPAL_CHANNEL} (after commit). */
  delete(objectId: string): Promise<boolean>;
}

/** A refresh token as stored: its hash, never the token. */
export interface RefreshTokenRecord {
  tokenHash: string;
  /** Every token rotated from one sign-in shares its family; a replay revokes the family. */
  familyId: string;
  userId: string;
  tenantId: string;
  clientId: string;
  scope: string;
  issuedAt: number;
  expiresAt: number;
  usedAt: number | null;
  revokedAt: number | null;
}

export interface RefreshTokenStore {
  create(token: RefreshTokenRecord): Promise<void>;
  get(tokenHash: string): Promise<RefreshTokenRecord | undefined>;
  /**
   * Marks the token used, only if it is unused and not revoked: true for exactly one of any number of
   * concurrent callers (rotation), false for a replay.
   */
  markUsed(tokenHash: string, now: number): Promise<boolean>;
  /** Revokes every live token of the family; returns how many. */
  revokeFamily(familyId: string, now: number): Promise<number>;
  /** Revokes every live token of the user (password change, sign-out, disabling); returns how many. */
  revokeUser(userId: string, now: number): Promise<number>;
  /** Deletes tokens that expired before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** An authorization code as stored: its hash, never the code; bound to what the authorize request named. */
export interface AuthorizationCodeRecord {
  codeHash: string;
  tenantId: string;
  /** Lower case. */
  clientId: string;
  /** Exactly as the authorize request sent it: the token request must send the same. */
  redirectUri: string;
  codeChallenge: string;
  codeChallengeMethod: 'S256' | 'plain';
  userId: string;
  /** The OIDC nonce of the authorize request, echoed in the ID token. */
  nonce: string | null;
  familyId: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface AuthorizationCodeStore {
  create(code: AuthorizationCodeRecord): Promise<void>;
  get(codeHash: string): Promise<AuthorizationCodeRecord | undefined>;
  /** Marks the code used, only if unused: true for exactly one of any number of concurrent redemptions. */
  markUsed(codeHash: string, now: number): Promise<boolean>;
  /** Deletes codes that expired before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

export type DeviceCodeStatus = 'pending' | 'approved' | 'declined' | 'redeemed';

/** A device-code sign-in as stored: the device code's hash, the user code the person types, its decision. */
export interface DeviceCodeRecord {
  deviceCodeHash: string;
  userCode: string;
  tenantId: string;
  /** Lower case. */
  clientId: string;
  /** The scope (v2) or resource (v1) the device asked for, as sent. */
  scope: string;
  /** The address that asked for the code (device codes are rate-limited per source). */
  source: string;
  status: DeviceCodeStatus;
  userId: string | null;
  intervalSeconds: number;
  lastPollAt: number | null;
  createdAt: number;
  expiresAt: number;
}

export interface DeviceCodeStore {
  create(record: DeviceCodeRecord): Promise<void>;
  getByDeviceCode(deviceCodeHash: string): Promise<DeviceCodeRecord | undefined>;
  getByUserCode(userCode: string): Promise<DeviceCodeRecord | undefined>;
  /** Approves (with the user) or declines a pending, unexpired code: false when it was decided already or expired. */
  decide(userCode: string, decision: { status: 'approved'; userId: string } | { status: 'declined' }, now: number): Promise<boolean>;
  /** Records a poll unless the last one was less than the interval ago: false means "slow down". */
  recordPoll(deviceCodeHash: string, now: number): Promise<boolean>;
  /** approved → redeemed, once: true for exactly one of any number of concurrent polls. */
  redeem(deviceCodeHash: string): Promise<boolean>;
  /** How many codes `source` asked for since `since`. */
  countFromSource(source: string, since: number): Promise<number>;
  /** Deletes codes that expired before `now`; returns how many. */
  purgeExpired(now: number): Promise<number>;
}
