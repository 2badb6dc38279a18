import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { MasterKey, MASTER_KEY_FILE } from '../../src/pki/master-key.js';

const tmpRoot = mkdtempSync(join(tmpdir(), 'openmsi-master-key-'));
let dirCount = 0;
function freshDir(): string {
  return join(tmpRoot, `d${dirCount++}`);
}
after(() => rmSync(tmpRoot, { recursive: true, force: true }));

const posix = process.platform !== 'win32';

void describe('MasterKey encryption', () => {
  const key = MasterKey.random();

  void it('round-trips buffers and strings', () => {
    const data = randomBytes(1000);
    assert.deepEqual(key.decrypt(key.encrypt(data, 'ctx'), 'ctx'), data);
    assert.equal(key.decrypt(key.encrypt('héllo', 'ctx'), 'ctx').toString('utf8'), 'héllo');
    assert.equal(key.decrypt(key.encrypt('', 'ctx'), 'ctx').length, 0);
  });

  void it('produces the compact v1 format with a fresh IV each time', () => {
    const a = key.encrypt('same', 'ctx');
    const b = key.encrypt('same', 'ctx');
    assert.match(a, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]+$/);
    assert.notEqual(a, b);
  });

  void it('detects tampering with any part', () => {
    const blob = key.encrypt('secret data', 'ctx');
    const parts = blob.split('.');
    for (const i of [1, 2, 3]) {
      const bytes = Buffer.from(parts[i]!, 'base64url');
      bytes[0] = bytes[0]! ^ 0x01;
      const tampered = [...parts];
      tampered[i] = bytes.toString('base64url');
      assert.throws(() => key.decrypt(tampered.join('.'), 'ctx'), /Decryption failed|malformed/);
    }
  });

  void it('rejects the wrong aad and the wrong key', () => {
    const blob = key.encrypt('secret data', 'signing-key:a');
    assert.throws(() => key.decrypt(blob, 'signing-key:b'), /Decryption failed/);
    assert.throws(() => MasterKey.random().decrypt(blob, 'signing-key:a'), /Decryption failed/);
  });

  void it('rejects malformed blobs with an Error and bad arguments with a TypeError', () => {
    for (const bad of ['', 'v1', 'v2.a.b.c', 'v1.a.b', 'v1.!!.b.c', 'v1.AAAA.AAAA.AAAA']) {
      assert.throws(
        () => key.decrypt(bad, 'ctx'),
        (err: Error) => !(err instanceof TypeError),
      );
    }
    assert.throws(() => key.decrypt(42 as unknown as string, 'ctx'), TypeError);
    assert.throws(() => key.encrypt('x', undefined as unknown as string), TypeError);
    assert.throws(() => MasterKey.fromBytes(new Uint8Array(16)), TypeError);
  });

  void it('derives distinct subkeys per purpose', () => {
    const enc = key.deriveKey('encryption');
    const hash = key.deriveKey('client-secret-hash');
    assert.equal(enc.length, 32);
    assert.notDeepEqual(enc, hash);
    assert.deepEqual(key.deriveKey('encryption'), enc);
  });

  void it('never shows the key in inspect or JSON', () => {
    assert.equal(JSON.stringify({ key }), '{"key":"[MasterKey]"}');
    assert.equal(inspect(key), 'MasterKey { [redacted] }');
  });
});

void describe('MasterKey secret hashing', () => {
  const key = MasterKey.random();

  void it('verifies the right secret only, in base64url', () => {
    const hash = key.hashSecret('s3cr3t~value');
    assert.match(hash, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(key.verifySecret('s3cr3t~value', hash), true);
    assert.equal(key.verifySecret('s3cr3t~valuE', hash), false);
    assert.equal(key.verifySecret('s3cr3t~value', hash.slice(1)), false);
    assert.equal(key.verifySecret('s3cr3t~value', ''), false);
  });

  void it('is keyed: another master key gives another hash', () => {
    assert.notEqual(MasterKey.random().hashSecret('x'), key.hashSecret('x'));
    assert.equal(key.hashSecret('x'), key.hashSecret('x'));
  });
});

void describe('MasterKey.fromEnvOrFile', () => {
  void it('accepts base64 and base64url from OPENMSI_MASTER_KEY', () => {
    const bytes = Buffer.alloc(32, 0xfb); // 0xfb encodes with + and / in base64
    const viaB64 = MasterKey.fromEnvOrFile({ env: { OPENMSI_MASTER_KEY: bytes.toString('base64') }, dataDir: freshDir() });
    const viaUrl = MasterKey.fromEnvOrFile({ env: { OPENMSI_MASTER_KEY: bytes.toString('base64url') }, dataDir: freshDir() });
    const blob = viaB64.encrypt('x', 'ctx');
    assert.equal(viaUrl.decrypt(blob, 'ctx').toString(), 'x');
    assert.equal(MasterKey.fromBytes(bytes).decrypt(blob, 'ctx').toString(), 'x');
  });

  void it('rejects values that are not exactly 32 bytes of base64, without echoing them', () => {
    for (const value of ['short', Buffer.alloc(31).toString('base64'), Buffer.alloc(33).toString('base64'), 'not base64 at all!!']) {
      assert.throws(
        () => MasterKey.fromEnvOrFile({ env: { OPENMSI_MASTER_KEY: value }, dataDir: freshDir() }),
        (err: Error) => err.message.includes('OPENMSI_MASTER_KEY') && !err.message.includes(value) && !(err instanceof TypeError),
      );
    }
  });

  void it('reads the key file written by createFile, with mode 0600, and never overwrites it', () => {
    const dir = freshDir();
    const created = MasterKey.createFile(dir);
    const path = join(dir, MASTER_KEY_FILE);
    if (posix) assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(Buffer.from(readFileSync(path, 'utf8').trim(), 'base64').length, 32);
    const loaded = MasterKey.fromEnvOrFile({ env: {}, dataDir: dir });
    assert.equal(loaded.decrypt(created.encrypt('hi', 'ctx'), 'ctx').toString(), 'hi');
    assert.throws(() => MasterKey.createFile(dir), /EEXIST/);
  });

  void it('prefers the environment variable over the file', () => {
    const dir = freshDir();
    MasterKey.createFile(dir);
    const envBytes = randomBytes(32);
    const key = MasterKey.fromEnvOrFile({ env: { OPENMSI_MASTER_KEY: envBytes.toString('base64') }, dataDir: dir });
    assert.equal(MasterKey.fromBytes(envBytes).decrypt(key.encrypt('x', 'c'), 'c').toString(), 'x');
  });

  void it('refuses a key file readable by group or others', { skip: posix ? false : 'file modes are POSIX only' }, () => {
    const dir = freshDir();
    MasterKey.createFile(dir);
    const path = join(dir, MASTER_KEY_FILE);
    for (const mode of [0o640, 0o604, 0o644]) {
      chmodSync(path, mode);
      assert.throws(() => MasterKey.fromEnvOrFile({ env: {}, dataDir: dir }), /chmod 600/);
    }
    chmodSync(path, 0o400);
    assert.ok(MasterKey.fromEnvOrFile({ env: {}, dataDir: dir }));
  });

  void it('explains a missing key, or creates one when asked', () => {
    const dir = freshDir();
    assert.throws(() => MasterKey.fromEnvOrFile({ env: {}, dataDir: dir }), /OPENMSI_MASTER_KEY/);
    const created = MasterKey.fromEnvOrFile({ env: {}, dataDir: dir, createIfMissing: true });
    const again = MasterKey.fromEnvOrFile({ env: {}, dataDir: dir });
    assert.equal(again.decrypt(created.encrypt('x', 'c'), 'c').toString(), 'x');
  });

  void it('rejects a corrupt key file', () => {
    const dir = freshDir();
    MasterKey.createFile(dir);
    const path = join(dir, MASTER_KEY_FILE);
    rmSync(path);
    writeFileSync(path, 'AAAA\n', { mode: 0o600 });
    assert.throws(() => MasterKey.fromEnvOrFile({ env: {}, dataDir: dir }), /exactly 32 bytes/);
  });

  void it('treats an empty variable as unset', () => {
    const dir = freshDir();
    MasterKey.createFile(dir);
    assert.ok(MasterKey.fromEnvOrFile({ env: { OPENMSI_MASTER_KEY: '' }, dataDir: dir }));
  });
});

void describe('MasterKey key id and MAC (what a backup is checked with)', () => {
  it('the key id names the key: the same for the same bytes, different for another key, and none of the key in it', () => {
    const bytes = randomBytes(32);
    const id = MasterKey.fromBytes(bytes).keyId();
    assert.match(id, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(MasterKey.fromBytes(Buffer.from(bytes)).keyId(), id);
    assert.notEqual(MasterKey.random().keyId(), id);
    assert.ok(!Buffer.from(id, 'base64url').equals(bytes.subarray(0, 16)));
  });

  it('a MAC verifies under its key and purpose only, and not for changed data', () => {
    const key = MasterKey.random();
    const mac = key.mac('backup-header', 'header');
    assert.equal(key.verifyMac('backup-header', 'header', mac), true);
    assert.equal(key.verifyMac('backup-header', 'header ', mac), false);
    assert.equal(key.verifyMac('other', 'header', mac), false);
    assert.equal(MasterKey.random().verifyMac('backup-header', 'header', mac), false);
    assert.equal(key.verifyMac('backup-header', 'header', mac.slice(1)), false);
  });
});
