/**
 * `openmsi ad group create|list|show|delete` and `openmsi ad group member add|remove|list|check`, shaped like
 * `az ad group` (Graph's JSON). `--group` takes an object id or a display name.
 */
import type { Command } from 'commander';
import { isGuid } from '../../shared/ids.js';
import { bodyOf, globalOptions, withClient, type ManagementClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { seg } from './shared.js';

interface GraphGroup {
  id: string;
  displayName: string;
  mailNickname: string;
}

const GROUP_COLUMNS = [column('DisplayName', 'displayName'), column('MailNickname', 'mailNickname'), column('Id', 'id')];
const MEMBER_COLUMNS = [column('DisplayName', 'displayName'), column('Id', 'id'), column('Type', '@odata.type')];

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** A group by object id or (exact, case-insensitive) display name; az's errors for none or several. */
async function resolveGroup(client: ManagementClient, group: string): Promise<GraphGroup> {
  if (isGuid(group)) return bodyOf(await client.graph<GraphGroup>('GET', `/groups/${seg(group)}`));
  const found = bodyOf(await client.graph<{ value: GraphGroup[] }>('GET', '/groups', { query: { $filter: `displayName eq ${quote(group)}` } })).value;
  if (found.length === 0) throw new Error(`No group matches the name of '${group}'`);
  if (found.length > 1) throw new Error(`More than one group match the name of '${group}'. Please use its object id: ${found.map((g) => g.id).join(', ')}`);
  return found[0] as GraphGroup;
}

/** Adds the `group` subcommands to the existing `openmsi ad` command. */
export function registerAdGroupCommands(program: Command): void {
  const ad = program.commands.find((c) => c.name() === 'ad');
  if (ad === undefined) throw new Error('register the `ad` command (registerAdSpCommands) first');
  const group = ad
    .command('group')
    .description('Manage groups: principals in a group get the roles assigned to it (nested groups included).')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ad group create --display-name ops --mail-nickname ops\n  openmsi ad group member add --group ops --member-id <objectId>',
    );

  group
    .command('create')
    .description('Create a security group.')
    .requiredOption('--display-name <name>', 'display name')
    .requiredOption('--mail-nickname <nickname>', 'mail nickname (no spaces)')
    .option('--description <text>', 'description')
    .action(async (opts: { displayName: string; mailNickname: string; description?: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        bodyOf(
          await client.graph<GraphGroup>('POST', '/groups', {
            body: {
              displayName: opts.displayName,
              mailNickname: opts.mailNickname,
              mailEnabled: false,
              securityEnabled: true,
              ...(opts.description === undefined ? {} : { description: opts.description }),
            },
          }),
        ),
      );
      printResult(result, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('list')
    .description('List groups.')
    .option('--display-name <name>', 'only groups with this display name')
    .action(async (opts: { displayName?: string }, cmd: Command) => {
      const result = await withClient(
        cmd,
        async (client) =>
          bodyOf(
            await client.graph<{ value: unknown[] }>('GET', '/groups', {
              ...(opts.displayName === undefined ? {} : { query: { $filter: `displayName eq ${quote(opts.displayName)}` } }),
            }),
          ).value,
      );
      printResult(result, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('show')
    .description('Show a group.')
    .requiredOption('-g, --group <group>', 'object id or display name')
    .action(async (opts: { group: string }, cmd: Command) => {
      const result = await withClient(cmd, (client) => resolveGroup(client, opts.group));
      printResult(result, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('delete')
    .description('Delete a group, its memberships and its role assignments.')
    .requiredOption('-g, --group <group>', 'object id or display name')
    .action(async (opts: { group: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const g = await resolveGroup(client, opts.group);
        await client.graph('DELETE', `/groups/${seg(g.id)}`);
      });
    });

  const member = group.command('member').description('Manage group members.');

  member
    .command('add')
    .description('Add a member: a service principal, managed identity or group (by object id).')
    .requiredOption('-g, --group <group>', 'object id or display name of the group')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(async (opts: { group: string; memberId: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const g = await resolveGroup(client, opts.group);
        await client.graph('POST', `/groups/${seg(g.id)}/members/$ref`, {
          body: { '@odata.id': `https://graph.microsoft.com/v1.0/directoryObjects/${opts.memberId}` },
        });
      });
    });

  member
    .command('remove')
    .description('Remove a member.')
    .requiredOption('-g, --group <group>', 'object id or display name of the group')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(async (opts: { group: string; memberId: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const g = await resolveGroup(client, opts.group);
        await client.graph('DELETE', `/groups/${seg(g.id)}/members/${seg(opts.memberId)}/$ref`);
      });
    });

  member
    .command('list')
    .description('List the direct members of a group.')
    .requiredOption('-g, --group <group>', 'object id or display name of the group')
    .action(async (opts: { group: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const g = await resolveGroup(client, opts.group);
        return bodyOf(await client.graph<{ value: unknown[] }>('GET', `/groups/${seg(g.id)}/members`)).value;
      });
      printResult(result, globalOptions(cmd), MEMBER_COLUMNS);
    });

  member
    .command('check')
    .description('Check whether an object is a member of a group, directly or through nested groups.')
    .requiredOption('-g, --group <group>', 'object id or display name of the group')
    .requiredOption('--member-id <id>', 'object id of the member')
    .action(async (opts: { group: string; memberId: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => {
        const g = await resolveGroup(client, opts.group);
        const response = bodyOf(
          await client.graph<{ value: string[] }>('POST', `/directoryObjects/${seg(opts.memberId)}/checkMemberGroups`, { body: { groupIds: [g.id] } }),
        );
        return { value: response.value.some((id) => id.toLowerCase() === g.id.toLowerCase()) };
      });
      printResult(result, globalOptions(cmd));
    });
}
