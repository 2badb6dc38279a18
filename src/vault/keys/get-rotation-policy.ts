/** `GET /keys/{name}/rotationpolicy` (spec §1.3 #21, §1.8); 404 `KeyNotFound` for a key that does not exist. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeysDeps } from './common.js';
import { parseStoredPolicy, rotationPolicyView } from './rotation-policy.js';
import { keyId } from './views.js';

export function getRotationPolicyRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.get('/keys/:name/rotationpolicy', { config: { op: KEY_OPERATIONS.getRotationPolicy, target: 'key' } }, async (request) => {
    const { vault } = admitted(request);
    const name = keyNameOf(request);
    const stored = await ctx.store.keys.getRotationPolicy(vault.id, name);
    if (stored === undefined) throw VaultErrors.keyNotFound(name);
    return rotationPolicyView(`${keyId(request, name)}/rotationpolicy`, stored.policy === null ? undefined : parseStoredPolicy(stored.policy));
  });
}
