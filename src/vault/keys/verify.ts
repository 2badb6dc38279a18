/** `POST /keys/{name}[/{version}]/verify` (spec §1.7): `{"value": true|false}`; a bad signature is false, never an error. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { cryptoCall, readVerifyBody, type KeysDeps } from './common.js';
import { cryptoRoute } from './operation.js';

export function verifyRoute(app: FastifyInstance, deps: KeysDeps): void {
  cryptoRoute(app, deps, 'verify', KEY_OPERATIONS.verify, 'verify', (request, { prepared }) => {
    const { alg, digest, signature } = readVerifyBody(request);
    return { value: cryptoCall(() => prepared.verify(alg, digest, signature)) };
  });
}
