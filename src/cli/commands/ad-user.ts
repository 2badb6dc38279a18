/**
 * `openmsi ad user create|list|show|update|delete`, `ad signed-in-user show` and `ad domain list`, shaped like
 * `az ad user` (Graph's JSON). `--id` takes an object id or a user principal name. A password is sent to the
 * server once and never printed.
 */
import type { Command } from 'commander';
import { bodyOf, globalOptions, withClient } from '../api-client.js';
import { column, printResult } from '../output.js';
import { seg } from './shared.js';

const USER_COLUMNS = [column('DisplayName', 'displayName'), column('UserPrincipalName', 'userPrincipalName'), column('Id', 'id')];
const DOMAIN_COLUMNS = [column('Id', 'id'), column('IsDefault', 'isDefault'), column('IsVerified', 'isVerified')];

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** `true`/`false` as az takes them. */
function parseBoolean(value: string): boolean {
  if (/^(true|yes|1)$/i.test(value)) return true;
  if (/^(false|no|0)$/i.test(value)) return false;
  throw new Error(`expected true or false, got '${value}'`);
}

/** Adds the `user`, `signed-in-user` and `domain` subcommands to the existing `openmsi ad` command. */
export function registerAdUserCommands(program: Command): void {
  const ad = program.commands.find((c) => c.name() === 'ad');
  if (ad === undefined) throw new Error('register the `ad` command (registerAdSpCommands) first');
  const user = ad
    .command('user')
    .description('Manage users: people who sign in (az login -u UPN -p PW) and hold roles like any principal.')
    .addHelpText(
      'after',
      "\nExamples:\n  openmsi ad domain list --query '[?isDefault].id' -o tsv\n  openmsi ad user create --display-name 'Ada Lovelace' --user-principal-name ada@<domain> --password <password>\n  openmsi role assignment create --assignee ada@<domain> --role Reader --scope /subscriptions/<sub>",
    );

  user
    .command('create')
    .description('Create a user. The password needs 8 to 256 characters and three of: lower case, upper case, digits, symbols.')
    .requiredOption('--display-name <name>', 'display name')
    .requiredOption('--user-principal-name <upn>', "NAME@DOMAIN, DOMAIN one of the tenant's (openmsi ad domain list)")
    .requiredOption('--password <password>', 'the initial password')
    .option('--force-change-password-next-sign-in', 'the user must change the password before signing in')
    .option('--mail <address>', 'mail address')
    .action(
      async (
        opts: { displayName: string; userPrincipalName: string; password: string; forceChangePasswordNextSignIn?: boolean; mail?: string },
        cmd: Command,
      ) => {
        const result = await withClient(cmd, async (client) =>
          bodyOf(
            await client.graph('POST', '/users', {
              body: {
                accountEnabled: true,
                displayName: opts.displayName,
                userPrincipalName: opts.userPrincipalName,
                passwordProfile: { password: opts.password, forceChangePasswordNextSignIn: opts.forceChangePasswordNextSignIn === true },
                ...(opts.mail === undefined ? {} : { mail: opts.mail }),
              },
            }),
          ),
        );
        printResult(result, globalOptions(cmd), USER_COLUMNS);
      },
    );

  user
    .command('list')
    .description('List users.')
    .option('--upn <upn>', 'only the user with this user principal name')
    .option('--display-name <name>', 'only users whose display name starts with this')
    .option('--filter <odata>', 'an OData $filter')
    .action(async (opts: { upn?: string; displayName?: string; filter?: string }, cmd: Command) => {
      const filters = [
        ...(opts.upn === undefined ? [] : [`userPrincipalName eq ${quote(opts.upn)}`]),
        ...(opts.displayName === undefined ? [] : [`startswith(displayName, ${quote(opts.displayName)})`]),
        ...(opts.filter === undefined ? [] : [opts.filter]),
      ];
      const result = await withClient(
        cmd,
        async (client) =>
          bodyOf(await client.graph<{ value: unknown[] }>('GET', '/users', filters.length === 0 ? {} : { query: { $filter: filters.join(' and ') } })).value,
      );
      printResult(result, globalOptions(cmd), USER_COLUMNS);
    });

  user
    .command('show')
    .description('Show a user.')
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(async (opts: { id: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph('GET', `/users/${seg(opts.id)}`)));
      printResult(result, globalOptions(cmd), USER_COLUMNS);
    });

  user
    .command('update')
    .description('Change a user. A new password, or disabling the account, signs the user out everywhere (revokes its refresh tokens).')
    .requiredOption('--id <id>', 'object id or user principal name')
    .option('--display-name <name>', 'display name')
    .option('--password <password>', 'a new password')
    .option('--force-change-password-next-sign-in <bool>', 'true or false', parseBoolean)
    .option('--account-enabled <bool>', 'true or false', parseBoolean)
    .option('--mail <address>', 'mail address')
    .action(
      async (
        opts: { id: string; displayName?: string; password?: string; forceChangePasswordNextSignIn?: boolean; accountEnabled?: boolean; mail?: string },
        cmd: Command,
      ) => {
        const profile = {
          ...(opts.password === undefined ? {} : { password: opts.password }),
          ...(opts.forceChangePasswordNextSignIn === undefined ? {} : { forceChangePasswordNextSignIn: opts.forceChangePasswordNextSignIn }),
        };
        const body = {
          ...(opts.displayName === undefined ? {} : { displayName: opts.displayName }),
          ...(opts.accountEnabled === undefined ? {} : { accountEnabled: opts.accountEnabled }),
          ...(opts.mail === undefined ? {} : { mail: opts.mail }),
          ...(Object.keys(profile).length === 0 ? {} : { passwordProfile: profile }),
        };
        if (Object.keys(body).length === 0)
          throw new Error('nothing to change: give --display-name, --password, --force-change-password-next-sign-in, --account-enabled or --mail');
        await withClient(cmd, async (client) => {
          await client.graph('PATCH', `/users/${seg(opts.id)}`, { body });
        });
      },
    );

  user
    .command('delete')
    .description('Delete a user with its role assignments, group memberships and refresh tokens.')
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(async (opts: { id: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await client.graph('DELETE', `/users/${seg(opts.id)}`);
      });
    });

  user
    .command('revoke-sessions')
    .description('Sign a user out everywhere: revoke every refresh token it holds.')
    .requiredOption('--id <id>', 'object id or user principal name')
    .action(async (opts: { id: string }, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph('POST', `/users/${seg(opts.id)}/revokeSignInSessions`)));
      printResult(result, globalOptions(cmd));
    });

  ad.command('signed-in-user')
    .description("The signed-in user (a user token only: the CLI's own admin credential is an application).")
    .command('show')
    .description('Show the signed-in user.')
    .action(async (_opts: unknown, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph('GET', '/me')));
      printResult(result, globalOptions(cmd), USER_COLUMNS);
    });

  ad.command('domain')
    .description("The tenant's domains: user principal names end in one of them.")
    .command('list')
    .description('List the domains (the default one has isDefault: true).')
    .action(async (_opts: unknown, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.graph<{ value: unknown[] }>('GET', '/domains')).value);
      printResult(result, globalOptions(cmd), DOMAIN_COLUMNS);
    });
}
