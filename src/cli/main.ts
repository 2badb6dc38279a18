#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { registerAuthorityCommands, registerVaultReplicaCommand } from './commands/authority.js';
import { registerGroupCommands } from './commands/group.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerAdSpCommands } from './commands/ad-sp.js';
import { registerAdGroupCommands } from './commands/ad-group.js';
import { registerAdUserCommands } from './commands/ad-user.js';
import { registerFederationCommands } from './commands/federation.js';
import { registerOutboundFederationCommands } from './commands/federation-outbound.js';
import { registerRoleCommands } from './commands/role.js';
import { registerCaCommands } from './commands/ca.js';
import { registerKeysCommands } from './commands/keys.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerHostCommands } from './commands/host.js';
import { registerVmCommands } from './commands/vm.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerRunCommand } from './commands/run.js';
import { registerKeyVaultCommands } from './commands/keyvault.js';
import { registerDevCommands } from './commands/dev.js';
import { parseOutputFormat, parseQuery } from './output.js';

/** Builds the `openmsi` command tree (exported so tests can drive it without a subprocess). */
export function buildProgram(): Command {
  const program = new Command('openmsi')
    .description('Azure Managed Service Identity for any machine: an Entra-compatible token authority, its directory and CLI.')
    // No commander .version(): a root option is recognised after subcommands too, and az-shaped commands use
    // --version for an object's version (`keyvault secret show --version V`). `openmsi --version` alone is
    // answered before parsing (below).
    .option('--data-dir <dir>', 'the openmsi data dir (default: $OPENMSI_DATA_DIR or ~/.openmsi)')
    .option('-o, --output <format>', 'output format: json, jsonc, yaml, yamlc, table, tsv or none', 'json')
    .option('--query <jmespath>', 'JMESPath query applied to the result (see https://jmespath.org)')
    .option('--subscription <id>', 'subscription to act on (default: the one created by init)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  openmsi dev                                # everything a developer machine needs, in one process (Ctrl-C stops)
  eval "$(openmsi dev env)"                  # in another shell: unchanged Azure apps then use it
  openmsi init && openmsi server             # or a server alone (authority, management API, vault)
  openmsi --version
  openmsi group create -n app-rg -l local
  openmsi identity create -n app-id -g app-rg
  openmsi ad sp create-for-rbac --name ci-pipeline
  openmsi ca export --out ca.pem
  openmsi host join-token create -g hosts-rg -n build-01
  openmsi audit list --host build-01 --since 1h -o table
  openmsi backup --out openmsi.backup         # online copy of a running server's embedded store`,
    );
  // az checks --output and --query while parsing, before the command acts: a typo never follows a write.
  program.hook('preAction', (_root, action) => {
    const opts = action.optsWithGlobals<{ output?: string; query?: string }>();
    parseOutputFormat(opts.output);
    parseQuery(opts.query);
  });
  // `dev` first: it is where a new user starts (and what `npm start` runs).
  registerDevCommands(program);
  registerAuthorityCommands(program);
  registerVaultReplicaCommand(program);
  registerGroupCommands(program);
  registerIdentityCommands(program);
  registerAdSpCommands(program);
  registerAdGroupCommands(program);
  registerAdUserCommands(program);
  registerFederationCommands(program);
  registerOutboundFederationCommands(program);
  registerRoleCommands(program);
  registerCaCommands(program);
  registerKeysCommands(program);
  registerAgentCommands(program);
  registerHostCommands(program);
  registerVmCommands(program);
  registerKeyVaultCommands(program);
  registerAuditCommands(program);
  registerBackupCommands(program);
  registerRunCommand(program);
  refuseHelpForUnknownCommands(program);
  return program;
}

/**
 * commander answers `openmsi nosuch --help` with the root help and status 0, which reads as if `nosuch`
 * existed. Every help output passes through the root's `beforeAllHelp` event with the command it is for;
 * when that command has subcommands and the first operand it was given names none of them, report the
 * unknown command instead (status 1; the error is followed by the help of the command it was given to).
 */
function refuseHelpForUnknownCommands(program: Command): void {
  program.on('beforeAllHelp', ({ command, error }: { command: Command; error: boolean }) => {
    // Help shown after an error (showHelpAfterError), this one included, is already an error.
    if (error) return;
    const first = command.args.find((arg) => !arg.startsWith('-'));
    if (first === undefined || first === 'help' || command.commands.length === 0) return;
    if (command.commands.some((sub) => sub.name() === first || sub.aliases().includes(first))) return;
    command.error(`error: unknown command '${first}'`, { code: 'commander.unknownCommand', exitCode: 1 });
  });
}

const entry = process.argv[1];
const isMain = entry !== undefined && realpathSync(entry) === fileURLToPath(import.meta.url);
/** The release, as `openmsi --version` prints it. */
export const VERSION = '0.1.0';

if (isMain && (process.argv[2] === '--version' || process.argv[2] === '-V') && process.argv.length === 3) {
  process.stdout.write(`${VERSION}\n`);
} else if (isMain) {
  buildProgram()
    .exitOverride()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) process.exit(err.exitCode);
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
