/** `PUT /keys/{name}/rotationpolicy` (spec §1.3 #22, §1.8): validated, normalised (the default Notify added), stored; the stored form answered. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeysDeps } from './common.js';
import { parseStoredPolicy, readRotationPolicy, rotationPolicyView } from './rotation-policy.js';
import { keyId } from './views.js';

export function setRotationPolicyRoute(app: FastifyInstance, { ctx }: KeysDeps): void {
  app.put('/keys/:name/rotationpolicy', { config: { op: KEY_OPERATIONS.setRotationPolicy, target: 'key' } }, async (request) => {
    const { vault } = admitted(request);
    const name = keyNameOf(request);
    const stored = await ctx.store.keys.getRotationPolicy(vault.id, name);
    if (stored === undefined) throw VaultErrors.keyNotFound(name);
    const previous = stored.policy === null ? undefined : parseStoredPolicy(stored.policy);
    const policy = readRotationPolicy(request.body, previous, Math.floor(ctx.clock.now() / 1000));
    if (!(await ctx.store.keys.setRotationPolicy(vault.id, name, JSON.stringify(policy)))) throw VaultErrors.keyNotFound(name);
    return rotationPolicyView(`${keyId(request, name)}/rotationpolicy`, policy);
  });
}
