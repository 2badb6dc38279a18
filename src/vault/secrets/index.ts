/**
 * The secrets data plane: `/secrets/...` and `/deletedsecrets/...`, one file per operation. Keys and
 * certificates would sit beside this folder with their own index.
 */
import type { FastifyInstance } from 'fastify';
import { backupSecretRoute } from './backup.js';
import type { SecretsDeps } from './common.js';
import { deleteSecretRoute } from './delete.js';
import { getDeletedSecretRoute } from './get-deleted.js';
import { getSecretRoute } from './get.js';
import { listDeletedSecretsRoute } from './list-deleted.js';
import { listSecretVersionsRoute } from './list-versions.js';
import { listSecretsRoute } from './list.js';
import { purgeDeletedSecretRoute } from './purge.js';
import { recoverDeletedSecretRoute } from './recover.js';
import { restoreSecretRoute } from './restore.js';
import { setSecretRoute } from './set.js';
import { updateSecretRoute } from './update.js';

export type { SecretsDeps } from './common.js';

/** Registers the twelve secrets operations (spec §1.3). */
export function secretsRoutes(app: FastifyInstance, deps: SecretsDeps): void {
  setSecretRoute(app, deps);
  getSecretRoute(app, deps);
  updateSecretRoute(app, deps);
  deleteSecretRoute(app, deps);
  listSecretsRoute(app, deps);
  listSecretVersionsRoute(app, deps);
  listDeletedSecretsRoute(app, deps);
  getDeletedSecretRoute(app, deps);
  purgeDeletedSecretRoute(app, deps);
  recoverDeletedSecretRoute(app, deps);
  backupSecretRoute(app, deps);
  restoreSecretRoute(app, deps);
}
