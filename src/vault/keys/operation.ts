/**
 * What the six crypto operations share (spec §1.7, §0.7): the route pair (`/keys/{name}/{version}/{op}` and the
 * versionless `/keys/{name}/{op}`, which `//{op}` becomes), and the key's own gates, in Key Vault's order and
 * words: the operation must be in `key_ops` (403 `KeyOperationForbidden`); a disabled key refuses decrypt,
 * unwrap and sign (403 `KeyDisabled`) and still encrypts, wraps and verifies; outside `nbf`..`exp` encrypt,
 * wrap and sign are refused, while decrypt, unwrap and verify go on so old data stays recoverable.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SecretVersion } from '../../store/types.js';
import type { VaultOperation } from '../contracts.js';
import { VaultErrors } from '../errors.js';
import { admitted } from '../state.js';
import { keyNameOf, type KeyOp, type KeysDeps, type OpenedKey } from './common.js';
import { openKey } from './open.js';
import { keyId } from './views.js';

const BLOCKED_WHEN_DISABLED: ReadonlySet<KeyOp> = new Set(['decrypt', 'unwrapKey', 'sign']);
const BLOCKED_OUTSIDE_VALIDITY: ReadonlySet<KeyOp> = new Set(['encrypt', 'wrapKey', 'sign']);

/** Refuses `op` on this version as Key Vault would; returns when it may run. */
export function checkKeyGates(op: KeyOp, version: SecretVersion, opened: OpenedKey, nowMs: number): void {
  if (!opened.payload.keyOps.includes(op)) throw VaultErrors.keyOperationForbidden(op);
  if (!version.enabled && BLOCKED_WHEN_DISABLED.has(op)) throw VaultErrors.keyDisabled(op);
  if (BLOCKED_OUTSIDE_VALIDITY.has(op)) {
    const now = Math.floor(nowMs / 1000);
    if (version.notBefore !== null && now < version.notBefore) throw VaultErrors.keyNotValidNow(op, 'not yet valid');
    if (version.expires !== null && now >= version.expires) throw VaultErrors.keyNotValidNow(op, 'expired');
  }
}

/**
 * Registers one crypto operation on both paths. `run` gets the opened key and answers the result's fields;
 * the response adds the versioned `kid` of the version used.
 */
export function cryptoRoute(
  app: FastifyInstance,
  deps: KeysDeps,
  segment: string,
  op: VaultOperation,
  keyOp: KeyOp,
  run: (request: FastifyRequest, opened: OpenedKey) => Record<string, unknown>,
): void {
  const handler = async (request: FastifyRequest): Promise<Record<string, unknown>> => {
    const { vault } = admitted(request);
    const name = keyNameOf(request);
    const { found, opened } = await openKey(deps, request, vault, name);
    checkKeyGates(keyOp, found.version, opened, deps.ctx.clock.now());
    const result = run(request, opened);
    return keyOp === 'verify' ? result : { kid: keyId(request, found.entry.name, found.version.version), ...result };
  };
  const config = { op, target: 'key' };
  app.post(`/keys/:name/:version/${segment}`, { config }, handler);
  app.post(`/keys/:name/${segment}`, { config }, handler);
}
