import type { Command } from 'commander';
import { bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { confirm, seg } from './shared.js';
import { JOIN_TOKEN_TTL_SECONDS } from '../../shared/config.js';

const TYPE = 'Microsoft.HybridCompute/machines';
const PROVIDER = `providers/${TYPE}`;
const API_VERSION = '2023-01-31';
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--ttl`: `90s`, `10m`, `1h`, `1d`, or a bare number of seconds; within the join-token bounds. */
export function parseTtl(value: string): number {
  const match = /^(\d{1,7})([smhd]?)$/.exec(value.trim());
  const seconds = match?.[1] === undefined ? NaN : Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? NaN);
  const { min, max } = JOIN_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(seconds) || seconds < min || seconds > max) {
    throw new Error(`--ttl must be a duration from 1m to 24h, such as 90s, 10m, 1h or 1d (got '${value}')`);
  }
  return seconds;
}

function machinePath(client: ManagementClient, resourceGroup: string, name: string): string {
  return `${client.subscriptionPath()}/resourceGroups/${seg(resourceGroup)}/${PROVIDER}/${seg(name)}`;
}

interface ArmResource {
  id: string;
  name: string;
  type: string;
  location: string;
  tags: Record<string, string>;
  identity?: unknown;
  properties: Record<string, unknown>;
}

/** az adds `resourceGroup` to the ARM view. */
function azView(resource: ArmResource): Record<string, unknown> {
  return { ...resource, resourceGroup: /\/resourceGroups\/([^/]+)\//i.exec(resource.id)?.[1] ?? null };
}

const HOST_COLUMNS = [column('Name', 'name'), column('ResourceGroup', 'resourceGroup'), column('Location', 'location'), column('VmId', 'properties.vmId')];
const CREDENTIAL_COLUMNS = [
  column('KeyId', 'keyId'),
  column('State', 'state'),
  column('CreatedAt', 'createdAt'),
  column('ExpiresAt', 'expiresAt'),
  column('RevokedAt', 'revokedAt'),
];

/**
 * `openmsi host join-token create|credential list|credential revoke|show|list|delete`: the machines agents
 * enrol as (`Microsoft.HybridCompute/machines`, Azure Arc's type), their join tokens and credentials.
 */
export function registerHostCommands(program: Command): void {
  const host = program
    .command('host')
    .description('Manage hosts (the machines an `openmsi agent` runs on), their join tokens and credentials.')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi host join-token create -g hosts-rg -n build-01\n  openmsi host credential list -g hosts-rg -n build-01 -o table\n  openmsi host credential revoke --key-id <kid>',
    );

  const joinToken = host.command('join-token').description('Create single-use join tokens that enrol an agent.');
  joinToken
    .command('create')
    .description(
      'Create a join token for a host: prints {token, expiresOn, hostResourceId, authority}. Creates the host (Microsoft.HybridCompute/machines) with a system-assigned identity if it does not exist. The token is shown once and works once.',
    )
    .requiredOption('-g, --resource-group <group>', 'resource group of the host')
    .requiredOption('-n, --name <name>', 'host name')
    .option('--ttl <duration>', 'how long the token is valid: 90s, 10m, 1h, 1d (1m to 24h)', '10m')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi host join-token create -g hosts-rg -n build-01\n  openmsi host join-token create -g hosts-rg -n build-01 --ttl 1h',
    )
    .action(async (opts: { resourceGroup: string; name: string; ttl: string }, cmd: Command) => {
      const ttlSeconds = parseTtl(opts.ttl);
      const result = await withClient(cmd, async (client) => {
        const created = bodyOf(
          await client.arm<{ token: string; expiresOn: string; hostResourceId: string }>(
            'POST',
            `${machinePath(client, opts.resourceGroup, opts.name)}/createJoinToken`,
            {
              apiVersion: API_VERSION,
              body: { ttlSeconds },
            },
          ),
        );
        return { token: created.token, expiresOn: created.expiresOn, hostResourceId: created.hostResourceId, authority: client.publicUrl };
      });
      printResult(result, globalOptions(cmd));
    });

  const credential = host.command('credential').description("List and revoke a host's credentials (the public keys its agent registered).");
  credential
    .command('list')
    .description("List a host's credentials: key id, state (Active, Expired, Revoked), creation, expiry and revocation times.")
    .requiredOption('-g, --resource-group <group>', 'resource group of the host')
    .requiredOption('-n, --name <name>', 'host name')
    .addHelpText('after', '\nExamples:\n  openmsi host credential list -g hosts-rg -n build-01 -o table')
    .action(async (opts: { resourceGroup: string; name: string }, cmd: Command) => {
      const result = await withClient(
        cmd,
        async (client) =>
          bodyOf(
            await client.arm<{ value: unknown[] }>('GET', `${machinePath(client, opts.resourceGroup, opts.name)}/hostCredentials`, { apiVersion: API_VERSION }),
          ).value,
      );
      printResult(result, globalOptions(cmd), CREDENTIAL_COLUMNS);
    });

  credential
    .command('revoke')
    .description('Revoke a host credential: the authority refuses it from the next request on (tokens already issued live until they expire).')
    .requiredOption('--key-id <kid>', 'the key id (from `host credential list`)')
    .addHelpText('after', '\nExamples:\n  openmsi host credential revoke --key-id NQ6iRTjlaHCzm7jNoWO6iOuxl5tfgU5cWFYSbIkti5w')
    .action(async (opts: { keyId: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi('POST', `/hostCredentials/${seg(opts.keyId)}/revoke`)));
      printResult(result, globalOptions(cmd), CREDENTIAL_COLUMNS);
    });

  host
    .command('show')
    .description('Show a host (its ARM resource, with identity and properties.vmId).')
    .requiredOption('-g, --resource-group <group>', 'resource group of the host')
    .requiredOption('-n, --name <name>', 'host name')
    .action(async (opts: { resourceGroup: string; name: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        azView(bodyOf(await client.arm<ArmResource>('GET', machinePath(client, opts.resourceGroup, opts.name), { apiVersion: API_VERSION }))),
      );
      printResult(result, globalOptions(cmd), HOST_COLUMNS);
    });

  host
    .command('list')
    .description('List hosts in the subscription or a resource group.')
    .option('-g, --resource-group <group>', 'only this resource group')
    .action(async (opts: { resourceGroup?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const path =
          opts.resourceGroup === undefined
            ? `${client.subscriptionPath()}/${PROVIDER}`
            : `${client.subscriptionPath()}/resourceGroups/${seg(opts.resourceGroup)}/${PROVIDER}`;
        return (bodyOf(await client.arm<{ value: ArmResource[] }>('GET', path, { apiVersion: API_VERSION })).value ?? []).map(azView);
      });
      printResult(result, globalOptions(cmd), HOST_COLUMNS);
    });

  host
    .command('delete')
    .description('Delete a host: its system-assigned identity is deleted and its credentials are revoked, so its agent is refused at once.')
    .requiredOption('-g, --resource-group <group>', 'resource group of the host')
    .requiredOption('-n, --name <name>', 'host name')
    .option('-y, --yes', 'do not prompt for confirmation')
    .action(async (opts: { resourceGroup: string; name: string; yes?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const path = machinePath(client, opts.resourceGroup, opts.name);
        // Say that it is missing before asking whether to delete it.
        await client.arm('GET', path, { apiVersion: API_VERSION });
        if (opts.yes !== true && !(await confirm(`delete host '${opts.name}'`, '--yes'))) return;
        await client.arm('DELETE', path, { apiVersion: API_VERSION });
      });
    });
}
