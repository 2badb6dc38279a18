/**
 * Carries out rotation policies' `Rotate` actions (spec §1.8): each scan reads the active keys that have a
 * policy and rotates those whose latest version is due, by the injected clock. `Notify` actions have no Event
 * Grid to go to; a log line at each rotation is what an operator sees.
 */
import type { Clock } from '../../shared/clock.js';
import type { Logger } from '../../shared/logger.js';
import type { Store } from '../../store/types.js';
import type { SecretCipher } from '../contracts.js';
import { rotateKey } from './rotate.js';
import { parseStoredPolicy, rotationDue } from './rotation-policy.js';

/** Rotates every key whose policy says it is due; how many were rotated. A key's failure is logged and the others go on. */
export async function rotateDueKeys(deps: { store: Store; cipher: SecretCipher; clock: Clock; logger: Logger }): Promise<number> {
  const { store, clock, logger } = deps;
  const nowSeconds = Math.floor(clock.now() / 1000);
  let rotated = 0;
  for (const entry of await store.keys.listRotationPolicies()) {
    try {
      const latest = await store.keys.get(entry.vaultId, entry.name);
      if (latest === undefined) continue;
      if (!rotationDue(parseStoredPolicy(entry.policy), Math.floor(latest.version.createdAt / 1000), latest.version.expires, nowSeconds)) continue;
      const done = await rotateKey(deps, entry.vaultId, entry.name, { current: latest, stored: { policy: entry.policy } });
      if (done !== undefined) {
        rotated += 1;
        logger.info({ vaultId: entry.vaultId, key: entry.name, version: done.record.version }, 'key rotated by its rotation policy');
      }
    } catch (err) {
      logger.error({ vaultId: entry.vaultId, key: entry.name, err: { message: (err as Error).message } }, 'scheduled key rotation failed');
    }
  }
  return rotated;
}
