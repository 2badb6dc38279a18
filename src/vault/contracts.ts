/**
 * Contracts of the vault: the Key Vault-compatible data plane (`src/vault/`), the vault's ARM resource
 * (`src/directory/vaults.ts`, `src/management/vaults.ts`) and the processes that serve it (`openmsi server`,
 * `openmsi vault`). Wire contract: `../shared/specs/key-vault-secrets.md`.
 *
 * Addressing: a vault is addressed by host, `https://{name}.{vaultDomain}[:port]/`, as Key Vault clients
 * require. The challenge's `resource` is `https://{vaultDomain}[:port]` (the port of the request, when not
 * 443), so every SDK's challenge-resource check (vault host ends with `.` + resource host, Python and Go
 * comparing ports too) passes with no client option. Tokens for that resource, and for
 * `https://vault.azure.net`, are accepted.
 *
 * Routing is by object kind below the vault (`/secrets`, `/deletedsecrets`, `/keys`, `/deletedkeys`, later `/certificates`),
 * each kind its own folder of one-file-per-operation handlers, so keys and certificates can be added beside
 * secrets without reshaping.
 */
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../shared/clock.js';
import { DEFAULTS } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import type { VerifiedToken } from '../shared/token-verifier.js';
import type { MasterKey } from '../pki/master-key.js';
import type { Authorizer } from '../rbac/contracts.js';
import type { AuditWriter } from '../store/audit-writer.js';
import type { SecretVersion, Store } from '../store/types.js';

/** The vault domain `openmsi init` chooses unless told otherwise: RFC 6761 reserves `localhost` names for loopback. */
export const DEFAULT_VAULT_DOMAIN = DEFAULTS.vaultDomain;

/** Key Vault's own resource; tokens for it are accepted as Key Vault accepts them. */
export const AZURE_KEY_VAULT_RESOURCE = 'https://vault.azure.net';

/** What the data plane needs from the process that hosts it (`openmsi server` or `openmsi vault`). */
export interface VaultContext {
  store: Store;
  masterKey: MasterKey;
  clock: Clock;
  logger: Logger;
  audit: AuditWriter;
  /** The shared RBAC authoriser (cached decisions, invalidated by change notices). */
  authorizer: Authorizer;
  /**
   * The shared verifier: signature over the authority's keys (in memory), `iss` = the token tenant's v1
   * issuer, `aud` in `audiences`, `exp`/`nbf`. Throws TokenVerificationError for a bad token.
   */
  verifyAccessToken(token: string, audiences: readonly string[]): Promise<VerifiedToken>;
  /**
   * Whether the signing key `kid` is still published (in memory: the key ring, which every key change of any
   * replica reloads at once). Checked on every cached token, so a revoked key's tokens are refused at once.
   */
  signingKeyPublished(kid: string): boolean;
  /** The authority's public https origin, for the challenge's `authorization="{origin}/{tenantId}"`. */
  authorityOrigin(): string;
  /** e.g. `vault.localhost`: vault hosts are `{name}.{vaultDomain}`. Lower-case, no port. */
  vaultDomain: string;
}

/** Options of {@link BuildVaultApp}. */
export interface VaultAppOptions {
  /** HTTPS material; undefined for in-process `inject()` tests only. */
  tls?: { cert: string; key: string };
}

/**
 * Builds the data plane as its own fastify app (error handler, not-found handler, hooks). `openmsi vault`
 * listens with it; `openmsi server` hands it every request whose Host is `*.{vaultDomain}` (see
 * `src/vault/host-dispatch.ts`), through `app.routing`.
 */
export type BuildVaultApp = (ctx: VaultContext, options?: VaultAppOptions) => Promise<FastifyInstance>;

/** `https://{name}.{vaultDomain}[:port]/` (port omitted when 443). Names are lower-cased, as DNS is. */
export function vaultUri(name: string, vaultDomain: string, port: number): string {
  const portPart = port === 443 ? '' : `:${String(port)}`;
  return `https://${name.toLowerCase()}.${vaultDomain}${portPart}/`;
}

/**
 * The vault name a request's Host names, or undefined when the host is not `{label}.{vaultDomain}[:port]`.
 * `host` is the Host header as received.
 */
export function vaultNameFromHost(host: string | undefined, vaultDomain: string): string | undefined {
  if (host === undefined) return undefined;
  const hostname = host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
  const suffix = `.${vaultDomain}`;
  if (!hostname.endsWith(suffix)) return undefined;
  const label = hostname.slice(0, -suffix.length);
  return /^[a-z0-9-]{1,63}$/.test(label) ? label : undefined;
}

/** Azure's vault-name rule: 3-24 letters, digits and hyphens, starting with a letter, ending with a letter or digit, no `--`. */
export const VAULT_NAME_PATTERN = /^(?=.{3,24}$)[a-zA-Z](?:[a-zA-Z0-9]|-(?!-))*[a-zA-Z0-9]$/;

/** The access-policy secret permissions (lower-case), as in Azure. */
export const SECRET_PERMISSIONS = ['get', 'list', 'set', 'delete', 'recover', 'backup', 'restore', 'purge'] as const;
export type SecretPermission = (typeof SECRET_PERMISSIONS)[number];

/** The twenty access-policy key permissions (lower-case), as in Azure (keys spec §3.1). */
export const KEY_PERMISSIONS = [
  'get',
  'list',
  'update',
  'create',
  'import',
  'delete',
  'recover',
  'backup',
  'restore',
  'decrypt',
  'encrypt',
  'unwrapkey',
  'wrapkey',
  'verify',
  'sign',
  'purge',
  'release',
  'rotate',
  'getrotationpolicy',
  'setrotationpolicy',
] as const;
export type KeyPermission = (typeof KEY_PERMISSIONS)[number];

/** One data-plane operation: the objects it acts on, its access-policy permission(s) and its RBAC data action. */
export interface VaultOperation {
  /** Stable name, used in audit records (`vault.<objects>.<name>`). */
  name: string;
  /** Which access-policy list grants it, and the audit family. */
  objects: 'secrets' | 'keys';
  /** Access-policy permissions, any one of which grants the operation (lower-case). */
  permissions: readonly string[];
  dataAction: string;
}
/** A secrets operation (kept as a name: the secrets routes predate keys). */
export type SecretOperation = VaultOperation;

const SECRETS = 'Microsoft.KeyVault/vaults/secrets';
const secretOp = (name: string, permission: SecretPermission, action: string): VaultOperation => ({
  name,
  objects: 'secrets',
  permissions: [permission],
  dataAction: `${SECRETS}/${action}`,
});

/** The twelve secrets operations (spec §1.3). */
export const SECRET_OPERATIONS = {
  set: secretOp('set', 'set', 'setSecret/action'),
  get: secretOp('get', 'get', 'getSecret/action'),
  update: secretOp('update', 'set', 'update/action'),
  delete: secretOp('delete', 'delete', 'delete'),
  list: secretOp('list', 'list', 'readMetadata/action'),
  listVersions: secretOp('listVersions', 'list', 'readMetadata/action'),
  listDeleted: secretOp('listDeleted', 'list', 'readMetadata/action'),
  getDeleted: secretOp('getDeleted', 'get', 'readMetadata/action'),
  purge: secretOp('purge', 'purge', 'purge/action'),
  recover: secretOp('recover', 'recover', 'recover/action'),
  backup: secretOp('backup', 'backup', 'backup/action'),
  restore: secretOp('restore', 'restore', 'restore/action'),
} as const satisfies Record<string, VaultOperation>;

const VAULTS = 'Microsoft.KeyVault/vaults';
const keyOp = (name: string, permissions: readonly KeyPermission[], action: string): VaultOperation => ({
  name,
  objects: 'keys',
  permissions,
  dataAction: `${VAULTS}/${action}`,
});

/**
 * The keys operations (keys spec §1.3, §3): access-policy permission and RBAC data action of each. Reading
 * deleted keys takes `keys/read` (the spec's inference: there is no other read action). The rotation-policy
 * operations accept the permission the docs name or the one the swagger names (§3.1). `/rng` has no vault
 * action in Azure (it is a Managed HSM operation there): it takes what reading a key takes.
 */
export const KEY_OPERATIONS = {
  create: keyOp('create', ['create'], 'keys/create/action'),
  import: keyOp('import', ['import'], 'keys/import/action'),
  get: keyOp('get', ['get'], 'keys/read'),
  update: keyOp('update', ['update'], 'keys/update/action'),
  delete: keyOp('delete', ['delete'], 'keys/delete'),
  list: keyOp('list', ['list'], 'keys/read'),
  listVersions: keyOp('listVersions', ['list'], 'keys/read'),
  listDeleted: keyOp('listDeleted', ['list'], 'keys/read'),
  getDeleted: keyOp('getDeleted', ['get'], 'keys/read'),
  purge: keyOp('purge', ['purge'], 'keys/purge/action'),
  recover: keyOp('recover', ['recover'], 'keys/recover/action'),
  backup: keyOp('backup', ['backup'], 'keys/backup/action'),
  restore: keyOp('restore', ['restore'], 'keys/restore/action'),
  encrypt: keyOp('encrypt', ['encrypt'], 'keys/encrypt/action'),
  decrypt: keyOp('decrypt', ['decrypt'], 'keys/decrypt/action'),
  wrapKey: keyOp('wrapKey', ['wrapkey'], 'keys/wrap/action'),
  unwrapKey: keyOp('unwrapKey', ['unwrapkey'], 'keys/unwrap/action'),
  sign: keyOp('sign', ['sign'], 'keys/sign/action'),
  verify: keyOp('verify', ['verify'], 'keys/verify/action'),
  release: keyOp('release', ['release'], 'keys/release/action'),
  rotate: keyOp('rotate', ['rotate'], 'keys/rotate/action'),
  getRotationPolicy: keyOp('getRotationPolicy', ['getrotationpolicy', 'get'], 'keyrotationpolicies/read'),
  setRotationPolicy: keyOp('setRotationPolicy', ['setrotationpolicy', 'update'], 'keyrotationpolicies/write'),
  randomBytes: keyOp('randomBytes', ['get'], 'keys/read'),
} as const satisfies Record<string, VaultOperation>;

/** A secret version's value in the clear, with what binds it to its place (the cipher's additional data). */
export interface SecretPlaintext {
  vaultId: string;
  /** Lower-cased secret name. */
  nameKey: string;
  version: string;
  value: string;
}

/**
 * Envelope encryption of secret values (AES-256-GCM under a fresh data key per version; the data key wrapped
 * by the master key) and the backup blob (opaque, authenticated, restorable only under the same master key).
 */
export interface SecretCipher {
  /** The sealed value to store for `plaintext`. */
  seal(plaintext: SecretPlaintext): string;
  /** The value; throws when the sealed value was not made for this (vault, name, version) or was altered. */
  open(sealed: string, place: Omit<SecretPlaintext, 'value'>): string;
  /**
   * A backup of every version of one secret: base64url, opaque to clients, carrying (authenticated) the
   * subscription of the vault it was taken from, since Key Vault restores a backup only within that
   * subscription.
   */
  backup(
    versions: readonly { version: SecretVersion; value: string }[],
    origin: { subscriptionId: string },
    /** Given for a key's backup: a format of its own (never restorable as a secret), with the key's rotation policy. */
    key?: { rotationPolicy: string | null },
  ): string;
  /**
   * The versions in a backup (name, version ids, attributes, values) and the subscription it was taken in, or
   * undefined when the blob is not a backup this master key made (malformed, altered, or from another
   * installation). `subscriptionId` is undefined for a backup of the first format, which did not record it.
   */
  restore(blob: string):
    | {
        /** What the backup holds: restore it only as that kind. */
        objects: 'secrets' | 'keys';
        name: string;
        subscriptionId: string | undefined;
        versions: { version: Omit<SecretVersion, 'vaultId' | 'sealedValue'>; value: string }[];
        /** A key's rotation policy (null when none was set, or for a secret). */
        rotationPolicy: string | null;
      }
    | undefined;
}
