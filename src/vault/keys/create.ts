/**
 * `POST /keys/{name}/create` (spec §1.3 #1): a new version, generated here; 409 while the name is soft-deleted.
 * Generation runs off the event loop (RSA key generation takes tens of milliseconds).
 */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { admitted } from '../state.js';
import { generateKeyMaterial, type CurveName, type KeyMaterial } from './crypto/index.js';
import { asVaultError, DEFAULT_KEY_OPS, kindOf, keyNameOf, readCreateBody, addKeyVersion, type KeyPayload, type KeysDeps } from './common.js';
import { keyBundleView } from './views.js';

/** A key of `payload`'s kind and size, as create and rotate make it; KeyCryptoError becomes 400. */
export async function generateFor(spec: { kind: KeyMaterial['kind']; size?: number; curve?: string; publicExponent?: number }): Promise<KeyMaterial> {
  try {
    return await generateKeyMaterial({
      kind: spec.kind,
      ...(spec.size === undefined ? {} : { size: spec.size }),
      ...(spec.curve === undefined ? {} : { curve: spec.curve as CurveName }),
      ...(spec.publicExponent === undefined ? {} : { publicExponent: spec.publicExponent }),
    });
  } catch (err) {
    throw asVaultError(err);
  }
}

export function createKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.post('/keys/:name/create', { config: { op: KEY_OPERATIONS.create, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const body = readCreateBody(request);
    const kind = kindOf(body.kty);
    const material = await generateFor({
      kind,
      ...(kind === 'EC' ? {} : body.size === undefined ? {} : { size: body.size }),
      ...(kind === 'EC' && body.curve !== undefined ? { curve: body.curve } : {}),
      ...(kind === 'RSA' && body.publicExponent !== undefined ? { publicExponent: body.publicExponent } : {}),
    });
    const payload: KeyPayload = { kty: body.kty, keyOps: body.keyOps?.length ? body.keyOps : [...DEFAULT_KEY_OPS[kind]], material };
    const record = await addKeyVersion({ ctx, cipher }, vault, name, payload, body);
    return keyBundleView(request, name, record, payload, vault, apiVersion);
  });
}
