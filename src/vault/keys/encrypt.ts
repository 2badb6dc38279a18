/** `POST /keys/{name}[/{version}]/encrypt` (spec §1.3, §1.7): the server makes the IV where the algorithm needs one and none was given. */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { b64url, cryptoCall, readOperationBody, type KeysDeps } from './common.js';
import { cryptoRoute } from './operation.js';

export function encryptRoute(app: FastifyInstance, deps: KeysDeps): void {
  cryptoRoute(app, deps, 'encrypt', KEY_OPERATIONS.encrypt, 'encrypt', (request, { prepared }) => {
    const { alg, value, iv, aad } = readOperationBody(request);
    const out = cryptoCall(() => prepared.encrypt(alg, { value, ...(iv === undefined ? {} : { iv }), ...(aad === undefined ? {} : { aad }) }));
    return {
      value: b64url(out.value),
      ...(out.iv === undefined ? {} : { iv: b64url(out.iv) }),
      ...(out.tag === undefined ? {} : { tag: b64url(out.tag) }),
      ...(out.aad === undefined ? {} : { aad: b64url(out.aad) }),
    };
  });
}
