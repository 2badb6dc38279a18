import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { dataDirLayout } from '../../shared/data-dir.js';
import { globalOptions } from '../api-client.js';
import { writePrivateFile } from '../../shared/private-files.js';

/** `openmsi ca export`: the local CA certificate (public), read from the data dir; no authority needed. */
export function registerCaCommands(program: Command): void {
  const ca = program
    .command('ca')
    .description("The local certificate authority that issues the authority's TLS certificate.")
    .addHelpText('after', '\nExamples:\n  openmsi ca export --out ca.pem');

  ca.command('export')
    .description('Print the CA certificate (PEM), or write it to a file, so clients can trust the authority (e.g. NODE_EXTRA_CA_CERTS).')
    .option('--out <file>', 'write the PEM to this file instead of stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  openmsi ca export > ca.pem\n  openmsi ca export --out ca.pem && NODE_EXTRA_CA_CERTS=ca.pem node app.js\n  curl --cacert <(openmsi ca export) https://localhost:8443/common/discovery/instance',
    )
    .action((opts: { out?: string }, cmd: Command) => {
      const path = dataDirLayout(globalOptions(cmd).dataDir).caCert;
      let pem: string;
      try {
        pem = readFileSync(path, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new Error(
          code === 'ENOENT'
            ? `no CA certificate at ${path}; run \`openmsi init\` first, or pass --data-dir / set OPENMSI_DATA_DIR`
            : `cannot read ${path}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`${path} does not hold a PEM certificate`);
      const text = pem.endsWith('\n') ? pem : `${pem}\n`;
      if (opts.out === undefined) {
        process.stdout.write(text);
        return;
      }
      const out = resolve(opts.out);
      try {
        writePrivateFile(out, text);
      } catch (err) {
        throw new Error(`cannot write ${out}: ${(err as Error).message}`, { cause: err });
      }
      // On stderr: stdout stays empty, as for every command that writes a file.
      process.stderr.write(`wrote the CA certificate to ${out} (trust it with e.g. NODE_EXTRA_CA_CERTS=${out})\n`);
    });
}
