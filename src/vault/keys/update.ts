/**
 * `PATCH /keys/{name}[/{version}]` (spec §1.3 #4, §1.6): one version's attributes, tags and `key_ops`; the key
 * material never changes. An empty version (both SDKs send `/keys/{name}/`) is the latest. A new `key_ops` is
 * sealed with the material, where every operation reads it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SecretVersionPatch } from '../../store/types.js';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, readUpdateBody, sealKey, type KeysDeps } from './common.js';
import { openKey } from './open.js';
import { keyBundleView, type KeyBundleView } from './views.js';

export function updateKeyRoute(app: FastifyInstance, deps: KeysDeps): void {
  const { ctx, cipher } = deps;
  const handler = async (request: FastifyRequest): Promise<KeyBundleView> => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const { found, opened } = await openKey(deps, request, vault, name);
    const body = readUpdateBody(request, opened.payload.material.kind);
    const payload = body.keyOps === undefined ? opened.payload : { ...opened.payload, keyOps: body.keyOps };
    const patch: SecretVersionPatch = { updatedAt: ctx.clock.now() };
    if (body.keyOps !== undefined) patch.sealedValue = sealKey(cipher, vault.id, name, found.version.version, payload);
    if (body.tags !== undefined) patch.tags = body.tags;
    if (body.attributes.enabled !== undefined) patch.enabled = body.attributes.enabled;
    if (body.attributes.notBefore !== undefined) patch.notBefore = body.attributes.notBefore;
    if (body.attributes.expires !== undefined) patch.expires = body.attributes.expires;
    const updated = await ctx.store.keys.update(vault.id, name, found.version.version, patch);
    if (updated === undefined) throw VaultErrors.keyNotFound(name);
    return keyBundleView(request, found.entry.name, updated, payload, vault, apiVersion);
  };
  const config = { op: KEY_OPERATIONS.update, target: 'key' };
  app.patch('/keys/:name', { config }, handler);
  app.patch('/keys/:name/:version', { config }, handler);
}
