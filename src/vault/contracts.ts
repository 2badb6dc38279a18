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
 * Routing is by object kind below the vault (`/secrets`, `/deletedsecrets`, later `/keys`, `/certificates`),
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

/** One data-plane operation on secrets: its access-policy permission and its RBAC data action. */
export interface SecretOperation {
  /** Stable name, used in audit records (`vault.secrets.<name>`). */
  name: string;
  permission: SecretPermission;
  dataAction: string;
}

const SECRETS = 'Microsoft.KeyVault/vaults/secrets';

/** The twelve secrets operations (spec §1.3). */
export const SECRET_OPERATIONS = {
  set: { name: 'set', permission: 'set', dataAction: `${SECRETS}/setSecret/action` },
  get: { name: 'get', permission: 'get', dataAction: `${SECRETS}/getSecret/action` },
  update: { name: 'update', permission: 'set', dataAction: `${SECRETS}/update/action` },
  delete: { name: 'delete', permission: 'delete', dataAction: `${SECRETS}/delete` },
  list: { name: 'list', permission: 'list', dataAction: `${SECRETS}/readMetadata/action` },
  listVersions: { name: 'listVersions', permission: 'list', dataAction: `${SECRETS}/readMetadata/action` },
  listDeleted: { name: 'listDeleted', permission: 'list', dataAction: `${SECRETS}/readMetadata/action` },
  getDeleted: { name: 'getDeleted', permission: 'get', dataAction: `${SECRETS}/readMetadata/action` },
  purge: { name: 'purge', permission: 'purge', dataAction: `${SECRETS}/purge/action` },
  recover: { name: 'recover', permission: 'recover', dataAction: `${SECRETS}/recover/action` },
  backup: { name: 'backup', permission: 'backup', dataAction: `${SECRETS}/backup/action` },
  restore: { name: 'restore', permission: 'restore', dataAction: `${SECRETS}/restore/action` },
} as const satisfies Record<string, SecretOperation>;

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
  backup(versions: readonly { version: SecretVersion; value: string }[], origin: { subscriptionId: string }): string;
  /**
   * The versions in a backup (name, version ids, attributes, values) and the subscription it was taken in, or
   * undefined when the blob is not a backup this master key made (malformed, altered, or from another
   * installation). `subscriptionId` is undefined for a backup of the first format, which did not record it.
   */
  restore(
    blob: string,
  ): { name: string; subscriptionId: string | undefined; versions: { version: Omit<SecretVersion, 'vaultId' | 'sealedValue'>; value: string }[] } | undefined;
}
