import type { Command } from 'commander';
import { ApiRequestError, bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { printResult } from '../output.js';
import { seg } from './shared.js';
import { parseArmResourceId } from '../../shared/ids.js';

const API_VERSION = '2023-01-31';
const UAMI_TYPE = 'Microsoft.ManagedIdentity/userAssignedIdentities';
/** What `[system]` means in `--identities`, as in az. */
export const SYSTEM_IDENTITY = '[system]';
/** The machine types `vm identity` acts on, in the order a bare name is looked up. */
const MACHINE_TYPES: Readonly<Record<string, string>> = {
  machine: 'Microsoft.HybridCompute/machines',
  vm: 'Microsoft.Compute/virtualMachines',
};

interface ArmIdentity {
  type: string;
  principalId?: string;
  tenantId?: string;
  userAssignedIdentities?: Record<string, { principalId: string; clientId: string }>;
}

interface ArmResource {
  id: string;
  location: string;
  tags: Record<string, string>;
  identity?: ArmIdentity;
  properties: Record<string, unknown>;
}

/** `az vm identity show`'s shape; undefined (az prints nothing) when the machine has no identity. */
export function azIdentityView(identity: ArmIdentity | undefined): Record<string, unknown> | undefined {
  if (identity === undefined) return undefined;
  return {
    principalId: identity.principalId ?? null,
    tenantId: identity.tenantId ?? null,
    type: identity.type,
    userAssignedIdentities: identity.userAssignedIdentities ?? null,
  };
}

/** `--type`: `machine` (Microsoft.HybridCompute/machines), `vm` (Microsoft.Compute/virtualMachines) or a full type. */
function parseType(value: string | undefined): string[] {
  if (value === undefined) return Object.values(MACHINE_TYPES);
  const short = MACHINE_TYPES[value.toLowerCase()];
  if (short !== undefined) return [short];
  const full = Object.values(MACHINE_TYPES).find((t) => t.toLowerCase() === value.toLowerCase());
  if (full === undefined) throw new Error(`--type must be machine (${MACHINE_TYPES['machine'] ?? ''}) or vm (${MACHINE_TYPES['vm'] ?? ''}), not '${value}'`);
  return [full];
}

/** The machine: the first of `types` that exists under that name (a 404 for one type tries the next). */
async function findMachine(client: ManagementClient, resourceGroup: string, name: string, types: string[]): Promise<{ path: string; resource: ArmResource }> {
  let lastError: unknown;
  for (const type of types) {
    const path = `${client.subscriptionPath()}/resourceGroups/${seg(resourceGroup)}/providers/${type}/${seg(name)}`;
    try {
      return { path, resource: bodyOf(await client.arm<ArmResource>('GET', path, { apiVersion: API_VERSION })) };
    } catch (err) {
      if (!(err instanceof ApiRequestError) || err.code !== 'ResourceNotFound') throw err;
      lastError = err;
    }
  }
  if (types.length > 1) throw new Error(`(ResourceNotFound) No host or virtual machine '${name}' was found in resource group '${resourceGroup}'.`);
  throw lastError;
}

/** `--identities` as az reads them: `[system]`, a user-assigned identity's ARM id, or its name in the group. */
function resolveIdentities(client: ManagementClient, resourceGroup: string, identities: readonly string[]): { system: boolean; user: string[] } {
  let system = false;
  const user: string[] = [];
  for (const identity of identities) {
    if (identity.toLowerCase() === SYSTEM_IDENTITY) {
      system = true;
    } else if (identity.startsWith('/')) {
      const parsed = parseArmResourceId(identity);
      if (parsed?.type.toLowerCase() !== UAMI_TYPE.toLowerCase()) throw new Error(`'${identity}' is not the resource id of a ${UAMI_TYPE}`);
      user.push(identity);
    } else {
      user.push(`/subscriptions/${client.subscriptionId}/resourceGroups/${resourceGroup}/providers/${UAMI_TYPE}/${identity}`);
    }
  }
  return { system, user };
}

/** The ARM `identity` of a PUT with these identities; `None` when there are none. */
function armIdentity(system: boolean, user: readonly string[]): Record<string, unknown> {
  if (!system && user.length === 0) return { type: 'None' };
  const type = system && user.length > 0 ? 'SystemAssigned, UserAssigned' : system ? 'SystemAssigned' : 'UserAssigned';
  return user.length === 0 ? { type } : { type, userAssignedIdentities: Object.fromEntries(user.map((id) => [id, {}])) };
}

/** Writes the machine back with a new identity through the generic ARM PUT (identity rules stay in the directory). */
async function putIdentity(client: ManagementClient, path: string, resource: ArmResource, system: boolean, user: readonly string[]): Promise<ArmResource> {
  const { provisioningState: _ignored, ...properties } = resource.properties;
  return bodyOf(
    await client.arm<ArmResource>('PUT', path, {
      apiVersion: API_VERSION,
      body: { location: resource.location, tags: resource.tags, properties, identity: armIdentity(system, user) },
    }),
  );
}

const sameId = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

interface Target {
  resourceGroup: string;
  name: string;
  type?: string;
}

/** `openmsi vm identity assign|remove|show`, shaped like `az vm identity`, for hosts and virtual machines. */
export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('Virtual machines and hosts (Microsoft.HybridCompute/machines, Microsoft.Compute/virtualMachines).');
  const identity = vm
    .command('identity')
    .description('Manage the managed identities of a host or VM: its agent serves tokens for exactly these.')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi vm identity assign -g hosts-rg -n build-01 --identities app-id\n  openmsi vm identity show -g hosts-rg -n build-01\n  openmsi vm identity remove -g hosts-rg -n build-01 --identities app-id',
    );

  const targetOptions = (cmd: Command) =>
    cmd
      .requiredOption('-g, --resource-group <group>', 'resource group')
      .requiredOption('-n, --name <name>', 'host or VM name')
      .option(
        '--type <type>',
        'machine (Microsoft.HybridCompute/machines) or vm (Microsoft.Compute/virtualMachines); default: whichever exists, machine first',
      );

  targetOptions(identity.command('assign'))
    .description(
      "Assign identities: '[system]' for the system-assigned identity, user-assigned identities by name (in the group) or resource id. Default: [system].",
    )
    .option('--identities <identities...>', "space-separated identities: '[system]', names or resource ids")
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi vm identity assign -g hosts-rg -n build-01\n  openmsi vm identity assign -g hosts-rg -n build-01 --identities [system] app-id',
    )
    .action(async (opts: Target & { identities?: string[] }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const wanted = resolveIdentities(client, opts.resourceGroup, opts.identities ?? [SYSTEM_IDENTITY]);
        const { path, resource } = await findMachine(client, opts.resourceGroup, opts.name, parseType(opts.type));
        const current = Object.keys(resource.identity?.userAssignedIdentities ?? {});
        const user = [...current, ...wanted.user.filter((id) => !current.some((c) => sameId(c, id)))];
        const written = await putIdentity(client, path, resource, resource.identity?.principalId !== undefined || wanted.system, user);
        // az prints {systemAssignedIdentity, userAssignedIdentities} after an assign.
        return { systemAssignedIdentity: written.identity?.principalId ?? '', userAssignedIdentities: written.identity?.userAssignedIdentities ?? {} };
      });
      printResult(result, globalOptions(cmd));
    });

  targetOptions(identity.command('remove'))
    .description("Remove identities ('[system]', names or resource ids); default: [system]. Its agent stops serving them at once.")
    .option('--identities <identities...>', "space-separated identities: '[system]', names or resource ids")
    .addHelpText('after', '\nExamples:\n  openmsi vm identity remove -g hosts-rg -n build-01 --identities app-id')
    .action(async (opts: Target & { identities?: string[] }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const unwanted = resolveIdentities(client, opts.resourceGroup, opts.identities ?? [SYSTEM_IDENTITY]);
        const { path, resource } = await findMachine(client, opts.resourceGroup, opts.name, parseType(opts.type));
        const current = Object.keys(resource.identity?.userAssignedIdentities ?? {});
        const missing = unwanted.user.filter((id) => !current.some((c) => sameId(c, id)));
        if (missing.length > 0) throw new Error(`'${missing.join("', '")}' ${missing.length === 1 ? 'is' : 'are'} not assigned to '${opts.name}'`);
        const user = current.filter((c) => !unwanted.user.some((id) => sameId(c, id)));
        const written = await putIdentity(client, path, resource, resource.identity?.principalId !== undefined && !unwanted.system, user);
        return azIdentityView(written.identity);
      });
      printResult(result, globalOptions(cmd));
    });

  targetOptions(identity.command('show'))
    .description('Show the identities: {principalId, tenantId, type, userAssignedIdentities}, as az prints them (nothing when there are none).')
    .addHelpText('after', '\nExamples:\n  openmsi vm identity show -g hosts-rg -n build-01')
    .action(async (opts: Target, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        azIdentityView((await findMachine(client, opts.resourceGroup, opts.name, parseType(opts.type))).resource.identity),
      );
      printResult(result, globalOptions(cmd));
    });
}
