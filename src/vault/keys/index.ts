/**
 * The keys data plane: `/keys/...`, `/deletedkeys/...` and `/rng`, one file per operation (keys spec §1.3),
 * beside secrets. The cryptography itself is `crypto/`.
 */
import type { FastifyInstance } from 'fastify';
import { backupKeyRoute } from './backup.js';
import type { KeysDeps } from './common.js';
import { createKeyRoute } from './create.js';
import { decryptRoute } from './decrypt.js';
import { deleteKeyRoute } from './delete.js';
import { encryptRoute } from './encrypt.js';
import { getDeletedKeyRoute } from './get-deleted.js';
import { getRotationPolicyRoute } from './get-rotation-policy.js';
import { getKeyRoute } from './get.js';
import { importKeyRoute } from './import.js';
import { listDeletedKeysRoute } from './list-deleted.js';
import { listKeyVersionsRoute } from './list-versions.js';
import { listKeysRoute } from './list.js';
import { purgeDeletedKeyRoute } from './purge.js';
import { randomBytesRoute } from './random-bytes.js';
import { recoverDeletedKeyRoute } from './recover.js';
import { releaseKeyRoute } from './release.js';
import { restoreKeyRoute } from './restore.js';
import { rotateKeyRoute } from './rotate.js';
import { setRotationPolicyRoute } from './set-rotation-policy.js';
import { signRoute } from './sign.js';
import { unwrapKeyRoute } from './unwrap-key.js';
import { updateKeyRoute } from './update.js';
import { verifyRoute } from './verify.js';
import { wrapKeyRoute } from './wrap-key.js';

export type { KeysDeps, OpenedKey } from './common.js';
export { rotateDueKeys } from './rotation-scheduler.js';

/** Registers the keys operations (spec §1.3; attestation, a Managed HSM operation, is not served). */
export function keysRoutes(app: FastifyInstance, deps: KeysDeps): void {
  createKeyRoute(app, deps);
  importKeyRoute(app, deps);
  getKeyRoute(app, deps);
  updateKeyRoute(app, deps);
  deleteKeyRoute(app, deps);
  listKeysRoute(app, deps);
  listKeyVersionsRoute(app, deps);
  listDeletedKeysRoute(app, deps);
  getDeletedKeyRoute(app, deps);
  purgeDeletedKeyRoute(app, deps);
  recoverDeletedKeyRoute(app, deps);
  backupKeyRoute(app, deps);
  restoreKeyRoute(app, deps);
  encryptRoute(app, deps);
  decryptRoute(app, deps);
  wrapKeyRoute(app, deps);
  unwrapKeyRoute(app, deps);
  signRoute(app, deps);
  verifyRoute(app, deps);
  rotateKeyRoute(app, deps);
  getRotationPolicyRoute(app, deps);
  setRotationPolicyRoute(app, deps);
  randomBytesRoute(app, deps);
  releaseKeyRoute(app, deps);
}
