/**
 * `POST /secrets/restore` (spec §1.3 #12, §1.8): a backup's versions become a secret of this vault, re-sealed
 * for it. 400 for a blob this installation's master key did not make, and for a backup taken in another
 * subscription, so that a backup never crosses into another subscription or tenant: Key Vault's rule ("you must
 * restore the blob into a key vault within the same Azure subscription and Azure geography",
 * learn.microsoft.com/azure/key-vault/general/backup; for keys, "The target Key Vault must be owned by the same
 * Microsoft Azure Subscription as the source Key Vault", learn.microsoft.com/rest/api/keyvault/keys/restore-key).
 * 409 when the name is taken. Nothing is written on a refusal.
 */
import type { FastifyInstance } from 'fastify';
import type { SecretVersion } from '../../store/types.js';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView } from '../views.js';
import { SECRET_NAME, readRestoreBody, type SecretsDeps } from './common.js';

export function restoreSecretRoute(app: FastifyInstance, { ctx, cipher }: SecretsDeps): void {
  app.post('/secrets/restore', { config: { op: SECRET_OPERATIONS.restore, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const backup = cipher.restore(readRestoreBody(request));
    if (backup === undefined || backup.objects !== 'secrets' || !SECRET_NAME.test(backup.name) || backup.versions.length === 0) {
      throw VaultErrors.badParameter('Backup blob contains invalid or corrupt version.');
    }
    // A first-format backup did not record its subscription: it cannot be shown to be this one's, so it is refused.
    if (backup.subscriptionId?.toLowerCase() !== vault.subscriptionId.toLowerCase()) throw VaultErrors.restoreOtherSubscription();
    const nameKey = backup.name.toLowerCase();
    const versions: SecretVersion[] = backup.versions.map(({ version, value }) => ({
      ...version,
      vaultId: vault.id,
      sealedValue: cipher.seal({ vaultId: vault.id, nameKey, version: version.version, value }),
    }));
    if ((await ctx.store.secrets.restore(versions)) === 'exists') throw VaultErrors.restoreConflict(backup.name);
    const latest = versions.reduce((a, b) => (b.createdAt >= a.createdAt ? b : a));
    return bundleView(request, backup.name, latest, vault, apiVersion);
  });
}
