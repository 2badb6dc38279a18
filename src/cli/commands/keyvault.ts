import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ARM_AUDIENCE, bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { lazy } from './lazy.js';
import { azDate, listAll, parseBool, parseDate, withVault } from './keyvault-data.js';
import { registerKeyCommands } from './keyvault-key.js';
import { parseTags, seg } from './shared.js';
import { writePrivateFile } from '../../shared/private-files.js';

const TYPE = 'Microsoft.KeyVault/vaults';
const PROVIDER = 'providers/Microsoft.KeyVault';
/** The Microsoft.KeyVault api-version az uses. */
const API_VERSION = '2023-07-01';

interface AccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId: string | null;
  permissions: { keys: string[]; secrets: string[]; certificates: string[]; storage: string[] };
}

interface ArmVault {
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  properties: { tenantId: string; sku: { family: string; name: string }; accessPolicies: AccessPolicy[] } & Record<string, unknown>;
}

interface ArmDeletedVault {
  id: string;
  name: string;
  properties: { vaultId: string; location: string } & Record<string, unknown>;
}

/** az adds `resourceGroup` to what ARM returns. */
function azView(vault: ArmVault): Record<string, unknown> {
  return { ...vault, resourceGroup: /\/resourceGroups\/([^/]+)\//i.exec(vault.id)?.[1] ?? null };
}

const COLUMNS = [column('Location', 'location'), column('Name', 'name'), column('ResourceGroup', 'resourceGroup')];

/** The permissions `az keyvault create` gives its caller on a vault that uses access policies. */
const SELF_PERMISSIONS: AccessPolicy['permissions'] = {
  keys: ['get', 'create', 'delete', 'list', 'update', 'import', 'backup', 'restore', 'recover', 'purge'],
  secrets: ['get', 'list', 'set', 'delete', 'backup', 'restore', 'recover', 'purge'],
  certificates: [
    'get',
    'list',
    'delete',
    'create',
    'import',
    'update',
    'managecontacts',
    'getissuers',
    'listissuers',
    'setissuers',
    'deleteissuers',
    'manageissuers',
    'recover',
    'purge',
  ],
  storage: ['get', 'list', 'delete', 'set', 'update', 'regeneratekey', 'setsas', 'listsas', 'getsas', 'deletesas'],
};

function parseRetention(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 7 || n > 90) throw new Error(`--retention-days must be a whole number from 7 to 90 (got '${value}')`);
  return n;
}

const vaultPath = (client: ManagementClient, group: string, name: string) =>
  `${client.subscriptionPath()}/resourceGroups/${seg(group)}/${PROVIDER}/vaults/${seg(name)}`;

/** The ARM path of vault `name`: in `group`, or found in the subscription (az's `-n` without `-g`). */
async function locateVault(client: ManagementClient, name: string, group: string | undefined): Promise<string> {
  if (group !== undefined) return vaultPath(client, group, name);
  const list = await client.arm<{ value: ArmVault[] }>('GET', `${client.subscriptionPath()}/${PROVIDER}/vaults`, { apiVersion: API_VERSION });
  const found = (list.body?.value ?? []).find((v) => v.name.toLowerCase() === name.toLowerCase());
  if (found === undefined) throw new Error(`(ResourceNotFound) The Resource '${TYPE}/${name}' was not found in subscription '${client.subscriptionId}'.`);
  return found.id;
}

async function findDeleted(client: ManagementClient, name: string, location: string | undefined): Promise<ArmDeletedVault> {
  const list = await client.arm<{ value: ArmDeletedVault[] }>('GET', `${client.subscriptionPath()}/${PROVIDER}/deletedVaults`, { apiVersion: API_VERSION });
  const found = (list.body?.value ?? []).find(
    (v) => v.name.toLowerCase() === name.toLowerCase() && (location === undefined || v.properties.location === location.replace(/\s+/g, '').toLowerCase()),
  );
  if (found === undefined) throw new Error(`(ResourceNotFound) No deleted vault named '${name}' was found in subscription '${client.subscriptionId}'.`);
  return found;
}

/** The signed-in admin's object id (the `oid` of its ARM token), for az's self-permissions. */
async function callerObjectId(client: ManagementClient): Promise<string> {
  const { decodeJwt } = await lazy.jose();
  const oid = decodeJwt(await client.getToken(ARM_AUDIENCE))['oid'];
  if (typeof oid !== 'string') throw new Error('the admin token carries no oid claim');
  return oid;
}

// ---------------------------------------------------------------------------------------------------
// Secrets: az prints the SDK's models (KeyVaultSecret, SecretProperties, DeletedSecret)
// ---------------------------------------------------------------------------------------------------

interface SecretAttributes {
  enabled?: boolean;
  nbf?: number;
  exp?: number;
  created?: number;
  updated?: number;
  recoverableDays?: number;
  recoveryLevel?: string;
}

interface SecretBundle {
  id: string;
  value?: string;
  contentType?: string | null;
  tags?: Record<string, string> | null;
  kid?: string;
  managed?: boolean;
  attributes?: SecretAttributes;
  recoveryId?: string;
  deletedDate?: number;
  scheduledPurgeDate?: number;
}

/** `https://{vault}/secrets/{name}[/{version}]` → name. */
function secretName(id: string): string | null {
  return /\/(?:deleted)?secrets\/([^/]+)/i.exec(id)?.[1] ?? null;
}

function azAttributes(a: SecretAttributes | undefined): Record<string, unknown> {
  return {
    created: azDate(a?.created),
    enabled: a?.enabled ?? null,
    expires: azDate(a?.exp),
    notBefore: azDate(a?.nbf),
    recoverableDays: a?.recoverableDays ?? null,
    recoveryLevel: a?.recoveryLevel ?? null,
    updated: azDate(a?.updated),
  };
}

/** SecretProperties: what list, set-attributes and recover print (no value). */
function azSecretProperties(b: SecretBundle, options: { kid?: boolean } = {}): Record<string, unknown> {
  return {
    attributes: azAttributes(b.attributes),
    contentType: b.contentType ?? null,
    id: b.id,
    ...(options.kid === false ? {} : { kid: b.kid ?? null }),
    managed: b.managed ?? null,
    name: secretName(b.id),
    tags: b.tags ?? null,
  };
}

/** KeyVaultSecret: what set and show print. */
function azSecret(b: SecretBundle): Record<string, unknown> {
  return { ...azSecretProperties(b), value: b.value ?? null };
}

/** DeletedSecret: what delete, show-deleted and list-deleted print (no value; list items no `kid`, as az's list). */
function azDeletedSecret(b: SecretBundle, options: { kid?: boolean } = {}): Record<string, unknown> {
  return {
    ...azSecretProperties(b, options),
    deletedDate: azDate(b.deletedDate),
    recoveryId: b.recoveryId ?? null,
    scheduledPurgeDate: azDate(b.scheduledPurgeDate),
  };
}

const ENCODINGS = ['utf-8', 'ascii', 'base64', 'hex'] as const;

/** A file's content as the secret value, in az's `--encoding`. */
function readValueFile(path: string, encoding: string): string {
  const bytes = readFileSync(path);
  switch (encoding) {
    case 'utf-8':
      return bytes.toString('utf8');
    case 'ascii':
      return bytes.toString('ascii');
    case 'base64':
      return bytes.toString('base64');
    case 'hex':
      return bytes.toString('hex');
    default:
      throw new Error(`--encoding must be one of: ${ENCODINGS.join(', ')}`);
  }
}

interface SecretAddress {
  vaultName: string;
  name: string;
}

function registerSecretCommands(keyvault: Command): void {
  const secret = keyvault
    .command('secret')
    .description("Manage a vault's secrets (the data plane, like az keyvault secret).")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault secret set --vault-name app-kv -n db-password --value s3cret\n  openmsi keyvault secret show --vault-name app-kv -n db-password',
    );

  const addressed = (c: Command) => c.requiredOption('--vault-name <vault>', 'vault name').requiredOption('-n, --name <name>', 'secret name');
  const p = (s: string) => `/secrets/${seg(s)}`;

  addressed(secret.command('set').description('Create a secret, or a new version of it.'))
    .option('--value <value>', 'the secret value')
    .option('-f, --file <path>', 'read the value from a file')
    .option('-e, --encoding <encoding>', `encoding of --file: ${ENCODINGS.join(', ')}`, 'utf-8')
    .option('--content-type <type>', 'content type, e.g. text/plain')
    .option('--tags <tags...>', 'space-separated tags: key[=value] ...')
    .option('--disabled [bool]', 'create the version disabled', parseBool('--disabled'))
    .option('--not-before <time>', 'not valid before (ISO-8601, UTC)', parseDate('--not-before'))
    .option('--expires <time>', 'expiry (ISO-8601, UTC)', parseDate('--expires'))
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault secret set --vault-name app-kv -n db-password --value s3cret\n  openmsi keyvault secret set --vault-name app-kv -n tls-key --file key.pem',
    )
    .action(
      async (
        opts: SecretAddress & {
          value?: string;
          file?: string;
          encoding: string;
          contentType?: string;
          tags?: string[];
          disabled?: boolean;
          notBefore?: number;
          expires?: number;
        },
        cmd: Command,
      ) => {
        if ((opts.value === undefined) === (opts.file === undefined)) throw new Error('give exactly one of --value and --file');
        const value = opts.file === undefined ? (opts.value ?? '') : readValueFile(opts.file, opts.encoding.toLowerCase());
        // az records how a value was encoded in a `file-encoding` tag.
        const tags = { ...parseTags(opts.tags), 'file-encoding': opts.encoding.toLowerCase() };
        const attributes = {
          ...(opts.disabled === undefined ? {} : { enabled: !opts.disabled }),
          ...(opts.notBefore === undefined ? {} : { nbf: opts.notBefore }),
          ...(opts.expires === undefined ? {} : { exp: opts.expires }),
        };
        const body = {
          value,
          tags,
          ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
          ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
        };
        const result = await withVault(cmd, async (vault) =>
          azSecret(bodyOf(await vault.request<SecretBundle>('PUT', opts.vaultName, p(opts.name), { body }))),
        );
        printResult(result, globalOptions(cmd));
      },
    );

  addressed(secret.command('show').description('Show a secret (its latest version, or --version).'))
    .option('-v, --version <version>', 'a version id')
    .action(async (opts: SecretAddress & { version?: string }, cmd: Command) => {
      const path = opts.version === undefined ? p(opts.name) : `${p(opts.name)}/${seg(opts.version)}`;
      const result = await withVault(cmd, async (vault) => azSecret(bodyOf(await vault.request<SecretBundle>('GET', opts.vaultName, path))));
      printResult(result, globalOptions(cmd));
    });

  secret
    .command('list')
    .description("List a vault's secrets (no values).")
    .requiredOption('--vault-name <vault>', 'vault name')
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .action(async (opts: { vaultName: string; maxresults?: number }, cmd: Command) => {
      const result = await withVault(cmd, async (vault) =>
        (await listAll<SecretBundle>(vault, opts.vaultName, '/secrets', opts.maxresults)).map((b) => azSecretProperties(b, { kid: false })),
      );
      printResult(result, globalOptions(cmd));
    });

  addressed(secret.command('list-versions').description("List a secret's versions (no values)."))
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .action(async (opts: SecretAddress & { maxresults?: number }, cmd: Command) => {
      const result = await withVault(cmd, async (vault) =>
        (await listAll<SecretBundle>(vault, opts.vaultName, `${p(opts.name)}/versions`, opts.maxresults)).map((b) => azSecretProperties(b, { kid: false })),
      );
      printResult(result, globalOptions(cmd));
    });

  addressed(secret.command('set-attributes').description("Change a secret version's attributes, content type or tags."))
    .option('-v, --version <version>', 'a version id (default: the latest)')
    .option('--content-type <type>', 'content type')
    .option('--tags <tags...>', 'space-separated tags: key[=value] ...')
    .option('--enabled <bool>', 'enable or disable the version', parseBool('--enabled'))
    .option('--not-before <time>', 'not valid before (ISO-8601, UTC)', parseDate('--not-before'))
    .option('--expires <time>', 'expiry (ISO-8601, UTC)', parseDate('--expires'))
    .action(
      async (
        opts: SecretAddress & { version?: string; contentType?: string; tags?: string[]; enabled?: boolean; notBefore?: number; expires?: number },
        cmd: Command,
      ) => {
        const tags = parseTags(opts.tags);
        const attributes = {
          ...(opts.enabled === undefined ? {} : { enabled: opts.enabled }),
          ...(opts.notBefore === undefined ? {} : { nbf: opts.notBefore }),
          ...(opts.expires === undefined ? {} : { exp: opts.expires }),
        };
        const body = {
          ...(opts.contentType === undefined ? {} : { contentType: opts.contentType }),
          ...(tags === undefined ? {} : { tags }),
          ...(Object.keys(attributes).length === 0 ? {} : { attributes }),
        };
        const result = await withVault(cmd, async (vault) => {
          // The latest version's id, as az resolves it, when none is given.
          const version =
            opts.version ??
            bodyOf(await vault.request<SecretBundle>('GET', opts.vaultName, p(opts.name)))
              .id.split('/')
              .pop() ??
            '';
          return azSecretProperties(bodyOf(await vault.request<SecretBundle>('PATCH', opts.vaultName, `${p(opts.name)}/${seg(version)}`, { body })));
        });
        printResult(result, globalOptions(cmd));
      },
    );

  addressed(secret.command('delete').description('Delete a secret (all versions); it stays recoverable for the retention days.')).action(
    async (opts: SecretAddress, cmd: Command) => {
      const result = await withVault(cmd, async (vault) => azDeletedSecret(bodyOf(await vault.request<SecretBundle>('DELETE', opts.vaultName, p(opts.name)))));
      printResult(result, globalOptions(cmd));
    },
  );

  secret
    .command('list-deleted')
    .description("List a vault's deleted secrets.")
    .requiredOption('--vault-name <vault>', 'vault name')
    .option('--maxresults <n>', 'at most this many', (v) => Number(v))
    .action(async (opts: { vaultName: string; maxresults?: number }, cmd: Command) => {
      const result = await withVault(cmd, async (vault) =>
        (await listAll<SecretBundle>(vault, opts.vaultName, '/deletedsecrets', opts.maxresults)).map((b) => azDeletedSecret(b, { kid: false })),
      );
      printResult(result, globalOptions(cmd));
    });

  addressed(secret.command('show-deleted').description('Show a deleted secret.')).action(async (opts: SecretAddress, cmd: Command) => {
    const result = await withVault(cmd, async (vault) =>
      azDeletedSecret(bodyOf(await vault.request<SecretBundle>('GET', opts.vaultName, `/deletedsecrets/${seg(opts.name)}`))),
    );
    printResult(result, globalOptions(cmd));
  });

  addressed(secret.command('recover').description('Recover a deleted secret.')).action(async (opts: SecretAddress, cmd: Command) => {
    const result = await withVault(cmd, async (vault) =>
      azSecretProperties(bodyOf(await vault.request<SecretBundle>('POST', opts.vaultName, `/deletedsecrets/${seg(opts.name)}/recover`))),
    );
    printResult(result, globalOptions(cmd));
  });

  addressed(secret.command('purge').description('Purge a deleted secret for good.')).action(async (opts: SecretAddress, cmd: Command) => {
    await withVault(cmd, async (vault) => {
      await vault.request('DELETE', opts.vaultName, `/deletedsecrets/${seg(opts.name)}`);
    });
  });

  addressed(secret.command('backup').description('Back a secret (all versions) up to a file, restorable into a vault of this installation.'))
    .requiredOption('-f, --file <path>', 'the backup file to write')
    .action(async (opts: SecretAddress & { file: string }, cmd: Command) => {
      await withVault(cmd, async (vault) => {
        const { value } = bodyOf(await vault.request<{ value: string }>('POST', opts.vaultName, `${p(opts.name)}/backup`));
        // az writes the blob's bytes (the base64url value decoded).
        writePrivateFile(opts.file, Buffer.from(value, 'base64url'), { flag: 'wx' });
      });
    });

  secret
    .command('restore')
    .description('Restore a secret from a backup file.')
    .requiredOption('--vault-name <vault>', 'vault name')
    .requiredOption('-f, --file <path>', 'the backup file')
    .action(async (opts: { vaultName: string; file: string }, cmd: Command) => {
      const blob = readFileSync(opts.file).toString('base64url');
      const result = await withVault(cmd, async (vault) =>
        azSecretProperties(bodyOf(await vault.request<SecretBundle>('POST', opts.vaultName, '/secrets/restore', { body: { value: blob } }))),
      );
      printResult(result, globalOptions(cmd));
    });
}

/** `openmsi keyvault ...`, shaped like `az keyvault` (vaults through ARM, secrets through the data plane). */
export function registerKeyVaultCommands(program: Command): void {
  const keyvault = program
    .command('keyvault')
    .description('Manage Key Vault-compatible vaults, their secrets and keys.')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault create -g app-rg -n app-kv\n  openmsi keyvault set-policy -n app-kv --object-id <id> --secret-permissions get list\n  openmsi keyvault secret set --vault-name app-kv -n db-password --value s3cret',
    );

  keyvault
    .command('create')
    .description('Create a vault (RBAC authorisation unless --enable-rbac-authorization false).')
    .requiredOption('-n, --name <name>', 'vault name (3-24 letters, digits and hyphens; unique in the installation)')
    .requiredOption('-g, --resource-group <group>', 'resource group')
    .option('-l, --location <location>', "location (default: the resource group's)")
    .option('--sku <sku>', 'standard or premium', 'standard')
    .option(
      '--enable-rbac-authorization [bool]',
      'authorise data actions by RBAC (true, the default) or access policies (false)',
      parseBool('--enable-rbac-authorization'),
    )
    .option('--retention-days <days>', 'soft-delete retention, 7-90 days (fixed once created)', parseRetention)
    .option('--enable-purge-protection [bool]', 'purge protection (irreversible)', parseBool('--enable-purge-protection'))
    .option('--public-network-access <value>', 'Enabled or Disabled')
    .option('--no-self-perms', "don't give the signed-in admin an access policy (vaults on access policies)")
    .option('--tags <tags...>', 'space-separated tags: key[=value] ...')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault create -g app-rg -n app-kv\n  openmsi keyvault create -g app-rg -n legacy-kv --enable-rbac-authorization false --retention-days 7',
    )
    .action(
      async (
        opts: {
          name: string;
          resourceGroup: string;
          location?: string;
          sku: string;
          enableRbacAuthorization?: boolean;
          retentionDays?: number;
          enablePurgeProtection?: boolean;
          publicNetworkAccess?: string;
          selfPerms: boolean;
          tags?: string[];
        },
        cmd: Command,
      ) => {
        const tags = parseTags(opts.tags);
        const rbac = opts.enableRbacAuthorization ?? true;
        const result = await withClient(cmd, async (client) => {
          const accessPolicies =
            rbac || !opts.selfPerms ? [] : [{ tenantId: client.tenantId, objectId: await callerObjectId(client), permissions: SELF_PERMISSIONS }];
          const body = {
            ...(opts.location === undefined ? {} : { location: opts.location }),
            ...(tags === undefined ? {} : { tags }),
            properties: {
              tenantId: client.tenantId,
              sku: { family: 'A', name: opts.sku },
              enableRbacAuthorization: rbac,
              accessPolicies,
              ...(opts.retentionDays === undefined ? {} : { softDeleteRetentionInDays: opts.retentionDays }),
              ...(opts.enablePurgeProtection === undefined ? {} : { enablePurgeProtection: opts.enablePurgeProtection }),
              ...(opts.publicNetworkAccess === undefined ? {} : { publicNetworkAccess: opts.publicNetworkAccess }),
            },
          };
          return azView(bodyOf(await client.arm<ArmVault>('PUT', vaultPath(client, opts.resourceGroup, opts.name), { apiVersion: API_VERSION, body })));
        });
        printResult(result, globalOptions(cmd), COLUMNS);
      },
    );

  keyvault
    .command('list')
    .description('List vaults in the subscription or a resource group.')
    .option('-g, --resource-group <group>', 'only this resource group')
    .action(async (opts: { resourceGroup?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const path =
          opts.resourceGroup === undefined
            ? `${client.subscriptionPath()}/${PROVIDER}/vaults`
            : `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${PROVIDER}/vaults`;
        return ((await client.arm<{ value: ArmVault[] }>('GET', path, { apiVersion: API_VERSION })).body?.value ?? []).map(azView);
      });
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  keyvault
    .command('show')
    .description('Show a vault.')
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-g, --resource-group <group>', 'resource group (default: found in the subscription)')
    .action(async (opts: { name: string; resourceGroup?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        azView(bodyOf(await client.arm<ArmVault>('GET', await locateVault(client, opts.name, opts.resourceGroup), { apiVersion: API_VERSION }))),
      );
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  keyvault
    .command('update')
    .description("Change a vault's properties or tags (PATCH: what is not given stays as it is).")
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-g, --resource-group <group>', 'resource group (default: found in the subscription)')
    .option(
      '--enable-rbac-authorization [bool]',
      'switch the permission model: RBAC (true) or access policies (false); needs Microsoft.Authorization/roleAssignments/write, as in Azure',
      parseBool('--enable-rbac-authorization'),
    )
    .option('--enable-purge-protection [bool]', 'turn purge protection on (irreversible)', parseBool('--enable-purge-protection'))
    .option('--public-network-access <value>', 'Enabled or Disabled')
    .option('--tags <tags...>', "space-separated tags: key[=value] ... (replace the vault's tags)")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi keyvault update -n app-kv --enable-purge-protection\n  openmsi keyvault update -n legacy-kv -g app-rg --enable-rbac-authorization true',
    )
    .action(
      async (
        opts: {
          name: string;
          resourceGroup?: string;
          enableRbacAuthorization?: boolean;
          enablePurgeProtection?: boolean;
          publicNetworkAccess?: string;
          tags?: string[];
        },
        cmd: Command,
      ) => {
        const tags = parseTags(opts.tags);
        const properties = {
          ...(opts.enableRbacAuthorization === undefined ? {} : { enableRbacAuthorization: opts.enableRbacAuthorization }),
          ...(opts.enablePurgeProtection === undefined ? {} : { enablePurgeProtection: opts.enablePurgeProtection }),
          ...(opts.publicNetworkAccess === undefined ? {} : { publicNetworkAccess: opts.publicNetworkAccess }),
        };
        if (tags === undefined && Object.keys(properties).length === 0) {
          throw new Error('nothing to update: give --enable-rbac-authorization, --enable-purge-protection, --public-network-access or --tags');
        }
        const result = await withClient(cmd, async (client) => {
          const body = { ...(tags === undefined ? {} : { tags }), ...(Object.keys(properties).length === 0 ? {} : { properties }) };
          return azView(
            bodyOf(await client.arm<ArmVault>('PATCH', await locateVault(client, opts.name, opts.resourceGroup), { apiVersion: API_VERSION, body })),
          );
        });
        printResult(result, globalOptions(cmd), COLUMNS);
      },
    );

  keyvault
    .command('delete')
    .description('Delete a vault: it is soft-deleted and recoverable for its retention days.')
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-g, --resource-group <group>', 'resource group (default: found in the subscription)')
    .action(async (opts: { name: string; resourceGroup?: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.arm('DELETE', await locateVault(client, opts.name, opts.resourceGroup), { apiVersion: API_VERSION });
      });
    });

  keyvault
    .command('list-deleted')
    .description('List soft-deleted vaults.')
    .action(async (_opts: unknown, cmd: Command) => {
      const result = await withClient(
        cmd,
        async (client) =>
          (await client.arm<{ value: unknown[] }>('GET', `${client.subscriptionPath()}/${PROVIDER}/deletedVaults`, { apiVersion: API_VERSION })).body?.value ??
          [],
      );
      printResult(result, globalOptions(cmd));
    });

  keyvault
    .command('show-deleted')
    .description('Show a soft-deleted vault.')
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-l, --location <location>', 'its location (default: found)')
    .action(async (opts: { name: string; location?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => findDeleted(client, opts.name, opts.location));
      printResult(result, globalOptions(cmd));
    });

  keyvault
    .command('purge')
    .description('Purge a soft-deleted vault and its secrets for good (refused under purge protection).')
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-l, --location <location>', 'its location (default: found)')
    .action(async (opts: { name: string; location?: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const deleted = await findDeleted(client, opts.name, opts.location);
        await client.arm('POST', `${deleted.id}/purge`, { apiVersion: API_VERSION });
      });
    });

  keyvault
    .command('recover')
    .description('Recover a soft-deleted vault (into its resource group, which must exist).')
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-l, --location <location>', 'its location (default: found)')
    .action(async (opts: { name: string; location?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const deleted = await findDeleted(client, opts.name, opts.location);
        const body = {
          location: deleted.properties.location,
          properties: { tenantId: client.tenantId, sku: { family: 'A', name: 'standard' }, createMode: 'recover' },
        };
        return azView(bodyOf(await client.arm<ArmVault>('PUT', deleted.properties.vaultId, { apiVersion: API_VERSION, body })));
      });
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  const permissionOptions = (c: Command) =>
    c
      .option('--secret-permissions <permissions...>', 'secret permissions: all get list set delete recover backup restore purge')
      .option(
        '--key-permissions <permissions...>',
        'key permissions (any case, e.g. wrapKey): all get list update create import delete recover backup restore decrypt encrypt unwrapKey wrapKey verify sign purge release rotate getrotationpolicy setrotationpolicy',
      )
      .option('--certificate-permissions <permissions...>', 'certificate permissions')
      .option('--storage-permissions <permissions...>', 'storage permissions');

  permissionOptions(
    keyvault
      .command('set-policy')
      .description("Set an object id's access policy (the permission kinds given replace that kind's permissions).")
      .requiredOption('-n, --name <name>', 'vault name')
      .option('-g, --resource-group <group>', 'resource group (default: found in the subscription)')
      .requiredOption('--object-id <id>', 'object id of the principal')
      .option('--application-id <id>', 'application id (compound identity)'),
  )
    .addHelpText('after', '\nExamples:\n  openmsi keyvault set-policy -n legacy-kv --object-id <id> --secret-permissions get list')
    .action(
      async (
        opts: {
          name: string;
          resourceGroup?: string;
          objectId: string;
          applicationId?: string;
          secretPermissions?: string[];
          keyPermissions?: string[];
          certificatePermissions?: string[];
          storagePermissions?: string[];
        },
        cmd: Command,
      ) => {
        const given = {
          secrets: opts.secretPermissions,
          keys: opts.keyPermissions,
          certificates: opts.certificatePermissions,
          storage: opts.storagePermissions,
        };
        if (Object.values(given).every((v) => v === undefined))
          throw new Error('give at least one of --secret-permissions, --key-permissions, --certificate-permissions, --storage-permissions');
        const result = await withClient(cmd, async (client) => {
          const path = await locateVault(client, opts.name, opts.resourceGroup);
          const vault = bodyOf(await client.arm<ArmVault>('GET', path, { apiVersion: API_VERSION }));
          const objectId = opts.objectId.toLowerCase();
          const applicationId = opts.applicationId?.toLowerCase() ?? null;
          const current = vault.properties.accessPolicies.find((e) => e.objectId === objectId && (e.applicationId ?? null) === applicationId);
          // As az: the kinds given replace that kind's permissions; the others are kept.
          const permissions = {
            keys: given.keys ?? current?.permissions.keys ?? [],
            secrets: given.secrets ?? current?.permissions.secrets ?? [],
            certificates: given.certificates ?? current?.permissions.certificates ?? [],
            storage: given.storage ?? current?.permissions.storage ?? [],
          };
          const entry = { tenantId: vault.properties.tenantId, objectId, ...(applicationId === null ? {} : { applicationId }), permissions };
          await client.arm('PUT', `${path}/accessPolicies/replace`, { apiVersion: API_VERSION, body: { properties: { accessPolicies: [entry] } } });
          return azView(bodyOf(await client.arm<ArmVault>('GET', path, { apiVersion: API_VERSION })));
        });
        printResult(result, globalOptions(cmd), COLUMNS);
      },
    );

  keyvault
    .command('delete-policy')
    .description("Delete an object id's access policy.")
    .requiredOption('-n, --name <name>', 'vault name')
    .option('-g, --resource-group <group>', 'resource group (default: found in the subscription)')
    .requiredOption('--object-id <id>', 'object id of the principal')
    .option('--application-id <id>', 'application id (compound identity)')
    .action(async (opts: { name: string; resourceGroup?: string; objectId: string; applicationId?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const path = await locateVault(client, opts.name, opts.resourceGroup);
        const vault = bodyOf(await client.arm<ArmVault>('GET', path, { apiVersion: API_VERSION }));
        const entry = {
          tenantId: vault.properties.tenantId,
          objectId: opts.objectId,
          ...(opts.applicationId === undefined ? {} : { applicationId: opts.applicationId }),
          permissions: { keys: [], secrets: [], certificates: [], storage: [] },
        };
        await client.arm('PUT', `${path}/accessPolicies/remove`, { apiVersion: API_VERSION, body: { properties: { accessPolicies: [entry] } } });
        return azView(bodyOf(await client.arm<ArmVault>('GET', path, { apiVersion: API_VERSION })));
      });
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  registerSecretCommands(keyvault);
  registerKeyCommands(keyvault);
}
