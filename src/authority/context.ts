import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { VerifiedToken } from '../shared/token-verifier.js';
import type { MasterKey } from '../pki/master-key.js';
import type { Store } from '../store/types.js';
import type { AuditWriter } from '../store/audit-writer.js';
import type { ManagementContext } from '../management/context.js';
import type { KeyRing } from './keys/key-ring.js';
import type { KeyRotator } from './keys/rotation.js';
import type { TokenIssuer } from './token-issuer.js';
import type { AuthorityUrls } from './urls.js';
import type { ClientAuthThrottle } from './token/throttle.js';

/**
 * Everything a route or grant needs, built once per process by `createAuthority()` and passed down
 * explicitly (no module-level singletons, so tests build as many authorities as they like).
 */
export interface AuthorityContext extends ManagementContext {
  readonly store: Store;
  readonly keyRing: KeyRing;
  readonly rotator: KeyRotator;
  readonly masterKey: MasterKey;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditWriter;
  readonly tokens: TokenIssuer;
  readonly urls: AuthorityUrls;
  /** Throttles failed client authentication at the token endpoint, per client and source, across replicas. */
  readonly authThrottle: ClientAuthThrottle;
  /** The tenant `openmsi init` created: what the `adfs` tenant alias names. */
  readonly defaultTenantId: string;
  /** Verifies an access token this authority issued for one of `audiences` (any tenant it serves). */
  verifyAccessToken(token: string, audiences: readonly string[]): Promise<VerifiedToken>;
  /** PEM of the CA that issued the server certificate (what `openmsi ca export` prints). */
  readonly caCertPem: string;
  /** Vault hosts are `{name}.{vaultDomain}`; the data plane is served on the authority's port. */
  readonly vaultDomain: string;
}
