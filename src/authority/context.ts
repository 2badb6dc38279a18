import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { MasterKey } from '../pki/master-key.js';
import type { Store } from '../store/types.js';
import type { AuditWriter } from '../store/audit-writer.js';
import type { KeyRing } from './keys/key-ring.js';
import type { KeyRotator } from './keys/rotation.js';
import type { TokenIssuer } from './token-issuer.js';
import type { AuthorityUrls } from './urls.js';
import type { ClientAuthThrottle } from './token/throttle.js';
import type { IssuerKeys } from './federation/issuer-keys.js';
import type { ClientDirectory } from './token/client-directory.js';

/** Where the token endpoint reports each grant (the server's Prometheus metrics, src/server/metrics.ts). */
export interface GrantMetrics {
  /** One token request ended: its grant type (a known one, else `other`), outcome (`success` or the OAuth error code) and duration. */
  grant(grantType: string, outcome: string, seconds: number): void;
}

/**
 * Everything the token service's routes and grants need, built once per process by the server's composition
 * root (src/server/server.ts) and passed down explicitly (no module-level singletons, so tests build as many
 * servers as they like). The server's context adds what management and the vault need (src/server/context.ts).
 */
export interface AuthorityContext {
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly rotator: KeyRotator;
  readonly masterKey: MasterKey;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditWriter;
  readonly tokens: TokenIssuer;
  readonly urls: AuthorityUrls;
  /** Applications' and user-assigned identities' principals and credentials, cached; dropped on every replica as they change. */
  readonly clients: ClientDirectory;
  /** Throttles failed client authentication at the token endpoint, per client and source, across replicas. */
  readonly authThrottle: ClientAuthThrottle;
  /** External issuers' keys for federated client assertions (cached, bounded; federation/issuer-keys.ts). */
  readonly federation: IssuerKeys;
  /**
   * The outbound federation issuer (`iss` of assertions for upstream Entra tenants): the configured one, else
   * `{canonical origin}/openmsi/federation` (a function: the canonical origin follows the bound port).
   */
  readonly outboundIssuer: () => string;
  /** Whether {@link outboundIssuer} is the default one, whose documents the authority serves itself. */
  readonly outboundIssuerIsDefault: boolean;
  /** Grant counts and latency; absent, nothing is measured. */
  readonly metrics?: GrantMetrics;
  /** The tenant `openmsi init` created: what the `adfs` tenant alias names. */
  readonly defaultTenantId: string;
}
