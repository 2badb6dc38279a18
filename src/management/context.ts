import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { VerifiedToken } from '../shared/token-verifier.js';
import type { MasterKey } from '../pki/master-key.js';
import type { AuditWriter } from '../store/audit-writer.js';
import type { Store } from '../store/types.js';
import type { Authorizer, RbacStateSource } from '../rbac/contracts.js';
import type { TakenBackup } from '../backup/create.js';

/** Where callers get tokens: named in `WWW-Authenticate` challenges and wrong-issuer messages. */
export interface TokenAuthorityLocation {
  /** The authority's https origin, e.g. `https://localhost:8443`. */
  readonly origin: string;
  /** `iss` of the access tokens the authority issues for a tenant. */
  v1Issuer(tenantId: string): string;
  /**
   * Every origin the server is published at, from its configuration only (the canonical origin and each name
   * of its certificate on the bound port). The same array until the port changes. az's cloud names one of
   * them as its Microsoft Graph endpoint, and then asks for Graph tokens with that URL as the resource.
   */
  advertisedOrigins(): readonly { readonly origin: string }[];
}

/** The signing-key operations `/openmsi/keys` exposes; the authority implements them. */
export interface SigningKeyAdministration {
  /** Key ids currently in the published JWKS. */
  publishedKids(): ReadonlySet<string>;
  rotateNow(options: { revokePrevious: boolean }): Promise<{ current: string; previous: string | null; revoked: boolean }>;
}

/**
 * What the management API needs from the process that hosts it. The authority builds one today; the vault
 * and RBAC services will host their resource types through the same interface, without the token
 * service's internals.
 */
/** Outbound federation: the installation's issuer and its public keys (for the link view and the export). */
export interface OutboundFederationView {
  /** The installation's outbound issuer URL. */
  issuer(): string;
  /** The JWK Set assertions verify with (public members only). */
  jwks(): { keys: Record<string, unknown>[] };
}

export interface ManagementContext {
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly masterKey: MasterKey;
  readonly audit: AuditWriter;
  readonly authority: TokenAuthorityLocation;
  readonly signingKeys: SigningKeyAdministration;
  readonly outboundFederation: OutboundFederationView;
  /** RBAC: decides every management call (the route's action at its scope). */
  readonly authorizer: Authorizer;
  /** Where the authoriser reads RBAC state; served to remote authorisers by `/openmsi/rbac/state|version`. */
  readonly rbacSource: RbacStateSource;
  /** Verifies an access token the authority issued for one of `audiences` (any tenant it serves). */
  verifyAccessToken(token: string, audiences: readonly string[]): Promise<VerifiedToken>;
  /** Online backups of the embedded store (`POST /openmsi/backup`); absent on PostgreSQL (`pg_dump` instead). */
  readonly backups?: { take(): Promise<TakenBackup> };
  /** Vault hosts are `{name}.{vaultDomain}` (config.json `vaultDomain`): what a vault's `vaultUri` names. */
  readonly vaultDomain: string;
}
