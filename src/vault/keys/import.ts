/**
 * `PUT /keys/{name}` (spec §1.3 #2): a new version from the caller's JWK (private parts required). `Hsm: true`
 * labels it `-HSM`; `oct` is stored as `oct-HSM`, as Managed HSM does. A malformed JWK is 400 and writes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { admitted } from '../state.js';
import { importKeyMaterial } from './crypto/index.js';
import { cryptoCall, DEFAULT_KEY_OPS, keyNameOf, readImportBody, readKeyOps, addKeyVersion, type KeyPayload, type KeysDeps, type KeyType } from './common.js';
import { keyBundleView } from './views.js';

export function importKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.put('/keys/:name', { config: { op: KEY_OPERATIONS.import, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const body = readImportBody(request);
    const material = cryptoCall(() => importKeyMaterial(body.jwk));
    const declared = typeof body.jwk['kty'] === 'string' ? body.jwk['kty'] : '';
    const kty: KeyType = material.kind === 'oct' ? 'oct-HSM' : body.hsm || declared.endsWith('-HSM') ? (`${material.kind}-HSM` as KeyType) : material.kind;
    // The body's key_ops, else the JWK's own, else the defaults; checked against the key's kind once it is known.
    const ops = readKeyOps(body.keyOps ?? body.jwk['key_ops'], material.kind) ?? [];
    const payload: KeyPayload = { kty, keyOps: ops.length > 0 ? ops : [...DEFAULT_KEY_OPS[material.kind]], material };
    const record = await addKeyVersion({ ctx, cipher }, vault, name, payload, body);
    return keyBundleView(request, name, record, payload, vault, apiVersion);
  });
}
