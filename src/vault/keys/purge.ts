/** `DELETE /deletedkeys/{name}` (spec §1.3 #10): 204; 403 while the vault has purge protection. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeysDeps } from './common.js';

export function purgeDeletedKeyRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.delete('/deletedkeys/:name', { config: { op: KEY_OPERATIONS.purge, target: 'key' } }, async (request, reply) => {
    const { vault } = admitted(request);
    const name = keyNameOf(request);
    if ((await ctx.store.keys.getDeleted(vault.id, name)) === undefined) throw VaultErrors.deletedKeyNotFound(name);
    if (vault.properties.enablePurgeProtection === true) throw VaultErrors.purgeProtected(vault);
    if (!(await ctx.store.keys.purge(vault.id, name))) throw VaultErrors.deletedKeyNotFound(name);
    return reply.code(204).send();
  });
}
