import type { Command } from 'commander';
import { withClient, globalOptions } from '../api-client.js';
import { column, printResult } from '../output.js';
import { confirm, parseTags, seg } from './shared.js';

const GROUP_COLUMNS = [column('Name', 'name'), column('Location', 'location'), column('Status', 'properties.provisioningState')];
const API_VERSION = '2021-04-01';

/** `openmsi group create|list|show|exists|delete`, shaped like `az group`. */
export function registerGroupCommands(program: Command): void {
  const group = program
    .command('group')
    .description('Manage resource groups.')
    .addHelpText('after', '\nExamples:\n  openmsi group create -n app-rg -l westeurope\n  openmsi group list -o table\n  openmsi group delete -n app-rg --yes');

  group
    .command('create')
    .description('Create a new resource group, or update the tags of an existing one.')
    .requiredOption('-n, --name <name>', 'name of the resource group')
    .requiredOption('-l, --location <location>', 'location, e.g. westeurope (any label: openmsi runs wherever you run it)')
    .option('--tags <tags...>', 'space-separated tags: key[=value] [key[=value] ...]; "" clears existing tags')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi group create -n app-rg -l westeurope\n  openmsi group create -n app-rg -l westeurope --tags env=dev team=payments',
    )
    .action(async (opts: { name: string; location: string; tags?: string[] }, cmd: Command) => {
      const tags = parseTags(opts.tags);
      const result = await withClient(
        cmd,
        async (client) =>
          (
            await client.arm('PUT', `${client.subscriptionPath()}/resourcegroups/${seg(opts.name)}`, {
              apiVersion: API_VERSION,
              body: { location: opts.location, ...(tags === undefined ? {} : { tags }) },
            })
          ).body,
      );
      printResult(result, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('list')
    .description('List resource groups.')
    .option('--tag <tag>', 'only groups with this tag: key[=value]')
    .addHelpText('after', '\nExamples:\n  openmsi group list\n  openmsi group list --tag env=dev -o table')
    .action(async (opts: { tag?: string }, cmd: Command) => {
      const groups = await withClient(cmd, async (client) => {
        const response = await client.arm<{ value: { tags?: Record<string, string> }[] }>('GET', `${client.subscriptionPath()}/resourcegroups`, {
          apiVersion: API_VERSION,
        });
        return response.body?.value ?? [];
      });
      const wanted = opts.tag === undefined ? undefined : Object.entries(parseTags([opts.tag]) ?? {})[0];
      const filtered =
        wanted === undefined
          ? groups
          : groups.filter((g) => g.tags !== undefined && wanted[0] in g.tags && (opts.tag?.includes('=') !== true || g.tags[wanted[0]] === wanted[1]));
      printResult(filtered, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('show')
    .description('Show a resource group.')
    .requiredOption('-n, --name <name>', 'name of the resource group')
    .addHelpText('after', '\nExamples:\n  openmsi group show -n app-rg')
    .action(async (opts: { name: string }, cmd: Command) => {
      const result = await withClient(
        cmd,
        async (client) => (await client.arm('GET', `${client.subscriptionPath()}/resourcegroups/${seg(opts.name)}`, { apiVersion: API_VERSION })).body,
      );
      printResult(result, globalOptions(cmd), GROUP_COLUMNS);
    });

  group
    .command('exists')
    .description('Check whether a resource group exists (prints true or false).')
    .requiredOption('-n, --name <name>', 'name of the resource group')
    .addHelpText('after', '\nExamples:\n  openmsi group exists -n app-rg')
    .action(async (opts: { name: string }, cmd: Command) => {
      const exists = await withClient(cmd, async (client) => {
        const response = await client.arm('GET', `${client.subscriptionPath()}/resourcegroups/${seg(opts.name)}`, {
          apiVersion: API_VERSION,
          allowStatus: [404],
        });
        return response.status === 200;
      });
      printResult(exists, globalOptions(cmd));
    });

  group
    .command('delete')
    .description('Delete a resource group and everything in it; the managed identities in it are deleted with their service principals.')
    .requiredOption('-n, --name <name>', 'name of the resource group')
    .option('-y, --yes', 'do not prompt for confirmation')
    .addHelpText('after', '\nExamples:\n  openmsi group delete -n app-rg\n  openmsi group delete -n app-rg --yes')
    .action(async (opts: { name: string; yes?: boolean }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const path = `${client.subscriptionPath()}/resourcegroups/${seg(opts.name)}`;
        const notFound = () => new Error(`(ResourceGroupNotFound) Resource group '${opts.name}' could not be found.`);
        // Say that it is missing before asking whether to delete it.
        if ((await client.arm('GET', path, { apiVersion: API_VERSION, allowStatus: [404] })).status === 404) throw notFound();
        if (opts.yes !== true && !(await confirm(`delete resource group '${opts.name}' and everything in it`, '--yes'))) return;
        const response = await client.arm('DELETE', path, { apiVersion: API_VERSION });
        if (response.status === 204) throw notFound();
      });
    });
}
