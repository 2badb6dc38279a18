/**
 * `GET /keys/{name}[/{version}]` (spec §1.3 #3): the public key. A disabled key is still returned (unlike a
 * secret, whose value GET reveals): clients read the key to decide where to run crypto (spec §1.6).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeysDeps } from './common.js';
import { openKey } from './open.js';
import { keyBundleView, type KeyBundleView } from './views.js';

export function getKeyRoute(app: FastifyInstance, deps: KeysDeps): void {
  const handler = async (request: FastifyRequest): Promise<KeyBundleView> => {
    const { vault, apiVersion } = admitted(request);
    const { found, opened } = await openKey(deps, request, vault, keyNameOf(request));
    return keyBundleView(request, found.entry.name, found.version, opened.payload, vault, apiVersion);
  };
  const config = { op: KEY_OPERATIONS.get, target: 'key' };
  app.get('/keys/:name', { config }, handler);
  app.get('/keys/:name/:version', { config }, handler);
}
