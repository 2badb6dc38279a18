/** `DELETE /deletedsecrets/{name}` (spec §1.3 #9, §1.7): 204; 403 while the vault has purge protection. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { secretNameOf, type SecretsDeps } from './common.js';

export function purgeDeletedSecretRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.delete('/deletedsecrets/:name', { config: { op: SECRET_OPERATIONS.purge, target: 'secret' } }, async (request, reply) => {
    const { vault } = admitted(request);
    const name = secretNameOf(request);
    if ((await ctx.store.secrets.getDeleted(vault.id, name)) === undefined) throw VaultErrors.deletedSecretNotFound(name);
    if (vault.properties.enablePurgeProtection === true) throw VaultErrors.purgeProtected(vault);
    if (!(await ctx.store.secrets.purge(vault.id, name))) throw VaultErrors.deletedSecretNotFound(name);
    return reply.code(204).send();
  });
}
