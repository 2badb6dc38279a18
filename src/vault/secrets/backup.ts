/** `POST /secrets/{name}/backup` (spec §1.3 #11, §1.8): every version in one opaque, encrypted blob. */
import type { FastifyInstance } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { secretNameOf, type SecretsDeps } from './common.js';

export function backupSecretRoute(app: FastifyInstance, { ctx, cipher }: SecretsDeps): void {
  app.post('/secrets/:name/backup', { config: { op: SECRET_OPERATIONS.backup, target: 'secret' } }, async (request) => {
    const { vault } = admitted(request);
    const name = secretNameOf(request);
    const versions = await ctx.store.secrets.allVersions(vault.id, name);
    if (versions.length === 0) throw VaultErrors.secretNotFound(name);
    const opened = versions.map((version) => ({
      version,
      value: cipher.open(version.sealedValue, { vaultId: vault.id, nameKey: name.toLowerCase(), version: version.version }),
    }));
    return { value: cipher.backup(opened, { subscriptionId: vault.subscriptionId }) };
  });
}
