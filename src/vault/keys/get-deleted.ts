/** `GET /deletedkeys/{name}` (spec §1.3 #9): the DeletedKeyBundle; 404 "Deleted Key not found". */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, openPayload, type KeysDeps } from './common.js';
import { deletedKeyView, keyBundleView } from './views.js';

export function getDeletedKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.get('/deletedkeys/:name', { config: { op: KEY_OPERATIONS.getDeleted, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const entry = await ctx.store.keys.getDeleted(vault.id, name);
    if (entry === undefined) throw VaultErrors.deletedKeyNotFound(name);
    const payload = openPayload(cipher, vault.id, entry.name, entry.latest);
    return { ...deletedKeyView(request, entry), ...keyBundleView(request, entry.name, entry.latest, payload, vault, apiVersion) };
  });
}
