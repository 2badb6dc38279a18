import type { AuthorityContext } from '../authority/context.js';
import type { ManagementContext } from '../management/context.js';
import type { Readiness } from './readiness.js';

/**
 * What one server process holds: the token service's context and the management API's, built together by
 * createOpenmsiServer() (server.ts). Each service sees only its own half.
 */
export interface ServerContext extends AuthorityContext, ManagementContext {
  /** PEM of the CA that issued the server certificate (what `openmsi ca export` prints). */
  readonly caCertPem: string;
  /** What `GET /readyz` answers (readiness.ts). */
  readonly readiness: Readiness;
}
