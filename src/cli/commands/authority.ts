import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { createAuthority } from '../../authority/authority.js';
import { initDataDir, DEFAULT_PORT } from '../../authority/init.js';
import { dataDirLayout } from '../../shared/data-dir.js';
import { defaultOrigin, explicitPublicUrl } from '../../shared/public-url.js';
import { createLogger } from '../../shared/logger.js';
import { describeStoreLocation, isPostgresLocation } from '../../store/open.js';
import { globalOptions } from '../api-client.js';
import { printResult } from '../output.js';
import { collect } from './shared.js';

/** `openmsi init` and `openmsi authority`. */
export function registerAuthorityCommands(program: Command): void {
  program
    .command('init')
    .description('Create a data dir: master key, local CA and TLS certificate, store, tenant, subscription, signing keys and the bootstrap admin credential.')
    .option('--host <address>', 'address the authority will listen on', '127.0.0.1')
    .option('--port <port>', 'port the authority will listen on', (v) => parsePort(v), DEFAULT_PORT)
    .option('--public-url <url>', 'https origin clients will use, fixed (default: https://localhost:<the port the authority listens on>)')
    .option('--store <location>', 'store: "sqlite" (embedded, in the data dir) or a postgres:// URL (also OPENMSI_STORE)')
    .option('--token-lifetime <seconds>', 'access-token lifetime in seconds (300 to 86400)', (v) => Number(v), 3600)
    .option('--hostname <name>', 'extra DNS name for the server certificate (repeatable)', collect, [])
    .option('--ip <address>', 'extra IP address for the server certificate (repeatable)', collect, [])
    .option('--tenant-domain <domain>', 'the tenant\'s domain name', 'openmsi.local')
    .addHelpText(
      'after',
      `
Examples:
  openmsi init
  openmsi init --data-dir /var/lib/openmsi --port 9443 --hostname authority.internal
  OPENMSI_STORE=postgres://openmsi@db/openmsi openmsi init --store postgres://openmsi@db/openmsi`,
    )
    .action(async (opts: InitFlags, cmd: Command) => {
      const { dataDir, output } = globalOptions(cmd);
      const result = await initDataDir({
        dataDir,
        host: opts.host,
        port: opts.port,
        ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
        ...(opts.store === undefined ? {} : { store: redactUrl(opts.store) }),
        tokenLifetimeSeconds: opts.tokenLifetime,
        hostnames: opts.hostname,
        ipAddresses: opts.ip,
        tenantDomain: opts.tenantDomain,
      });
      printResult(
        {
          dataDir,
          tenantId: result.config.tenantId,
          subscriptionId: result.config.subscriptionId,
          authority: explicitPublicUrl(result.config) ?? defaultOrigin(result.config.host, result.config.port),
          adminClientId: result.admin.clientId,
          adminCredentialFile: dataDirLayout(dataDir).adminCredential,
          caCertificateFile: dataDirLayout(dataDir).caCert,
        },
        output,
      );
    });

  program
    .command('authority')
    .description('Run the token authority and management API (HTTPS) from a data dir.')
    .option('--init', 'initialise the data dir first if it is not initialised yet')
    .option('--host <address>', 'override the configured listen address')
    .option('--port <port>', 'override the configured port (the advertised URL follows it unless a public URL was set)', (v) => parsePort(v))
    .option('--public-url <url>', 'https origin to advertise (issuer, endpoints), overriding the configured one')
    .option('--store <location>', 'override the store: a postgres:// URL (also OPENMSI_STORE) or a SQLite file')
    .addHelpText(
      'after',
      `
Examples:
  openmsi authority
  openmsi authority --init --data-dir ./.openmsi
  openmsi authority --port 9443                 # the CLI finds it there through the data dir
  NODE_EXTRA_CA_CERTS=$(openmsi ca export --out ca.pem && echo ca.pem) node app.js   # trust it from Node`,
    )
    .action(async (opts: { init?: boolean; host?: string; port?: number; publicUrl?: string; store?: string }, cmd: Command) => {
      const { dataDir } = globalOptions(cmd);
      const logger = createLogger();
      if (opts.init === true && !existsSync(dataDirLayout(dataDir).config)) {
        const result = await initDataDir({
          dataDir,
          ...(opts.host === undefined ? {} : { host: opts.host }),
          ...(opts.port === undefined ? {} : { port: opts.port }),
          ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
        });
        logger.info({ dataDir, tenantId: result.config.tenantId, adminClientId: result.admin.clientId }, 'initialised data dir');
      }
      const authority = await createAuthority({
        dataDir,
        logger,
        ...(opts.host === undefined ? {} : { host: opts.host }),
        ...(opts.port === undefined ? {} : { port: opts.port }),
        ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }),
        ...(opts.store === undefined ? {} : { store: opts.store }),
      });
      const url = await authority.listen();
      logger.info(
        { authority: url, tenantId: authority.config.tenantId, caCertificate: dataDirLayout(dataDir).caCert },
        `openmsi authority ready: ${url}/${authority.config.tenantId}/v2.0/.well-known/openid-configuration`,
      );
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        authority.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}

interface InitFlags {
  host: string;
  port: number;
  publicUrl?: string;
  store?: string;
  tokenLifetime: number;
  hostname: string[];
  ip: string[];
  tenantDomain: string;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not a port number: ${value}`);
  return port;
}

/**
 * config.json must never hold a database password (neither the URL's nor a `password=` parameter); it comes
 * from OPENMSI_STORE at run time.
 */
function redactUrl(location: string): string {
  if (!isPostgresLocation(location)) return location;
  // Refuse an unparseable URL here rather than store describeStoreLocation's placeholder for it.
  if (!URL.canParse(location)) throw new Error('--store is not a valid postgres:// URL');
  return describeStoreLocation(location);
}
