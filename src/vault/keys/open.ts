/**
 * A key version from the cache, opened and prepared once per cached read: the crypto hot path reads no store
 * and parses no key per request. The cache drops the read on any change to the key, at once on every replica.
 */
import type { FastifyRequest } from 'fastify';
import type { Vault } from '../../store/types.js';
import { VaultErrors } from '../errors.js';
import type { CachedRead } from '../secret-cache.js';
import { versionOf } from '../secrets/common.js';
import { prepareKey } from './crypto/index.js';
import { openPayload, type KeysDeps, type OpenedKey } from './common.js';

/** The named (or latest, when the path's version is absent or empty) version of an active key; 404 `KeyNotFound` otherwise. */
export async function openKey(
  { cipher, keys }: KeysDeps,
  request: FastifyRequest,
  vault: Vault,
  name: string,
): Promise<{ found: CachedRead<OpenedKey>; opened: OpenedKey }> {
  const version = versionOf(request);
  const found = await keys.get(vault.id, name, version);
  if (found === undefined) throw VaultErrors.keyNotFound(version === undefined ? name : `${name}/${version}`);
  if (found.value === undefined) {
    const payload = openPayload(cipher, vault.id, name, found.version);
    found.value = { payload, prepared: prepareKey(payload.material) };
  }
  return { found, opened: found.value };
}
