/** `POST /deletedsecrets/{name}/recover` (spec §1.3 #10): the secret is active again; its bundle, without the value. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView } from '../views.js';
import { secretNameOf, type SecretsDeps } from './common.js';

export function recoverDeletedSecretRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.post('/deletedsecrets/:name/recover', { config: { op: SECRET_OPERATIONS.recover, target: 'secret' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const entry = await ctx.store.secrets.recover(vault.id, name);
    if (entry === undefined) throw VaultErrors.deletedSecretNotFound(name);
    return bundleView(request, entry.name, entry.latest, vault, apiVersion);
  });
}
