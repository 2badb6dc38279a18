/**
 * `POST /keys/{name}/rotate` (spec §1.3 #20, §1.8): a new version "with the same parameters" (type, size or
 * curve, `key_ops`, tags), with `exp` = now + the policy's `expiryTime` when it sets one. The rotation
 * scheduler calls {@link rotateKey} for the policies' `Rotate` actions.
 */
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../shared/clock.js';
import type { SecretVersion, Store } from '../../store/types.js';
import type { SecretCipher } from '../contracts.js';
import { KEY_OPERATIONS } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { newVersionId } from '../secrets/common.js';
import { keyNameOf, openPayload, sealKey, type KeyPayload, type KeysDeps } from './common.js';
import { generateFor } from './create.js';
import { expiryUnder, parseStoredPolicy } from './rotation-policy.js';
import { keyBundleView } from './views.js';

/** What {@link rotateKey} reads first: the key's latest version and its stored policy. */
export interface RotationInput {
  current: Awaited<ReturnType<Store['keys']['get']>>;
  stored: { policy: string | null } | undefined;
}

/**
 * Adds a rotated version of an active key; undefined when there is none, or when another writer (a replica's
 * scheduler, a concurrent rotate) added a version or deleted the key meanwhile. The scheduler passes what its
 * scan already read (`read`); a stale read is harmless, as the write is a compare-and-set on the latest version.
 */
export async function rotateKey(
  deps: { store: Store; cipher: SecretCipher; clock: Clock },
  vaultId: string,
  name: string,
  read?: RotationInput,
): Promise<{ record: SecretVersion; payload: KeyPayload } | undefined> {
  const { store, cipher, clock } = deps;
  const { current, stored } = read ?? { current: await store.keys.get(vaultId, name), stored: await store.keys.getRotationPolicy(vaultId, name) };
  if (current === undefined || stored === undefined) return undefined;
  const previous = openPayload(cipher, vaultId, current.entry.name, current.version);
  const { kind, size, curve } = previous.material;
  const material = await generateFor({ kind, ...(size === undefined ? {} : { size }), ...(curve === undefined ? {} : { curve }) });
  const payload: KeyPayload = { kty: previous.kty, keyOps: [...previous.keyOps], material };
  const version = newVersionId();
  const now = clock.now();
  const record: SecretVersion = {
    vaultId,
    name: current.entry.name,
    version,
    sealedValue: sealKey(cipher, vaultId, current.entry.name, version, payload),
    contentType: null,
    tags: current.version.tags,
    enabled: true,
    notBefore: null,
    expires: expiryUnder(stored.policy === null ? undefined : parseStoredPolicy(stored.policy), Math.floor(now / 1000)),
    createdAt: now,
    updatedAt: now,
  };
  if ((await store.keys.addVersion(record, { ifLatest: current.version.version })) !== 'added') return undefined;
  return { record, payload };
}

export function rotateKeyRoute(app: FastifyInstance, { ctx, cipher }: KeysDeps): void {
  app.post('/keys/:name/rotate', { config: { op: KEY_OPERATIONS.rotate, target: 'key' } }, async (request) => {
    const { vault, apiVersion } = admitted(request);
    const name = keyNameOf(request);
    const rotated = await rotateKey({ store: ctx.store, cipher, clock: ctx.clock }, vault.id, name);
    if (rotated === undefined) throw VaultErrors.keyNotFound(name);
    return keyBundleView(request, rotated.record.name, rotated.record, rotated.payload, vault, apiVersion);
  });
}
