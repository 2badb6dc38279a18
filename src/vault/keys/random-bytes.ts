/**
 * `POST /rng` (spec §1.3 #23, §1.9): `count` (1..128) random bytes from the operating system's generator. Key
 * Vault documents it for Managed HSM only, with no vault data action; here it takes what reading a key takes.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { b64url, optionalBody, type KeysDeps } from './common.js';

export function randomBytesRoute(app: FastifyInstance, _deps: KeysDeps): void {
  app.post('/rng', { config: { op: KEY_OPERATIONS.randomBytes, target: 'vault' } }, async (request) => {
    const count = optionalBody(request)['count'];
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 128) {
      throw VaultErrors.badParameter('Property count is required and must be an integer between 1 and 128.');
    }
    return Promise.resolve({ value: b64url(randomBytes(count)) });
  });
}
