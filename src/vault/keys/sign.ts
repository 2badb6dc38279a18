/** `POST /keys/{name}[/{version}]/sign` (spec §1.7): over the caller's digest (never hashed here); raw signature (`r‖s` for EC). */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { b64url, cryptoCall, readSignBody, type KeysDeps } from './common.js';
import { cryptoRoute } from './operation.js';

export function signRoute(app: FastifyInstance, deps: KeysDeps): void {
  cryptoRoute(app, deps, 'sign', KEY_OPERATIONS.sign, 'sign', (request, { prepared }) => {
    const { alg, digest } = readSignBody(request);
    return { value: b64url(cryptoCall(() => prepared.sign(alg, digest))) };
  });
}
