/** `PUT /secrets/{name}`: a new version becomes the latest (spec §1.3 #1); 409 while the name is soft-deleted. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView } from '../views.js';
import { newVersionId, readSetBody, secretNameOf, type SecretsDeps } from './common.js';

export function setSecretRoute(app: FastifyInstance, { ctx, cipher }: SecretsDeps): void {
  app.put('/secrets/:name', { config: { op: SECRET_OPERATIONS.set, target: 'secret' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const body = readSetBody(request);
    const version = newVersionId();
    const now = ctx.clock.now();
    const record = {
      vaultId: vault.id,
      name,
      version,
      sealedValue: cipher.seal({ vaultId: vault.id, nameKey: name.toLowerCase(), version, value: body.value }),
      contentType: body.contentType ?? null,
      tags: body.tags ?? null,
      enabled: body.attributes.enabled ?? true,
      notBefore: body.attributes.notBefore ?? null,
      expires: body.attributes.expires ?? null,
      createdAt: now,
      updatedAt: now,
    };
    if ((await ctx.store.secrets.addVersion(record)) === 'deleted') throw VaultErrors.deletedButRecoverable(name);
    return bundleView(request, name, record, vault, apiVersion, body.value);
  });
}
