/** `POST /deletedkeys/{name}/recover` (spec §1.3 #11): the key is active again, every version and its policy; its bundle. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, openPayload, type KeysDeps } from './common.js';
import { keyBundleView } from './views.js';

export function recoverDeletedKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.post('/deletedkeys/:name/recover', { config: { op: KEY_OPERATIONS.recover, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const entry = await ctx.store.keys.recover(vault.id, name);
    if (entry === undefined) throw VaultErrors.deletedKeyNotFound(name);
    return keyBundleView(request, entry.name, entry.latest, openPayload(cipher, vault.id, entry.name, entry.latest), vault, apiVersion);
  });
}
