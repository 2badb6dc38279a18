import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { openPrivateFileAsync } from '../../shared/private-files.js';
import { readBackupHeader, BackupFormatError } from '../../backup/format.js';
import type { RestorePlan } from '../../backup/restore.js';
import { lazy } from './lazy.js';
import { globalOptions, withClient } from '../api-client.js';
import { printResult } from '../output.js';

/** `openmsi backup --out FILE` and `openmsi restore FILE [--yes]`: the embedded store's backups. */
export function registerBackupCommands(program: Command): void {
  program
    .command('backup')
    .description(
      "Copy the running server's embedded store and the data dir's files into FILE, online and consistent (the server keeps serving). " +
        'Everything in it stays encrypted under the master key, which it never holds: keep master.key safe, and apart. ' +
        'PostgreSQL stores are backed up with pg_dump instead (docs/operations.md).',
    )
    .requiredOption('--out <file>', 'the backup file to write (mode 0600; replaced atomically if it exists)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi backup --out /var/backups/openmsi/$(date -u +%F).backup\n  openmsi restore /var/backups/openmsi/2026-12-08.backup',
    )
    .action(async (opts: { out: string }, cmd: Command) => {
      const out = resolve(opts.out);
      const temp = `${out}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        const handle = await openPrivateFileAsync(temp, 'wx').catch((err: NodeJS.ErrnoException) => {
          throw new Error(`cannot write ${out}: ${err.code === 'ENOENT' ? `the folder ${dirname(out)} does not exist` : err.message}`, { cause: err });
        });
        try {
          await withClient(cmd, (client) => client.download('/backup', handle));
          await handle.sync();
        } finally {
          await handle.close();
        }
        // What arrived is a whole backup: its header parses and its database is as long as the header says.
        const backup = readBackupHeader(temp);
        if (statSync(temp).size !== backup.databaseOffset + backup.header.database.bytes) {
          throw new BackupFormatError(`the backup the server sent is incomplete; ${out} was not written`);
        }
        renameSync(temp, out);
        printResult(
          {
            file: out,
            createdAt: backup.header.createdAt,
            bytes: statSync(out).size,
            masterKeyId: backup.header.masterKeyId,
            migration: backup.header.migration,
          },
          globalOptions(cmd),
        );
      } finally {
        rmSync(temp, { force: true });
      }
    });

  program
    .command('restore')
    .description(
      "Replace the data dir's store and files (not its master key) with a backup's. The data dir must hold the master key the backup was " +
        'made under (its master.key, or OPENMSI_MASTER_KEY), and no server may run on it. A backup of an older release is migrated.',
    )
    .argument('<file>', 'a file written by `openmsi backup`')
    .option('--yes', 'do not ask for confirmation (required when there is no terminal to ask on)')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi restore openmsi.backup                       # asks before replacing\n  openmsi --data-dir /var/lib/openmsi restore openmsi.backup --yes',
    )
    .action(async (file: string, opts: { yes?: boolean }, cmd: Command) => {
      const globals = globalOptions(cmd);
      const { restoreBackup, RestoreRefusedError } = await lazy.restore();
      const result = await restoreBackup({
        file: resolve(file),
        dataDir: globals.dataDir,
        confirm: (plan) => (opts.yes === true ? Promise.resolve(true) : ask(plan)),
      });
      if (result === undefined) throw new RestoreRefusedError('restore cancelled: nothing was changed');
      printResult(
        {
          dataDir: result.dataDir,
          store: result.store,
          backupCreatedAt: result.backup.createdAt,
          masterKeyId: result.backup.masterKeyId,
          migration: result.migration,
        },
        globals,
      );
    });
}

async function ask(plan: RestorePlan): Promise<boolean> {
  const what = `the store and files of ${plan.dataDir} with the backup taken ${plan.backup.createdAt}`;
  if (process.stdin.isTTY !== true) throw new Error(`restore would replace ${what}; there is no terminal to confirm on: pass --yes`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`Replace ${what}? Everything written since is lost. [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
