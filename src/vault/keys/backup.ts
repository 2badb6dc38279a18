/**
 * `POST /keys/{name}/backup` (spec §1.3 #12, §1.6): every version and the rotation policy in one opaque blob,
 * encrypted under the master key, in a format of its own (a key backup never restores as a secret).
 */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, keyPlace, type KeysDeps } from './common.js';

export function backupKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.post('/keys/:name/backup', { config: { op: KEY_OPERATIONS.backup, target: 'key' } }, async (request) => {
    const { vault } = admitted(request);
    const name = keyNameOf(request);
    const versions = await ctx.store.keys.allVersions(vault.id, name);
    const policy = await ctx.store.keys.getRotationPolicy(vault.id, name);
    if (versions.length === 0 || policy === undefined) throw VaultErrors.keyNotFound(name);
    const opened = versions.map((version) => ({ version, value: cipher.open(version.sealedValue, keyPlace(vault.id, name, version.version)) }));
    return { value: cipher.backup(opened, { subscriptionId: vault.subscriptionId }, { rotationPolicy: policy.policy }) };
  });
}
