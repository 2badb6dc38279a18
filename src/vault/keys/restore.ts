/**
 * `POST /keys/restore` (spec §1.3 #13, §1.6): a key backup's versions (same version ids) and rotation policy
 * become a key of this vault, re-sealed for it. As for secrets: 400 for a blob this installation did not make
 * or that holds a secret, 400 for another subscription's backup, 409 when the name is taken; nothing written
 * on a refusal.
 */
import type { FastifyInstance } from 'fastify';
import type { SecretVersion } from '../../store/types.js';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { readRestoreBody } from '../secrets/common.js';
import { KEY_NAME, keyPlace, parsePayload, type KeysDeps } from './common.js';
import { keyBundleView } from './views.js';

export function restoreKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.post('/keys/restore', { config: { op: KEY_OPERATIONS.restore, target: 'vault' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const backup = cipher.restore(readRestoreBody(request));
    if (backup === undefined || backup.objects !== 'keys' || !KEY_NAME.test(backup.name) || backup.versions.length === 0) {
      throw VaultErrors.badParameter('Backup blob contains invalid or corrupt version.');
    }
    if (backup.subscriptionId?.toLowerCase() !== vault.subscriptionId.toLowerCase()) throw VaultErrors.restoreOtherSubscription();
    const versions: SecretVersion[] = backup.versions.map(({ version, value }) => ({
      ...version,
      vaultId: vault.id,
      sealedValue: cipher.seal({ ...keyPlace(vault.id, backup.name, version.version), value }),
    }));
    if ((await ctx.store.keys.restore(versions, backup.rotationPolicy)) === 'exists') throw VaultErrors.keyRestoreConflict(backup.name);
    const latest = versions.reduce((a, b) => (b.createdAt >= a.createdAt ? b : a));
    const payload = parsePayload(backup.versions.find((v) => v.version.version === latest.version)!.value);
    return keyBundleView(request, backup.name, latest, payload, vault, apiVersion);
  });
}
