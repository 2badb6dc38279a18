/**
 * `GET /secrets/{name}[/{version}]` (spec §1.3 #2, §1.5). A disabled version is 403 `SecretDisabled`;
 * `nbf`/`exp` are informational, as in Key Vault ("get works for not-yet-valid and expired secrets").
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SECRET_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { bundleView, type SecretBundleView } from '../views.js';
import { secretNameOf, versionOf, type SecretsDeps } from './common.js';

export function getSecretRoute(app: FastifyInstance, { cipher, secrets }: SecretsDeps): void {
  const handler = async (request: FastifyRequest): Promise<SecretBundleView> => {
    const { vault, apiVersion } = admitted(request);
    const name = secretNameOf(request);
    const version = versionOf(request);
    const found = await secrets.get(vault.id, name, version);
    if (found === undefined) throw VaultErrors.secretNotFound(version === undefined ? name : `${name}/${version}`);
    if (!found.version.enabled) throw VaultErrors.secretDisabled();
    // Opened once per cached read: the cache drops the read (and its value) on any write to the secret.
    const value = (found.value ??= cipher.open(found.version.sealedValue, { vaultId: vault.id, nameKey: name.toLowerCase(), version: found.version.version }));
    return bundleView(request, found.entry.name, found.version, vault, apiVersion, value);
  };
  const config = { op: SECRET_OPERATIONS.get, target: 'secret' };
  app.get('/secrets/:name', { config }, handler);
  app.get('/secrets/:name/:version', { config }, handler);
}
