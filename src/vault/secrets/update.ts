/** `PATCH /secrets/{name}/{version}` (spec §1.3 #3): attributes, tags, content type; never the value. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SecretVersionPatch } from '../../store/types.js';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView, type SecretBundleView } from '../views.js';
import { readUpdateBody, secretNameOf, versionOf, type SecretsDeps } from './common.js';

export function updateSecretRoute(app: FastifyInstance, { ctx }: SecretsDeps): void {
  const handler = async (request: FastifyRequest): Promise<SecretBundleView> => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const body = readUpdateBody(request);
    // An empty version (JS sends `/secrets/{name}/`) is the latest.
    const found = await ctx.store.secrets.get(vault.id, name, versionOf(request));
    if (found === undefined) throw VaultErrors.secretNotFound(versionOf(request) === undefined ? name : `${name}/${versionOf(request) ?? ''}`);
    const patch: SecretVersionPatch = { updatedAt: ctx.clock.now() };
    if (body.contentType !== undefined) patch.contentType = body.contentType;
    if (body.tags !== undefined) patch.tags = body.tags;
    if (body.attributes.enabled !== undefined) patch.enabled = body.attributes.enabled;
    if (body.attributes.notBefore !== undefined) patch.notBefore = body.attributes.notBefore;
    if (body.attributes.expires !== undefined) patch.expires = body.attributes.expires;
    const updated = await ctx.store.secrets.update(vault.id, name, found.version.version, patch);
    if (updated === undefined) throw VaultErrors.secretNotFound(name);
    return bundleView(request, found.entry.name, updated, vault, apiVersion);
  };
  const config = { op: SECRET_OPERATIONS.update, target: 'secret' };
  app.patch('/secrets/:name', { config }, handler);
  app.patch('/secrets/:name/:version', { config }, handler);
}
