/**
 * `POST /keys/{name}[/{version}]/release` (spec §1.3 #24, §1.9): secure key release needs an attestation
 * service to check the caller's environment against the key's release policy; openmsi has none, so the
 * operation answers Key Vault's 400 `BadParameter`, after the caller's right to release was checked.
 */
import type { FastifyInstance } from 'fastify';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import type { KeysDeps } from './common.js';

export function releaseKeyRoute(app: FastifyInstance, _deps: KeysDeps): void {
  const config = { op: KEY_OPERATIONS.release, target: 'key' };
  const handler = async (): Promise<never> => Promise.reject(VaultErrors.releaseNotSupported());
  app.post('/keys/:name/:version/release', { config }, handler);
  app.post('/keys/:name/release', { config }, handler);
}
