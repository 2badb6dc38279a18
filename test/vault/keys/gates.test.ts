/**
 * The key's own gates (keys spec §0.7, §1.6), store-less: every operation against `key_ops`, `enabled` and the
 * `nbf`..`exp` window, with Key Vault's status, inner code and message, at the window's exact edges.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SecretVersion } from '../../../src/store/types.js';
import { KEY_OPS, type KeyOp, type OpenedKey } from '../../../src/vault/keys/common.js';
import { checkKeyGates } from '../../../src/vault/keys/operation.js';
import { VaultError } from '../../../src/vault/errors.js';

const CRYPTO_OPS: KeyOp[] = ['encrypt', 'decrypt', 'wrapKey', 'unwrapKey', 'sign', 'verify'];
const T = 1_800_000_000; // seconds

function version(overrides: Partial<SecretVersion> = {}): SecretVersion {
  return {
    vaultId: 'v',
    name: 'k',
    version: '0'.repeat(32),
    sealedValue: 's',
    contentType: null,
    tags: null,
    enabled: true,
    notBefore: null,
    expires: null,
    createdAt: 0,
    updatedAt: 0,
    ...overrides,
  };
}

const opened = (keyOps: KeyOp[]): OpenedKey => ({
  payload: { kty: 'RSA', keyOps, material: { kind: 'RSA', secret: new Uint8Array() } },
  prepared: {} as never,
});

/** The refusal of `checkKeyGates`, or undefined when it lets the operation run. */
function refusal(op: KeyOp, v: SecretVersion, keyOps: KeyOp[] = [...KEY_OPS], nowSeconds = T): { status: number; inner: string; message: string } | undefined {
  try {
    checkKeyGates(op, v, opened(keyOps), nowSeconds * 1000);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof VaultError);
    return { status: err.status, inner: err.innerCode ?? '', message: err.message };
  }
}

describe('vault keys: the gates of a key', () => {
  it('an enabled key inside its window, with the operation in key_ops, allows every operation', () => {
    for (const op of CRYPTO_OPS) assert.equal(refusal(op, version({ notBefore: T - 10, expires: T + 10 })), undefined, op);
  });

  it('an operation outside key_ops is 403 KeyOperationForbidden in Key Vault words, whatever else holds', () => {
    for (const op of CRYPTO_OPS) {
      const others = CRYPTO_OPS.filter((o) => o !== op);
      assert.deepEqual(refusal(op, version(), others), {
        status: 403,
        inner: 'KeyOperationForbidden',
        message: `Operation ${op} is not permitted on this key.`,
      });
      assert.equal(refusal(op, version(), [op]), undefined, `${op} alone in key_ops`);
    }
    assert.equal(refusal('sign', version({ enabled: false }), ['verify'])?.inner, 'KeyOperationForbidden', 'key_ops is checked first');
  });

  it('a disabled key refuses decrypt, unwrapKey and sign (403 KeyDisabled) and still encrypts, wraps and verifies', () => {
    const disabled = version({ enabled: false });
    for (const op of ['decrypt', 'unwrapKey', 'sign'] as const) {
      assert.deepEqual(refusal(op, disabled), { status: 403, inner: 'KeyDisabled', message: `Operation ${op} is not allowed on a disabled key.` });
    }
    for (const op of ['encrypt', 'wrapKey', 'verify'] as const) assert.equal(refusal(op, disabled), undefined, op);
  });

  it('outside nbf..exp, encrypt, wrapKey and sign are refused; decrypt, unwrapKey and verify go on; the edges are exact', () => {
    for (const op of ['encrypt', 'wrapKey', 'sign'] as const) {
      assert.deepEqual(refusal(op, version({ notBefore: T + 1 })), {
        status: 403,
        inner: 'KeyNotYetValid',
        message: `Operation ${op} is not allowed on a key that is not yet valid.`,
      });
      assert.equal(refusal(op, version({ notBefore: T })), undefined, `${op} at nbf`);
      assert.deepEqual(refusal(op, version({ expires: T })), {
        status: 403,
        inner: 'KeyExpired',
        message: `Operation ${op} is not allowed on a key that is expired.`,
      });
      assert.equal(refusal(op, version({ expires: T + 1 })), undefined, `${op} a second before exp`);
    }
    for (const op of ['decrypt', 'unwrapKey', 'verify'] as const) {
      assert.equal(refusal(op, version({ notBefore: T + 100 })), undefined, `${op} before nbf`);
      assert.equal(refusal(op, version({ expires: T - 100 })), undefined, `${op} after exp`);
    }
  });

  it('seconds are whole: a time 999 ms before nbf is still before it', () => {
    assert.equal(refusal('sign', version({ notBefore: T + 1 }), undefined, T)?.inner, 'KeyNotYetValid');
    try {
      checkKeyGates('sign', version({ notBefore: T + 1 }), opened([...KEY_OPS]), (T + 1) * 1000 - 1);
      assert.fail('refused until the second of nbf');
    } catch (err) {
      assert.ok(err instanceof VaultError);
    }
    assert.doesNotThrow(() => checkKeyGates('sign', version({ expires: T + 1 }), opened([...KEY_OPS]), (T + 1) * 1000 - 1));
  });
});
