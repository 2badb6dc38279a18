/**
 * `DELETE /secrets/{name}` (spec §1.3 #4, §1.7): soft delete of every version, purge scheduled after the
 * vault's retention days. The deleted secret is readable at once, as the clients' delete poller expects.
 */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView, deletedView } from '../views.js';
import { secretNameOf, type SecretsDeps } from './common.js';

const DAY_MS = 86_400_000;

export function deleteSecretRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  app.delete('/secrets/:name', { config: { op: SECRET_OPERATIONS.delete, target: 'secret' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const now = ctx.clock.now();
    const entry = await ctx.store.secrets.softDelete(vault.id, name, now, now + vault.properties.softDeleteRetentionInDays * DAY_MS);
    if (entry === undefined) throw VaultErrors.secretNotFound(name);
    return { ...deletedView(request, entry), ...bundleView(request, entry.name, entry.latest, vault, apiVersion) };
  });
}
