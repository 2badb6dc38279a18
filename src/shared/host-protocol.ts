/**
 * The wire contract between `openmsi agent` (one per host) and the authority's host API. Both sides
 * import these names and shapes; the agent never imports authority code and vice versa.
 *
 * Authentication:
 * - `enrol` is authenticated by a single-use join token (from `openmsi host join-token create`).
 * - Every other host call carries `Authorization: Bearer <host assertion>`: a JWT signed with the host
 *   credential's private key (ES256; header `kid` = the credential's key id), payload
 *   `{ iss: hostResourceId, sub: hostResourceId, aud: <authority origin> + HOST_API_BASE, jti, iat, exp }`
 *   with `exp - iat <= HOST_ASSERTION_MAX_LIFETIME_SECONDS`. A jti is accepted once. The origin is the one the
 *   call is sent to: with several replicas (`--authority`, repeatable), each assertion names the replica it
 *   goes to, which accepts the installation's public URL and its certificate's names on its own port.
 * - Tokens for workloads come from the token endpoint's managed-identity grant
 *   (`urn:openmsi:params:oauth:grant-type:managed-identity`, see src/authority/grants/managed-identity.ts),
 *   whose `client_assertion` has the same shape with `aud` = the token endpoint URL.
 *
 * Errors use the API family: `{ error: { code, message } }` with the codes in {@link HostApiErrorCode}.
 */

/** Path prefix of the host API on the authority's origin. */
export const HOST_API_BASE = '/openmsi/hosts';

export const HOST_API_PATHS = {
  /** POST {@link EnrolRequest} → 201 {@link HostCredentialGrant}. No bearer; the join token authenticates. */
  enrol: `${HOST_API_BASE}/enrol`,
  /** POST {@link RenewRequest} (host assertion by the current credential) → 201 {@link HostCredentialGrant}. */
  renew: `${HOST_API_BASE}/renew`,
  /** GET (host assertion) → 200 {@link HostDescription}: the host and the identities assigned to it now. */
  self: `${HOST_API_BASE}/self`,
  /** POST {@link AuditUpload} (host assertion) → 200 `{ accepted: number }`; records are idempotent by id. */
  audit: `${HOST_API_BASE}/audit`,
  /**
   * POST {@link FederationAssertionRequest} (host assertion) → 200 {@link FederationAssertionGrant}: the outbound
   * assertion an upstream Entra exchanges for a linked identity's token; only for an identity assigned to the
   * calling host now (404 `IdentityNotFound`) that has an upstream link (409 `NotFederated`).
   */
  federationAssertion: `${HOST_API_BASE}/federation-assertion`,
} as const;

export const HOST_ASSERTION_MAX_LIFETIME_SECONDS = 300;

/**
 * The authority's readiness probe (unauthenticated; 200 when it can issue tokens now, 503 when not). An agent
 * given several authorities probes a more preferred one with it before it goes back to it.
 */
export const AUTHORITY_READY_PATH = '/readyz';

/** Stable error codes of the host API (HTTP status in the comment). */
export type HostApiErrorCode =
  /** 401: the join token is unknown or malformed. */
  | 'JoinTokenInvalid'
  /** 401: the join token was already used. */
  | 'JoinTokenUsed'
  /** 401: the join token expired. */
  | 'JoinTokenExpired'
  /** 429 + Retry-After: too many failed enrolment attempts from this address. */
  | 'TooManyRequests'
  /** 401: the host assertion is missing, invalid, replayed, its credential revoked or expired, or the host deleted. */
  | 'HostNotRecognised'
  /** 400: a body that is not the documented shape. */
  | 'InvalidRequest'
  /** 404: the identity is not assigned to this host (federation assertions). */
  | 'IdentityNotFound'
  /** 409: the identity has no upstream link (federation assertions). */
  | 'NotFederated';

/** A public key as JWK (the agent sends EC P-256 keys; the private key never leaves the host). */
export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
}

export interface EnrolRequest {
  joinToken: string;
  publicJwk: PublicJwk;
}

export interface RenewRequest {
  publicJwk: PublicJwk;
}

/** A registered host credential. Times are epoch seconds. */
export interface HostCredentialGrant {
  tenantId: string;
  hostResourceId: string;
  /** The credential's key id: the `kid` of every assertion the host signs with it. */
  keyId: string;
  issuedOn: number;
  expiresOn: number;
  /** The v1 token endpoint the managed-identity grant is served at: `{origin}/{tenantId}/oauth2/token`. */
  tokenEndpoint: string;
}

/** One identity the host may obtain tokens for. */
export interface HostIdentity {
  type: 'SystemAssigned' | 'UserAssigned';
  /** The service principal's object id (`oid` in tokens). */
  objectId: string;
  /** The service principal's app id (`appid`/`client_id`). */
  clientId: string;
  /** ARM id of the user-assigned identity, or of the host for its system-assigned identity (`xms_mirid`). */
  resourceId: string;
  /**
   * Outbound federation: the upstream Entra whose tokens the agent serves for this identity (it exchanges a
   * {@link FederationAssertionGrant} at `{authorityHost}/{tenantId}/oauth2/v2.0/token`). Absent: openmsi's own tokens.
   */
  upstream?: UpstreamLink;
}

/** An identity's upstream Entra app or managed identity. */
export interface UpstreamLink {
  tenantId: string;
  clientId: string;
  /** https origin, no path. */
  authorityHost: string;
}

export interface FederationAssertionRequest {
  /** The identity's object id. */
  objectId: string;
}

/** An outbound assertion: `iss` = the issuer, `sub` = the identity's object id, `aud` = api://AzureADTokenExchange. */
export interface FederationAssertionGrant {
  assertion: string;
  issuer: string;
  /** Epoch seconds. */
  issuedAt: number;
  expiresOn: number;
}

/** What `GET self` answers: enough for `/metadata/instance` and for resolving selectors locally. */
export interface HostDescription {
  tenantId: string;
  hostResourceId: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
  /** A stable GUID for the machine (Azure's `vmId`; Arc machines' `properties.vmId`). */
  vmId: string;
  identities: HostIdentity[];
  credential: { keyId: string; expiresOn: number };
}

/** Where a token request came from on the host. `pid`, `uid`, `exe` only where the agent resolved them. */
export interface AgentCaller {
  address: string;
  pid?: number;
  uid?: number;
  exe?: string;
}

/** The agent's surfaces, as named in audit records. */
export type AgentSurface = 'imds' | 'app-service' | 'app-service-2017' | 'cloud-shell' | 'arc' | 'session' | 'instance';

/** Every {@link AgentSurface}. */
export const AGENT_SURFACES: readonly AgentSurface[] = ['imds', 'app-service', 'app-service-2017', 'cloud-shell', 'arc', 'session', 'instance'];

/**
 * The most characters each text field of an {@link AgentAuditRecord} may have. The agent cuts a longer
 * value to the bound when it records it (ending in {@link AUDIT_TRUNCATION_MARKER}); the authority refuses
 * a record past a bound (and counts it, storing the rest of its batch).
 */
export const AGENT_AUDIT_FIELD_LIMITS = {
  identity: 128,
  audience: 2048,
  reason: 128,
  session: 128,
  callerAddress: 64,
  callerExe: 4096,
} as const;

/** What ends an audit field the agent cut to its bound. */
export const AUDIT_TRUNCATION_MARKER = '…[truncated]';

/** The most records one audit upload may carry. */
export const AUDIT_UPLOAD_MAX_RECORDS = 1000;
/** The most bytes one audit upload's body may have (the agent sends smaller batches; the authority refuses larger bodies with 413). */
export const AUDIT_UPLOAD_MAX_BYTES = 2 * 1024 * 1024;

/**
 * One audit record from an agent. Identical outcomes within one flush window are folded into one record
 * with `count` (first and last time kept), so a cache serving thousands of tokens a second stays auditable.
 * Never carries a token or a header secret.
 */
export interface AgentAuditRecord {
  /** UUID chosen by the agent; the authority ignores a record whose id it already stored (retries). */
  id: string;
  /** Epoch milliseconds of the first occurrence. */
  at: number;
  /** Epoch milliseconds of the last occurrence (= `at` when `count` is 1). */
  lastAt: number;
  count: number;
  decision: 'served' | 'refused';
  /** `cache`, `authority`, or `upstream` (a linked identity's token fetched from its upstream Entra) for served tokens. */
  source?: 'cache' | 'authority' | 'upstream';
  surface: AgentSurface;
  /** Object id of the identity, when the request resolved to one. */
  identity?: string;
  /** The audience (`resource`) as requested. */
  audience?: string;
  caller: AgentCaller;
  /** HTTP status answered. */
  status: number;
  /** The refusal's error code (e.g. `invalid_request`, `identity_not_found`, `rate_limited`). */
  reason?: string;
  /** The `openmsi run` session the request authenticated with, if any (its id, never its secret). */
  session?: string;
}

export interface AuditUpload {
  records: AgentAuditRecord[];
}

/**
 * The answer to an {@link AuditUpload} (200). `accepted`: records now stored, counting those stored by an
 * earlier upload (so the agent may drop all of them from its spool). `stored` (optional, added by the
 * authority side): how many of them were new. `refused`: how many were not stored (see below).
 */
export interface AuditUploadResult {
  accepted: number;
  stored?: number;
  /**
   * Records of the batch that broke the contract: not stored, counted in one `agent.audit.dropped` event
   * of the host (with their reasons). The agent removes them from its spool like the accepted ones.
   */
  refused?: number;
}
