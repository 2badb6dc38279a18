/** `GET /deletedsecrets/{name}` (spec §1.3 #8): the DeletedSecretBundle (no value); 404 "Deleted Secret not found". */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView, deletedView } from '../views.js';
import { secretNameOf, type SecretsDeps } from './common.js';

export function getDeletedSecretRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.get('/deletedsecrets/:name', { config: { op: SECRET_OPERATIONS.getDeleted, target: 'secret' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const entry = await ctx.store.secrets.getDeleted(vault.id, name);
    if (entry === undefined) throw VaultErrors.deletedSecretNotFound(name);
    return { ...deletedView(request, entry), ...bundleView(request, entry.name, entry.latest, vault, apiVersion) };
  });
}
