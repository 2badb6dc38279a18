/**
 * Envelope encryption of secret values: each version gets a fresh 256-bit data key, the value is sealed with
 * AES-256-GCM under it with the version's place (vault, name, version) as additional data, and the data key
 * is wrapped by the master key under the same place. A sealed value copied onto another row, or altered in
 * any part, does not open. Backups are the versions' attributes and values and the source vault's
 * subscription as JSON, encrypted under the master key: opaque to clients, restorable by the vaults of the same
 * subscription in an installation holding the same master key (the restore route checks the subscription).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { MasterKey } from '../pki/master-key.js';
import type { SecretVersion, Tags } from '../store/types.js';
import type { SecretCipher, SecretPlaintext } from './contracts.js';

const SEALED_FORMAT = 's1';
const BACKUP_MARKER = 'openmsi-secret-backup-v1.';
const BACKUP_AAD = 'vault-secret-backup:v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

type Place = Omit<SecretPlaintext, 'value'>;

function placeOf(place: Place): string {
  if (typeof place.vaultId !== 'string' || typeof place.nameKey !== 'string' || typeof place.version !== 'string') {
    throw new TypeError('a secret place needs vaultId, nameKey and version strings');
  }
  return `${place.vaultId}:${place.nameKey}:${place.version}`;
}

function b64(value: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) throw new Error(`sealed secret value is malformed (${what})`);
  return Buffer.from(value, 'base64url');
}

/** The attributes a backup carries for each version (never the vault it came from). */
type BackupVersion = Omit<SecretVersion, 'vaultId' | 'sealedValue'>;

function isTags(value: unknown): value is Tags | null {
  return value === null || (typeof value === 'object' && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string'));
}

function isNullableNumber(value: unknown): value is number | null {
  return value === null || (typeof value === 'number' && Number.isFinite(value));
}

function asBackupVersion(raw: unknown, name: string): { version: BackupVersion; value: string } | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (typeof r['version'] !== 'string' || !/^[0-9a-f]{32}$/.test(r['version']) || typeof r['value'] !== 'string') return undefined;
  if (!(r['contentType'] === null || typeof r['contentType'] === 'string') || !isTags(r['tags']) || typeof r['enabled'] !== 'boolean') return undefined;
  if (!isNullableNumber(r['notBefore']) || !isNullableNumber(r['expires'])) return undefined;
  if (typeof r['createdAt'] !== 'number' || typeof r['updatedAt'] !== 'number') return undefined;
  return {
    version: {
      name,
      version: r['version'],
      contentType: r['contentType'],
      tags: r['tags'],
      enabled: r['enabled'],
      notBefore: r['notBefore'],
      expires: r['expires'],
      createdAt: r['createdAt'],
      updatedAt: r['updatedAt'],
    },
    value: r['value'],
  };
}

/** The cipher of one installation's secrets, under its master key. */
export function createSecretCipher(masterKey: MasterKey): SecretCipher {
  return {
    seal(plaintext) {
      if (typeof plaintext.value !== 'string') throw new TypeError('seal() needs a string value');
      const place = placeOf(plaintext);
      const dataKey = randomBytes(KEY_BYTES);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(Buffer.from(`vault-secret:${place}`, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext.value, 'utf8'), cipher.final()]);
      const wrapped = masterKey.encrypt(dataKey, `vault-secret-dek:${place}`);
      dataKey.fill(0);
      return [
        SEALED_FORMAT,
        Buffer.from(wrapped, 'utf8').toString('base64url'),
        iv.toString('base64url'),
        cipher.getAuthTag().toString('base64url'),
        ciphertext.toString('base64url'),
      ].join('.');
    },

    open(sealed, place) {
      const where = placeOf(place);
      const parts = typeof sealed === 'string' ? sealed.split('.') : [];
      if (parts.length !== 5 || parts[0] !== SEALED_FORMAT) throw new Error('sealed secret value is malformed or has an unknown format');
      const [, wrapped, ivText, tagText, ciphertextText] = parts as [string, string, string, string, string];
      const iv = b64(ivText, 'iv');
      const tag = b64(tagText, 'tag');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('sealed secret value is malformed (iv or tag length)');
      let dataKey: Buffer;
      try {
        dataKey = masterKey.decrypt(b64(wrapped, 'wrapped key').toString('utf8'), `vault-secret-dek:${where}`);
      } catch (err) {
        throw new Error('sealed secret value does not open here: another master key, another place, or altered', { cause: err });
      }
      if (dataKey.length !== KEY_BYTES) throw new Error('sealed secret value is malformed (data key length)');
      const decipher = createDecipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(`vault-secret:${where}`, 'utf8'));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(b64(ciphertextText, 'ciphertext')), decipher.final()]).toString('utf8');
      } catch (err) {
        throw new Error('sealed secret value does not open here: another place, or altered', { cause: err });
      } finally {
        dataKey.fill(0);
      }
    },

    backup(versions, origin, key) {
      const first = versions[0];
      if (first === undefined) throw new TypeError('backup() needs at least one version');
      if (typeof origin.subscriptionId !== 'string' || origin.subscriptionId === '') throw new TypeError('backup() needs the subscription of the vault');
      const name = first.version.name;
      const body = {
        // A key's backup has its own format, so that it can never be restored as a secret (its values are keys).
        format: key === undefined ? 'openmsi-secret-backup' : 'openmsi-key-backup',
        ...(key === undefined ? {} : { rotationPolicy: key.rotationPolicy }),
        v: 2,
        subscriptionId: origin.subscriptionId.toLowerCase(),
        name,
        versions: versions.map(({ version: v, value }) => ({
          version: v.version,
          contentType: v.contentType,
          tags: v.tags,
          enabled: v.enabled,
          notBefore: v.notBefore,
          expires: v.expires,
          createdAt: v.createdAt,
          updatedAt: v.updatedAt,
          value,
        })),
      };
      return Buffer.from(BACKUP_MARKER + masterKey.encrypt(JSON.stringify(body), BACKUP_AAD), 'utf8').toString('base64url');
    },

    restore(blob) {
      if (typeof blob !== 'string' || blob.length === 0 || blob.length > 64 * 1024 * 1024 || !/^[A-Za-z0-9_-]+={0,2}$/.test(blob)) return undefined;
      const text = Buffer.from(blob.replace(/=+$/, ''), 'base64url').toString('utf8');
      if (!text.startsWith(BACKUP_MARKER)) return undefined;
      let body: unknown;
      try {
        body = JSON.parse(masterKey.decrypt(text.slice(BACKUP_MARKER.length), BACKUP_AAD).toString('utf8'));
      } catch {
        return undefined;
      }
      const b = body as { format?: unknown; v?: unknown; subscriptionId?: unknown; name?: unknown; versions?: unknown; rotationPolicy?: unknown } | null;
      const objects = b?.format === 'openmsi-secret-backup' ? 'secrets' : b?.format === 'openmsi-key-backup' ? 'keys' : undefined;
      if (b === null || objects === undefined || typeof b.name !== 'string' || !Array.isArray(b.versions) || b.versions.length === 0) return undefined;
      const rotationPolicy = objects === 'keys' ? b.rotationPolicy : null;
      if (rotationPolicy !== null && typeof rotationPolicy !== 'string') return undefined;
      // v1 (before backups recorded their subscription) has none; v2 must name one.
      if (!(b.v === 1 && b.subscriptionId === undefined) && !(b.v === 2 && typeof b.subscriptionId === 'string' && b.subscriptionId !== '')) return undefined;
      const subscriptionId = typeof b.subscriptionId === 'string' ? b.subscriptionId : undefined;
      const name = b.name;
      const out: { version: BackupVersion; value: string }[] = [];
      for (const raw of b.versions) {
        const parsed = asBackupVersion(raw, name);
        if (parsed === undefined) return undefined;
        out.push(parsed);
      }
      return { objects, name, subscriptionId, versions: out, rotationPolicy };
    },
  };
}
