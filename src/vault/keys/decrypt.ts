/** `POST /keys/{name}[/{version}]/decrypt` (spec §1.3, §1.7): AES-GCM needs the iv and tag it produced (and the aad, if any). */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { b64url, cryptoCall, readOperationBody, type KeysDeps } from './common.js';
import { cryptoRoute } from './operation.js';

export function decryptRoute(app: FastifyInstance, deps: KeysDeps): void {
  cryptoRoute(app, deps, 'decrypt', KEY_OPERATIONS.decrypt, 'decrypt', (request, { prepared }) => {
    const { alg, value, iv, aad, tag } = readOperationBody(request);
    const out = cryptoCall(() =>
      prepared.decrypt(alg, { value, ...(iv === undefined ? {} : { iv }), ...(aad === undefined ? {} : { aad }), ...(tag === undefined ? {} : { tag }) }),
    );
    return { value: b64url(out.value) };
  });
}
