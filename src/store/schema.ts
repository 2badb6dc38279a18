/**
 * Table shapes, as kysely sees them. Portable across SQLite and PostgreSQL: timestamps are epoch
 * milliseconds (`bigint` in PostgreSQL, parsed back to numbers), booleans are 0/1 integers, structured
 * values are JSON text.
 */
import type { Generated } from 'kysely';

export interface TenantTable {
  id: string;
  display_name: string;
  /** Lower-case primary domain, e.g. `openmsi.local`; token requests may name the tenant by it. */
  default_domain: string;
  created_at: number;
}

export interface SubscriptionTable {
  id: string;
  tenant_id: string;
  display_name: string;
  state: string;
  created_at: number;
}

export interface ResourceGroupTable {
  /** Lower-case ARM id: ARM ids compare case-insensitively. */
  key: string;
  /** ARM id in the casing it was created with. */
  id: string;
  subscription_id: string;
  name: string;
  location: string;
  tags: string;
  created_at: number;
  updated_at: number;
}

export interface ResourceTable {
  key: string;
  id: string;
  subscription_id: string;
  /** Lower-case id of the resource group that holds it. */
  resource_group_key: string;
  type: string;
  name: string;
  location: string;
  tags: string;
  properties: string;
  /** The object id of its system-assigned identity, or null when it has none. */
  system_principal_id: string | null;
  created_at: number;
  updated_at: number;
}

/** Which user-assigned identities are attached to which resource. */
export interface ResourceUserIdentityTable {
  resource_key: string;
  identity_key: string;
  created_at: number;
}

export interface ServicePrincipalTable {
  object_id: string;
  tenant_id: string;
  /** Client id. */
  app_id: string;
  display_name: string;
  /** `Application` or `ManagedIdentity`. */
  kind: string;
  /** For managed identities: the lower-case ARM id the identity belongs to (the UAMI, or the resource). */
  mi_resource_key: string | null;
  mi_resource_id: string | null;
  /** For managed identities: `SystemAssigned` or `UserAssigned`. */
  mi_type: string | null;
  /** 1 when this principal may call the management API. */
  is_directory_admin: number;
  created_at: number;
}

export interface ClientCredentialTable {
  key_id: string;
  app_id: string;
  /** `Password` or `AsymmetricX509Cert`. */
  type: string;
  display_name: string;
  /** First three characters of a secret, as Entra shows them. */
  hint: string | null;
  /** HMAC-SHA256 of the secret under a key derived from the master key, base64url. */
  secret_hash: string | null;
  thumbprint_sha1: string | null;
  thumbprint_sha256: string | null;
  /** DER certificate, base64. */
  certificate: string | null;
  start_at: number;
  end_at: number;
  created_at: number;
}

export interface SigningKeyTable {
  kid: string;
  /** `next`, `current`, `retired` or `revoked`. */
  state: string;
  alg: string;
  /** PKCS#8 private key, AES-256-GCM encrypted under the master key. */
  private_key_enc: string;
  /** Public JWK (with kid, x5t, x5c), JSON. */
  public_jwk: string;
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  /** Retired keys stay in the JWKS until this time. */
  publish_until: number | null;
  revoked_at: number | null;
}

export interface AssertionReplayTable {
  /** Hash of client id and assertion `jti`. */
  key: string;
  expires_at: number;
}

export interface AuthFailureTable {
  /** What failed to authenticate: `app:{client id}`, `host:{credential key id}` or `source:{address}`. */
  key: string;
  /** Start of the fixed window the count belongs to (epoch ms). */
  window_start: number;
  failures: number;
  /** When the row may be purged (the window's end). */
  expires_at: number;
}

export interface AuditEventTable {
  seq: Generated<number>;
  id: string;
  at: number;
  tenant_id: string | null;
  /** Object id of the caller, or `system`. */
  actor: string;
  action: string;
  target: string;
  outcome: string;
  detail: string;
}

export interface HostCredentialTable {
  key_id: string;
  host_resource_key: string;
  host_resource_id: string;
  /** Public JWK, JSON. */
  public_jwk: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface JoinTokenTable {
  /** Public half of the token (base64url): the row is found by it. */
  id: string;
  /** SHA-256 of the secret half, base64url; the secret itself is never stored. */
  secret_hash: string;
  tenant_id: string;
  host_resource_key: string;
  host_resource_id: string;
  /** Object id of the principal that created it. */
  created_by: string;
  created_at: number;
  expires_at: number;
  /** When it was consumed; null while unused. */
  used_at: number | null;
}

export interface RoleDefinitionTable {
  id: string;
  tenant_id: string;
  role_name: string;
  /** Lower-case role name: unique per tenant. */
  role_name_key: string;
  description: string;
  /** JSON `Permission[]`. */
  permissions: string;
  /** JSON `string[]`. */
  assignable_scopes: string;
  created_at: number;
  created_by: string;
  updated_at: number;
  updated_by: string;
}

export interface RoleAssignmentTable {
  id: string;
  tenant_id: string;
  scope: string;
  scope_key: string;
  subscription_key: string | null;
  role_definition_id: string;
  principal_id: string;
  principal_type: string;
  description: string | null;
  created_at: number;
  created_by: string;
  updated_at: number;
  updated_by: string;
}

export interface DenyAssignmentTable {
  id: string;
  tenant_id: string;
  name: string;
  name_key: string;
  description: string;
  scope: string;
  scope_key: string;
  permissions: string;
  principals: string;
  exclude_principals: string;
  do_not_apply_to_child_scopes: number;
  is_system_protected: number;
  created_at: number;
  created_by: string;
}

export interface GroupTable {
  object_id: string;
  tenant_id: string;
  display_name: string;
  mail_nickname: string;
  description: string | null;
  created_at: number;
}

export interface GroupMemberTable {
  group_id: string;
  member_id: string;
  tenant_id: string;
  created_at: number;
}

export interface RbacVersionTable {
  /** Lower-case tenant id. */
  tenant_id: string;
  version: number;
}

export interface VaultTable {
  id: string;
  name: string;
  name_key: string;
  resource_id: string;
  tenant_id: string;
  subscription_id: string;
  subscription_key: string;
  resource_group: string;
  resource_group_key: string;
  location: string;
  tags: string;
  properties: string;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface VaultSecretTable {
  vault_id: string;
  name_key: string;
  name: string;
  latest_version: string;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
}

/** A key's row: a secret's, plus its rotation policy (JSON; null when none was ever set). */
export interface VaultKeyTable extends VaultSecretTable {
  rotation_policy: string | null;
}
export interface VaultSecretVersionTable {
  vault_id: string;
  name_key: string;
  version: string;
  sealed_value: string;
  content_type: string | null;
  /** JSON, or null when the version has no tags. */
  tags: string | null;
  enabled: number;
  not_before: number | null;
  expires: number | null;
  created_at: number;
  updated_at: number;
}

export interface FederatedCredentialTable {
  /** Object id of the owning principal (a user-assigned identity's or an application's), lower-case. */
  owner_id: string;
  /** Lower-cased name: names are unique per owner, case-insensitively. */
  name_key: string;
  id: string;
  name: string;
  issuer: string;
  subject: string | null;
  /** `{value, languageVersion}` as JSON, or null. */
  claims_matching_expression: string | null;
  /** JSON array of strings (one, as Entra requires). */
  audiences: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export interface FederationIssuerTable {
  issuer: string;
  /** A static JWK Set as JSON, or null. */
  jwks: string | null;
  jwks_uri: string | null;
  /** PEM trust anchors for this issuer's discovery and JWKS, or null for Node's trust. */
  ca: string | null;
  /** JSON array of accepted JWS algorithms. */
  algorithms: string;
  created_at: number;
  updated_at: number;
}

export interface FederationLinkTable {
  /** Object id of the linked identity (a user-assigned identity's principal), lower-case. */
  owner_id: string;
  /** The upstream Entra tenant (GUID or domain) and the client id of the upstream app or managed identity. */
  tenant_id: string;
  client_id: string;
  /** https origin of the upstream authority, e.g. `https://login.microsoftonline.com`. */
  authority_host: string;
  /** The outbound issuer for this identity's assertions, or null for the installation's. */
  issuer: string | null;
  created_at: number;
  updated_at: number;
}

export interface Database {
  tenants: TenantTable;
  subscriptions: SubscriptionTable;
  resource_groups: ResourceGroupTable;
  resources: ResourceTable;
  resource_user_identities: ResourceUserIdentityTable;
  service_principals: ServicePrincipalTable;
  client_credentials: ClientCredentialTable;
  signing_keys: SigningKeyTable;
  assertion_replay: AssertionReplayTable;
  auth_failures: AuthFailureTable;
  /** Failed host enrolments per source (`source:{address}`): the same shape as {@link AuthFailureTable}. */
  enrolment_failures: AuthFailureTable;
  audit_events: AuditEventTable;
  host_credentials: HostCredentialTable;
  join_tokens: JoinTokenTable;
  role_definitions: RoleDefinitionTable;
  role_assignments: RoleAssignmentTable;
  deny_assignments: DenyAssignmentTable;
  groups: GroupTable;
  group_members: GroupMemberTable;
  rbac_versions: RbacVersionTable;
  vaults: VaultTable;
  vault_secrets: VaultSecretTable;
  vault_secret_versions: VaultSecretVersionTable;
  vault_keys: VaultKeyTable;
  /** Secrets' version columns; `sealed_value` holds the sealed key, `content_type` is always null. */
  vault_key_versions: VaultSecretVersionTable;
  federated_credentials: FederatedCredentialTable;
  federation_issuers: FederationIssuerTable;
  federation_links: FederationLinkTable;
  users: UserTable;
  refresh_tokens: RefreshTokenTable;
  authorization_codes: AuthorizationCodeTable;
  device_codes: DeviceCodeTable;
}

export interface UserTable {
  object_id: string;
  tenant_id: string;
  user_principal_name: string;
  upn_key: string;
  display_name: string;
  mail: string | null;
  account_enabled: number;
  password_hash: string;
  force_change_password: number;
  password_changed_at: number;
  created_at: number;
}

export interface RefreshTokenTable {
  token_hash: string;
  family_id: string;
  user_id: string;
  tenant_id: string;
  client_id: string;
  scope: string;
  issued_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export interface AuthorizationCodeTable {
  code_hash: string;
  tenant_id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  code_challenge_method: string;
  user_id: string;
  nonce: string | null;
  family_id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface DeviceCodeTable {
  device_code_hash: string;
  user_code: string;
  tenant_id: string;
  client_id: string;
  scope: string;
  source: string;
  status: string;
  user_id: string | null;
  interval_seconds: number;
  last_poll_at: number | null;
  created_at: number;
  expires_at: number;
}
