/** Users' password hashes (src/directory/passwords.ts): scrypt parameters, constant-time verification, policy. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HASH_BYTES,
  SALT_BYTES,
  SCRYPT_PARAMS,
  dummyPasswordHash,
  hashPassword,
  passwordPolicyViolation,
  verifyPassword,
} from '../../src/directory/passwords.js';

void describe('password hashes', () => {
  it('a hash names scrypt and its parameters, with a fresh salt each time; the password is not in it', async () => {
    const a = await hashPassword('Corr3ct-Horse!');
    const b = await hashPassword('Corr3ct-Horse!');
    assert.notEqual(a, b);
    const [name, n, r, p, salt, hash] = a.split('$');
    assert.deepEqual([name, Number(n), Number(r), Number(p)], ['scrypt', SCRYPT_PARAMS.N, SCRYPT_PARAMS.r, SCRYPT_PARAMS.p]);
    assert.equal(Buffer.from(salt!, 'base64url').length, SALT_BYTES);
    assert.equal(Buffer.from(hash!, 'base64url').length, HASH_BYTES);
    assert.ok(!a.includes('Corr3ct'));
  });

  it('verifies the right password only (Unicode normalised)', async () => {
    const stored = await hashPassword('Caf\u00e9-Passw0rd');
    assert.equal(await verifyPassword('Caf\u00e9-Passw0rd', stored), true);
    assert.equal(await verifyPassword('Cafe\u0301-Passw0rd', stored), true);
    assert.equal(await verifyPassword('Caf\u00e9-Passw0rD', stored), false);
    assert.equal(await verifyPassword('', stored), false);
    assert.equal(await verifyPassword('anything', await dummyPasswordHash()), false);
  });

  it('a malformed or absurdly expensive stored hash is false, never computed', async () => {
    const stored = await hashPassword('Corr3ct-Horse!');
    const parts = stored.split('$');
    for (const bad of [
      '',
      'bcrypt$1$2$3$4$5',
      parts.slice(0, 5).join('$'),
      ['scrypt', String(2 ** 24), ...parts.slice(2)].join('$'),
      ['scrypt', '1000', ...parts.slice(2)].join('$'),
      ['scrypt', parts[1], '64', ...parts.slice(3)].join('$'),
      [...parts.slice(0, 4), 'AA', parts[5]].join('$'),
      [...parts.slice(0, 5), 'AAAA'].join('$'),
    ]) {
      assert.equal(await verifyPassword('Corr3ct-Horse!', bad), false, bad.slice(0, 40));
    }
  });

  it("Entra's policy: 8 to 256 characters, three character classes", () => {
    assert.equal(passwordPolicyViolation('Corr3ct-Horse!'), undefined);
    assert.equal(passwordPolicyViolation('abcDEF12'), undefined);
    assert.match(passwordPolicyViolation('aB3$') ?? '', /8 to 256/);
    assert.match(passwordPolicyViolation(`aB3$${'x'.repeat(253)}`) ?? '', /8 to 256/);
    assert.match(passwordPolicyViolation('password') ?? '', /three of/);
    assert.match(passwordPolicyViolation('Password') ?? '', /three of/);
  });
});
