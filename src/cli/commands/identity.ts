import type { Command } from 'commander';
import { bodyOf, withClient, globalOptions, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { parseIds, parseTags, seg } from './shared.js';

const TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';
const PROVIDER = `providers/${TYPE}`;
const API_VERSION = '2023-01-31';

interface ArmIdentity {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  properties: { tenantId: string; principalId: string; clientId: string };
}

/** az flattens `properties` and adds `resourceGroup`: `{clientId, id, location, name, principalId, resourceGroup, tags, tenantId, type}`. */
function azView(identity: ArmIdentity): Record<string, unknown> {
  const resourceGroup = /\/resourceGroups\/([^/]+)\//i.exec(identity.id)?.[1] ?? null;
  return {
    clientId: identity.properties.clientId,
    id: identity.id,
    location: identity.location,
    name: identity.name,
    principalId: identity.properties.principalId,
    resourceGroup,
    tags: identity.tags,
    tenantId: identity.properties.tenantId,
    type: identity.type,
  };
}

const COLUMNS = [
  column('ClientId', 'clientId'),
  column('Location', 'location'),
  column('Name', 'name'),
  column('PrincipalId', 'principalId'),
  column('ResourceGroup', 'resourceGroup'),
  column('TenantId', 'tenantId'),
];

interface Address {
  name?: string;
  resourceGroup?: string;
  ids?: string;
}

/** The ARM path of the identity named by `-n/-g` or `--ids`. */
function identityPath(client: ManagementClient, opts: Address): string {
  if (opts.ids !== undefined) {
    if (opts.name !== undefined || opts.resourceGroup !== undefined) throw new Error('use either --ids or --name/--resource-group, not both');
    const id = parseIds(opts.ids, TYPE);
    return `/subscriptions/${seg(id.subscriptionId)}/resourceGroups/${seg(id.resourceGroup)}/${PROVIDER}/${seg(id.name)}`;
  }
  if (opts.name === undefined || opts.resourceGroup === undefined) throw new Error('--name and --resource-group are required (or --ids)');
  return `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${PROVIDER}/${seg(opts.name)}`;
}

/** `openmsi identity create|show|list|delete`, shaped like `az identity`. */
export function registerIdentityCommands(program: Command): void {
  const identity = program
    .command('identity')
    .description('Manage user-assigned managed identities.')
    .addHelpText('after', '\nExamples:\n  openmsi identity create -n app-id -g app-rg\n  openmsi identity list -g app-rg -o table');

  identity
    .command('create')
    .description('Create a user-assigned identity (and its service principal), or update its tags.')
    .requiredOption('-n, --name <name>', 'identity name (3-128 letters, digits, hyphens, underscores)')
    .requiredOption('-g, --resource-group <group>', 'resource group')
    .option('-l, --location <location>', "location (default: the resource group's)")
    .option('--tags <tags...>', 'space-separated tags: key[=value] [key[=value] ...]')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi identity create -n app-id -g app-rg\n  openmsi identity create -n app-id -g app-rg -l westeurope --tags env=dev',
    )
    .action(async (opts: { name: string; resourceGroup: string; location?: string; tags?: string[] }, cmd: Command) => {
      const tags = parseTags(opts.tags);
      const result = await withClient(cmd, async (client) => {
        const response = await client.arm<ArmIdentity>('PUT', identityPath(client, opts), {
          apiVersion: API_VERSION,
          body: { ...(opts.location === undefined ? {} : { location: opts.location }), ...(tags === undefined ? {} : { tags }) },
        });
        return azView(bodyOf(response));
      });
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  identity
    .command('show')
    .description('Show a user-assigned identity.')
    .option('-n, --name <name>', 'identity name')
    .option('-g, --resource-group <group>', 'resource group')
    .option('--ids <id>', "the identity's resource id (instead of --name and --resource-group)")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi identity show -n app-id -g app-rg\n  openmsi identity show --ids /subscriptions/<sub>/resourceGroups/app-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-id',
    )
    .action(async (opts: Address, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        azView(bodyOf(await client.arm<ArmIdentity>('GET', identityPath(client, opts), { apiVersion: API_VERSION }))),
      );
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  identity
    .command('list')
    .description('List user-assigned identities in the subscription or a resource group.')
    .option('-g, --resource-group <group>', 'only this resource group')
    .addHelpText('after', '\nExamples:\n  openmsi identity list\n  openmsi identity list -g app-rg -o table')
    .action(async (opts: { resourceGroup?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const path =
          opts.resourceGroup === undefined
            ? `${client.subscriptionPath()}/${PROVIDER}`
            : `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${PROVIDER}`;
        const response = await client.arm<{ value: ArmIdentity[] }>('GET', path, { apiVersion: API_VERSION });
        return (response.body?.value ?? []).map(azView);
      });
      printResult(result, globalOptions(cmd), COLUMNS);
    });

  identity
    .command('delete')
    .description('Delete a user-assigned identity: it is detached from every resource and its service principal is deleted.')
    .option('-n, --name <name>', 'identity name')
    .option('-g, --resource-group <group>', 'resource group')
    .option('--ids <id>', "the identity's resource id (instead of --name and --resource-group)")
    .addHelpText('after', '\nExamples:\n  openmsi identity delete -n app-id -g app-rg')
    .action(async (opts: Address, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.arm('DELETE', identityPath(client, opts), { apiVersion: API_VERSION });
      });
    });
}
