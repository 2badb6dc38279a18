#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { registerAuthorityCommands } from './commands/authority.js';
import { registerGroupCommands } from './commands/group.js';
import { registerIdentityCommands } from './commands/identity.js';
import { registerAdSpCommands } from './commands/ad-sp.js';
import { registerCaCommands } from './commands/ca.js';
import { registerKeysCommands } from './commands/keys.js';

/** Builds the `openmsi` command tree (exported so tests can drive it without a subprocess). */
export function buildProgram(): Command {
  const program = new Command('openmsi')
    .description('Azure Managed Service Identity for any machine: an Entra-compatible token authority, its directory and CLI.')
    .version('0.1.0')
    .option('--data-dir <dir>', 'the openmsi data dir (default: $OPENMSI_DATA_DIR or ~/.openmsi)')
    .option('-o, --output <format>', 'output format: json or table', 'json')
    .option('--subscription <id>', 'subscription to act on (default: the one created by init)')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Examples:
  openmsi init && openmsi authority          # start a local authority
  openmsi group create -n app-rg -l local
  openmsi identity create -n app-id -g app-rg
  openmsi ad sp create-for-rbac --name ci-pipeline
  openmsi ca export --out ca.pem`,
    );
  registerAuthorityCommands(program);
  registerGroupCommands(program);
  registerIdentityCommands(program);
  registerAdSpCommands(program);
  registerCaCommands(program);
  registerKeysCommands(program);
  return program;
}

const entry = process.argv[1];
const isMain = entry !== undefined && realpathSync(entry) === fileURLToPath(import.meta.url);
if (isMain) {
  buildProgram()
    .exitOverride()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CommanderError) process.exit(err.exitCode);
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
