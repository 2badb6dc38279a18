import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { NotificationHooks } from './rbac-version-store.js';
import { SECRET_CHANNEL, type SecretStore } from './types.js';
import { createVaultObjectStore } from './vault-object-store.js';

/** Secrets of vaults (`vault_secrets`, `vault_secret_versions`), announced on {@link SECRET_CHANNEL}. */
export function createSecretStore(db: Kysely<Database>, hooks?: NotificationHooks): SecretStore {
  return createVaultObjectStore(db, { entries: 'vault_secrets', versions: 'vault_secret_versions', channel: SECRET_CHANNEL }, hooks);
}
