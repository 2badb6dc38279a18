/**
 * `DELETE /keys/{name}` (spec §1.3 #5, §1.6): soft delete of every version, purge scheduled after the vault's
 * retention days; the DeletedKeyBundle of the latest version (versioned kid), readable at once.
 */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, openPayload, type KeysDeps } from './common.js';
import { deletedKeyView, keyBundleView } from './views.js';

const DAY_MS = 86_400_000;

export function deleteKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.delete('/keys/:name', { config: { op: KEY_OPERATIONS.delete, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const now = ctx.clock.now();
    const entry = await ctx.store.keys.softDelete(vault.id, name, now, now + vault.properties.softDeleteRetentionInDays * DAY_MS);
    if (entry === undefined) throw VaultErrors.keyNotFound(name);
    const payload = openPayload(cipher, vault.id, entry.name, entry.latest);
    return { ...deletedKeyView(request, entry), ...keyBundleView(request, entry.name, entry.latest, payload, vault, apiVersion) };
  });
}
