import type { AuthorityContext } from '../../src/authority/context.js';
import { ClientDirectory, type ClientDirectorySource } from '../../src/authority/token/client-directory.js';

/**
 * Gives a store-less unit suite's context the token endpoint's client cache over its fake store (which publishes
 * no change notices: each suite's context is built per test).
 */
export function withClientDirectory(ctx: AuthorityContext): AuthorityContext {
  const store = { ...(ctx.store as unknown as ClientDirectorySource), notifications: { subscribe: () => () => undefined } };
  Object.assign(ctx, { clients: new ClientDirectory({ store, clock: ctx.clock }) });
  return ctx;
}
