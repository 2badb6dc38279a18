/**
 * `openmsi keyvault key ...`: a vault's keys (the data plane), shaped like `az keyvault key` in azure-cli 2.45.
 *
 * az 2.45 prints two families of models, and so do these commands:
 * - create, import, show, set-attributes, rotate (azure-keyvault-keys, through az's `transform_key_output`):
 *   `{attributes, key, managed, releasePolicy, tags}`, attributes with `exportable`;
 * - list, list-versions, list-deleted, show-deleted, delete, recover, restore (the older azure-keyvault
 *   KeyBundle / KeyItem / DeletedKeyBundle): `{attributes, key, managed, tags}` (+ `name` in lists, + the deleted
 *   dates and `recoveryId`).
 * The JWK is printed with all sixteen fields (`crv, d, dp, dq, e, k, keyOps, kid, kty, n, p, q, qi, t, x, y`),
 * absent ones null and bytes in standard base64, as az prints it. encrypt/decrypt print az's
 * `{kid, result, algorithm, iv, tag, aad}` (iv/tag/aad in hex); sign/verify, which az gained after 2.45, print
 * its later SignResult/VerifyResult (`{algorithm, keyId, signature}` / `{algorithm, isValid, keyId}`).
 *
 * Client-light: node:crypto only (no server-side library at import time).
 */
import type { Command } from 'commander';
import { createPrivateKey, createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { bodyOf, globalOptions } from '../api-client.js';
import { printResult } from '../output.js';
import type { VaultClient } from '../vault-client.js';
import { writePrivateFile } from '../../shared/private-files.js';
import { azDate, listAll, parseBool, parseDate, withVault } from './keyvault-data.js';
import { parseTags, seg } from './shared.js';

const KEY_TYPES = ['RSA', 'RSA-HSM', 'EC', 'EC-HSM', 'oct', 'oct-HSM'] as const;
const CURVES = ['P-256', 'P-256K', 'P-384', 'P-521'] as const;
const KEY_OPS = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey', 'import', 'export'] as const;
/** az 2.45's EncryptionAlgorithm choices (with the AES ones Managed HSM takes). */
const ENCRYPTION_ALGORITHMS = [
  'RSA-OAEP',
  'RSA-OAEP-256',
  'RSA1_5',
  'A128GCM',
  'A192GCM',
  'A256GCM',
  'A128CBC',
  'A192CBC',
  'A256CBC',
  'A128CBCPAD',
  'A192CBCPAD',
  'A256CBCPAD',
] as const;
const SIGNATURE_ALGORITHMS = ['PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES256K', 'ES384', 'ES512'] as const;
const DATA_TYPES = ['base64', 'plaintext'] as const;
/** The JsonWebKey fields az prints, in its model's order (printed sorted). */
const JWK_FIELDS = ['kid', 'kty', 'key_ops', 'n', 'e', 'd', 'dp', 'dq', 'qi', 'p', 'q', 'k', 't', 'crv', 'x', 'y'] as const;
const JWK_BYTES = new Set(['n', 'e', 'd', 'dp', 'dq', 'qi', 'p', 'q', 'k', 't', 'x', 'y']);

// ---------------------------------------------------------------------------------------------------
// Wire shapes (keys spec §1.4) and az's views of them
// ---------------------------------------------------------------------------------------------------

interface KeyAttributes {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
  created?: number;
  updated?: number;
  recoverableDays?: number;
  recoveryLevel?: string;
  exportable?: boolean;
}

interface KeyBundle {
  key?: Record<string, unknown>;
  kid?: string;
  attributes?: KeyAttributes;
  tags?: Record<string, string> | null;
  managed?: boolean;
  release_policy?: unknown;
  recoveryId?: string;
  deletedDate?: number;
  scheduledPurgeDate?: number;
}

interface RotationPolicy {
  id?: string;
  lifetimeActions?: { trigger?: { timeAfterCreate?: string; timeBeforeExpiry?: string }; action?: { type?: string } }[] | null;
  attributes?: { expiryTime?: string; created?: number; updated?: number } | null;
}

/** Base64url (the wire) → standard base64 with padding (what az prints for bytes). */
const b64 = (value: string): string => Buffer.from(value, 'base64url').toString('base64');

/** The JsonWebKey as az prints it: all its fields, absent ones null, bytes in standard base64, `keyOps`. */
function azJwk(jwk: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of JWK_FIELDS) {
    const value = jwk?.[field];
    const name = field === 'key_ops' ? 'keyOps' : field;
    out[name] = value === undefined || value === null ? null : JWK_BYTES.has(field) && typeof value === 'string' ? b64(value) : value;
  }
  return out;
}

function azKeyAttributes(a: KeyAttributes | undefined, options: { exportable: boolean }): Record<string, unknown> {
  return {
    created: azDate(a?.created),
    enabled: a?.enabled ?? null,
    expires: azDate(a?.exp),
    ...(options.exportable ? { exportable: a?.exportable ?? null } : {}),
    notBefore: azDate(a?.nbf),
    recoverableDays: a?.recoverableDays ?? null,
    recoveryLevel: a?.recoveryLevel ?? null,
    updated: azDate(a?.updated),
  };
}

/** KeyVaultKey through az's `transform_key_output`: create, import, show, set-attributes, rotate. */
function azKey(b: KeyBundle): Record<string, unknown> {
  return {
    attributes: azKeyAttributes(b.attributes, { exportable: true }),
    key: azJwk(b.key),
    managed: b.managed ?? null,
    releasePolicy: b.release_policy ?? null,
    tags: b.tags ?? null,
  };
}

/** The older SDK's KeyBundle / DeletedKeyBundle: delete, show-deleted, recover, restore. */
function azKeyBundle(b: KeyBundle): Record<string, unknown> {
  return {
    attributes: azKeyAttributes(b.attributes, { exportable: false }),
    key: azJwk(b.key),
    managed: b.managed ?? null,
    tags: b.tags ?? null,
    ...(b.recoveryId === undefined ? {} : azDeletedFields(b)),
  };
}

function azDeletedFields(b: KeyBundle): Record<string, unknown> {
  return { deletedDate: azDate(b.deletedDate), recoveryId: b.recoveryId ?? null, scheduledPurgeDate: azDate(b.scheduledPurgeDate) };
}

/** KeyItem / DeletedKeyItem with the `name` az's list transform adds (the kid's fifth segment). */
function azKeyItem(b: KeyBundle, deleted: boolean): Record<string, unknown> {
  const kid = b.kid ?? null;
  return {
    attributes: azKeyAttributes(b.attributes, { exportable: false }),
    kid,
    managed: b.managed ?? null,
    name: kid?.split('/')[4] ?? null,
    tags: b.tags ?? null,
    ...(deleted ? azDeletedFields(b) : {}),
  };
}

/** KeyRotationPolicy as az prints azure-keyvault-keys' model. */
function azRotationPolicy(p: RotationPolicy): Record<string, unknown> {
  return {
    createdOn: azDate(p.attributes?.created),
    expiresIn: p.attributes?.expiryTime ?? null,
    id: p.id ?? null,
    lifetimeActions: (p.lifetimeActions ?? []).map((a) => ({
      action: a.action?.type ?? null,
      timeAfterCreate: a.trigger?.timeAfterCreate ?? null,
      timeBeforeExpiry: a.trigger?.timeBeforeExpiry ?? null,
    })),
    updatedOn: azDate(p.attributes?.updated),
  };
}

// ---------------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------------

/** Where a command acts: `--vault-name` and `--name` (`--version`), or az's `--id`. */
interface KeyAddress {
  vaultName?: string;
  name?: string;
  version?: string;
  id?: string;
}

interface Target {
  vaultName: string;
  name: string;
  version: string | undefined;
}

/**
 * `https://{vault}.{domain}[:port]/{collection}/{name}[/{version}]` → its parts. The vault is the host's first
 * label (this installation names vaults by host).
 */
function parseObjectId(id: string, collection: 'keys' | 'deletedkeys' | null): { vaultName: string; name?: string; version?: string } {
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    throw new Error(`--id must be a URL such as https://my-vault.vault.localhost:8443/keys/my-key (got '${id}')`);
  }
  const vaultName = url.hostname.split('.')[0] ?? '';
  const parts = url.pathname.split('/').filter((p) => p !== '');
  if (collection === null) {
    if (parts.length !== 0) throw new Error(`--id must be the vault's URI, such as https://my-vault.vault.localhost:8443 (got '${id}')`);
    return { vaultName };
  }
  if (parts[0]?.toLowerCase() !== collection || parts.length < 2 || parts.length > (collection === 'keys' ? 3 : 2)) {
    throw new Error(
      `--id must be a ${collection === 'keys' ? 'key' : 'deleted key'} id such as https://my-vault.vault.localhost/${collection}/my-key (got '${id}')`,
    );
  }
  return { vaultName, name: decodeURIComponent(parts[1] ?? ''), ...(parts[2] === undefined ? {} : { version: parts[2] }) };
}

/** The key a command names, by `--vault-name`/`--name`[/`--version`] or `--id` (not both, as az). */
function target(opts: KeyAddress, collection: 'keys' | 'deletedkeys' = 'keys'): Target {
  if (opts.id !== undefined) {
    if (opts.vaultName !== undefined || opts.name !== undefined) throw new Error('give either --id or --vault-name and --name, not both');
    const parsed = parseObjectId(opts.id, collection);
    return { vaultName: parsed.vaultName, name: parsed.name ?? '', version: opts.version ?? parsed.version };
  }
  if (opts.vaultName === undefined || opts.name === undefined) throw new Error('give --vault-name and --name (or --id)');
  return { vaultName: opts.vaultName, name: opts.name, version: opts.version === '' ? undefined : opts.version };
}

/** The vault a list or restore acts on: `--vault-name` or the vault URI as `--id`. */
function vaultOf(opts: { vaultName?: string; id?: string }): string {
  if (opts.id !== undefined) {
    if (opts.vaultName !== undefined) throw new Error('give either --id or --vault-name, not both');
    return parseObjectId(opts.id, null).vaultName;
  }
  if (opts.vaultName === undefined) throw new Error('give --vault-name (or --id)');
  return opts.vaultName;
}

const keyPath = (t: Target, versioned = true) => `/keys/${seg(t.name)}${versioned && t.version !== undefined ? `/${seg(t.version)}` : ''}`;
/** The path of a crypto operation: the version segment stays (empty means the latest, spec §0.6). */
const opPath = (t: Target, op: string) => `/keys/${seg(t.name)}/${t.version === undefined ? '' : seg(t.version)}/${op}`;

function choice<T extends string>(name: string, allowed: readonly T[]): (value: string) => T {
  return (value) => {
    const found = allowed.find((a) => a.toLowerCase() === value.toLowerCase());
    if (found === undefined) throw new Error(`argument ${name}: invalid choice: '${value}' (choose from ${allowed.map((a) => `'${a}'`).join(', ')})`);
    return found;
  };
}

function collectChoice<T extends string>(name: string, allowed: readonly T[]): (value: string, previous: T[] | undefined) => T[] {
  const one = choice(name, allowed);
  return (value, previous) => [...(previous ?? []), one(value)];
}

function parseSize(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim())) throw new Error(`--size must be a whole number of bits (got '${value}')`);
  return n;
}

/** Standard or url-safe base64 (az takes `--value`, `--digest`, `--signature` as base64) → bytes. */
function fromBase64(name: string, value: string): Buffer {
  const clean = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw new Error(`${name} must be base64 (got '${value}')`);
  return Buffer.from(clean.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function fromHex(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^([0-9a-fA-F]{2})*$/.test(value)) throw new Error(`${name} must be hex (got '${value}')`);
  return Buffer.from(value, 'hex').toString('base64url');
}

const hex = (value: unknown): string | null => (typeof value === 'string' ? Buffer.from(value, 'base64url').toString('hex') : null);

function attributesBody(opts: { enabled?: boolean; disabled?: boolean; notBefore?: number; expires?: number; exportable?: boolean }): Record<string, unknown> {
  return {
    ...(opts.disabled === undefined ? {} : { enabled: !opts.disabled }),
    ...(opts.enabled === undefined ? {} : { enabled: opts.enabled }),
    ...(opts.notBefore === undefined ? {} : { nbf: opts.notBefore }),
    ...(opts.expires === undefined ? {} : { exp: opts.expires }),
    ...(opts.exportable === undefined ? {} : { exportable: opts.exportable }),
  };
}

/** az's `--kty` default (EC with `--curve`, else RSA) and `--protection hsm` (the -HSM type). */
function keyType(kty: string | undefined, curve: string | undefined, protection: string | undefined): string {
  let type = kty ?? (curve === undefined ? 'RSA' : 'EC');
  if (protection === 'hsm') type = type.endsWith('-HSM') ? type : `${type}-HSM`;
  else if (protection === 'software' && type.endsWith('-HSM'))
    throw new Error(`The key type ${type} is invalid for software protected keys. Omit --protection`);
  return type;
}

/** A PEM private key (RSA or EC, optionally encrypted) → the private JWK Key Vault imports. */
function pemToJwk(pem: string | Buffer, password: string | undefined): Record<string, unknown> {
  let jwk: NodeJwk;
  try {
    jwk = createPrivateKey({ key: pem, format: 'pem', ...(password === undefined ? {} : { passphrase: password }) }).export({ format: 'jwk' });
  } catch (err) {
    throw new Error(`Import failed: ${(err as Error).message}`, { cause: err });
  }
  if (jwk.kty === 'RSA') return { kty: 'RSA', n: jwk.n, e: jwk.e, d: jwk.d, p: jwk.p, q: jwk.q, dp: jwk.dp, dq: jwk.dq, qi: jwk.qi };
  if (jwk.kty === 'EC') {
    const crv = jwk.crv === 'secp256k1' ? 'P-256K' : jwk.crv;
    if (crv === undefined || !(CURVES as readonly string[]).includes(crv)) throw new Error(`Import failed: Unsupported curve, ${String(jwk.crv)}.`);
    return { kty: 'EC', crv, x: jwk.x, y: jwk.y, d: jwk.d };
  }
  throw new Error(`Import failed: Unsupported key type, ${String(jwk.kty)}.`);
}

/** The public key of a JWK as SubjectPublicKeyInfo PEM or DER (az's `key download`). */
function publicKeyFile(jwk: Record<string, unknown>, encoding: 'PEM' | 'DER'): Buffer {
  const kty = String(jwk['kty']).replace(/-HSM$/, '');
  let input: NodeJwk;
  if (kty === 'RSA') input = { kty, n: String(jwk['n']), e: String(jwk['e']) };
  else if (kty === 'EC') input = { kty, crv: jwk['crv'] === 'P-256K' ? 'secp256k1' : String(jwk['crv']), x: String(jwk['x']), y: String(jwk['y']) };
  else throw new Error(`Unsupported key type: ${String(jwk['kty'])}. (Supported key types: RSA, RSA-HSM, EC, EC-HSM)`);
  const key = createPublicKey({ key: input, format: 'jwk' });
  return encoding === 'PEM' ? Buffer.from(key.export({ type: 'spki', format: 'pem' })) : key.export({ type: 'spki', format: 'der' });
}

/** az's rotation-policy `--value`: JSON, `@file` or a path; camelCase or snake_case keys (az snake-cases them). */
function rotationPolicyBody(value: string): Record<string, unknown> {
  let text = value;
  if (value.startsWith('@')) text = readFileSync(value.slice(1), 'utf8');
  else if (!value.trimStart().startsWith('{') && existsSync(value)) text = readFileSync(value, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`--value must be a rotation policy as JSON, @file or a file path: ${(err as Error).message}`, { cause: err });
  }
  const snake = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(snake)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase(), snake(x)]))
        : v;
  const policy = snake(parsed) as Record<string, unknown> | null;
  if (policy === null || typeof policy !== 'object' || Array.isArray(policy) || Object.keys(policy).length === 0)
    throw new Error('Please specify a valid policy');
  const actions = Array.isArray(policy['lifetime_actions']) ? (policy['lifetime_actions'] as Record<string, unknown>[]) : [];
  const lifetimeActions = actions.map((a) => {
    const action = a['action'];
    const type = action !== null && typeof action === 'object' ? (action as Record<string, unknown>)['type'] : action;
    const trigger = (a['trigger'] ?? a) as Record<string, unknown>;
    const timeAfterCreate = trigger['time_after_create'];
    const timeBeforeExpiry = trigger['time_before_expiry'];
    return {
      trigger: {
        ...(typeof timeAfterCreate === 'string' ? { timeAfterCreate } : {}),
        ...(typeof timeBeforeExpiry === 'string' ? { timeBeforeExpiry } : {}),
      },
      action: { type },
    };
  });
  const attributes = (policy['attributes'] ?? policy) as Record<string, unknown>;
  const expiryTime = attributes['expires_in'] ?? attributes['expiry_time'];
  return { lifetimeActions, attributes: typeof expiryTime === 'string' ? { expiryTime } : {} };
}

// ---------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------

const addressed = (c: Command) =>
  c
    .option('--vault-name <vault>', 'vault name (required unless --id)')
    .option('-n, --name <name>', 'key name (required unless --id)')
    .option('--id <id>', "the key's id, https://{vault}.{domain}/keys/{name}[/{version}] (instead of --vault-name and --name)");
const versioned = (c: Command) => addressed(c).option('-v, --version <version>', 'a version id (default: the latest)');
/** A vault by name or URI (the commands that act on a vault's keys as a whole). */
const vaultAddressed = (c: Command) =>
  c.option('--vault-name <vault>', 'vault name (required unless --id)').option('--id <uri>', "the vault's URI (instead of --vault-name)");
/** The attributes a new key version is given, as `create` and `import` take them (`--disabled`, not `--enabled`). */
const newVersionAttributes = (c: Command, verb: 'create' | 'import', protection: string) =>
  c
    .option('--ops <ops...>', `permitted operations: ${KEY_OPS.join(' ')}`, collectChoice('--ops', KEY_OPS))
    .option('-p, --protection <protection>', protection, choice('--protection', ['software', 'hsm'] as const))
    .option('--disabled [bool]', `${verb} the key disabled`, parseBool('--disabled'))
    .option('--not-before <time>', 'not usable before (ISO-8601, UTC)', parseDate('--not-before'))
    .option('--expires <time>', 'expiry (ISO-8601, UTC)', parseDate('--expires'))
    .option('--exportable [bool]', 'whether the private key can be exported (this installation refuses true)', parseBool('--exportable'))
    .option('--tags <tags...>', 'space-separated tags: key[=value] ...');

async function fetchKey(vault: VaultClient, t: Target): Promise<KeyBundle> {
  return bodyOf(await vault.request<KeyBundle>('GET', t.vaultName, `${keyPath(t)}${t.version === undefined ? '/' : ''}`));
}

const show = (cmd: Command, value: unknown) => printResult(value, globalOptions(cmd));

/** Registers `keyvault key ...` under `keyvault`. */
export function registerKeyCommands(keyvault: Command): void {
  const key = keyvault
    .command('key')
    .description(
      "Manage a vault's keys (the data plane, like az keyvault key): create, import, rotate, and use them without the private key leaving the vault.",
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  openmsi keyvault key create --vault-name app-kv -n app-key --kty RSA --size 2048',
        '  openmsi keyvault key encrypt --vault-name app-kv -n app-key -a RSA-OAEP-256 --value "$(printf hello | base64)"',
        '  openmsi keyvault key download --vault-name app-kv -n app-key --file app-key.pub.pem',
      ].join('\n'),
    );

  newVersionAttributes(
    addressed(key.command('create').description('Create a key, or a new version of it.'))
      .option('--kty <type>', `key type: ${KEY_TYPES.join(', ')} (default: RSA, or EC with --curve)`, choice('--kty', KEY_TYPES))
      .option('--size <bits>', 'key size in bits: 2048, 3072 or 4096 for RSA; 128, 192 or 256 for oct', parseSize)
      .option('--curve <curve>', `elliptic curve: ${CURVES.join(', ')}`, choice('--curve', CURVES)),
    'create',
    'software or hsm (hsm makes an -HSM key type)',
  )
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault key create --vault-name app-kv -n app-key --kty RSA --size 3072\n  openmsi keyvault key create --vault-name app-kv -n signer --kty EC --curve P-256 --ops sign verify',
    )
    .action(
      async (
        opts: KeyAddress & {
          kty?: string;
          size?: number;
          curve?: string;
          ops?: string[];
          protection?: string;
          disabled?: boolean;
          notBefore?: number;
          expires?: number;
          exportable?: boolean;
          tags?: string[];
        },
        cmd: Command,
      ) => {
        const t = target(opts);
        const tags = parseTags(opts.tags);
        const attributes = attributesBody(opts);
        const body = {
          kty: keyType(opts.kty, opts.curve, opts.protection),
          ...(opts.size === undefined ? {} : { key_size: opts.size }),
          ...(opts.curve === undefined ? {} : { crv: opts.curve }),
          ...(opts.ops === undefined ? {} : { key_ops: opts.ops }),
          ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
          ...(tags === undefined ? {} : { tags }),
        };
        show(
          cmd,
          await withVault(cmd, async (vault) => azKey(bodyOf(await vault.request<KeyBundle>('POST', t.vaultName, `${keyPath(t, false)}/create`, { body })))),
        );
      },
    );

  newVersionAttributes(
    addressed(key.command('import').description('Import a private key (PEM, RSA or EC) as a key, or a new version of it.'))
      .option('--pem-file <path>', 'PEM file holding the private key')
      .option('--pem-string <pem>', 'the private key as a PEM string')
      .option('--pem-password <password>', 'password of an encrypted PEM key'),
    'import',
    'software or hsm (hsm imports it as an -HSM key)',
  )
    .addHelpText('after', '\nExamples:\n  openmsi keyvault key import --vault-name app-kv -n imported --pem-file key.pem')
    .action(
      async (
        opts: KeyAddress & {
          pemFile?: string;
          pemString?: string;
          pemPassword?: string;
          ops?: string[];
          protection?: string;
          disabled?: boolean;
          notBefore?: number;
          expires?: number;
          exportable?: boolean;
          tags?: string[];
        },
        cmd: Command,
      ) => {
        const t = target(opts);
        if ((opts.pemFile === undefined) === (opts.pemString === undefined)) throw new Error('give exactly one of --pem-file and --pem-string');
        const jwk = pemToJwk(opts.pemFile === undefined ? (opts.pemString ?? '') : readFileSync(opts.pemFile), opts.pemPassword);
        const tags = parseTags(opts.tags);
        const attributes = attributesBody(opts);
        const body = {
          key: { ...jwk, ...(opts.ops === undefined ? {} : { key_ops: opts.ops }) },
          ...(opts.protection === 'hsm' ? { Hsm: true } : {}),
          ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
          ...(tags === undefined ? {} : { tags }),
        };
        show(cmd, await withVault(cmd, async (vault) => azKey(bodyOf(await vault.request<KeyBundle>('PUT', t.vaultName, keyPath(t, false), { body })))));
      },
    );

  versioned(key.command('show').description("Show a key's public part and attributes (its latest version, or --version).")).action(
    async (opts: KeyAddress, cmd: Command) => {
      const t = target(opts);
      show(cmd, await withVault(cmd, async (vault) => azKey(await fetchKey(vault, t))));
    },
  );

  vaultAddressed(key.command('list').description("List a vault's keys."))
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .option('--include-managed [bool]', 'include managed keys (keys of certificates; this installation has none)', parseBool('--include-managed'))
    .action(async (opts: { vaultName?: string; id?: string; maxresults?: number }, cmd: Command) => {
      const vaultName = vaultOf(opts);
      show(cmd, await withVault(cmd, async (vault) => (await listAll<KeyBundle>(vault, vaultName, '/keys', opts.maxresults)).map((b) => azKeyItem(b, false))));
    });

  addressed(key.command('list-versions').description("List a key's versions."))
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .action(async (opts: KeyAddress & { maxresults?: number }, cmd: Command) => {
      const t = target(opts);
      show(
        cmd,
        await withVault(cmd, async (vault) =>
          (await listAll<KeyBundle>(vault, t.vaultName, `${keyPath(t, false)}/versions`, opts.maxresults)).map((b) => azKeyItem(b, false)),
        ),
      );
    });

  versioned(key.command('set-attributes').description("Change a key version's attributes, permitted operations or tags."))
    .option('--enabled [bool]', 'enable or disable the version', parseBool('--enabled'))
    .option('--not-before <time>', 'not usable before (ISO-8601, UTC)', parseDate('--not-before'))
    .option('--expires <time>', 'expiry (ISO-8601, UTC)', parseDate('--expires'))
    .option('--ops <ops...>', `permitted operations: ${KEY_OPS.join(' ')}`, collectChoice('--ops', KEY_OPS))
    .option('--tags <tags...>', "space-separated tags: key[=value] ... (replace the version's tags)")
    .action(async (opts: KeyAddress & { enabled?: boolean; notBefore?: number; expires?: number; ops?: string[]; tags?: string[] }, cmd: Command) => {
      const t = target(opts);
      const tags = parseTags(opts.tags);
      const attributes = attributesBody(opts);
      const body = {
        ...(opts.ops === undefined ? {} : { key_ops: opts.ops }),
        ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
        ...(tags === undefined ? {} : { tags }),
      };
      const path = `${keyPath(t)}${t.version === undefined ? '/' : ''}`;
      show(cmd, await withVault(cmd, async (vault) => azKey(bodyOf(await vault.request<KeyBundle>('PATCH', t.vaultName, path, { body })))));
    });

  addressed(key.command('delete').description('Delete a key (all versions); it stays recoverable for the retention days.')).action(
    async (opts: KeyAddress, cmd: Command) => {
      const t = target(opts);
      show(cmd, await withVault(cmd, async (vault) => azKeyBundle(bodyOf(await vault.request<KeyBundle>('DELETE', t.vaultName, keyPath(t, false))))));
    },
  );

  vaultAddressed(key.command('list-deleted').description("List a vault's deleted keys."))
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .action(async (opts: { vaultName?: string; id?: string; maxresults?: number }, cmd: Command) => {
      const vaultName = vaultOf(opts);
      show(
        cmd,
        await withVault(cmd, async (vault) => (await listAll<KeyBundle>(vault, vaultName, '/deletedkeys', opts.maxresults)).map((b) => azKeyItem(b, true))),
      );
    });

  const deletedAddressed = (c: Command) =>
    c
      .option('--vault-name <vault>', 'vault name (required unless --id)')
      .option('-n, --name <name>', 'key name (required unless --id)')
      .option('--id <id>', "the deleted key's recovery id, https://{vault}.{domain}/deletedkeys/{name}");
  const deletedPath = (t: Target) => `/deletedkeys/${seg(t.name)}`;

  deletedAddressed(key.command('show-deleted').description('Show a deleted key.')).action(async (opts: KeyAddress, cmd: Command) => {
    const t = target(opts, 'deletedkeys');
    show(cmd, await withVault(cmd, async (vault) => azKeyBundle(bodyOf(await vault.request<KeyBundle>('GET', t.vaultName, deletedPath(t))))));
  });

  deletedAddressed(key.command('recover').description('Recover a deleted key (all its versions).')).action(async (opts: KeyAddress, cmd: Command) => {
    const t = target(opts, 'deletedkeys');
    show(cmd, await withVault(cmd, async (vault) => azKeyBundle(bodyOf(await vault.request<KeyBundle>('POST', t.vaultName, `${deletedPath(t)}/recover`)))));
  });

  deletedAddressed(key.command('purge').description('Purge a deleted key for good.')).action(async (opts: KeyAddress, cmd: Command) => {
    const t = target(opts, 'deletedkeys');
    await withVault(cmd, async (vault) => {
      await vault.request('DELETE', t.vaultName, deletedPath(t));
    });
  });

  addressed(key.command('backup').description('Back a key (all versions, sealed) up to a file, restorable into a vault of this installation.'))
    .requiredOption('-f, --file <path>', 'the backup file to write (must not exist)')
    .action(async (opts: KeyAddress & { file: string }, cmd: Command) => {
      const t = target(opts);
      await withVault(cmd, async (vault) => {
        const { value } = bodyOf(await vault.request<{ value: string }>('POST', t.vaultName, `${keyPath(t, false)}/backup`));
        // az writes the blob's bytes (the base64url value decoded).
        writePrivateFile(opts.file, Buffer.from(value, 'base64url'), { flag: 'wx' });
      });
    });

  vaultAddressed(key.command('restore').description('Restore a key from a backup file.'))
    .requiredOption('-f, --file <path>', 'the backup file')
    .action(async (opts: { vaultName?: string; id?: string; file: string }, cmd: Command) => {
      const vaultName = vaultOf(opts);
      const value = readFileSync(opts.file).toString('base64url');
      show(
        cmd,
        await withVault(cmd, async (vault) => azKeyBundle(bodyOf(await vault.request<KeyBundle>('POST', vaultName, '/keys/restore', { body: { value } })))),
      );
    });

  addressed(key.command('rotate').description('Rotate a key: a new version with the same type, size or curve, operations and tags.')).action(
    async (opts: KeyAddress, cmd: Command) => {
      const t = target(opts);
      show(cmd, await withVault(cmd, async (vault) => azKey(bodyOf(await vault.request<KeyBundle>('POST', t.vaultName, `${keyPath(t, false)}/rotate`)))));
    },
  );

  versioned(key.command('encrypt').description('Encrypt with a key (in the vault; RSA, or AES for oct-HSM keys).'))
    .requiredOption('-a, --algorithm <alg>', `algorithm: ${ENCRYPTION_ALGORITHMS.join(', ')}`, choice('--algorithm', ENCRYPTION_ALGORITHMS))
    .requiredOption('--value <value>', 'the data to encrypt (base64 unless --data-type plaintext)')
    .option('--data-type <type>', 'how --value is given: base64 or plaintext', choice('--data-type', DATA_TYPES), 'base64')
    .option('--iv <hex>', 'initialization vector, hex (AES-CBC; generated when absent)')
    .option('--aad <hex>', 'additional authenticated data, hex (AES-GCM)')
    .addHelpText('after', '\nExamples:\n  openmsi keyvault key encrypt --vault-name app-kv -n app-key -a RSA-OAEP-256 --value hello --data-type plaintext')
    .action(async (opts: KeyAddress & { algorithm: string; value: string; dataType: string; iv?: string; aad?: string }, cmd: Command) => {
      const t = target(opts);
      const data = opts.dataType === 'plaintext' ? Buffer.from(opts.value, 'utf8') : fromBase64('--value', opts.value);
      const iv = fromHex('--iv', opts.iv);
      const aad = fromHex('--aad', opts.aad);
      const body = { alg: opts.algorithm, value: data.toString('base64url'), ...(iv === undefined ? {} : { iv }), ...(aad === undefined ? {} : { aad }) };
      const result = await withVault(cmd, async (vault) =>
        bodyOf(
          await vault.request<{ kid: string; value: string; iv?: string; tag?: string; aad?: string }>('POST', t.vaultName, opPath(t, 'encrypt'), { body }),
        ),
      );
      show(cmd, { aad: hex(result.aad), algorithm: opts.algorithm, iv: hex(result.iv), kid: result.kid, result: b64(result.value), tag: hex(result.tag) });
    });

  versioned(key.command('decrypt').description('Decrypt with a key (in the vault).'))
    .requiredOption('-a, --algorithm <alg>', `algorithm: ${ENCRYPTION_ALGORITHMS.join(', ')}`, choice('--algorithm', ENCRYPTION_ALGORITHMS))
    .requiredOption('--value <value>', 'the ciphertext, base64 (the result of encrypt)')
    .option('--data-type <type>', 'how to print the result: base64 or plaintext', choice('--data-type', DATA_TYPES), 'base64')
    .option('--iv <hex>', 'initialization vector used to encrypt, hex (AES)')
    .option('--tag <hex>', 'authentication tag, hex (AES-GCM)')
    .option('--aad <hex>', 'additional authenticated data, hex (AES-GCM)')
    .action(async (opts: KeyAddress & { algorithm: string; value: string; dataType: string; iv?: string; tag?: string; aad?: string }, cmd: Command) => {
      const t = target(opts);
      const iv = fromHex('--iv', opts.iv);
      const tag = fromHex('--tag', opts.tag);
      const aad = fromHex('--aad', opts.aad);
      const body = {
        alg: opts.algorithm,
        value: fromBase64('--value', opts.value).toString('base64url'),
        ...(iv === undefined ? {} : { iv }),
        ...(tag === undefined ? {} : { tag }),
        ...(aad === undefined ? {} : { aad }),
      };
      const result = await withVault(cmd, async (vault) =>
        bodyOf(await vault.request<{ kid: string; value: string }>('POST', t.vaultName, opPath(t, 'decrypt'), { body })),
      );
      const plain = Buffer.from(result.value, 'base64url');
      show(cmd, { algorithm: opts.algorithm, kid: result.kid, result: opts.dataType === 'plaintext' ? plain.toString('utf8') : plain.toString('base64') });
    });

  versioned(key.command('sign').description('Sign a digest with a key (in the vault). The digest is not hashed again.'))
    .requiredOption('-a, --algorithm <alg>', `algorithm: ${SIGNATURE_ALGORITHMS.join(', ')}`, choice('--algorithm', SIGNATURE_ALGORITHMS))
    .requiredOption('--digest <base64>', "the digest to sign, base64 (its length must be the algorithm's hash length)")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault key sign --vault-name app-kv -n signer -a ES256 --digest "$(printf hello | openssl dgst -sha256 -binary | base64)"',
    )
    .action(async (opts: KeyAddress & { algorithm: string; digest: string }, cmd: Command) => {
      const t = target(opts);
      const body = { alg: opts.algorithm, value: fromBase64('--digest', opts.digest).toString('base64url') };
      const result = await withVault(cmd, async (vault) =>
        bodyOf(await vault.request<{ kid: string; value: string }>('POST', t.vaultName, opPath(t, 'sign'), { body })),
      );
      show(cmd, { algorithm: opts.algorithm, keyId: result.kid, signature: b64(result.value) });
    });

  versioned(key.command('verify').description('Verify a signature over a digest with a key (in the vault).'))
    .requiredOption('-a, --algorithm <alg>', `algorithm: ${SIGNATURE_ALGORITHMS.join(', ')}`, choice('--algorithm', SIGNATURE_ALGORITHMS))
    .requiredOption('--digest <base64>', 'the digest that was signed, base64')
    .requiredOption('--signature <base64>', 'the signature, base64')
    .action(async (opts: KeyAddress & { algorithm: string; digest: string; signature: string }, cmd: Command) => {
      const t = target(opts);
      const body = {
        alg: opts.algorithm,
        digest: fromBase64('--digest', opts.digest).toString('base64url'),
        value: fromBase64('--signature', opts.signature).toString('base64url'),
      };
      const result = await withVault(cmd, async (vault) => {
        const answer = bodyOf(await vault.request<{ value: boolean }>('POST', t.vaultName, opPath(t, 'verify'), { body }));
        return { ...answer, kid: `https://${vault.vaultHost(t.vaultName)}${keyPath(t)}` };
      });
      show(cmd, { algorithm: opts.algorithm, isValid: result.value === true, keyId: result.kid });
    });

  versioned(key.command('download').description("Download a key's public part (RSA or EC) as PEM or DER."))
    .requiredOption('-f, --file <path>', 'the file to write (must not exist)')
    .option('-e, --encoding <encoding>', 'PEM or DER', choice('--encoding', ['PEM', 'DER'] as const), 'PEM')
    .addHelpText('after', '\nExamples:\n  openmsi keyvault key download --vault-name app-kv -n app-key --file app-key.pub.pem')
    .action(async (opts: KeyAddress & { file: string; encoding: 'PEM' | 'DER' }, cmd: Command) => {
      const t = target(opts);
      if (existsSync(opts.file)) throw new Error(`File or directory named '${opts.file}' already exists.`);
      const bundle = await withVault(cmd, async (vault) => fetchKey(vault, t));
      writePrivateFile(opts.file, publicKeyFile(bundle.key ?? {}, opts.encoding), { flag: 'wx' });
    });

  const rotationPolicy = key.command('rotation-policy').description("Manage a key's rotation policy.");

  addressed(rotationPolicy.command('show').description("Show a key's rotation policy.")).action(async (opts: KeyAddress, cmd: Command) => {
    const t = target(opts);
    show(
      cmd,
      await withVault(cmd, async (vault) =>
        azRotationPolicy(bodyOf(await vault.request<RotationPolicy>('GET', t.vaultName, `${keyPath(t, false)}/rotationpolicy`))),
      ),
    );
  });

  addressed(rotationPolicy.command('update').description("Set a key's rotation policy (the server adds a Notify action when none is given)."))
    .requiredOption('--value <policy>', 'the policy as JSON, @file or a file path (lifetimeActions, attributes.expiryTime)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault key rotation-policy update --vault-name app-kv -n app-key --value \'{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P90D"},"action":{"type":"Rotate"}}],"attributes":{"expiryTime":"P1Y"}}\'',
    )
    .action(async (opts: KeyAddress & { value: string }, cmd: Command) => {
      const t = target(opts);
      const body = rotationPolicyBody(opts.value);
      show(
        cmd,
        await withVault(cmd, async (vault) =>
          azRotationPolicy(bodyOf(await vault.request<RotationPolicy>('PUT', t.vaultName, `${keyPath(t, false)}/rotationpolicy`, { body }))),
        ),
      );
    });
}
