import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MasterKey } from '../../src/pki/master-key.js';
import { createSecretCipher } from '../../src/vault/secret-cipher.js';
import type { SecretVersion } from '../../src/store/types.js';

const KEY_BYTES = Buffer.alloc(32, 7);
const masterKey = MasterKey.fromBytes(KEY_BYTES);
const cipher = createSecretCipher(masterKey);
const SUBSCRIPTION = '0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const place = { vaultId: '6f0c1a52-5a1e-4b8e-9d53-0a5f3c1e2b7d', nameKey: 'db-password', version: 'a'.repeat(32) };

function version(overrides: Partial<SecretVersion> = {}): SecretVersion {
  return {
    vaultId: place.vaultId,
    name: 'Db-Password',
    version: 'b'.repeat(32),
    sealedValue: 'unused',
    contentType: 'text/plain',
    tags: { env: 'prod' },
    enabled: true,
    notBefore: null,
    expires: 1_900_000_000,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_001,
    ...overrides,
  };
}

describe('secret cipher', () => {
  it('seal then open gives the value back; the sealed form holds no part of it in the clear', () => {
    const value = 'Server=db;Password=correct horse battery staple';
    const sealed = cipher.seal({ ...place, value });
    assert.equal(cipher.open(sealed, place), value);
    assert.ok(!sealed.includes('horse') && !Buffer.from(sealed.replace(/\./g, ''), 'base64url').toString('latin1').includes('horse'));
    assert.notEqual(cipher.seal({ ...place, value }), sealed, 'a fresh data key and IV every time');
  });

  it('round-trips any string (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000, unit: 'binary' }), (value) => cipher.open(cipher.seal({ ...place, value }), place) === value),
      { numRuns: 200 },
    );
  });

  it('a sealed value does not open at another vault, name or version', () => {
    const sealed = cipher.seal({ ...place, value: 'x' });
    for (const other of [
      { ...place, vaultId: 'other' },
      { ...place, nameKey: 'other' },
      { ...place, version: 'c'.repeat(32) },
    ]) {
      assert.throws(() => cipher.open(sealed, other), /does not open/);
    }
  });

  it('any altered part is detected, and errors never carry the value', () => {
    const value = 'top-secret-value';
    const sealed = cipher.seal({ ...place, value });
    const parts = sealed.split('.');
    for (let i = 1; i < parts.length; i++) {
      const part = parts[i]!;
      const flipped = part.slice(0, -2) + (part.at(-2) === 'A' ? 'B' : 'A') + part.at(-1);
      const altered = [...parts.slice(0, i), flipped, ...parts.slice(i + 1)].join('.');
      assert.throws(
        () => cipher.open(altered, place),
        (err: Error) => !err.message.includes(value),
        `part ${String(i)}`,
      );
    }
    assert.throws(() => cipher.open('garbage', place), /malformed/);
    assert.throws(() => createSecretCipher(MasterKey.random()).open(sealed, place), /does not open/);
  });

  it('refuses, as malformed, a sealed value of another format, part count, iv or tag length, alphabet or data key length', () => {
    const sealed = cipher.seal({ ...place, value: 'x' });
    const parts = sealed.split('.');
    assert.equal(parts.length, 5);
    assert.equal(parts[0], 's1', 'the format tag');
    const swap = (i: number, part: string) => [...parts.slice(0, i), part, ...parts.slice(i + 1)].join('.');
    const malformed: [string, unknown][] = [
      ['another format', swap(0, 's2')],
      ['no format', parts.slice(1).join('.')],
      ['an extra part', `${sealed}.AAAA`],
      ['a short iv', swap(2, Buffer.alloc(8).toString('base64url'))],
      ['a long iv', swap(2, Buffer.alloc(16).toString('base64url'))],
      ['a truncated tag', swap(3, Buffer.from(parts[3]!, 'base64url').subarray(0, 12).toString('base64url'))],
      ['a character outside base64url in the iv', swap(2, `${parts[2]!.slice(0, -1)}/`)],
      [
        'a data key of 16 bytes',
        swap(
          1,
          Buffer.from(masterKey.encrypt(Buffer.alloc(16, 1), `vault-secret-dek:${place.vaultId}:${place.nameKey}:${place.version}`), 'utf8').toString(
            'base64url',
          ),
        ),
      ],
      ['not a string', 42],
    ];
    for (const [what, bad] of malformed) assert.throws(() => cipher.open(bad as string, place), /malformed/, what);
  });

  it('refuses a place or a value of the wrong type', () => {
    const sealed = cipher.seal({ ...place, value: 'x' });
    for (const key of ['vaultId', 'nameKey', 'version'] as const) {
      const bad: typeof place = { ...place, [key]: undefined };
      assert.throws(() => cipher.seal({ ...bad, value: 'x' }), TypeError, key);
      assert.throws(() => cipher.open(sealed, bad), TypeError, key);
    }
    assert.throws(() => cipher.seal({ ...place, value: Buffer.from('x') as unknown as string }), /seal\(\) needs a string value/);
  });

  it('a backup restores every version with its attributes and value under the same master key', () => {
    const versions = [
      { version: version({ version: '1'.repeat(32) }), value: 'first' },
      { version: version({ version: '2'.repeat(32), tags: null, contentType: null, enabled: false, notBefore: 5, expires: null }), value: 'second' },
    ];
    const blob = cipher.backup(versions, { subscriptionId: SUBSCRIPTION.toUpperCase() });
    assert.match(blob, /^[A-Za-z0-9_-]+$/);
    assert.ok(!Buffer.from(blob, 'base64url').toString('latin1').includes('second'), 'no value in the clear');
    const restored = createSecretCipher(MasterKey.fromBytes(Buffer.from(KEY_BYTES))).restore(blob);
    assert.equal(restored?.name, 'Db-Password');
    assert.equal(restored?.subscriptionId, SUBSCRIPTION, 'the subscription it was taken in, for the restore route to check');
    assert.deepEqual(
      restored?.versions,
      versions.map(({ version: { vaultId: _v, sealedValue: _s, ...rest }, value }) => ({ version: rest, value })),
    );
  });

  it('restore refuses, without throwing, garbage, truncation, tampering and another installation', () => {
    const blob = cipher.backup([{ version: version(), value: 'v' }], { subscriptionId: SUBSCRIPTION });
    for (const bad of [
      '',
      'not base64!',
      blob.slice(0, -10),
      `${blob.slice(0, 40)}A${blob.slice(41)}`,
      Buffer.from('{"format":"openmsi-secret-backup"}').toString('base64url'),
    ]) {
      assert.equal(cipher.restore(bad), undefined, bad.slice(0, 20));
    }
    assert.equal(createSecretCipher(MasterKey.random()).restore(blob), undefined);
    fc.assert(
      fc.property(fc.string({ maxLength: 500 }), (junk) => cipher.restore(junk) === undefined),
      { numRuns: 200 },
    );
  });

  it('a backup names its subscription in the authenticated body; the first format names none, and a mixed form is refused', () => {
    /** A blob of the given body, as the cipher seals backups (marker, master key, the backups' additional data). */
    const sealedBody = (body: Record<string, unknown>) =>
      Buffer.from(`openmsi-secret-backup-v1.${masterKey.encrypt(JSON.stringify(body), 'vault-secret-backup:v1')}`, 'utf8').toString('base64url');
    const versions = [
      { version: 'd'.repeat(32), contentType: null, tags: null, enabled: true, notBefore: null, expires: null, createdAt: 1, updatedAt: 2, value: 'v' },
    ];
    const base = { format: 'openmsi-secret-backup', name: 'old', versions };
    assert.equal(cipher.restore(sealedBody({ ...base, v: 1 }))?.subscriptionId, undefined, 'a first-format backup restores with no subscription');
    assert.equal(cipher.restore(sealedBody({ ...base, v: 2, subscriptionId: SUBSCRIPTION }))?.subscriptionId, SUBSCRIPTION);
    for (const bad of [
      { ...base, v: 2 },
      { ...base, v: 2, subscriptionId: '' },
      { ...base, v: 2, subscriptionId: 7 },
      { ...base, v: 1, subscriptionId: SUBSCRIPTION },
      { ...base, v: 3, subscriptionId: SUBSCRIPTION },
    ]) {
      assert.equal(cipher.restore(sealedBody(bad)), undefined, JSON.stringify(bad).slice(0, 80));
    }
    assert.throws(() => cipher.backup([{ version: version(), value: 'v' }], { subscriptionId: '' }), TypeError);
  });

  it('restore refuses a body or a version of any other shape, and a blob that is not a string; padding is allowed', () => {
    const sealedBody = (body: unknown) =>
      Buffer.from(`openmsi-secret-backup-v1.${masterKey.encrypt(JSON.stringify(body), 'vault-secret-backup:v1')}`, 'utf8').toString('base64url');
    const good = {
      version: 'd'.repeat(32),
      contentType: 'text/plain',
      tags: { a: 'b' },
      enabled: true,
      notBefore: 1,
      expires: null,
      createdAt: 1,
      updatedAt: 2,
      value: 'v',
    };
    const body = (over: Record<string, unknown>) => ({
      format: 'openmsi-secret-backup',
      v: 2,
      subscriptionId: SUBSCRIPTION,
      name: 'n',
      versions: [good],
      ...over,
    });
    assert.equal(cipher.restore(sealedBody(body({})))?.versions.length, 1, 'control');
    const badBodies: unknown[] = [
      null,
      'a string',
      body({ format: 'another' }),
      body({ name: 7 }),
      body({ versions: {} }),
      body({ versions: [] }),
      body({ v: '2' }),
      { format: 'openmsi-secret-backup', v: 3, name: 'n', versions: [good] },
      { format: 'openmsi-secret-backup', name: 'n', versions: [good] },
    ];
    for (const bad of badBodies) assert.equal(cipher.restore(sealedBody(bad)), undefined, JSON.stringify(bad).slice(0, 100));
    const badVersions: Record<string, unknown>[] = [
      { version: 7 },
      { version: ['d'.repeat(32)] },
      { version: 'D'.repeat(32) },
      { version: 'd'.repeat(31) },
      { version: `${'d'.repeat(32)}/x` },
      { version: `x${'d'.repeat(32)}` },
      { value: 7 },
      { contentType: 7 },
      { contentType: undefined },
      { tags: [] },
      { tags: 'a' },
      { tags: { a: 1 } },
      { tags: { a: 'b', c: 1 } },
      { enabled: 'true' },
      { notBefore: '1' },
      { expires: '1' },
      { createdAt: null },
      { updatedAt: '2' },
    ];
    for (const over of badVersions) {
      const versions = [good, { ...good, ...over }];
      assert.equal(cipher.restore(sealedBody(body({ versions }))), undefined, JSON.stringify(over));
    }
    assert.equal(cipher.restore(sealedBody(body({ versions: [good, null] }))), undefined, 'a null version');
    assert.equal(cipher.restore(sealedBody(body({ versions: [good, 'v'] }))), undefined, 'a string version');
    const blob = cipher.backup([{ version: version(), value: 'v' }], { subscriptionId: SUBSCRIPTION });
    assert.equal(cipher.restore(`${blob}==`)?.versions[0]?.value, 'v', 'base64 padding');
    assert.equal(cipher.restore(`${blob}===`), undefined, 'at most two padding characters');
    for (const bad of [42, null, undefined, { blob }]) assert.equal(cipher.restore(bad as unknown as string), undefined, JSON.stringify(bad));
  });
});
