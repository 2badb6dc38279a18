/**
 * The master key: 32 random bytes that protect every secret openmsi keeps at rest (signing private keys) and
 * key the hash of client secrets. It never touches the database; it comes from `OPENMSI_MASTER_KEY` or from
 * `<dataDir>/master.key`, so a stolen database alone reveals nothing usable.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ENV, readEnvironment } from '../shared/config.js';
import { makePrivateDir, writePrivateFile } from '../shared/private-files.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const FORMAT_VERSION = 'v1';
/** File name of the master key inside the data directory. */
export const MASTER_KEY_FILE = 'master.key';
/** Environment variable that, when set, takes precedence over the key file. */
export const MASTER_KEY_ENV = ENV.masterKey;

// Standard or URL-safe alphabet, optional padding. Node's decoder silently skips junk, so check first.
const BASE64_ANY = /^[A-Za-z0-9+/_-]+={0,2}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Options for {@link MasterKey.fromEnvOrFile}. */
export interface MasterKeySource {
  /** Environment to read `OPENMSI_MASTER_KEY` from; defaults to `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory holding `master.key`. */
  dataDir: string;
  /** Create `<dataDir>/master.key` when neither the variable nor the file exists (first run). Default false. */
  createIfMissing?: boolean;
}

function decodeKeyText(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  if (!BASE64_ANY.test(trimmed)) {
    throw new Error(`${origin} must be base64 or base64url encoding of exactly ${KEY_BYTES} bytes`);
  }
  const bytes = Buffer.from(trimmed, 'base64');
  if (bytes.length !== KEY_BYTES) {
    // Report the length, never the value.
    throw new Error(`${origin} must decode to exactly ${KEY_BYTES} bytes (got ${bytes.length})`);
  }
  return bytes;
}

function decodeB64url(part: string, what: string): Buffer {
  if (!BASE64URL.test(part)) throw new Error(`Encrypted value is malformed (${what} is not base64url)`);
  return Buffer.from(part, 'base64url');
}

/**
 * A 256-bit master key. Encrypts with AES-256-GCM under an HKDF-derived subkey and hashes client secrets
 * with HMAC-SHA256 under a different subkey.
 */
export class MasterKey {
  readonly #encryptionKey: Buffer;
  readonly #secretHashKey: Buffer;
  readonly #ikm: Buffer;

  private constructor(bytes: Buffer) {
    if (!Buffer.isBuffer(bytes) || bytes.length !== KEY_BYTES) {
      throw new TypeError(`MasterKey needs exactly ${KEY_BYTES} bytes`);
    }
    this.#ikm = Buffer.from(bytes);
    this.#encryptionKey = this.deriveKey('encryption');
    this.#secretHashKey = this.deriveKey('client-secret-hash');
  }

  /** A fresh random key that lives only in memory (tests, ephemeral dev servers). */
  static random(): MasterKey {
    return new MasterKey(randomBytes(KEY_BYTES));
  }

  /** Wraps existing key bytes (exactly 32). */
  static fromBytes(bytes: Uint8Array): MasterKey {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('MasterKey.fromBytes() takes a Uint8Array');
    return new MasterKey(Buffer.from(bytes));
  }

  /**
   * Loads the key from `OPENMSI_MASTER_KEY` (base64 or base64url of 32 bytes) if set and non-empty, otherwise
   * from `<dataDir>/master.key`. Refuses a key file that group or others can access.
   *
   * @throws Error with an actionable message when the value is malformed, the file is missing (and
   *   `createIfMissing` is false) or its permissions are too open.
   */
  static fromEnvOrFile(source: MasterKeySource): MasterKey {
    if (source === null || typeof source !== 'object' || typeof source.dataDir !== 'string' || source.dataDir === '') {
      throw new TypeError('MasterKey.fromEnvOrFile() needs { dataDir: string }');
    }
    const fromEnv = readEnvironment(source.env).masterKey;
    if (fromEnv !== undefined) {
      return new MasterKey(decodeKeyText(fromEnv, MASTER_KEY_ENV));
    }
    const path = join(source.dataDir, MASTER_KEY_FILE);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (source.createIfMissing === true) return MasterKey.createFile(source.dataDir);
        throw new Error(`No master key: set ${MASTER_KEY_ENV} or create ${path} (openmsi creates it on first initialisation)`, { cause: err });
      }
      throw err;
    }
    try {
      // fstat the descriptor we read from, so the checked file is the file we use.
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new Error(`${path} is not a regular file`);
      // POSIX permission bits mean nothing on Windows; rely on ACLs there.
      if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
        throw new Error(
          `${path} is accessible by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(3, '0')}); ` + `restrict it with: chmod 600 ${path}`,
        );
      }
      let bytes: Buffer;
      try {
        bytes = decodeKeyText(readFileSync(fd, 'utf8'), path);
      } catch (err) {
        // Only this key decrypts the data dir's keys and the store's secrets: a new one would not help.
        throw new Error(`${(err as Error).message}; it was changed or truncated: restore ${path} from a backup of the data dir`, { cause: err });
      }
      return new MasterKey(bytes);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Generates a new key and writes it to `<dataDir>/master.key` with mode 0600. Never overwrites: an existing
   * file makes this throw (`EEXIST`), because replacing the key would orphan everything encrypted under it.
   */
  static createFile(dataDir: string): MasterKey {
    if (typeof dataDir !== 'string' || dataDir === '') throw new TypeError('MasterKey.createFile() needs a data directory');
    makePrivateDir(dataDir);
    const bytes = randomBytes(KEY_BYTES);
    writePrivateFile(join(dataDir, MASTER_KEY_FILE), `${bytes.toString('base64')}\n`, { flag: 'wx' });
    return new MasterKey(bytes);
  }

  /**
   * A 32-byte HKDF-SHA256 subkey for one purpose (`encryption` and `client-secret-hash` are used here).
   * Distinct purposes give independent keys, so no use of one subkey can weaken another.
   */
  deriveKey(purpose: string): Buffer {
    if (typeof purpose !== 'string' || purpose === '') throw new TypeError('deriveKey() needs a non-empty purpose');
    return Buffer.from(hkdfSync('sha256', this.#ikm, Buffer.alloc(0), `openmsi/master-key/${purpose}`, KEY_BYTES));
  }

  /**
   * Encrypts with AES-256-GCM and a random 96-bit IV. `aad` binds the ciphertext to its context (for example
   * `signing-key:<kid>`), so a blob copied onto another row fails to decrypt.
   *
   * @returns `v1.<iv>.<tag>.<ciphertext>`, each part base64url.
   */
  encrypt(plaintext: Buffer | string, aad: string): string {
    if (typeof plaintext !== 'string' && !Buffer.isBuffer(plaintext)) throw new TypeError('encrypt() takes a Buffer or string');
    if (typeof aad !== 'string') throw new TypeError('encrypt() needs an aad string');
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#encryptionKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const ciphertext = Buffer.concat([cipher.update(data), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [FORMAT_VERSION, iv.toString('base64url'), tag.toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /**
   * Reverses {@link encrypt}.
   *
   * @throws Error when the blob is malformed, was encrypted under another key or `aad`, or was tampered with.
   */
  decrypt(blob: string, aad: string): Buffer {
    if (typeof blob !== 'string') throw new TypeError('decrypt() takes the string encrypt() returned');
    if (typeof aad !== 'string') throw new TypeError('decrypt() needs an aad string');
    const parts = blob.split('.');
    if (parts.length !== 4 || parts[0] !== FORMAT_VERSION) throw new Error('Encrypted value is malformed or has an unknown version');
    const iv = decodeB64url(parts[1]!, 'iv');
    const tag = decodeB64url(parts[2]!, 'tag');
    const ciphertext = decodeB64url(parts[3]!, 'ciphertext');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('Encrypted value is malformed (bad iv or tag length)');
    const decipher = createDecipheriv('aes-256-gcm', this.#encryptionKey, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch (err) {
      throw new Error('Decryption failed: wrong master key, wrong context, or the value was modified', { cause: err });
    }
  }

  /**
   * A public name for this key: the first 16 bytes of its `key-id` subkey, base64url. Two data dirs hold the
   * same key exactly when their ids match (what `openmsi restore` checks); the id reveals nothing of the key.
   */
  keyId(): string {
    return this.deriveKey('key-id').subarray(0, 16).toString('base64url');
  }

  /** HMAC-SHA256 of `data` under the subkey for `purpose` (base64url): binds `data` to this key, e.g. a backup's header. */
  mac(purpose: string, data: string | Buffer): string {
    return createHmac('sha256', this.deriveKey(`mac/${purpose}`))
      .update(data)
      .digest('base64url');
  }

  /** Constant-time check of a {@link mac} result. */
  verifyMac(purpose: string, data: string | Buffer, mac: string): boolean {
    const expected = Buffer.from(this.mac(purpose, data), 'utf8');
    const actual = Buffer.from(mac, 'utf8');
    return expected.length === actual.length && timingSafeEqual(expected, actual);
  }

  /** Keyed hash of a client secret: base64url HMAC-SHA256 under the `client-secret-hash` subkey. */
  hashSecret(secret: string): string {
    if (typeof secret !== 'string') throw new TypeError('hashSecret() takes a string');
    return createHmac('sha256', this.#secretHashKey).update(secret, 'utf8').digest('base64url');
  }

  /** Constant-time check of `secret` against a {@link hashSecret} result. */
  verifySecret(secret: string, hash: string): boolean {
    if (typeof secret !== 'string' || typeof hash !== 'string') throw new TypeError('verifySecret() takes two strings');
    const expected = Buffer.from(this.hashSecret(secret), 'utf8');
    const actual = Buffer.from(hash, 'utf8');
    // The length of an HMAC is public; only the content comparison must be constant-time.
    if (expected.length !== actual.length) return false;
    return timingSafeEqual(expected, actual);
  }

  /** Keeps the key out of logs and JSON. */
  toJSON(): string {
    return '[MasterKey]';
  }

  [inspect.custom](): string {
    return 'MasterKey { [redacted] }';
  }
}
