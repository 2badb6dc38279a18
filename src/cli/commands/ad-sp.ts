import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { systemClock } from '../../shared/clock.js';
import { bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { parseYears, seg, warn } from './shared.js';
import { isGuid, newGuid } from '../../shared/ids.js';
import { writePrivateFile } from '../../shared/private-files.js';

interface GraphServicePrincipal {
  id: string;
  appId: string;
  displayName: string;
  servicePrincipalType: string;
  appOwnerOrganizationId: string;
}

interface ResetResponse {
  appId: string;
  displayName: string;
  tenant: string;
  password: string | null;
}

const LIST_COLUMNS = [column('DisplayName', 'displayName'), column('Id', 'id'), column('AppId', 'appId'), column('CreatedDateTime', 'createdDateTime')];

const CREDENTIALS_WARNING =
  'The output includes credentials that you must protect. Be sure that you do not include these credentials in your code or check the credentials into your source control.';

interface ArmRoleDefinition {
  id: string;
  name: string;
  properties: { roleName: string };
}

/** The ARM scope as a path prefix: `/` is the tenant root (`/providers/...`), anything else as given without a trailing slash. */
function scopePath(scope: string): string {
  const trimmed = scope.trim().replace(/\/+$/, '');
  if (!trimmed.startsWith('/') && trimmed !== '')
    throw new Error(`--scopes: '${scope}' is not an ARM scope (it must start with '/', e.g. /subscriptions/<id>/resourceGroups/<name>)`);
  return trimmed
    .split('/')
    .map((s) => (s === '' ? '' : seg(s)))
    .join('/');
}

/** The role definition's ARM id at `scope`: by GUID, full id, or role name (case-insensitive), as az resolves `--role`. */
async function resolveRole(client: ManagementClient, role: string, scope: string): Promise<string> {
  const path = `${scopePath(scope)}/providers/Microsoft.Authorization/roleDefinitions`;
  if (role.startsWith('/')) return role;
  if (isGuid(role)) return `${path}/${role}`;
  const list = bodyOf(await client.arm<{ value: ArmRoleDefinition[] }>('GET', path, { apiVersion: RBAC_API_VERSION })).value;
  const found = list.filter((d) => d.properties.roleName.toLowerCase() === role.toLowerCase());
  if (found.length === 0) throw new Error(`Role '${role}' doesn't exist.`);
  if (found.length > 1) throw new Error(`Multiple roles match the role name '${role}'; use the role definition id.`);
  return (found[0] as ArmRoleDefinition).id;
}

/** ARM's role-assignment API version, as az sends it. */
const RBAC_API_VERSION = '2022-04-01';

/** Creates the `--role` assignment of `principalId` at each scope, printing az's notice on stderr for each. */
async function assignRole(client: ManagementClient, principalId: string, role: string, scopes: readonly string[]): Promise<void> {
  for (const scope of scopes) {
    const roleDefinitionId = await resolveRole(client, role, scope);
    warn(`Creating '${role}' role assignment under scope '${scope}'`);
    await client.arm('PUT', `${scopePath(scope)}/providers/Microsoft.Authorization/roleAssignments/${newGuid()}`, {
      apiVersion: RBAC_API_VERSION,
      body: { properties: { roleDefinitionId, principalId, principalType: 'ServicePrincipal' } },
    });
  }
}

/** `--cert`: a PEM string, base64 DER, or `@file`. Only the certificate is ever sent, never a private key. */
function readCertificateArgument(value: string): string {
  let text = value;
  if (value.startsWith('@')) {
    const path = resolve(value.slice(1));
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read the certificate file ${path}: ${(err as Error).message}`, { cause: err });
    }
  }
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text);
  if (pem) return pem[0];
  if (/PRIVATE KEY/.test(text)) throw new Error('--cert must contain a certificate (PEM or base64 DER), not only a private key');
  return text.trim();
}

/** The 0600 PEM (private key, then certificate) that `--create-cert` leaves for the caller. */
function writeKeyAndCertificate(dir: string | undefined, name: string, keyPem: string, certPem: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '');
  const safe =
    name
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 64) || 'openmsi-sp';
  const path = resolve(dir ?? process.cwd(), `${safe}-${stamp}.pem`);
  try {
    writePrivateFile(path, keyPem + certPem, { flag: 'wx' });
  } catch (err) {
    throw new Error(`cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  return path;
}

async function newCertificate(commonName: string, years: number | undefined): Promise<{ certPem: string; keyPem: string }> {
  // Loaded on demand: it pulls in the X.509 library, which most commands never need.
  const { createClientCertificate } = await import('../../pki/client-certificate.js');
  return createClientCertificate({ commonName, years: years ?? 1, clock: systemClock });
}

interface CredentialOptions {
  years?: number;
  cert?: string;
  createCert?: boolean;
  certDir?: string;
}

function checkCredentialOptions(opts: CredentialOptions): void {
  if (opts.cert !== undefined && opts.createCert === true) throw new Error('use either --cert or --create-cert, not both');
  if (opts.certDir !== undefined && opts.createCert !== true) throw new Error('--cert-dir only applies with --create-cert');
}

/** Resets (or appends) a credential; returns the az-shaped output. */
async function resetWith(
  client: ManagementClient,
  principal: GraphServicePrincipal,
  opts: CredentialOptions & { append?: boolean; displayName?: string },
): Promise<{ response: ResetResponse; file: string | undefined }> {
  let certificate: string | undefined;
  let created: { certPem: string; keyPem: string } | undefined;
  if (opts.createCert === true) {
    created = await newCertificate(principal.displayName, opts.years);
    certificate = created.certPem;
  } else if (opts.cert !== undefined) {
    certificate = readCertificateArgument(opts.cert);
  }
  const response = bodyOf(
    await client.graph<ResetResponse>('POST', `/servicePrincipals/${seg(principal.id)}/resetCredentials`, {
      body: {
        ...(opts.append === true ? { append: true } : {}),
        ...(opts.years === undefined || certificate !== undefined ? {} : { years: opts.years }),
        ...(opts.displayName === undefined ? {} : { displayName: opts.displayName }),
        ...(certificate === undefined ? {} : { certificate }),
      },
    }),
  );
  const file = created === undefined ? undefined : writeKeyAndCertificate(opts.certDir, principal.displayName, created.keyPem, created.certPem);
  return { response, file };
}

async function findByDisplayName(client: ManagementClient, displayName: string): Promise<GraphServicePrincipal[]> {
  const filter = `displayName eq '${displayName.replace(/'/g, "''")}' and servicePrincipalType eq 'Application'`;
  const response = await client.graph<{ value: GraphServicePrincipal[] }>('GET', '/servicePrincipals', { query: { $filter: filter } });
  return response.body?.value ?? [];
}

async function showPrincipal(client: ManagementClient, id: string): Promise<GraphServicePrincipal> {
  return bodyOf(await client.graph<GraphServicePrincipal>('GET', `/servicePrincipals/${seg(id)}`));
}

/** `openmsi ad sp create-for-rbac|credential reset|show|list|delete`, shaped like `az ad sp`. */
export function registerAdSpCommands(program: Command): void {
  const ad = program
    .command('ad')
    .description('Manage the directory: applications and service principals.')
    .addHelpText('after', '\nExamples:\n  openmsi ad sp create-for-rbac --name ci-pipeline\n  openmsi ad sp list --display-name ci');
  const sp = ad
    .command('sp')
    .description('Manage service principals.')
    .addHelpText('after', '\nExamples:\n  openmsi ad sp create-for-rbac --name ci-pipeline\n  openmsi ad sp credential reset --id <appId>');

  sp.command('create-for-rbac')
    .description(
      'Create an application service principal with a client secret (or certificate), the "before managed identity" way for callers outside Azure. An existing application with the same name is reused and its credentials replaced.',
    )
    .option('-n, --name <name>', 'display name of the service principal (default: openmsi-<timestamp>)')
    .option('--display-name <name>', 'same as --name')
    .option('--years <years>', 'number of years the credential is valid (default 1)', parseYears)
    .option('--cert <cert>', 'register this certificate instead of creating a secret: PEM or base64 DER, or @file')
    .option('--create-cert', 'create a self-signed certificate; its private key is written to a 0600 PEM file')
    .option('--cert-dir <dir>', 'with --create-cert: where to write the PEM file (default: the current directory)')
    .option('--role <role>', 'role of the service principal (name or id), assigned at each of --scopes; without it the principal has no role')
    .option('--scopes <scopes...>', 'space-separated scopes the role assignment applies to, e.g. /subscriptions/<id>/resourceGroups/<name>')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ad sp create-for-rbac --name ci-pipeline\n  openmsi ad sp create-for-rbac --name ci-pipeline --role Contributor --scopes /subscriptions/<id>/resourceGroups/ci\n  openmsi ad sp create-for-rbac --name ci-pipeline --years 2\n  openmsi ad sp create-for-rbac --name ci-pipeline --create-cert --cert-dir ~/.secrets\n  openmsi ad sp create-for-rbac --name ci-pipeline --cert @client.pem',
    )
    .action(async (opts: CredentialOptions & { name?: string; displayName?: string; role?: string; scopes?: string[] }, cmd: Command) => {
      checkCredentialOptions(opts);
      // As az: both or neither.
      if ((opts.role === undefined) !== (opts.scopes === undefined || opts.scopes.length === 0)) {
        throw new Error('usage error: To create role assignments, specify both --role and --scopes.');
      }
      for (const scope of opts.scopes ?? []) scopePath(scope);
      if (opts.name !== undefined && opts.displayName !== undefined && opts.name !== opts.displayName) throw new Error('use either --name or --display-name');
      const displayName = opts.name ?? opts.displayName ?? `openmsi-${new Date().toISOString().replace(/[:T]/g, '-').replace(/\..*$/, '')}`;
      const output = await withClient(cmd, async (client) => {
        const existing = await findByDisplayName(client, displayName);
        if (existing.length > 1) {
          throw new Error(
            `more than one application is named '${displayName}'; reset the credentials of one with \`openmsi ad sp credential reset --id <appId>\``,
          );
        }
        let principal = existing[0];
        if (principal === undefined) {
          principal = bodyOf(await client.graph<GraphServicePrincipal>('POST', '/servicePrincipals', { body: { displayName } }));
        } else {
          warn(`Found an existing application instance: (id) ${principal.appId}. We will patch it.`);
        }
        const { response, file } = await resetWith(client, principal, { ...opts, displayName: 'rbac' });
        if (opts.role !== undefined) await assignRole(client, principal.id, opts.role, opts.scopes ?? []);
        return {
          appId: response.appId,
          displayName: principal.displayName,
          ...(file === undefined ? {} : { fileWithCertAndPrivateKey: file }),
          password: response.password,
          tenant: response.tenant,
        };
      });
      if (output.password !== null || output.fileWithCertAndPrivateKey !== undefined) warn(CREDENTIALS_WARNING);
      printResult(output, globalOptions(cmd));
    });

  const credential = sp
    .command('credential')
    .description("Manage a service principal's credentials.")
    .addHelpText('after', '\nExamples:\n  openmsi ad sp credential reset --id <appId>');

  credential
    .command('reset')
    .description("Reset a service principal's credential: a new secret (or certificate) replaces every existing one, unless --append is given.")
    .requiredOption('--id <id>', 'client (app) id or object id of the service principal')
    .option('--append', 'keep the existing credentials and add the new one')
    .option('--years <years>', 'number of years the credential is valid (default 1)', parseYears)
    .option('--display-name <name>', "the credential's display name")
    .option('--cert <cert>', 'register this certificate instead of creating a secret: PEM or base64 DER, or @file')
    .option('--create-cert', 'create a self-signed certificate; its private key is written to a 0600 PEM file')
    .option('--cert-dir <dir>', 'with --create-cert: where to write the PEM file (default: the current directory)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ad sp credential reset --id <appId>\n  openmsi ad sp credential reset --id <appId> --append --years 2\n  openmsi ad sp credential reset --id <appId> --create-cert',
    )
    .action(async (opts: CredentialOptions & { id: string; append?: boolean; displayName?: string }, cmd: Command) => {
      checkCredentialOptions(opts);
      const output = await withClient(cmd, async (client) => {
        const principal = await showPrincipal(client, opts.id);
        const { response, file } = await resetWith(client, principal, opts);
        return {
          appId: response.appId,
          ...(file === undefined ? {} : { fileWithCertAndPrivateKey: file }),
          password: response.password,
          tenant: response.tenant,
        };
      });
      if (output.password !== null || output.fileWithCertAndPrivateKey !== undefined) warn(CREDENTIALS_WARNING);
      printResult(output, globalOptions(cmd));
    });

  sp.command('show')
    .description('Show a service principal (application or managed identity); never shows secrets.')
    .requiredOption('--id <id>', 'client (app) id or object id')
    .addHelpText('after', '\nExamples:\n  openmsi ad sp show --id <appId>')
    .action(async (opts: { id: string }, cmd: Command) => {
      const result = await withClient(cmd, (client) => showPrincipal(client, opts.id));
      printResult(result, globalOptions(cmd), LIST_COLUMNS);
    });

  sp.command('list')
    .description('List service principals, managed identities included.')
    .option('--display-name <name>', 'only those whose display name starts with this')
    .option('--spn <name>', 'only the one with this service principal name')
    .option('--filter <filter>', 'an OData filter, e.g. "servicePrincipalType eq \'ManagedIdentity\'"')
    .option('--all', 'list everything (openmsi always does; accepted for az compatibility)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ad sp list --display-name ci -o table\n  openmsi ad sp list --filter "servicePrincipalType eq \'ManagedIdentity\'"\n  openmsi ad sp list --filter "alternativeNames/any(x:x eq \'/subscriptions/<sub>/resourceGroups/app-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id\')"',
    )
    .action(async (opts: { displayName?: string; spn?: string; filter?: string }, cmd: Command) => {
      const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;
      const clauses = [
        ...(opts.displayName === undefined ? [] : [`startswith(displayName,${quote(opts.displayName)})`]),
        ...(opts.spn === undefined ? [] : [`servicePrincipalNames/any(c:c eq ${quote(opts.spn)})`]),
        ...(opts.filter === undefined ? [] : [opts.filter]),
      ];
      const result = await withClient(cmd, async (client) => {
        const response = await client.graph<{ value: unknown[] }>('GET', '/servicePrincipals', {
          ...(clauses.length === 0 ? {} : { query: { $filter: clauses.join(' and ') } }),
        });
        return response.body?.value ?? [];
      });
      printResult(result, globalOptions(cmd), LIST_COLUMNS);
    });

  sp.command('delete')
    .description('Delete an application service principal and its credentials (managed identities are deleted with their resource).')
    .requiredOption('--id <id>', 'client (app) id or object id')
    .addHelpText('after', '\nExamples:\n  openmsi ad sp delete --id <appId>')
    .action(async (opts: { id: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.graph('DELETE', `/servicePrincipals/${seg(opts.id)}`);
      });
    });
}
