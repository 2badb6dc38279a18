import type { Command } from 'commander';
import { bodyOf, globalOptions, withClient } from '../api-client.js';
import { column, printResult } from '../output.js';

const KEY_COLUMNS = [
  column('Kid', 'kid'),
  column('State', 'state'),
  column('Published', 'published'),
  column('CreatedAt', 'createdAt'),
  column('ActivatedAt', 'activatedAt'),
  column('RetiredAt', 'retiredAt'),
  column('PublishUntil', 'publishUntil'),
];

/** `openmsi keys list|rotate`: the authority's token-signing keys. */
export function registerKeysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description("Inspect and rotate the authority's token-signing keys (metadata only; private keys never leave the authority).")
    .addHelpText('after', '\nExamples:\n  openmsi keys list -o table\n  openmsi keys rotate');

  keys
    .command('list')
    .description('List signing keys with their state (next, current, retired, revoked) and publication window.')
    .addHelpText('after', '\nExamples:\n  openmsi keys list\n  openmsi keys list -o table')
    .action(async (_opts: unknown, cmd: Command) => {
      const result = await withClient(cmd, async (client) => bodyOf(await client.openmsi<{ value: unknown[] }>('GET', '/keys')).value);
      printResult(result, globalOptions(cmd), KEY_COLUMNS);
    });

  keys
    .command('rotate')
    .description(
      'Rotate now: the pre-published next key starts signing. The previous key stays published until every token it signed has expired, unless --revoke-previous removes it at once (its tokens stop verifying).',
    )
    .option('--revoke-previous', 'revoke the previous key instead of retiring it (use when it may be compromised)')
    .addHelpText('after', '\nExamples:\n  openmsi keys rotate\n  openmsi keys rotate --revoke-previous')
    .action(async (opts: { revokePrevious?: boolean }, cmd: Command) => {
      const result = await withClient(cmd, async (client) =>
        bodyOf(await client.openmsi('POST', '/keys/rotate', { body: { revokePrevious: opts.revokePrevious === true } })),
      );
      printResult(result, globalOptions(cmd));
    });
}
